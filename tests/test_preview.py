"""Preview environments as pure logic: settings, pull request numbers, the namespace labels
that mark a preview as the toolkit's, garbage-collection decisions, credentials and the cap."""

from __future__ import annotations

import copy
import datetime as dt
import http.server
import json
import threading
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegis_delivery import github
from aegis_delivery.cluster import helm, kube, preview
from aegis_delivery.cluster.values import environment_values, merged
from aegis_delivery.config import load_config, parse_config
from aegis_delivery.config_preview import PreviewSettings
from aegis_delivery.errors import AegisError, ConfigError, ExitCode, InputError
from aegis_delivery.release.context import BuildContext, pull_request_fork
from aegis_delivery.release.tags import decide
from aegis_delivery.validation import pull_request_number
from tests.conftest import REPOSITORY, RecordingConsole
from tests.test_config import SOURCE, real_document

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
SETTINGS = PreviewSettings(domain="preview.example.com", kube_context="preview")


def with_preview(**keys: object) -> dict[str, Any]:
    document = copy.deepcopy(real_document())
    document["tool"]["aegis"]["preview"] = {
        "domain": "preview.example.com", "kube_context": "preview", **keys,
    }  # fmt: skip
    return document


def test_previews_are_off_without_their_table_and_say_how_to_turn_them_on() -> None:
    document = real_document()
    del document["tool"]["aegis"]["preview"]
    config = parse_config(document, SOURCE)
    assert config.preview is None
    assert load_config(REPOSITORY / "pyproject.toml").preview is not None  # this repository's on
    with pytest.raises(ConfigError, match=r"\[tool.aegis.preview\].*docs/previews.md"):
        preview.settings_of(config)


def test_preview_settings_load_with_their_defaults() -> None:
    config = parse_config(with_preview(ttl="24h", max_previews=3), SOURCE)
    settings = preview.settings_of(config)
    assert (settings.ttl.seconds, settings.max_previews) == (86400, 3)
    assert settings.name(7) == "aegis-pr-7"
    assert settings.host(7) == "pr-7.preview.example.com"
    assert settings.share_staging_credentials is False


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"domain": "Preview.Example.com"}, ["domain", "lower-case DNS domain"]),
        ({"domain": "localhost"}, ["domain"]),
        ({"kube_context": "-x"}, ["kube_context", "leading '-'"]),
        ({"namespace_prefix": "Aegis-"}, ["namespace_prefix", "DNS-1123"]),
        ({"namespace_prefix": "a" * 45}, ["namespace_prefix", "at most 44"]),
        ({"max_previews": 0}, ["max_previews", "1 to 500"]),
        ({"max_previews": 501}, ["max_previews", "1 to 500"]),
        ({"ttl": "forever"}, ["ttl"]),
        ({"colour": "blue"}, ["unknown key 'colour'"]),
        ({"share_staging_credentials": "yes"}, ["share_staging_credentials", "true or false"]),
    ],
    ids=lambda value: str(value)[:30],
)
def test_a_bad_preview_setting_is_named(keys: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(with_preview(**keys), SOURCE)
    assert raised.value.exit_code == ExitCode.BAD_INPUT
    for word in words:
        assert word in str(raised.value)


def test_an_environment_named_preview_beside_the_table_is_refused() -> None:
    document = with_preview()
    environments = document["tool"]["aegis"]["environments"]
    environments["preview"] = copy.deepcopy(environments["staging"])
    with pytest.raises(ConfigError, match="preview"):
        parse_config(document, SOURCE)


@pytest.mark.parametrize("text", ["0", "-1", "12a", "1" * 20, "", " 7", "\u0667", "+7", "07"])
def test_a_bad_pull_request_number_is_refused(text: str) -> None:
    with pytest.raises(InputError, match="pull request number") as raised:
        pull_request_number(text)
    assert raised.value.exit_code == ExitCode.BAD_INPUT


@given(st.integers(min_value=1, max_value=999_999_999))
def test_every_pull_request_number_round_trips(number: int) -> None:
    assert pull_request_number(str(number)) == number == pull_request_number(number)


@given(st.text(max_size=12))
def test_pull_request_numbers_are_ascii_digits_or_refused(text: str) -> None:
    try:
        number = pull_request_number(text)
    except InputError:
        return
    assert str(number) == text and 1 <= number <= 999_999_999


def namespace(number: int, *, expires: dt.datetime, keep: bool = False, ours: bool = True,
              created: dt.datetime = NOW) -> dict[str, object]:  # fmt: skip
    stamp = preview.Stamp(number, "a" * 40, "octocat", f"pr-{number}-aaaaaaa", "https://x",
                          created, int((expires - created).total_seconds()))  # fmt: skip
    document = json.loads(stamp.manifest(SETTINGS.name(number)))
    if keep:
        document["metadata"]["labels"][preview.KEEP_LABEL] = "true"
    if not ours:
        del document["metadata"]["labels"][preview.MANAGED_BY]
    return dict(document)


def test_a_namespace_is_a_preview_only_with_all_its_labels() -> None:
    mine = namespace(7, expires=NOW)
    assert preview.owned(mine) and preview.owned(mine, 7) and not preview.owned(mine, 8)
    assert not preview.owned(namespace(7, expires=NOW, ours=False))
    assert not preview.owned({"metadata": {"name": "aegis-pr-7"}})
    assert preview.parse_preview({"metadata": {"labels": "x"}}) is None


def test_namespaces_parse_oldest_first_and_a_refresh_keeps_who_and_since_when() -> None:
    older = namespace(9, expires=NOW, created=NOW - dt.timedelta(days=1))
    items = [namespace(7, expires=NOW), older, namespace(8, expires=NOW, ours=False)]
    previews = preview.parse_namespaces(json.dumps({"items": items}))
    assert [p.number for p in previews] == [9, 7]
    later = preview.Stamp(7, "b" * 40, "someone", "pr-7-bbbbbbb", "https://x", NOW, 60)
    assert set(later.refreshed()) == {preview.HEAD_SHA, preview.EXPIRES_AT, preview.URL,
                                      preview.TAG}  # fmt: skip
    with pytest.raises(AegisError, match="not JSON"):
        preview.parse_namespaces("<html>")


def test_an_unreadable_expiry_counts_as_expired() -> None:
    document = namespace(7, expires=NOW + dt.timedelta(hours=1))
    metadata = document["metadata"]
    assert isinstance(metadata, dict)
    metadata["annotations"][preview.EXPIRES_AT] = "soon"
    parsed = preview.parse_preview(document)
    assert parsed is not None and parsed.expired(NOW)


def test_gc_removes_closed_and_expired_and_keeps_pinned_and_open() -> None:
    hour = dt.timedelta(hours=1)
    found = [
        preview.parse_preview(namespace(1, expires=NOW + hour)),  # closed
        preview.parse_preview(namespace(2, expires=NOW - hour)),  # expired
        preview.parse_preview(namespace(3, expires=NOW - hour, keep=True)),  # pinned
        preview.parse_preview(namespace(4, expires=NOW + hour)),  # open
        preview.parse_preview(namespace(5, expires=NOW + hour)),  # unknown: kept
    ]
    states: dict[int, str | None] = {1: "closed", 3: "closed", 4: "open", 5: None}
    decided = preview.gc_decisions([p for p in found if p], NOW, states)
    assert [(d.preview.number, d.remove, d.reason) for d in decided] == [
        (1, True, "closed"), (2, True, "expired"), (3, False, "kept (keep label)"),
        (4, False, "open"), (5, False, "unexpired"),
    ]  # fmt: skip


def test_the_cap_refuses_a_new_preview_naming_the_oldest_but_not_a_refresh() -> None:
    settings = PreviewSettings(domain="p.example.com", kube_context="p", max_previews=2)
    found = [p for n in (1, 2) if (p := preview.parse_preview(namespace(n, expires=NOW)))]
    refusal = preview.cap_refusal(found, settings, 3)
    assert refusal is not None and "#1 (aegis-pr-1" in str(refusal)
    assert preview.cap_refusal(found, settings, 2) is None


def test_previews_use_their_own_credentials_never_staging_by_accident() -> None:
    staging = {"KUBE_CONFIG": "c3RhZ2luZw==", "CI": "true"}
    with pytest.raises(InputError, match="KUBE_CONFIG_PREVIEW"):
        preview.credentials(staging, SETTINGS)
    own = preview.credentials({**staging, "KUBE_CONFIG_PREVIEW": "cHJldmlldw=="}, SETTINGS)
    assert own["KUBE_CONFIG_PREVIEW"] == "cHJldmlldw==" and "KUBE_CONFIG" not in own
    shared = PreviewSettings(domain="p.example.com", kube_context="p",
                             share_staging_credentials=True)  # fmt: skip
    assert preview.credentials(staging, shared)["KUBE_CONFIG_PREVIEW"] == "c3RhZ2luZw=="
    assert "KUBE_CONFIG_PREVIEW" not in preview.credentials({"KUBE_CONFIG": "x"}, SETTINGS)


def test_a_preview_deploys_as_its_own_release_into_its_own_namespace() -> None:
    config = preview.preview_config(parse_config(with_preview(), SOURCE), 7)
    assert config.release == "aegis-pr-7"
    assert list(config.environments) == ["preview"]
    assert config.environment("preview").namespace == "aegis-pr-7"
    assert preview.chart_values(SETTINGS, 7) == {
        "ingress": {"enabled": True, "host": "pr-7.preview.example.com"}
    }


def test_values_merge_mapping_by_mapping_and_environments_bring_their_file() -> None:
    base = {"ingress": {"enabled": True, "host": "a"}, "replicas": 2}
    assert merged(base, {"ingress": {"host": "b"}}) == {
        "ingress": {"enabled": True, "host": "b"}, "replicas": 2,
    }  # fmt: skip
    config = load_config(REPOSITORY / "pyproject.toml")
    assert environment_values(config, "staging") == (config.chart / "values.staging.yaml",)
    assert environment_values(config, "nowhere") == ()


def context(**fields: object) -> BuildContext:
    defaults: dict[str, Any] = {
        "source": "github", "event": "pull_request", "ref": "refs/pull/7/merge",
        "sha": "0123456" + "0" * 33, "repository": "o/r", "actor": "octocat", "pull_request": 7,
    }  # fmt: skip
    return BuildContext(**{**defaults, **fields})


def test_a_pull_request_is_published_for_its_preview_only_from_this_repository() -> None:
    own, fork = context(), context(pull_request_fork=True)
    assert decide(own, "main", previews=True).publish
    assert not decide(fork, "main", previews=True).publish
    assert not decide(own, "main").publish
    assert decide(own, "main", previews=True).tags == ("pr-7-0123456",)


@pytest.mark.parametrize(
    ("head_repo", "fork"),
    [({"full_name": "Your-Org/AegisTrader"}, False), ({"full_name": "someone/AegisTrader"}, True),
     (None, True), ({}, True)],
)  # fmt: skip
def test_a_fork_is_any_head_that_is_not_this_repository(head_repo: object, fork: bool) -> None:
    pull = {"head": {"repo": head_repo}}
    payload = {"repository": {"full_name": "your-org/aegistrader"}}
    assert pull_request_fork(pull, payload, {}) is fork


def test_namespace_and_list_command_lines(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    assert kube.delete_namespace_argv(kubectl, "ctx", "aegis-pr-7", "5m")[-3:] == (
        "--ignore-not-found", "--wait=true", "--timeout=5m",
    )  # fmt: skip
    assert "--all" in helm.list_argv(helm.Helm(tmp_path / "helm3", 3), "ctx", "^aegis-pr-")
    assert "--all" not in helm.list_argv(helm.Helm(tmp_path / "helm", 4), "ctx", "^aegis-pr-")
    listed = json.dumps([{"name": "aegis-pr-7", "namespace": "aegis-pr-7", "status": "failed"}])
    assert helm.parse_list(listed) == {"aegis-pr-7/aegis-pr-7": "failed"}
    assert helm.parse_list("") == {}
    with pytest.raises(AegisError, match="not JSON"):
        helm.parse_list("oops")


def test_a_bad_github_api_url_is_an_input_error() -> None:
    with pytest.raises(InputError, match="GITHUB_API_URL"):
        github.api_url({"GITHUB_API_URL": "ftp://x"})
    assert github.api_url({}) == github.API


class PullRequests(http.server.BaseHTTPRequestHandler):
    """GitHub's pulls endpoint on loopback: #1 closed, #2 open, #3 a 404, #4 not JSON."""

    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        number = self.path.rsplit("/", 1)[-1]
        body = {"1": b'{"state": "closed"}', "2": b'{"state": "open"}', "4": b"<html>"}
        if number not in body:
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body[number])

    def log_message(self, *_: object) -> None:
        pass


def test_gc_asks_github_and_never_removes_on_an_unknown_answer(console: RecordingConsole) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PullRequests)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        environ = {
            "GITHUB_TOKEN": "t0ken",
            "GITHUB_API_URL": f"http://127.0.0.1:{server.server_port}",
        }
        states = github.pull_request_states(console, environ, "o/r", [1, 2, 3, 4])
    finally:
        server.shutdown()
        server.server_close()
    assert states == {1: "closed", 2: "open", 3: None, 4: None}
    assert PullRequests.seen[0] == ("/repos/o/r/pulls/1", "Bearer t0ken")
    assert "answered 404 for pull request #3" in console.text
    assert github.pull_request_states(console, {}, "o/r", [1]) == {}
    assert "expiry only" in console.text
