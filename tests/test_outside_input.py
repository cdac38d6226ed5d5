"""Every parser of outside input: bad input is a clear error, never a traceback.

Property tests (hypothesis) feed each parser arbitrary input; the corrupt files an on-call
engineer actually meets are listed by name.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegis_delivery.cluster.helm import parse_history
from aegis_delivery.cluster.kube import parse_lease
from aegis_delivery.cluster.verify import _tail
from aegis_delivery.config import Duration, load_config
from aegis_delivery.errors import AegisError, InputError
from aegis_delivery.release.context import github_repository
from aegis_delivery.release.record import parse_record
from aegis_delivery.release.trivy import load_ignores, parse_report
from aegis_delivery.verification import parse_pods
from tests.conftest import REPOSITORY
from tests.records import release_record

# Any JSON value, nested a few levels: what a corrupt file or an odd tool version may hold.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
TEXT_OR_JSON = st.text(max_size=60) | JSON.map(json.dumps)
SHORT_DIGEST = {**release_record().document()["images"]["monitor-api"], "digest": "sha256:00"}  # type: ignore[index]
QUICK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@QUICK
@given(TEXT_OR_JSON)
def test_a_release_record_is_parsed_or_refused_with_its_file_named(raw: str) -> None:
    try:
        parse_record(raw, "/x/release.json")
    except InputError as error:
        assert error.message.startswith("/x/release.json")


@QUICK
@given(st.binary(max_size=40))
def test_a_release_record_of_any_bytes_is_refused_cleanly(raw: bytes) -> None:
    with pytest.raises(InputError):
        parse_record(raw, "release.json")


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda d: d | {"schema": 2}, "schema"),
        (lambda d: d | {"tag": "abc\n"}, "tag"),
        (lambda d: d | {"images": {"monitor-api": SHORT_DIGEST}}, "digest"),
        (lambda d: {k: v for k, v in d.items() if k != "source"}, "source"),
        (lambda d: d | {"surprise": 1}, "surprise"),
        (lambda d: d | {"images": {}}, "images"),
    ],
    ids=["schema", "tag-newline", "short-digest", "no-source", "unknown-key", "no-images"],
)  # fmt: skip
def test_a_wrong_release_record_names_the_key(mutation: object, message: str) -> None:
    document = release_record().document()
    assert callable(mutation)
    with pytest.raises(InputError, match=message):
        parse_record(json.dumps(mutation(document)), "release.json")


def test_a_release_record_round_trips() -> None:
    record = release_record("v1.2.3", reason="INC-1")
    assert parse_record(record.text(), "r") == record


@QUICK
@given(TEXT_OR_JSON)
def test_trivy_reports_parse_or_fail_closed(raw: str) -> None:
    try:
        parse_report(raw, "image")
    except AegisError as error:
        assert "image" in error.message and error.exit_code == 4


@QUICK
@given(TEXT_OR_JSON)
def test_helm_history_parses_or_is_named(raw: str) -> None:
    try:
        revisions = parse_history(raw)
    except AegisError as error:
        assert "helm history" in error.message
    else:
        assert all(revision.revision >= 1 for revision in revisions)


@QUICK
@given(TEXT_OR_JSON)
def test_pod_lists_parse_or_are_named(raw: str) -> None:
    try:
        parse_pods(raw)
    except AegisError as error:
        assert "pods" in error.message


@QUICK
@given(JSON)
def test_any_pod_shape_inside_a_list_reads_as_a_verdict(pod: object) -> None:
    try:
        verdicts = parse_pods(json.dumps({"items": [pod]}))
    except AegisError:
        assert not isinstance(pod, dict)
    else:
        assert len(verdicts) == 1


@QUICK
@given(TEXT_OR_JSON)
def test_leases_parse_or_are_named(raw: str) -> None:
    try:
        parse_lease(raw)
    except AegisError as error:
        assert "deploy lock" in error.message


@QUICK
@given(st.text(max_size=12))
def test_durations_parse_or_raise_value_error(text: str) -> None:
    try:
        duration = Duration.parse(text)
    except ValueError as error:
        assert "duration" in str(error) or "longer than zero" in str(error)
    else:
        assert duration.seconds > 0 and duration.text == text


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (".trivyignore.yaml", "- CVE-1\n- CVE-2\n", "is a list"),
        (".trivyignore.yaml", "just a scalar\n", "is a str"),
        (".trivyignore.yaml", "vulnerabilities: [\n", "not valid YAML"),
        (".trivyignore.yaml", "vulnerabilities:\n- id: CVE-1\n  expired_at: not-a-date\n",
         "expiry of 'CVE-1' is not a date"),
        (".trivyignore.yaml", "vulnerabilities:\n- statement: no id\n",
         r"vulnerabilities\[0\] needs an id"),
        (".trivyignore.yaml", "vulnerabilities: CVE-1\n", "must be a list"),
        (".trivyignore", "CVE-2024-1 exp:2026-13-45\n",
         r"\.trivyignore:1: the expiry of 'CVE-2024-1'"),
    ],
    ids=["yaml-list", "yaml-scalar", "yaml-broken", "yaml-bad-date", "yaml-no-id",
         "yaml-section-scalar", "plain-bad-date"],
)  # fmt: skip
def test_corrupt_ignore_files_are_input_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=message):
        load_ignores(tmp_path)


def test_an_ignore_file_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    (tmp_path / ".trivyignore").write_bytes(b"CVE-1 \xff\xfe\n")
    with pytest.raises(InputError, match=r"\.trivyignore: not UTF-8 text \(byte 6\)"):
        load_ignores(tmp_path)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=80))
def test_any_ignore_text_loads_or_is_an_input_error(tmp_path: Path, text: str) -> None:
    for name in (".trivyignore", ".trivyignore.yaml"):
        (tmp_path / name).write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_ignores(tmp_path)
        except InputError as error:
            assert name in error.message
        finally:
            (tmp_path / name).unlink()


@pytest.mark.parametrize(
    "value",
    ["/srv/checkout", "owner", "owner/", "/name", "-owner/name", "owner-/name", "o/n/x",
     "owner/..", "owner/.", "own er/name", "owner/na me", "a" * 40 + "/name", "owner/" + "n" * 101],
)  # fmt: skip
def test_a_github_repository_that_is_not_owner_slash_name_is_refused(value: str) -> None:
    with pytest.raises(InputError, match=r"is not a GitHub repository: expected OWNER/NAME"):
        github_repository({"GITHUB_REPOSITORY": value})


@pytest.mark.parametrize("value", ["aegistrader/aegistrader", "Your-Org/Aegis.Trader_2", "a/b"])
def test_a_github_repository_is_taken_as_given(value: str) -> None:
    assert github_repository({"GITHUB_REPOSITORY": value}) == value
    assert github_repository({}) is None


@given(st.text(max_size=60))
def test_any_github_repository_is_owner_slash_name_or_refused(value: str) -> None:
    try:
        found = github_repository({"GITHUB_REPOSITORY": value})
    except InputError as error:
        assert "\n" not in error.message.replace(value, "")
        return
    if found is not None:
        owner, name = found.split("/")
        assert owner and name and "//" not in found and len(owner) <= 39


def test_a_bad_github_repository_stops_the_image_plan_before_anything_runs() -> None:
    from aegis_delivery.release.publish import plan_images

    environ = {"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
               "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "0" * 40,
               "GITHUB_REPOSITORY": "/srv/checkout"}  # fmt: skip
    config = load_config(REPOSITORY / "pyproject.toml")
    with pytest.raises(InputError, match="GITHUB_REPOSITORY='/srv/checkout'"):
        plan_images(config, environ=environ)


@given(st.lists(st.text(alphabet="abc: -", max_size=40), max_size=12), st.integers(1, 120))
def test_a_command_output_tail_keeps_whole_lines_that_fit(lines: list[str], limit: int) -> None:
    text = "\n".join(lines)
    tail = _tail(text, limit)
    assert len(tail) <= limit
    assert text.strip().endswith(tail)
    whole = text.strip().splitlines()
    if whole and len(whole[-1]) <= limit:  # the tail starts where a line starts
        assert tail in {"\n".join(whole[i:]) for i in range(len(whole))}


def test_helm_tests_output_keeps_the_release_name() -> None:
    said = "NAME: aegis-pr-7\n" + "LAST DEPLOYED: Mon Dec  7 23:44:46 2026\n" * 10
    assert _tail(said, 300).startswith("LAST DEPLOYED")
    assert _tail("NAME: aegis-pr-7\nPHASE: Succeeded", 300) == "NAME: aegis-pr-7\nPHASE: Succeeded"
