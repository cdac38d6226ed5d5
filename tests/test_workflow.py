"""The CI/CD workflow, parsed: one entry-point call per step, guards, least privilege, pins."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPOSITORY

WORKFLOW_FILE = REPOSITORY / ".github/workflows/ci-cd.yml"
WORKFLOW: dict[Any, Any] = yaml.safe_load(WORKFLOW_FILE.read_text())
JOBS: dict[str, Any] = WORKFLOW["jobs"]
# uv only locates the entry point, the locked one: `uv run --locked nox|invoke ...` (uv.lock).
# Never `uvx nox`: an unpinned nox, in an environment without pip.
ENTRY_POINT = re.compile(r"^uv run --locked (nox|invoke)( |$)")


def steps() -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in JOBS.items() for step in job["steps"]]


@pytest.mark.parametrize(
    "step", [s for _, s in steps() if "run" in s], ids=lambda s: str(s.get("name", s["run"]))[:40]
)
def test_every_run_step_is_one_entry_point_call(step: dict[str, Any]) -> None:
    command = step["run"].strip()
    assert "\n" not in command, "one line"
    assert ENTRY_POINT.match(command), command
    for operator in ("&&", "||", ";", "|", "`", "$("):
        assert operator not in command, f"{operator!r} in {command!r}"
    assert "${{" not in command, "expressions go through env, never into run:"
    shlex.split(command)  # a single, well-formed command line


def test_triggers_and_no_pull_request_target() -> None:
    triggers = WORKFLOW[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert triggers["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert triggers["pull_request"]["types"] == ["opened", "synchronize", "reopened", "closed"]
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"emergency_tag", "reason", "promote"}
    assert "pull_request_target" not in WORKFLOW_FILE.read_text()


def test_stage_order() -> None:
    # build publishes nothing and nothing waits on it: it runs beside the gate. The platform
    # jobs publish, so they wait for the gate (and scan what they build themselves).
    assert "needs" not in JOBS["build"]
    assert JOBS["push-platform"]["needs"] == "test"
    assert JOBS["push"]["needs"] == "push-platform"
    assert JOBS["deploy"]["needs"] == "push"
    assert JOBS["verify"]["needs"] == "deploy"
    assert JOBS["preview"]["needs"] == "push"


def test_push_and_deploy_are_guarded() -> None:
    push_guard = JOBS["push-platform"]["if"]  # the merge job needs the platform jobs
    assert "github.event_name == 'push'" in push_guard
    assert "refs/heads/main" in push_guard and "refs/tags/v" in push_guard
    # A pull request's build is published only from this repository, for its preview.
    same = "github.event.pull_request.head.repo.full_name == github.repository"
    assert same in push_guard and same in JOBS["preview"]["if"]
    assert same in JOBS["preview-down"]["if"] and "action == 'closed'" in JOBS["preview-down"]["if"]
    fork = JOBS["preview-fork"]
    assert same.replace("==", "!=") in fork["if"] and "secrets." not in str(fork)
    assert fork["permissions"] == {"contents": "read"}
    assert JOBS["preview-gc"]["if"] == "github.event_name == 'schedule'"
    for name in ("test", "build"):  # a close or the schedule runs no gate and no build
        assert (
            JOBS[name]["if"] == "github.event_name != 'schedule' && github.event.action != 'closed'"
        )
    deploy_guard = JOBS["deploy"]["if"]
    assert "refs/heads/main" in deploy_guard and "refs/tags" not in deploy_guard
    assert JOBS["deploy"]["environment"] == "staging"
    emergency = JOBS["emergency"]
    assert "workflow_dispatch" in emergency["if"] and emergency["environment"] == "staging"


def test_permissions_are_per_job_and_least() -> None:
    assert WORKFLOW["permissions"] == {}
    for name, job in JOBS.items():
        assert "permissions" in job, name
        granted = job["permissions"]
        if granted.get("packages") == "write":
            assert any("invoke push" in s.get("run", "") or "invoke deploy" in s.get("run", "")
                       for s in job["steps"]), name  # fmt: skip
        if "security-events" in granted:
            assert any("upload-sarif" in s.get("uses", "") for s in job["steps"]), name
    assert JOBS["push"]["permissions"]["packages"] == "write"
    assert "packages" not in JOBS["test"]["permissions"]


def test_each_platform_builds_on_its_own_native_runner_and_one_job_merges() -> None:
    platform_job = JOBS["push-platform"]
    matrix = platform_job["strategy"]["matrix"]["include"]
    assert {(m["platform"], m["runner"]) for m in matrix} == {
        ("linux/amd64", "ubuntu-24.04"), ("linux/arm64", "ubuntu-24.04-arm"),
    }  # fmt: skip
    assert platform_job["runs-on"] == "${{ matrix.runner }}"
    assert "setup-qemu" not in WORKFLOW_FILE.read_text()  # native runners: no emulation in CI
    stage = next(s for s in platform_job["steps"] if "invoke push" in s.get("run", ""))
    assert stage["run"].startswith('uv run --locked invoke push --stage --platform "$PLATFORM"')
    assert stage["env"]["PLATFORM"] == "${{ matrix.platform }}"
    handed = next(s for s in platform_job["steps"] if "upload-artifact" in s.get("uses", ""))
    assert handed["with"]["name"] == "platform-${{ matrix.arch }}"
    assert ".aegis/platforms/" in handed["with"]["path"]
    merge_steps = JOBS["push"]["steps"]
    download = next(
        i for i, s in enumerate(merge_steps) if "download-artifact" in s.get("uses", "")
    )
    assert merge_steps[download]["with"] == {
        "pattern": "platform-*", "merge-multiple": True, "path": ".aegis",
    }  # fmt: skip
    merge = next(i for i, s in enumerate(merge_steps) if "invoke push" in s.get("run", ""))
    assert "--merge" in merge_steps[merge]["run"] and download < merge


def test_deploys_never_overlap_nor_cancel() -> None:
    for name in ("deploy", "emergency"):
        concurrency = JOBS[name]["concurrency"]
        assert concurrency == {"group": "deploy-staging", "cancel-in-progress": False}
    # A push and a close of one pull request queue on its preview; neither cancels the other.
    group = "preview-${{ github.event.pull_request.number }}"
    for name in ("preview", "preview-down"):
        assert JOBS[name]["concurrency"] == {"group": group, "cancel-in-progress": False}


def test_actions_are_pinned_to_full_shas_with_versions() -> None:
    text = WORKFLOW_FILE.read_text()
    for line in text.splitlines():
        if "uses:" in line:
            assert re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*", line), line


def test_tool_versions_are_pinned_and_node_is_one_setting() -> None:
    # helm, kubectl and trivy come pinned from `nox -s tools` (scripts/install-tools) only.
    tools = [s for s in JOBS["deploy"]["steps"] if s.get("run") == "uv run --locked nox -s tools"]
    assert len(tools) == 1
    node = next(s for s in JOBS["test"]["steps"] if "setup-node" in s.get("uses", ""))
    assert node["with"]["node-version-file"] == "apps/monitor-ui/.nvmrc"
    assert "latest" not in WORKFLOW_FILE.read_text().replace("latest`", "")


def test_secrets_reach_steps_only_through_env() -> None:
    for _, step in steps():
        for value in (step.get("env") or {}).values():
            if "secrets." in str(value):
                assert str(value).startswith("${{ secrets.") and str(value).endswith("}}")
    used = set(re.findall(r"secrets\.(\w+)", WORKFLOW_FILE.read_text()))
    # AEGIS_SIGNING_KEY: the provenance signing key (docs/provenance.md).
    # KUBE_CONFIG_PREVIEW: the preview cluster's own credentials (docs/previews.md).
    assert used == {"KUBE_CONFIG", "KUBE_CONFIG_PREVIEW", "GITHUB_TOKEN", "AEGIS_SIGNING_KEY"}


def test_the_release_record_travels_from_push_to_deploy_and_verify() -> None:
    upload = next(s for s in JOBS["push"]["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "release" and upload["if"] == "always()"
    assert ".aegis/release.json" in upload["with"]["path"]
    for name in ("deploy", "verify"):
        steps = JOBS[name]["steps"]
        download = next(i for i, s in enumerate(steps) if "download-artifact" in s.get("uses", ""))
        assert steps[download]["with"] == {"name": "release", "path": ".aegis"}
        invoking = next(i for i, s in enumerate(steps) if "invoke" in s.get("run", ""))
        assert download < invoking, name
    assert not any("setup-helm" in s.get("uses", "") for j in JOBS.values() for s in j["steps"])


def quick_start() -> list[str]:
    readme = (REPOSITORY / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_ci_runs_exactly_the_readme_commands() -> None:
    """`.ci/run` is the README's two Quick start commands as printed: the main job (without
    CI, then `invoke down`), then the tests with CI=true; with no CA or toolkit variable."""
    commands = quick_start()
    assert len(commands) == 2 and all(c.startswith("scripts/bootstrap && ") for c in commands)
    assert "invoke pipeline" in commands[0] and "nox -s tests" in commands[1]
    ci = (REPOSITORY / ".ci" / "run").read_text()
    ran = [line for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert ran[ran.index(commands[0]) :] == [
        commands[0], ".venv/bin/invoke down", "export CI=true", commands[1],
        ".venv/bin/nox -s workflow",
    ]  # fmt: skip
    before = "\n".join(ran[: ran.index(commands[0])])
    assert "export" not in before and "CI=" not in before  # the main job runs without CI
    for variable in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "CI"):
        assert re.search(rf"^unset .*\b{variable}\b", ci, re.MULTILINE), variable
    assert '[[ "$variable" == AEGIS_* ]] && unset "$variable"' in ci


def test_ci_run_starts_with_no_ca_or_toolkit_variable(tmp_path: Path) -> None:
    """Run `.ci/run`'s preamble (up to the first command) and print what it left set."""
    ci = (REPOSITORY / ".ci" / "run").read_text()
    preamble = ci.split(quick_start()[0], 1)[0].replace('cd "$(dirname "$0")/.."', "")
    preamble = preamble.replace("trap ", ": ")  # not the stack's cleanup, here
    script = tmp_path / "preamble"
    script.write_text(preamble + "\nenv\n")
    environ = {**os.environ, "CI": "true", "AEGIS_CA_BUNDLE": "/x", "AEGIS_CONFIG": "/y",
               "SSL_CERT_FILE": "/z", "NODE_EXTRA_CA_CERTS": "/w"}  # fmt: skip
    left = subprocess.run(["bash", str(script)], env=environ, capture_output=True, text=True,
                          check=True).stdout.splitlines()  # fmt: skip
    names = {line.split("=", 1)[0] for line in left}
    assert not names & {"CI", "AEGIS_CA_BUNDLE", "AEGIS_CONFIG", "SSL_CERT_FILE",
                        "NODE_EXTRA_CA_CERTS"}  # fmt: skip


def test_promotion_is_manual_reviewed_and_carries_the_verified_record() -> None:
    read, promote = JOBS["promote-read"], JOBS["promote"]
    assert "workflow_dispatch" in read["if"] and "inputs.promote" in read["if"]
    assert read["environment"] == "staging" and promote["environment"] == "production"
    assert promote["needs"] == "promote-read"
    assert promote["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    runs = [s.get("run", "") for s in read["steps"]]
    assert any("invoke promote --from staging --to production --record-only" in r for r in runs)
    steps = promote["steps"]
    download = next(i for i, s in enumerate(steps) if "download-artifact" in s.get("uses", ""))
    deploying = next(
        i for i, s in enumerate(steps) if "invoke deploy --env production" in s.get("run", "")
    )
    assert download < deploying and steps[download]["with"]["name"] == "promotion"


def test_the_suite_runs_without_the_runner_variables() -> None:
    """conftest removed them at start: a test that needs one sets it (GITHUB_ACTIONS=true
    alone once turned on the gha cache and a Docker Hub lookup in the docker tests)."""
    assert not [name for name in os.environ if name.startswith(("GITHUB_", "RUNNER_"))]
    from tests.conftest import without_actions_variables

    environ = {"GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux", "CI": "true", "HOME": "/root"}
    assert sorted(without_actions_variables(environ)) == ["GITHUB_ACTIONS", "RUNNER_OS"]
    assert environ == {"CI": "true", "HOME": "/root"}
