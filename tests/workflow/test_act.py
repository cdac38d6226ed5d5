"""The act harness (`nox -s workflow`): its parsers and stand-ins, and one real run showing
that a workflow edit which breaks a job fails it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY
from tests.workflow import act

STAND_IN_SCRIPT = act.ACTIONS / "artifacts.py"


def test_every_action_the_workflow_uses_has_a_stand_in() -> None:
    mappings = act.stand_in_mappings(REPOSITORY / act.WORKFLOW)
    pinned = [m for m in mappings if m != "--local-repository"]
    text = (REPOSITORY / act.WORKFLOW).read_text()
    for owner_repo in act.STAND_INS:
        assert any(m.startswith(f"{owner_repo}@") for m in pinned), owner_repo
        assert f"uses: {owner_repo}" in text, f"{owner_repo} has a stand-in the workflow never uses"
    for mapping in pinned:
        directory = Path(mapping.split("=", 1)[1])
        assert (directory / "action.yml").is_file() or any(directory.glob("*/action.yml"))


def test_a_workflow_action_without_a_stand_in_is_refused(tmp_path: Path) -> None:
    workflow = tmp_path / "ci.yml"
    workflow.write_text("      - uses: someone/new-action@" + "a" * 40 + " # v1\n")
    with pytest.raises(SystemExit, match="no local stand-in for someone/new-action"):
        act.stand_in_mappings(workflow)


def test_job_results_and_summaries_come_from_acts_json_log() -> None:
    lines: list[dict[str, object]] = [
        {"jobID": "test ", "msg": "⭐ Run Main", "time": "2026-12-07T01:00:00Z"},
        {"jobID": "test", "jobResult": "success", "msg": "🏁  Job succeeded",
         "time": "2026-12-07T01:01:00Z"},
        {"jobID": "build", "command": "summary", "content": "### Image tags\n"},
        {"jobID": "build", "jobResult": "failure", "msg": "🏁  Job failed",
         "time": "2026-12-07T01:02:00Z"},
        {"level": "info", "msg": "no job here"},
    ]  # fmt: skip
    jobs = act.parse_jobs(lines)
    assert {name: job.result for name, job in jobs.items()} == {
        "test": "success",
        "build": "failure",
    }
    assert jobs["test"].started == "2026-12-07T01:00:00Z"
    assert jobs["test"].ended == "2026-12-07T01:01:00Z"
    assert act.summaries(lines) == {"build": "### Image tags\n"}
    assert act.json_lines('{"a": 1}\nError: Job failed\n[1]\n') == [{"a": 1}]


def run_with(expected: act.Event, jobs: dict[str, str], output: str = "") -> list[str]:
    results = {
        name: act.JobResult(name, result, started=f"T{i}", ended=f"T{i}")
        for i, (name, result) in enumerate(jobs.items())
    }
    summaries = {name: f"tags main-abc1234 pr-7-abc1234 v1.2.3 {name}" for name in jobs}
    run = act.ActRun(expected, 0, 1.0, output, results, Path(), summaries)
    return run.problems(act.workflow_needs(REPOSITORY / act.WORKFLOW), "abc1234")


def test_the_expectations_name_what_went_wrong() -> None:
    push = act.EVENTS["push"]
    fine = {job: "success" for job in push.succeed}
    assert run_with(push, fine) == []
    assert run_with(push, {**fine, "deploy": "failure"}) == [
        "deploy: expected success, got failure"
    ]
    assert "emergency: expected not to run, got success" in run_with(
        push, {**fine, "emergency": "success"}
    )
    leaked = run_with(push, fine, output=f"login {act.TEST_TOKEN}")
    assert leaked == ["the test token appears in act's log"]
    branch = act.EVENTS["dispatch-branch"]
    assert run_with(branch, {"emergency": "failure"}) == [f"the log does not say {branch.says!r}"]


def test_a_job_that_starts_before_what_it_needs_ended_is_named() -> None:
    push = act.EVENTS["push"]
    results = {name: act.JobResult(name, "success", started="T5", ended="T5")
               for name in push.succeed}  # fmt: skip
    results["test"] = act.JobResult("test", "success", started="T1", ended="T9")
    results["push"] = act.JobResult("push", "success", started="T4", ended="T6")
    summaries = {name: "main-abc1234" for name in results}
    run = act.ActRun(push, 0, 1.0, "", results, Path(), summaries)
    problems = run.problems(act.workflow_needs(REPOSITORY / act.WORKFLOW), "abc1234")
    assert "push-platform started before test ended (needs: test)" in problems
    assert "push started before push-platform ended (needs: push-platform)" in problems
    assert not any(problem.startswith("build started") for problem in problems)


def stand_in(command: str, workspace: Path, store: Path, **inputs: str) -> str:
    output = workspace.parent / f"{workspace.name}-github-output"
    output.touch()
    environ = {**os.environ, "AEGIS_ACT_ARTIFACTS": str(store), "GITHUB_OUTPUT": str(output),
               **inputs}  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(STAND_IN_SCRIPT), command], cwd=workspace, env=environ,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return output.read_text()


def test_artifacts_travel_between_jobs_as_the_workflow_names_them(tmp_path: Path) -> None:
    store, push_job, deploy_job = tmp_path / "store", tmp_path / "push", tmp_path / "deploy"
    for directory in (store, push_job / ".aegis/scan", push_job / ".aegis/platforms", deploy_job):
        directory.mkdir(parents=True)
    (push_job / ".aegis/release.json").write_text('{"tag": "main-abc1234"}')
    (push_job / ".aegis/scan/api.json").write_text("{}")
    (push_job / ".aegis/build-monitor-api.log").write_text("log")
    (push_job / ".aegis/platforms/monitor-api-linux-amd64.json").write_text("{}")
    (push_job / ".aegis/unrelated.txt").write_text("not uploaded")
    paths = ".aegis/release.json\n.aegis/scan/\n.aegis/build-*.log\n.aegis/platforms/\n"
    said = stand_in("upload", push_job, store, NAME="release", PATHS=paths)
    assert said.startswith("artifact-id=release\nartifact-digest=")
    stand_in("download", deploy_job, store, NAME="release", DESTINATION=".aegis")
    restored = sorted(str(p.relative_to(deploy_job)) for p in deploy_job.rglob("*") if p.is_file())
    assert restored == [
        ".aegis/build-monitor-api.log", ".aegis/platforms/monitor-api-linux-amd64.json",
        ".aegis/release.json", ".aegis/scan/api.json",
    ]  # fmt: skip


def test_platform_artifacts_merge_by_pattern(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for arch in ("amd64", "arm64"):
        job = tmp_path / arch
        (job / ".aegis/platforms").mkdir(parents=True)
        (job / f".aegis/platforms/api-{arch}.json").write_text("{}")
        (job / f".aegis/build-api-{arch}.log").write_text("log")
        paths = ".aegis/platforms/\n.aegis/scan/\n.aegis/build-*.log\n"  # as push-platform's
        stand_in("upload", job, store, NAME=f"platform-{arch}", PATHS=paths)
    merge = tmp_path / "merge"
    merge.mkdir()
    stand_in("download", merge, store, PATTERN="platform-*", MERGE_MULTIPLE="true",
             DESTINATION=".aegis")  # fmt: skip
    assert sorted(p.name for p in (merge / ".aegis/platforms").iterdir()) == [
        "api-amd64.json", "api-arm64.json",
    ]  # fmt: skip


def test_sarif_is_checked_before_it_counts_as_uploaded(tmp_path: Path) -> None:
    store, workspace = tmp_path / "store", tmp_path / "job"
    (workspace / "sarif").mkdir(parents=True)
    run = {"tool": {"driver": {"name": "Trivy"}}, "results": [{"message": {"text": "ok"}}]}
    (workspace / "sarif/trivy.sarif").write_text(json.dumps({"version": "2.1.0", "runs": [run]}))
    said = stand_in("sarif", workspace, store, SARIF_FILE="sarif", CATEGORY="trivy")
    assert "sarif-id=local-trivy" in said
    (workspace / "sarif/bad.sarif").write_text(json.dumps({"version": "2.0.0", "runs": []}))
    environ = {**os.environ, "AEGIS_ACT_ARTIFACTS": str(store),
               "GITHUB_OUTPUT": str(workspace / "out"), "SARIF_FILE": "sarif"}  # fmt: skip
    refused = subprocess.run([sys.executable, str(STAND_IN_SCRIPT), "sarif"], cwd=workspace,
                             env=environ, capture_output=True, text=True, check=False)  # fmt: skip
    assert refused.returncode == 1 and "bad.sarif: not SARIF 2.1.0" in refused.stdout


def test_act_starts_outside_the_environment_the_tests_run_in(tmp_path: Path) -> None:
    """Under `nox -s tests` a job's `uv sync` once installed the act sandbox's project into
    the tests' own environment: act gets neither its variables nor its bin on PATH."""
    session = tmp_path / ".nox" / "tests"
    (session / "bin").mkdir(parents=True)
    (session / "bin" / "python3").symlink_to(sys.executable)
    outer = {
        "VIRTUAL_ENV": str(session), "UV_PROJECT_ENVIRONMENT": str(session),
        "PATH": f"{session / 'bin'}:/usr/bin:/bin", "GITHUB_ACTIONS": "true", "HOME": "/root",
    }  # fmt: skip
    environ = act.act_environment(outer)
    assert "VIRTUAL_ENV" not in environ and "UV_PROJECT_ENVIRONMENT" not in environ
    assert environ["PATH"] == "/usr/bin:/bin" and environ["HOME"] == "/root"
    assert "GITHUB_ACTIONS" not in environ  # a runner's own variables, as before
    assert outer["VIRTUAL_ENV"] == str(session)  # the caller's mapping is left alone


@pytest.mark.docker
@pytest.mark.cluster
def test_a_workflow_edit_that_breaks_a_job_fails_it(tmp_path: Path) -> None:
    """The emergency step without its --reason: under act the job fails, as on GitHub (no
    terminal to ask at), and the run is reported not as expected."""
    from tests.docker_support import require_engine

    require_engine()
    step = '--reason "$EMERGENCY_REASON" '
    assert step in (REPOSITORY / act.WORKFLOW).read_text()  # the edit below really breaks it
    run = act.run_event(act.EVENTS["dispatch"], tmp_path, edit=lambda t: t.replace(step, ""))
    assert run.jobs["emergency"].result == "failure"
    assert "--reason is required" in run.output
    assert "emergency: expected success, got failure" in run.found
