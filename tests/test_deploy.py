"""Deploy, rollback and verify logic with the runner faked at the argv level.

Recorded helm/kubectl JSON (pending releases, crash-looping pods) drives the decisions; every
refusal happens before any command that changes the cluster. A deploy ships the release record.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import stat
import threading
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import pytest

from aegis_delivery import emergency
from aegis_delivery.cluster import deploy, inspect
from aegis_delivery.cluster.access import connect
from aegis_delivery.cluster.lock import DeployLock
from aegis_delivery.cluster.verify import verify_cluster
from aegis_delivery.config import DeliveryConfig, Duration, load_config
from aegis_delivery.errors import AegisError, CommandFailed, GateFailed, InputError
from aegis_delivery.masking import Masker
from aegis_delivery.release import publish
from aegis_delivery.release.record import ReleaseRecord
from aegis_delivery.runner import Step
from tests.capture import CAPTURED
from tests.conftest import REPOSITORY, RecordingConsole
from tests.fake_runner import ScriptedRunner
from tests.records import DIGEST_API, DIGEST_UI, provenance_off, release_record

FIXTURES = Path(__file__).parent / "fixtures"
HELM4_VERSION = (CAPTURED / "helm4" / "helm-version.txt").read_text()
HELM3_VERSION = (CAPTURED / "helm3" / "helm-version.txt").read_text()


def history(*statuses: str, major: int = 4) -> str:
    """`helm history -o json` as the real helm printed it (tests/capture.py): revisions 1-3,
    superseded, deployed, pending-upgrade; *statuses* replaces them in order."""
    entries = json.loads((CAPTURED / f"helm{major}" / "helm-history-pending.json").read_text())
    for entry, status in zip(entries, statuses, strict=False):
        entry["status"] = status
    return json.dumps(entries, separators=(",", ":"))


APPS = ("monitor-api", "monitor-ui")
KUBECONFIG_TEXT = (
    "apiVersion: v1\nkind: Config\nclusters:\n- name: staging\n  cluster:\n"
    "    server: https://10.0.0.1:6443\ncontexts:\n- name: aegis-staging\n  context:\n"
    "    cluster: staging\n    user: deployer\ncurrent-context: aegis-staging\nusers:\n"
    "- name: deployer\n  user:\n    token: very-secret-kube-token-value\n"
)
STAGING = deploy.DeployRequest("staging", yes=True)
RENDERED = f"""---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: aegis-monitor-api, namespace: aegis-staging}}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - {{name: monitor-api, image: "ghcr.io/aegistrader/aegistrader/monitor-api@{DIGEST_API}"}}
"""
NOT_A_KUBECONFIG = base64.b64encode(b"hello: world").decode()
MUTATING = (
    ("upgrade",),
    ("rollback",),
    ("uninstall",),
    ("create", "--filename"),
    ("replace", "--filename"),
    ("delete", "lease"),
    ("test", "aegis"),
)
ENVIRON = {"GITHUB_ACTOR": "octocat"}


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DeliveryConfig:
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("helm", "kubectl"):
        (tools / name).write_text("#!/bin/sh\nexit 99\n")  # never run: the runner is scripted
        (tools / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("AEGIS_TOOLS_DIR", str(tools))
    chart = tmp_path / "chart"
    chart.mkdir()
    base = load_config(REPOSITORY / "pyproject.toml")
    configured = replace(
        provenance_off(base), chart=chart,
        build=replace(base.build, release_file=tmp_path / "release.json"),
    )  # fmt: skip
    configured.build.release_file.write_text(release_record().text())
    return configured


@pytest.fixture
def console() -> RecordingConsole:
    return RecordingConsole(Masker())


@pytest.fixture
def runner(console: RecordingConsole) -> Iterator[ScriptedRunner]:
    with ScriptedRunner(console, console.masker) as scripted:
        scripted.answer("version", "--short", reply=(0, HELM4_VERSION, ""))
        yield scripted


def healthy_pods(step: Step) -> tuple[int, str, str]:
    pods = [
        {"metadata": {"name": f"aegis-{app}-1", "labels": {"app.kubernetes.io/name": app}},
         "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"image": f"x/{app}:t", "imageID": f"x/{app}@{digest}",
                                           "state": {"running": {}}}]}}
        for app, digest in (("monitor-api", DIGEST_API), ("monitor-ui", DIGEST_UI))
    ]  # fmt: skip
    return 0, json.dumps({"items": pods}), ""


def script_cluster(
    runner: ScriptedRunner, history: str = "[]", context: str = "aegis-staging"
) -> None:
    """A healthy cluster: the lease is free, helm succeeds, pods run the pushed digests."""
    lease: dict[str, str] = {}

    def create(step: Step) -> tuple[int, str, str]:
        if '"Lease"' in (step.stdin or ""):
            lease["manifest"] = step.stdin or ""
            return 0, "lease.coordination.k8s.io/aegis-deploy-aegis created", ""
        return 0, "configmap/created", ""

    runner.answer("config", "current-context", reply=(0, context + "\n", ""))
    runner.answer("template", "aegis", reply=(0, RENDERED, ""))
    runner.answer(
        "get", "manifest", reply=(0, RENDERED.replace(DIGEST_API, "sha256:" + "0" * 64), "")
    )
    runner.answer("get", "namespace", reply=(0, "namespace/aegis-staging", ""))
    runner.answer("history", reply=(0, history, ""))
    runner.answer("get", "values", reply=(0, "{}", ""))  # what a revision was deployed with
    for app, digest in (("monitor-api", DIGEST_API), ("monitor-ui", DIGEST_UI)):
        reference = f"ghcr.io/aegistrader/aegistrader/{app}@{digest}"
        runner.answer(
            "imagetools", "inspect", reference, reply=(0, json.dumps({"digest": digest}), "")
        )
    runner.answer("create", "--filename", "-", reply=create)
    runner.answer("get", "lease", reply=lambda step: (0, lease.get("manifest", ""), ""))
    runner.answer("delete", "lease", reply=(0, "deleted", ""))
    runner.answer("upgrade", "--install", reply=(0, "Release upgraded", ""))
    runner.answer("get", "pods", reply=healthy_pods)
    runner.answer("rollout", "status", reply=(0, "successfully rolled out", ""))
    runner.answer("test", "aegis", reply=(0, "Phase: Succeeded", ""))
    runner.answer("exec", "deployment/nats-box", reply=(0, "PONG", ""))


def lease(holder: str, duration: int, renewed: dt.datetime, version: str = "7") -> str:
    """`kubectl get lease -o json` as kubectl printed the toolkit's Lease (tests/capture.py),
    with this holder, duration, renew time (in the API's MicroTime format) and version."""
    document = json.loads((CAPTURED / "helm4" / "kubectl-get-lease.json").read_text())
    stamp = renewed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    document["spec"].update(holderIdentity=holder, leaseDurationSeconds=duration)
    document["spec"].update(acquireTime=stamp, renewTime=stamp)
    document["metadata"]["resourceVersion"] = version
    return json.dumps(document)


def deploy_staging(
    runner: ScriptedRunner,
    config: DeliveryConfig,
    environ: dict[str, str] | None = None,
    *,
    create_namespace: bool = False,
    recover: bool = False,
    uninstall_stuck_install: bool = False,
) -> deploy.DeployOutcome:
    """A deploy of the release record to staging; nothing is built or pushed."""
    request = deploy.DeployRequest(
        "staging", yes=True, create_namespace=create_namespace, recover=recover,
        uninstall_stuck_install=uninstall_stuck_install,
    )  # fmt: skip
    return emergency.deploy(runner, config, request, {**ENVIRON, **(environ or {})})


def assert_nothing_changed(runner: ScriptedRunner) -> None:
    for words in MUTATING:
        assert not runner.ran(*words), words


def assert_release_unchanged(runner: ScriptedRunner) -> None:
    """The lock may have been taken (and released): the release itself was not touched."""
    for words in (("upgrade",), ("rollback",), ("uninstall",), ("test", "aegis")):
        assert not runner.ran(*words), words
    assert runner.ran("delete", "lease")  # the lock taken for the check was released


def test_a_deploy_runs_guards_then_locks_upgrades_and_verifies(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    script_cluster(
        runner,
        history=history("superseded", "deployed", "failed"),
    )
    outcome = deploy_staging(runner, config)
    order = [" ".join(step.argv) for step in runner.calls]
    position = {name: next(i for i, c in enumerate(order) if name in c) for name in
                ("current-context", "get namespace", "history", "imagetools inspect",
                 "create --filename", "upgrade --install", "rollout")}  # fmt: skip
    assert position["current-context"] < position["get namespace"]
    assert (
        position["get namespace"]
        < position["imagetools inspect"]
        < position["create --filename"]  # the lock, then the pending check under it
        < position["history"]
        < position["upgrade --install"]
        < position["rollout"]
    )
    upgrade = next(step.argv for step in runner.calls if "upgrade" in step.argv)
    # The toolkit rolls back itself, with its own budget (cluster/undo.py): no --atomic.
    assert "--rollback-on-failure" not in upgrade and "--atomic" not in upgrade
    assert upgrade[upgrade.index("--history-max") + 1] == "10"
    assert not any(part.startswith("--set") for part in upgrade)  # the tag travels once
    assert "--description=tag=main-0123456 sha=0123456 by=octocat" in upgrade
    values = (config.chart / "values.deployment.yaml").read_text()
    assert DIGEST_API in values and DIGEST_UI in values and "imageTag: main-0123456" in values
    assert outcome.verify is not None and outcome.verify.passed
    assert outcome.document()["completed"] == ["guards", "upgrade", "verify"]
    assert runner.ran("delete", "lease")  # the lock was released


def test_without_a_release_record_deploy_says_what_to_do(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    config.build.release_file.unlink()
    script_cluster(runner)
    with pytest.raises(InputError, match=r"no release record at .*run `invoke push` first"):
        deploy_staging(runner, config)
    assert not getattr(runner, "calls", [])


@pytest.mark.parametrize(
    "content",
    ["[1,2,3]", "null", '{"images": [1,2]}', '"a string"', "{", "\udcff"],
    ids=["list", "null", "images-list", "string", "broken", "not-utf8"],
)
def test_a_corrupt_release_record_is_an_input_error(
    runner: ScriptedRunner, config: DeliveryConfig, content: str
) -> None:
    config.build.release_file.write_bytes(content.encode("utf-8", "surrogateescape"))
    script_cluster(runner)
    with pytest.raises(InputError, match=str(config.build.release_file)):
        deploy_staging(runner, config)
    assert not getattr(runner, "calls", [])


def test_a_dry_run_asks_the_real_questions_and_prints_every_change(
    console: RecordingConsole, config: DeliveryConfig
) -> None:
    with ScriptedRunner(console, console.masker, dry_run=True) as runner:
        runner.answer("version", "--short", reply=(0, HELM3_VERSION, ""))
        script_cluster(runner)
        deploy_staging(runner, config)
    ran = [" ".join(step.argv[1:3]) for step in runner.calls]
    assert ran == [
        "version --short",
        "config current-context",
        "--context=aegis-staging get",
        "template aegis",
        "get manifest",
        "buildx imagetools",
        "buildx imagetools",
    ]
    assert_nothing_changed(runner)
    assert "--atomic" not in console.text and "--wait " in console.text + " "
    assert "[dry-run] deploy main-0123456 to staging" in console.text
    assert "[dry-run] write the values" in console.text
    assert "image Deployment/aegis-monitor-api monitor-api: " in console.text  # the diff
    assert not (config.chart / "values.deployment.yaml").exists()


def planned(runner: ScriptedRunner) -> list[tuple[str, ...]]:
    return [step.argv for step in runner.history]


@pytest.mark.parametrize("flow", ["deploy", "rollback", "emergency"])
def test_the_printed_plan_is_the_step_list_a_real_run_executes(
    console: RecordingConsole,
    config: DeliveryConfig,
    monkeypatch: pytest.MonkeyPatch,
    flow: str,
) -> None:
    deployed = history("superseded", "superseded", "deployed")
    monkeypatch.setattr(publish, "release", lambda *a, **k: release_record("emergency-fix"))

    def run(dry_run: bool) -> list[tuple[str, ...]]:
        with ScriptedRunner(console, console.masker, dry_run=dry_run) as runner:
            runner.answer("version", "--short", reply=(0, HELM4_VERSION, ""))
            runner.answer("rollback", "aegis", reply=(0, "Rollback was a success", ""))
            script_cluster(runner, history=deployed)
            if flow == "rollback":
                request = deploy.RollbackRequest("staging", 2, yes=True, reason="INC-7")
                deploy.rollback(runner, config, request, ENVIRON)
            else:
                tag, why = ("emergency-fix", "INC-1") if flow == "emergency" else (None, None)
                request_ = deploy.DeployRequest("staging", tag, why, yes=True)
                emergency.deploy(runner, config, request_, ENVIRON)
            return planned(runner)

    dry, real = run(True), run(False)
    assert dry == real
    assert any("upgrade" in argv or "rollback" in argv for argv in dry)


def test_a_pending_release_is_refused_with_its_revision(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    script_cluster(runner, history=history())
    with pytest.raises(
        InputError, match=r"pending-upgrade at revision 3 .*--recover` rolls back to revision 2"
    ):
        deploy_staging(runner, config)
    assert_release_unchanged(runner)


def test_recover_rolls_back_to_the_last_deployed_revision(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    script_cluster(runner, history=history())
    runner.answer("rollback", "aegis", "2", reply=(0, "Rollback was a success", ""))
    deploy_staging(runner, config, recover=True)
    assert runner.ran("rollback", "aegis", "2") and runner.ran("upgrade", "--install")


def test_a_stuck_first_install_needs_its_own_flag(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    stuck = json.dumps(
        [
            {
                "revision": 1,
                "status": "pending-install",
                "chart": "aegis",
                "app_version": "",
                "description": "Initial install underway",
                "updated": "",
            }
        ]
    )
    script_cluster(runner, history=stuck)
    with pytest.raises(InputError, match=r"can only be uninstalled.*--uninstall-stuck-install"):
        deploy_staging(runner, config, recover=True)
    assert_release_unchanged(runner)
    runner.answer("uninstall", "aegis", reply=(0, "uninstalled", ""))
    deploy_staging(runner, config, recover=True, uninstall_stuck_install=True)
    assert runner.ran("uninstall", "aegis")


def test_a_context_mismatch_names_both(runner: ScriptedRunner, config: DeliveryConfig) -> None:
    script_cluster(runner, context="prod-cluster")
    with pytest.raises(
        InputError,
        match="current kube context is 'prod-cluster' but this environment expects 'aegis-staging'",
    ):
        deploy_staging(runner, config)
    assert_nothing_changed(runner)


def test_a_missing_namespace_needs_create_namespace(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    runner.answer(
        "get",
        "namespace",
        reply=(1, "", 'Error from server (NotFound): namespaces "aegis-staging" not found'),
    )
    script_cluster(runner)
    with pytest.raises(InputError, match="does not exist: create it, or pass --create-namespace"):
        deploy_staging(runner, config)
    assert_nothing_changed(runner)
    deploy_staging(runner, config, create_namespace=True)
    upgrade = next(step.argv for step in runner.calls if "upgrade" in step.argv)
    assert "--create-namespace" in upgrade


@pytest.mark.parametrize(
    ("request_", "environ", "message"),
    [
        (deploy.DeployRequest("prod", yes=True), {}, "unknown environment 'prod'"),
        (deploy.DeployRequest("staging", "bad tag", "x", yes=True), {}, "invalid tag 'bad tag'"),
        (deploy.DeployRequest("staging", "abc\n", "x", yes=True), {}, "invalid tag 'abc\\\\n'"),
        (deploy.DeployRequest("staging", "fix", None, yes=True), {}, "--reason is required"),
        (deploy.DeployRequest("staging", "fix", "two\nlines", yes=True), {}, "one line"),
        (STAGING, {"KUBE_CONFIG": "not base64!!"}, "KUBE_CONFIG is not valid base64"),
        (STAGING, {"KUBE_CONFIG": NOT_A_KUBECONFIG}, "KUBE_CONFIG decodes to something"),
    ],
    ids=["environment", "tag", "tag-newline", "no-reason", "two-line-reason", "not-base64",
         "not-kubeconfig"],
)  # fmt: skip
def test_bad_input_changes_nothing(
    runner: ScriptedRunner,
    config: DeliveryConfig,
    request_: deploy.DeployRequest,
    environ: dict[str, str],
    message: str,
) -> None:
    script_cluster(runner)
    with pytest.raises((InputError, AegisError), match=message):
        emergency.deploy(runner, config, request_, environ)
    assert_nothing_changed(runner)
    assert not runner.ran("config", "current-context")


def test_the_emergency_path_publishes_first_and_records_the_reason(
    runner: ScriptedRunner, config: DeliveryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    script_cluster(runner)
    published: list[str] = []

    def release(*arguments: object, **options: object) -> ReleaseRecord:
        published.append(str(options["reason"]))
        return release_record("emergency-fix", reason="hotfix INC-42")

    monkeypatch.setattr(publish, "release", release)
    request = deploy.DeployRequest("staging", "emergency-fix", "hotfix INC-42", yes=True)
    outcome = emergency.deploy(runner, config, request, ENVIRON)
    assert published == ["hotfix INC-42"]
    upgrade = next(step.argv for step in runner.calls if "upgrade" in step.argv)
    assert any(p.startswith("--description=tag=emergency-fix") and p.endswith(
        "reason=hotfix INC-42") for p in upgrade)  # fmt: skip
    assert outcome.document()["completed"] == ["guards", "publish", "upgrade", "verify"]
    assert "imageTag: emergency-fix" in (config.chart / "values.deployment.yaml").read_text()


def actions_run(tmp_path: Path, ref: str, default_branch: str | None = "main") -> dict[str, str]:
    """The environment of a GitHub Actions run on *ref*, with its event payload."""
    event = tmp_path / "event.json"
    repository = {} if default_branch is None else {"default_branch": default_branch}
    event.write_text(json.dumps({"repository": repository}))
    return {
        **ENVIRON, "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_REF": ref,
        "GITHUB_EVENT_PATH": str(event),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("ref", "default_branch", "expected"),
    [
        ("refs/heads/feature/x", "main", "only from the default branch refs/heads/main, not "
         "refs/heads/feature/x"),
        ("refs/tags/v1.2.3", "main", "not refs/tags/v1.2.3"),
        ("refs/heads/main", None, "the default branch is unknown"),
    ],
)  # fmt: skip
def test_an_emergency_deploy_in_actions_runs_only_from_the_default_branch(
    runner: ScriptedRunner,
    config: DeliveryConfig,
    tmp_path: Path,
    ref: str,
    default_branch: str | None,
    expected: str,
) -> None:
    request = deploy.DeployRequest("staging", "emergency-fix", "hotfix INC-42", yes=True)
    with pytest.raises(InputError, match=expected):
        emergency.deploy(runner, config, request, actions_run(tmp_path, ref, default_branch))
    assert getattr(runner, "calls", []) == []  # refused before anything ran or was asked


def test_from_the_default_branch_the_emergency_path_goes_on(
    runner: ScriptedRunner, config: DeliveryConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script_cluster(runner)
    monkeypatch.setattr(
        publish, "release", lambda *a, **o: release_record("emergency-fix", reason="hotfix")
    )
    request = deploy.DeployRequest("staging", "emergency-fix", "hotfix", yes=True)
    environ = actions_run(tmp_path, "refs/heads/main")
    assert emergency.deploy(runner, config, request, environ).tag == "emergency-fix"
    # Outside Actions (a laptop) no branch rule applies: the operator's checkout is the source.
    from aegis_delivery.ci import default_branch_refusal

    assert default_branch_refusal({"GITHUB_REF": "refs/heads/x"}) is None


def test_the_kubeconfig_never_shows_and_is_removed_on_every_path(
    runner: ScriptedRunner, config: DeliveryConfig, console: RecordingConsole
) -> None:
    encoded = base64.b64encode(KUBECONFIG_TEXT.encode()).decode()
    seen: list[Path] = []

    def context_answer(step: Step) -> tuple[int, str, str]:
        path = Path(step.env["KUBECONFIG"])
        seen.append(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.read_text() == KUBECONFIG_TEXT
        return 0, "aegis-staging\n", f"debug: loaded {KUBECONFIG_TEXT}"

    runner.answer("config", "current-context", reply=context_answer)
    rejected = "Error: token very-secret-kube-token-value rejected"
    runner.answer("upgrade", "--install", reply=(1, "", rejected))
    runner.answer("get", "pods", reply=(0, '{"items": []}', ""))
    script_cluster(runner)
    with pytest.raises(CommandFailed) as raised:
        deploy_staging(runner, config, environ={"KUBE_CONFIG": encoded})
    runner.__exit__(None, None, None)  # the task's end: cleanups run
    assert seen and not seen[0].exists()
    assert "very-secret-kube-token-value" not in console.text + raised.value.message
    assert encoded not in console.text


def test_a_held_lock_makes_the_second_deploy_wait_then_fail_naming_the_holder(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    now = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    clock = iter(now + dt.timedelta(seconds=5 * i) for i in range(10_000))
    holder = lease("alice@laptop/run-1", 720, now - dt.timedelta(seconds=30))
    runner.answer(
        "create",
        "--filename",
        reply=(
            1,
            "",
            'Error from server (AlreadyExists): leases "aegis-deploy-aegis" already exists',
        ),
    )
    runner.answer("get", "lease", reply=(0, holder, ""))
    script_cluster(runner)
    cluster = connect(runner, config, "staging", {})
    lock = DeployLock(
        runner, cluster, holder="bob@ci/2", clock=lambda: next(clock), sleep=lambda s: None
    )
    with pytest.raises(AegisError, match=r"another deploy holds the lock .* alice@laptop/run-1"):
        lock.acquire()
    assert not runner.ran("delete", "lease")  # never someone else's lock
    assert runner.output.count("waiting up to 5m for the deploy lock") == 1  # said once


class LeaseStore:
    """The API server's behaviour for one Lease, as kubectl reports it: create fails with
    AlreadyExists, replace with a stale resourceVersion fails with Conflict (409)."""

    def __init__(self, initial: str) -> None:
        self.document: dict[str, object] | None = json.loads(initial)
        self.version = 7
        self.lock = threading.Lock()
        self.both_read = threading.Barrier(2, timeout=10)

    def create(self, step: Step) -> tuple[int, str, str]:
        with self.lock:
            if self.document is not None:
                return 1, "", 'Error from server (AlreadyExists): leases "x" already exists'
            return self._store(step), "lease/x created", ""

    def get(self, step: Step) -> tuple[int, str, str]:
        with self.lock:
            text = json.dumps(self.document)
        if not self.both_read.broken:
            with contextlib.suppress(threading.BrokenBarrierError):
                self.both_read.wait()  # both waiters saw the same stale version
            self.both_read.abort()  # once is enough: later reads go straight through
        return 0, text, ""

    def replace(self, step: Step) -> tuple[int, str, str]:
        sent = json.loads(step.stdin or "{}")
        with self.lock:
            if sent["metadata"].get("resourceVersion") != str(self.version):
                return 1, "", "Error from server (Conflict): the object has been modified"
            return self._store(step), "lease/x replaced", ""

    def _store(self, step: Step) -> int:
        self.version += 1
        document = json.loads(step.stdin or "{}")
        document["metadata"]["resourceVersion"] = str(self.version)
        self.document = document
        return 0


def test_two_waiters_for_a_stale_lock_exactly_one_takes_it(config: DeliveryConfig) -> None:
    now = dt.datetime(2026, 11, 26, 3, 0, tzinfo=dt.UTC)
    store = LeaseStore(lease("crashed@ci/9", 60, now - dt.timedelta(hours=1)))
    results: dict[str, str] = {}

    def contender(name: str) -> None:
        console = RecordingConsole(Masker())
        with ScriptedRunner(console, console.masker) as runner:
            runner.answer("version", "--short", reply=(0, HELM4_VERSION, ""))
            runner.answer("create", "--filename", reply=store.create)
            runner.answer("replace", "--filename", reply=store.replace)
            runner.answer("get", "lease", reply=store.get)
            runner.answer("delete", "lease", reply=(0, "deleted", ""))
            cluster = connect(runner, config, "staging", {})
            ticks = iter(now + dt.timedelta(minutes=i) for i in range(1000))
            lock = DeployLock(
                runner, cluster, holder=name, clock=lambda: next(ticks), sleep=lambda s: None
            )
            try:
                lock.acquire()
                results[name] = "took it"
            except AegisError as error:
                results[name] = error.message

    threads = [threading.Thread(target=contender, args=(n,)) for n in ("ann@ci/1", "ben@ci/2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(results.values()).count("took it") == 1, results
    loser = next(v for v in results.values() if v != "took it")
    winner = next(k for k, v in results.items() if v == "took it")
    assert f"another deploy holds the lock 'aegis-deploy-aegis' in aegis-staging: {winner}" in loser


def test_a_failed_upgrade_shows_the_pods_reasons_and_releases_the_lock(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    runner.answer(
        "upgrade", "--install", reply=(1, "", "Error: UPGRADE FAILED: context deadline exceeded")
    )
    runner.answer(
        "get", "pods", reply=(0, (FIXTURES / "kubectl-pods-crashloop.json").read_text(), "")
    )
    runner.answer(
        "get", "events", reply=(0, "Warning BackOff Back-off restarting failed container", "")
    )
    runner.answer("logs", reply=(0, "monitor-api: invalid configuration: NATS_URL", ""))
    script_cluster(runner)
    with pytest.raises(CommandFailed, match="context deadline exceeded"):
        deploy_staging(runner, config)
    text = runner.output
    assert "CrashLoopBackOff" in text and "invalid configuration: NATS_URL" in text
    assert "ImagePullBackOff: Back-off pulling image" in text
    assert runner.ran("delete", "lease")


def test_a_failure_carries_what_completed_into_the_json_document(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    runner.answer("upgrade", "--install", reply=(1, "", "Error: UPGRADE FAILED: timed out"))
    runner.answer("get", "pods", reply=(0, '{"items": []}', ""))
    script_cluster(runner)
    with pytest.raises(CommandFailed) as raised:
        deploy_staging(runner, config)
    assert raised.value.details["completed"] == ["guards"]
    assert raised.value.details["failed_step"] == "upgrade"
    assert raised.value.details["tag"] == "main-0123456"


def test_verify_fails_fast_on_a_crash_loop(runner: ScriptedRunner, config: DeliveryConfig) -> None:
    runner.answer(
        "get", "pods", reply=(0, (FIXTURES / "kubectl-pods-crashloop.json").read_text(), "")
    )
    runner.answer("get", "events", reply=(0, "", ""))
    runner.answer("logs", reply=(0, "", ""))
    script_cluster(runner)
    cluster = connect(runner, config, "staging", {})
    slept: list[float] = []
    with pytest.raises(
        GateFailed, match=r"CrashLoopBackOff.*last exit: monitor-api: invalid configuration"
    ):
        verify_cluster(runner, APPS, cluster, {}, sleep=slept.append)
    assert slept == []  # no waiting out the timeout
    assert not runner.ran("rollout")


@pytest.mark.parametrize(
    ("reply", "message"),
    [((0, '{"items": []}', ""), "no pods match the release"),
     ((1, "", "Unable to connect to the server: connection refused"), "cannot list pods")],
    ids=["zero-pods", "unreachable"],
)  # fmt: skip
def test_verify_never_passes_on_nothing(
    runner: ScriptedRunner, config: DeliveryConfig, reply: tuple[int, str, str], message: str
) -> None:
    runner.answer("get", "pods", reply=reply)
    script_cluster(runner)
    cluster = connect(runner, config, "staging", {})
    with pytest.raises(GateFailed, match=message):
        verify_cluster(runner, APPS, cluster, {}, sleep=lambda s: None)


def test_verify_checks_the_deployed_digest(runner: ScriptedRunner, config: DeliveryConfig) -> None:
    script_cluster(runner)
    cluster = connect(runner, config, "staging", {})
    ticks = iter(range(0, 10_000, 60))
    slept: list[float] = []
    with pytest.raises(GateFailed, match="expected sha256:ccc"):
        verify_cluster(
            runner, APPS, cluster, {"monitor-api": "sha256:ccc"},
            sleep=slept.append, monotonic=lambda: float(next(ticks)),
        )  # fmt: skip
    assert len(slept) == 9  # polled until the 10m timeout (a minute a tick), then failed
    report = verify_cluster(runner, APPS, cluster, {"monitor-api": DIGEST_API})
    assert [c["check"] for c in report.checks] == [
        "pods",
        "rollout monitor-api",
        "rollout monitor-ui",
        "helm test",
        "nats",
    ]


def test_the_verify_task_checks_the_recorded_digests(
    runner: ScriptedRunner, config: DeliveryConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sha256:" + "c" * 64
    config.build.release_file.write_text(release_record().text().replace(DIGEST_UI, wrong))
    monkeypatch.setattr("aegis_delivery.cluster.verify.POLL_SECONDS", 0.01)
    staging = replace(config.environments["staging"], timeout=Duration.parse("1s"))
    script_cluster(runner)
    with pytest.raises(GateFailed, match=f"expected {wrong}"):
        inspect.verify(runner, replace(config, environments={"staging": staging}), "staging", {})


@pytest.mark.parametrize(
    ("revision", "message"), [(7, r"revision 7 is not in the history; known: 1, 2, 3")]
)
def test_rollback_refuses_an_unknown_revision(
    runner: ScriptedRunner, config: DeliveryConfig, revision: int, message: str
) -> None:
    script_cluster(runner, history=history())
    with pytest.raises(InputError, match=message):
        deploy.rollback(
            runner, config, deploy.RollbackRequest("staging", revision, True, "INC-7"), {}
        )
    assert_nothing_changed(runner)


def test_rollback_goes_to_the_previous_deployed_revision(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    script_cluster(runner, history=history("superseded", "superseded", "deployed"))
    runner.answer("rollback", "aegis", "2", reply=(0, "Rollback was a success", ""))
    request = deploy.RollbackRequest("staging", None, True, "INC-7 login broken")
    outcome = deploy.rollback(runner, config, request, {"USER": "ops"})
    assert outcome.revision == 2 and runner.ran("rollback", "aegis", "2", "--wait=watcher")
    audit = json.loads(next(s.stdin for s in runner.calls if "ConfigMap" in (s.stdin or "")) or "")
    assert audit["metadata"]["name"] == "aegis-audit-aegis-v4"
    assert audit["data"] == {"revision": "4", "by": "ops", "reason": "INC-7 login broken",
                             "action": "rollback to revision 2"}  # fmt: skip
    assert outcome.description == "rollback to revision 2 by=ops reason=INC-7 login broken"


def test_a_rollback_without_a_reason_or_terminal_is_refused_before_anything(
    runner: ScriptedRunner, config: DeliveryConfig
) -> None:
    script_cluster(runner)
    with pytest.raises(InputError, match=r"--reason is required: a rollback records why"):
        deploy.rollback(runner, config, deploy.RollbackRequest("staging", None, True), {})
    assert not getattr(runner, "calls", [])


def test_the_kubeconfig_is_removed_after_success_and_after_an_interrupt(
    config: DeliveryConfig, console: RecordingConsole
) -> None:
    import signal

    from aegis_delivery.errors import Interrupted

    encoded = base64.b64encode(KUBECONFIG_TEXT.encode()).decode()
    for outcome in ("success", "interrupt"):
        seen: list[Path] = []

        def upgrade(
            step: Step, outcome: str = outcome, seen: list[Path] = seen
        ) -> tuple[int, str, str]:
            seen.append(Path(step.env["KUBECONFIG"]))
            assert seen[0].exists()
            if outcome == "interrupt":
                raise Interrupted(signal.SIGTERM)  # what the runner raises after helm stopped
            return 0, "upgraded", ""

        expectation = pytest.raises(Interrupted) if outcome == "interrupt" else nullcontext()
        with expectation, ScriptedRunner(console, console.masker) as runner:
            runner.answer("version", "--short", reply=(0, HELM4_VERSION, ""))
            runner.answer("upgrade", "--install", reply=upgrade)
            script_cluster(runner)
            emergency.deploy(runner, config, STAGING, {"KUBE_CONFIG": encoded})
        assert seen and not seen[0].exists(), outcome
        if outcome == "interrupt":
            assert runner.ran("delete", "lease")  # the lock is released on the way out
    assert "very-secret-kube-token-value" not in console.text
