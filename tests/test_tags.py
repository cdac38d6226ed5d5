"""Tag rules against a table of GitHub contexts, and the context readers themselves."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

from aegis_delivery.errors import InputError
from aegis_delivery.release.context import BuildContext, detect, from_github
from aegis_delivery.release.tags import decide, image_references, slug
from aegis_delivery.validation import check_alias

SHA = "0123456789abcdef0123456789abcdef01234567"
HEAD = "fedcba9876543210fedcba9876543210fedcba98"


def github(event: str, ref: str, tmp_path: Path, payload: object = None) -> BuildContext:
    environ = {
        "GITHUB_EVENT_NAME": event,
        "GITHUB_REF": ref,
        "GITHUB_SHA": SHA,
        "GITHUB_REPOSITORY": "Your-Org/AegisTrader",
        "GITHUB_ACTOR": "octocat",
    }
    if payload is not None:
        event_file = tmp_path / "event.json"
        event_file.write_text(json.dumps(payload))
        environ["GITHUB_EVENT_PATH"] = str(event_file)
    return from_github(environ)


PR_PAYLOAD = {"pull_request": {"number": 42, "head": {"sha": HEAD}}}


@pytest.mark.parametrize(
    ("event", "ref", "payload", "tags", "publish"),
    [
        ("push", "refs/heads/main", None, ("main-0123456", "latest"), True),
        ("workflow_dispatch", "refs/heads/main", None, ("main-0123456", "latest"), True),
        ("pull_request", "refs/pull/42/merge", PR_PAYLOAD, ("pr-42-fedcba9",), False),
        ("pull_request", "refs/pull/42/merge", {}, ("pr-42-0123456",), False),
        ("push", "refs/tags/v1.2.3", None, ("v1.2.3",), True),
        ("push", "refs/tags/1.2.3", None, ("1.2.3",), True),
        ("push", "refs/tags/v1.2.3-rc.1", None, ("v1.2.3-rc.1",), True),
        ("push", "refs/tags/v2.0.0-beta.2+build.7", None, ("v2.0.0-beta.2_build.7",), True),
        ("push", "refs/tags/v1.2", None, ("v1.2-0123456",), False),
        ("push", "refs/tags/release-candidate", None, ("release-candidate-0123456",), False),
        ("push", "refs/heads/feature/Login_Fix", None, ("feature-login_fix-0123456",), False),
        ("push", "refs/heads/-weird--Branch!!", None, ("weird-branch-0123456",), False),
        ("push", "refs/heads/mainline", None, ("mainline-0123456",), False),
    ],
    ids=[
        "main", "dispatch-main", "pr-head-sha", "pr-without-payload-head", "release",
        "release-no-v", "pre-release", "pre-release-build-meta", "not-semver", "other-tag",
        "feature-branch", "weird-branch", "branch-prefixed-main",
    ],
)  # fmt: skip
def test_tag_rules(
    tmp_path: Path,
    event: str,
    ref: str,
    payload: object,
    tags: tuple[str, ...],
    publish: bool,
) -> None:
    decision = decide(github(event, ref, tmp_path, payload), "main")
    assert decision.tags == tags
    assert decision.primary == tags[0] != "latest"
    assert decision.publish is publish
    if not ref.endswith("/main"):
        assert "latest" not in decision.tags  # latest is the default branch's only


def test_a_pre_release_gets_its_own_tag_only_even_with_aliases(tmp_path: Path) -> None:
    aliases = ("{major}.{minor}.{patch}", "{major}.{minor}")
    decision = decide(github("push", "refs/tags/v3.0.0-alpha", tmp_path), "main", None, aliases)
    assert decision.tags == ("v3.0.0-alpha",) and "its own tag only" in decision.reason


def test_a_final_release_gets_its_configured_aliases_never_latest(tmp_path: Path) -> None:
    aliases = ("{major}.{minor}.{patch}", "{major}.{minor}", "{major}", "{major}.{minor}")
    decision = decide(github("push", "refs/tags/v1.2.3", tmp_path), "main", None, aliases)
    assert decision.tags == ("v1.2.3", "1.2.3", "1.2", "1")
    assert decision.primary == "v1.2.3"


@pytest.mark.parametrize("alias", ["latest", "{major}-{build}", "a b", ""])
def test_a_bad_alias_template_is_refused(alias: str) -> None:
    with pytest.raises(ValueError, match="not a release alias"):
        check_alias(alias)


def test_explicit_tag_is_validated() -> None:
    context = BuildContext("local", "local", "refs/heads/x", SHA, None, "me")
    assert decide(context, "main", "emergency-fix").tags == ("emergency-fix",)
    with pytest.raises(InputError, match="invalid tag 'bad tag'"):
        decide(context, "main", "bad tag")


def test_references_are_lower_cased() -> None:
    references = image_references("ghcr.io", "Your-Org/AegisTrader", ["monitor-api"], ["latest"])
    assert references == {"monitor-api": ("ghcr.io/your-org/aegistrader/monitor-api:latest",)}


def test_slug_never_returns_an_empty_tag_part() -> None:
    assert slug("///") == "ref"


def test_github_context_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="GITHUB_SHA not set"):
        from_github({"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"})
    with pytest.raises(InputError, match="without a pull request number"):
        github("pull_request", "refs/heads/odd", tmp_path, {"pull_request": {}})
    bad = tmp_path / "event.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not a readable JSON event"):
        from_github(
            {
                "GITHUB_EVENT_NAME": "pull_request",
                "GITHUB_REF": "refs/pull/1/merge",
                "GITHUB_SHA": SHA,
                "GITHUB_EVENT_PATH": str(bad),
            }
        )


def git(repository: Path, *arguments: str) -> None:
    subprocess.run(["git", "-C", str(repository), *arguments], check=True, capture_output=True)


def test_local_checkout_context(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")
    git(tmp_path, *identity, "commit", "-q", "--allow-empty", "-m", "x")
    context = detect(tmp_path, {"USER": "dev"})
    assert (context.source, context.ref, context.actor) == ("local", "refs/heads/main", "dev")
    assert decide(context, "main").tags[1] == "latest"
    git(tmp_path, "tag", "v0.1.0")
    assert decide(detect(tmp_path, {}), "main").tags == ("v0.1.0",)
    with tempfile.TemporaryDirectory() as outside, pytest.raises(InputError, match="not a git"):
        detect(Path(outside), {})
