"""The deploy lifecycle executed by the real helm (4 and 3) and kubectl, against a local API.

The API is `tests/kube_api.py`: kmock 0.8 with an adapter, on a free loopback port, with a
kubeconfig the toolkit receives through `KUBE_CONFIG` exactly as CI gives it. A small
"controller" (`FakeCluster`) acts out the cluster: ready pods on the deployed digests, a crash
loop, a rollout that never finishes, `helm test` pods that succeed. Each test asserts on what the
API holds afterwards: helm's release Secrets (revisions, statuses, descriptions) and the stored
Deployments' images. What it is not: no scheduler, no kubelet, no OpenAPI beyond a stub, no
events; pods exist only when the controller writes them.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from aegis_delivery import emergency, reports
from aegis_delivery import promote as promotion
from aegis_delivery.cluster import deploy, inspect
from aegis_delivery.cluster.helm import Helm
from aegis_delivery.cluster.undo import RolledBack
from aegis_delivery.config import DeliveryConfig, Duration, load_config
from aegis_delivery.config_trust import ProvenancePolicy
from aegis_delivery.errors import AegisError, GateFailed, InputError, Interrupted
from aegis_delivery.masking import Masker
from aegis_delivery.release import publish
from aegis_delivery.release.record import ReleaseRecord
from aegis_delivery.runner import Runner
from aegis_delivery.tools import tools_directory
from aegis_delivery.verification import VerifyOutcome
from tests.capture import kill_mid_upgrade
from tests.conftest import REPOSITORY, RecordingConsole
from tests.kube_api import JSON, FakeCluster, LocalKubeAPI, Outcome
from tests.published import failure_printed, printed
from tests.records import provenance_off, release_record
from tests.services import require

pytestmark = [pytest.mark.binaries, pytest.mark.cluster]
NS = "aegis-staging"
TOOLS = tools_directory(REPOSITORY)
DIGESTS_V1 = {"monitor-api": "sha256:" + "1" * 64, "monitor-ui": "sha256:" + "2" * 64}
DIGESTS_V2 = {"monitor-api": "sha256:" + "3" * 64, "monitor-ui": "sha256:" + "4" * 64}
# The registry's answer to `docker buildx imagetools inspect REPO@DIGEST`: that digest.
FAKE_DOCKER = """#!/bin/sh
# docker buildx imagetools inspect REPO@DIGEST --format ...
echo "{\\"digest\\": \\"${4#*@}\\"}"
"""


@dataclass
class Cluster:
    """One local API, its controller, and the toolkit configured against it."""

    api: LocalKubeAPI
    controller: FakeCluster
    config: DeliveryConfig
    environ: dict[str, str]
    console: RecordingConsole
    major: int

    def runner(self) -> Runner:
        return Runner(self.console, self.console.masker, grace_seconds=5)

    def record(self, tag: str, digests: dict[str, str], reason: str | None = None) -> None:
        record = release_record(tag, reason=reason, digests=digests)
        self.config.build.release_file.write_text(record.text())

    def deploy(
        self, tag: str | None = None, reason: str | None = None, recover: bool = False
    ) -> deploy.DeployOutcome:
        request = deploy.DeployRequest("staging", tag, reason, yes=True, recover=recover)
        with self.runner() as runner:
            return emergency.deploy(runner, self.config, request, self.environ)

    def releases(self) -> list[JSON]:
        """helm's release records as stored in the API, decoded, oldest first."""
        found = []
        for secret in self.api.list("v1/secrets", NS, "owner=helm"):
            raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
            found.append(json.loads(gzip.decompress(raw)))
        return sorted(found, key=lambda release: int(release["version"]))

    def statuses(self) -> list[tuple[int, str]]:
        return [(int(r["version"]), str(r["info"]["status"])) for r in self.releases()]

    def images(self) -> dict[str, str]:
        return {
            str(d["metadata"]["name"]): str(d["spec"]["template"]["spec"]["containers"][0]["image"])
            for d in self.api.list("apps/v1/deployments", NS)
        }


def policy_by_tag(outcomes: dict[str, Outcome | None]) -> Callable[[JSON], Outcome | None]:
    """The controller's answer per image: ready unless the deployed digest is listed."""

    def decide(deployment: JSON) -> Outcome | None:
        image = str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
        for digest, outcome in outcomes.items():
            if image.endswith(digest):
                return outcome
        return "ready"

    return decide


def pinned_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, major: int) -> Path:
    """The pinned helm *major* and kubectl as the toolkit's tools, a registry-answering fake
    docker, a HOME and helm directories of the test's own; returns a copy of the chart."""
    require((TOOLS / "helm").exists() and (TOOLS / "helm3").exists(), "scripts/install-tools")
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "helm").symlink_to(TOOLS / ("helm" if major == 4 else "helm3"))
    (tools / "kubectl").symlink_to(TOOLS / "kubectl")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
    monkeypatch.setenv("AEGIS_TOOLS_DIR", str(tools))
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # kubectl's discovery cache
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        monkeypatch.setenv(name, str(tmp_path / "helm" / name))
    chart = tmp_path / "chart"
    shutil.copytree(REPOSITORY / "helm", chart)
    return chart


@pytest.fixture(params=[4, 3], ids=["helm4", "helm3"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    major = int(request.param)
    chart = pinned_binaries(tmp_path, monkeypatch, major)
    base = load_config(REPOSITORY / "pyproject.toml")
    staging = replace(
        base.environments["staging"],
        timeout=Duration.parse("20s"),
        lock_wait=Duration.parse("3s"),
        nats=False,  # no exec into a nats-box: there is no kubelet
    )
    config = replace(
        provenance_off(base),
        chart=chart,
        environments={"staging": replace(staging, provenance=ProvenancePolicy())},
        build=replace(base.build, release_file=tmp_path / "release.json"),
    )
    with LocalKubeAPI() as api, FakeCluster(api) as controller:
        api.add_namespace(NS)
        encoded = api.kubeconfig(tmp_path / "kubeconfig.yaml", "aegis-staging", NS)
        controller.start(delay=0)
        yield Cluster(
            api, controller, config, {"KUBE_CONFIG": encoded, "USER": "ops"},
            RecordingConsole(Masker()), major,
        )  # fmt: skip
        assert controller.errors == []


def test_first_deploy_then_an_upgrade_pinned_by_digest(cluster: Cluster) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    first = cluster.deploy()
    assert first.revision == 1 and first.verify is not None and first.verify.passed
    assert cluster.statuses() == [(1, "deployed")]
    assert cluster.images()["aegis-monitor-api"].endswith("@" + DIGESTS_V1["monitor-api"])
    policies = cluster.api.list("networking.k8s.io/v1/networkpolicies", NS)
    assert sorted(p["metadata"]["name"] for p in policies) == [
        "aegis-monitor-api",
        "aegis-monitor-ui",
    ]
    # The chart's staging values (helm/values.staging.yaml) reach helm: the UI's ingress.
    ingresses = cluster.api.list("networking.k8s.io/v1/ingresses", NS)
    hosts = [rule["host"] for i in ingresses for rule in i["spec"]["rules"]]
    assert hosts == ["monitor.staging.aegistrader.internal"]
    cluster.record("main-2222222", DIGESTS_V2)
    second = cluster.deploy()
    assert second.revision == 2 and second.digests == DIGESTS_V2
    assert printed("deploy", reports.show_outcome, second)["revision"] == 2
    assert cluster.statuses() == [(1, "superseded"), (2, "deployed")]
    description = cluster.releases()[-1]["info"]["description"]
    assert description == "tag=main-2222222 sha=0123456 by=ops"
    assert cluster.images()["aegis-monitor-ui"].endswith("@" + DIGESTS_V2["monitor-ui"])
    assert [c["check"] for c in second.verify.checks if c["ok"]] == [  # type: ignore[union-attr]
        "pods", "rollout monitor-api", "rollout monitor-ui", "helm test",
    ]  # fmt: skip
    assert api_has_no_lease(cluster)


def api_has_no_lease(cluster: Cluster) -> bool:
    return cluster.api.list("coordination.k8s.io/v1/leases", NS) == []


def test_an_emergency_deploy_records_its_reason(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    def emergency(*arguments: object, **options: object) -> ReleaseRecord:
        return release_record("emergency-fix", reason=str(options["reason"]), digests=DIGESTS_V1)

    monkeypatch.setattr(publish, "release", emergency)  # the registry side has its own tests
    outcome = cluster.deploy(tag="emergency-fix", reason="hotfix INC-123")
    assert outcome.revision == 1
    description = cluster.releases()[-1]["info"]["description"]
    assert description.endswith("by=ops reason=hotfix INC-123")
    assert description.startswith("tag=emergency-fix")


def budgets(cluster: Cluster, upgrade: str, rollback: str) -> None:
    staging = replace(
        cluster.config.environments["staging"],
        timeout=Duration.parse(upgrade),
        rollback_timeout=Duration.parse(rollback),
    )
    cluster.config = replace(cluster.config, environments={"staging": staging})


@pytest.mark.parametrize("never", ["crashloop", None], ids=["crash-loop", "never-ready"])
def test_a_failed_upgrade_is_rolled_back_within_its_own_budget(
    cluster: Cluster, never: Outcome | None
) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    cluster.controller.start(policy_by_tag({DIGESTS_V2["monitor-api"]: never}), 0)
    cluster.record("main-2222222", DIGESTS_V2)
    # The rollout never finishes: helm gives up at the upgrade's timeout, kept short here.
    budgets(cluster, "4s", "20s")
    started = time.monotonic()
    with pytest.raises(RolledBack) as raised:
        cluster.deploy()
    elapsed = time.monotonic() - started
    assert cluster.statuses() == [(1, "superseded"), (2, "failed"), (3, "deployed")]
    assert cluster.images()["aegis-monitor-api"].endswith(DIGESTS_V1["monitor-api"])
    upgrade_line, rollback_line = raised.value.message.splitlines()
    assert upgrade_line.startswith("deploy of main-2222222 to staging failed: ")
    if never == "crashloop":  # the pod that cannot run, by name and reason
        assert "aegis-monitor-api" in upgrade_line and "CrashLoopBackOff" in upgrade_line
    assert rollback_line.startswith("rollback: revision 1 restored as revision 3 in ")
    assert rollback_line.endswith("(budget 20s): deployed, pods ready")
    document = failure_printed("deploy-failure", raised.value)
    assert document["upgrade"]["revision"] == 2
    assert bool(document["upgrade"]["pods"]) == (never == "crashloop")
    assert document["rollback"] == {
        "to_revision": 1, "revision": 3, "status": "deployed", "timeout": "20s", "held": True,
        "seconds": document["rollback"]["seconds"],
    }  # fmt: skip
    assert document["completed"] == ["guards"] and document["failed_step"] == "upgrade"
    # Both phases within their budgets: the upgrade's 4 s, the rollback's 20 s, and the
    # verify and diagnosis around them; never a rollback squeezed into what the upgrade left.
    assert elapsed < 4 + 20 + 30
    assert raised.value.exit_code == 1
    text = cluster.console.text
    assert "helm upgrade failed; what the cluster shows" in text
    assert "release is now revision 2: failed" in text
    assert api_has_no_lease(cluster)


def test_a_first_install_that_fails_is_uninstalled(cluster: Cluster) -> None:
    cluster.controller.start(policy_by_tag({DIGESTS_V1["monitor-api"]: None}), 0)
    cluster.record("main-1111111", DIGESTS_V1)
    budgets(cluster, "4s", "20s")
    with pytest.raises(RolledBack, match="the failed first install was uninstalled"):
        cluster.deploy()
    assert cluster.statuses() == []
    assert cluster.images() == {}
    assert api_has_no_lease(cluster)


def test_sigterm_during_the_rollback_leaves_what_the_next_run_recovers(cluster: Cluster) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    # Nothing becomes ready now: the upgrade times out, and the rollback waits.
    stuck: dict[str, Outcome | None] = {
        DIGESTS_V1["monitor-api"]: None,
        DIGESTS_V2["monitor-api"]: None,
    }
    cluster.controller.start(policy_by_tag(stuck), 0)
    cluster.record("main-2222222", DIGESTS_V2)
    budgets(cluster, "4s", "60s")

    def terminate_once_rolling_back() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(status == "pending-rollback" for _, status in cluster.statuses()):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=terminate_once_rolling_back, daemon=True)
    watcher.start()
    started = time.monotonic()
    with pytest.raises(Interrupted) as raised:
        cluster.deploy()
    assert raised.value.exit_code == 143
    assert time.monotonic() - started < 4 + 60  # honoured at once, not at the budget's end
    watcher.join(5)
    last = cluster.statuses()[-1]
    assert last[0] == 3 and last[1] in {"pending-rollback", "failed"}, cluster.statuses()
    assert api_has_no_lease(cluster)
    # The next run: --recover rolls the interrupted rollback back, then deploys.
    cluster.controller.start(delay=0)
    budgets(cluster, "20s", "20s")
    recovered = cluster.deploy(recover=True)
    assert cluster.statuses()[-1] == (recovered.revision, "deployed")
    assert cluster.images()["aegis-monitor-api"].endswith(DIGESTS_V2["monitor-api"])


def test_verify_names_a_crash_loop_and_a_wrong_digest(cluster: Cluster) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    with cluster.runner() as runner:
        passed = inspect.verify(runner, cluster.config, "staging", cluster.environ)
    verified = printed("verify", reports.show_outcome, VerifyOutcome("staging", passed))
    assert all(check["ok"] for check in verified["verify"])
    cluster.controller.stop()
    cluster.controller.mark_crashloop(NS, "aegis-monitor-api")
    with pytest.raises(GateFailed, match="CrashLoopBackOff"), cluster.runner() as runner:
        inspect.verify(runner, cluster.config, "staging", cluster.environ)
    cluster.controller.mark_ready(NS, "aegis-monitor-api")
    cluster.controller.mark_wrong_digest(NS, "aegis-monitor-ui", "sha256:" + "9" * 64)
    quick = replace(cluster.config.environments["staging"], timeout=Duration.parse("2s"))
    config = replace(cluster.config, environments={"staging": quick})
    expected = "expected " + DIGESTS_V1["monitor-ui"]
    with pytest.raises(GateFailed, match=expected), cluster.runner() as runner:
        inspect.verify(runner, config, "staging", cluster.environ)


def test_rollback_to_the_previous_and_to_revision_n_then_verify(cluster: Cluster) -> None:
    for tag, digests in (("main-1111111", DIGESTS_V1), ("main-2222222", DIGESTS_V2),
                         ("main-3333333", DIGESTS_V1)):  # fmt: skip
        cluster.record(tag, digests)
        cluster.deploy()
    with cluster.runner() as runner:
        back = deploy.rollback(
            runner, cluster.config, deploy.RollbackRequest("staging", None, True, "INC-9"),
            cluster.environ,
        )  # fmt: skip
    assert back.revision == 2 and back.verify is not None and back.verify.passed
    printed("deploy", reports.show_outcome, back)
    assert cluster.statuses()[-1] == (4, "deployed")
    assert cluster.images()["aegis-monitor-api"].endswith(DIGESTS_V2["monitor-api"])
    audit = cluster.api.get("v1/configmaps", NS, "aegis-audit-aegis-v4")
    assert audit is not None and audit["data"]["reason"] == "INC-9"
    assert audit["data"]["by"] == "ops" and audit["data"]["action"] == "rollback to revision 2"
    with cluster.runner() as runner:
        deploy.rollback(
            runner, cluster.config, deploy.RollbackRequest("staging", 1, True, "INC-9"),
            cluster.environ,
        )  # fmt: skip
    assert cluster.statuses()[-1] == (5, "deployed")
    assert cluster.images()["aegis-monitor-api"].endswith(DIGESTS_V1["monitor-api"])
    unknown = deploy.RollbackRequest("staging", 9, True, "x")
    with (
        pytest.raises(InputError, match="revision 9 is not in the history"),
        cluster.runner() as runner,
    ):
        deploy.rollback(runner, cluster.config, unknown, cluster.environ)


def test_a_release_left_pending_is_refused_then_recovered(cluster: Cluster, tmp_path: Path) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    cluster.controller.start(policy_by_tag({DIGESTS_V2["monitor-api"]: None}), 0)  # never ready
    helm = Helm(Path(os.environ["AEGIS_TOOLS_DIR"]) / "helm", cluster.major)
    kill_mid_upgrade(
        [str(helm.path), "upgrade", "aegis", str(cluster.config.chart), f"--namespace={NS}",
         f"--values={cluster.config.chart / 'values.staging.yaml'}",
         "--set=global.imageTag=main-2222222",
         f"--set=apps.monitorApi.image.digest={DIGESTS_V2['monitor-api']}",
         *helm.wait, "--timeout", "60s"],
        {**os.environ, "KUBECONFIG": str(tmp_path / "kubeconfig.yaml")},
        lambda: (2, "pending-upgrade") in cluster.statuses(),
    )  # fmt: skip
    cluster.controller.start(delay=0)
    with pytest.raises(InputError, match=r"pending-upgrade at revision 2 .* revision 1"):
        cluster.deploy()
    assert cluster.statuses() == [(1, "deployed"), (2, "pending-upgrade")]
    recovered = cluster.deploy(recover=True)
    assert recovered.revision == 4
    assert cluster.statuses()[-1] == (4, "deployed")


def test_two_deploys_at_once_one_waits_for_the_lease_and_gives_up(cluster: Cluster) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    # The first deploy's rollout waits until the second has given up: it holds the lock until
    # then, however long the second takes to reach the lock on a busy machine.
    cluster.controller.start(delay=600)
    cluster.record("main-2222222", DIGESTS_V2)
    results: dict[str, str] = {}

    def run(name: str) -> None:
        console = RecordingConsole(Masker())
        try:
            with Runner(console, console.masker, grace_seconds=5) as runner:
                request = deploy.DeployRequest("staging", yes=True)
                emergency.deploy(runner, cluster.config, request, {**cluster.environ, "USER": name})
            results[name] = "deployed"
        except AegisError as error:
            results[name] = error.message

    first = threading.Thread(target=run, args=("ann",))
    first.start()
    deadline = time.monotonic() + 20
    while not cluster.api.list("coordination.k8s.io/v1/leases", NS):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    second = threading.Thread(target=run, args=("ben",))
    second.start()
    second.join(60)
    cluster.controller.start(delay=0)  # now the first deploy's pods become ready
    first.join(60)
    assert results["ann"] == "deployed", results
    assert "another deploy holds the lock 'aegis-deploy-aegis'" in results["ben"]
    assert "ann@" in results["ben"] and "waited 3s" in results["ben"]
    assert cluster.statuses() == [(1, "superseded"), (2, "deployed")]
    assert api_has_no_lease(cluster)


def test_status_reads_the_real_output(cluster: Cluster) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    with cluster.runner() as runner:
        report = inspect.status(runner, cluster.config, "staging", cluster.environ)
    document = printed("status", reports.show_outcome, report)
    assert document["status"] == "deployed"
    history = document["history"]
    assert isinstance(history, list) and history[0]["description"].startswith("tag=main-1111111")
    pods = document["pods"]
    assert isinstance(pods, list) and {p["app"] for p in pods} == {"monitor-api", "monitor-ui"}
    assert all(p["ready"] for p in pods)


def test_history_is_the_audit_trail(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()

    def emergency(*arguments: object, **options: object) -> ReleaseRecord:
        return release_record("emergency-fix", reason=str(options["reason"]), digests=DIGESTS_V2)

    monkeypatch.setattr(publish, "release", emergency)
    cluster.deploy(tag="emergency-fix", reason="hotfix INC-123")
    with cluster.runner() as runner:
        request = deploy.RollbackRequest("staging", 1, True, "INC-124 the fix broke login")
        deploy.rollback(runner, cluster.config, request, cluster.environ)
        trail = inspect.audit(runner, cluster.config, "staging", cluster.environ)
    printed("history", reports.show_history, trail)
    rows = [(e.revision, e.status, e.tag, e.by, e.reason) for e in trail.entries]
    assert rows == [
        (3, "deployed", "main-1111111", "ops", "INC-124 the fix broke login"),
        (2, "superseded", "emergency-fix", "ops", "hotfix INC-123"),
        (1, "superseded", "main-1111111", "ops", None),
    ]
    assert trail.entries[1].digests == {
        "monitorApi": DIGESTS_V2["monitor-api"], "monitorUi": DIGESTS_V2["monitor-ui"],
    }  # fmt: skip


def test_diff_shows_the_digests_a_deploy_would_change(cluster: Cluster) -> None:
    cluster.record("main-1111111", DIGESTS_V1)
    with cluster.runner() as runner:
        first = inspect.diff(runner, cluster.config, "staging", cluster.environ)
    assert "Deployment/aegis-monitor-api" in first.added and not first.images  # nothing live yet
    cluster.deploy()
    with cluster.runner() as runner:
        same = inspect.diff(runner, cluster.config, "staging", cluster.environ)
    assert same.empty, same.summary()
    cluster.record("main-2222222", DIGESTS_V2)
    with cluster.runner() as runner:
        found = inspect.diff(runner, cluster.config, "staging", cluster.environ)
    lines = found.summary()
    assert printed("diff", reports.show_diff, "staging", found)["empty"] is False
    assert lines[0].startswith("image Deployment/aegis-monitor-api monitor-api: ")
    assert lines[0].endswith("@" + DIGESTS_V2["monitor-api"])
    assert {change.new for change in found.images} >= {
        f"ghcr.io/aegistrader/aegistrader/{app}@{digest}" for app, digest in DIGESTS_V2.items()
    }
    assert not found.added and not found.removed
    assert cluster.statuses() == [(1, "deployed")]  # a diff changes nothing


def test_promote_deploys_exactly_what_runs_verified_in_staging(
    cluster: Cluster, tmp_path: Path
) -> None:
    production = replace(cluster.config.environments["staging"], name="production",
                         namespace="aegis-production", kube_context="aegis-production")  # fmt: skip
    config = replace(
        cluster.config, environments={**cluster.config.environments, "production": production}
    )
    cluster.api.add_namespace("aegis-production")
    environ = {
        **cluster.environ,
        "KUBE_CONFIG_STAGING": cluster.environ["KUBE_CONFIG"],
        "KUBE_CONFIG_PRODUCTION": cluster.api.kubeconfig(
            tmp_path / "production.yaml", "aegis-production", "aegis-production"
        ),
    }
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    cluster.record("main-2222222", DIGESTS_V2)  # a newer record on disk is NOT what is promoted
    request = promotion.PromoteRequest("staging", "production", yes=True, reason="weekly release")
    with cluster.runner() as runner:
        outcome = promotion.promote(runner, config, request, environ)
    assert isinstance(outcome, deploy.DeployOutcome) and outcome.digests == DIGESTS_V1
    assert outcome.verify is not None and outcome.verify.passed
    images = {
        str(d["metadata"]["name"]): str(d["spec"]["template"]["spec"]["containers"][0]["image"])
        for d in cluster.api.list("apps/v1/deployments", "aegis-production")
    }
    assert images["aegis-monitor-api"].endswith("@" + DIGESTS_V1["monitor-api"])
    secret = cluster.api.list("v1/secrets", "aegis-production", "owner=helm")
    assert len(secret) == 1
    assert outcome.description.startswith("tag=main-1111111 sha=0123456 by=ops")
    assert "promoted-from=staging@1 reason=weekly release" in outcome.description


def test_promote_pins_the_repository_push_wrote_to_in_a_fork(
    cluster: Cluster, tmp_path: Path
) -> None:
    """In a fork (or a renamed repository) push publishes under GITHUB_REPOSITORY, not the
    configured repository; promote must record and pin the same one."""
    production = replace(cluster.config.environments["staging"], name="production",
                         namespace="aegis-production", kube_context="aegis-production")  # fmt: skip
    config = replace(
        cluster.config, environments={**cluster.config.environments, "production": production}
    )
    cluster.api.add_namespace("aegis-production")
    fork = "ghcr.io/fork-owner/aegis-fork"
    record = release_record("main-1111111", digests=DIGESTS_V1, repository=fork)
    cluster.config.build.release_file.write_text(record.text())
    cluster.deploy()
    environ = {
        **cluster.environ,
        "KUBE_CONFIG_STAGING": cluster.environ["KUBE_CONFIG"],
        "KUBE_CONFIG_PRODUCTION": cluster.api.kubeconfig(
            tmp_path / "production.yaml", "aegis-production", "aegis-production"
        ),
        # the fork's own Actions run, as GitHub sets it
        "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_dispatch",
        "GITHUB_REF": "refs/heads/main", "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_REPOSITORY": "Fork-Owner/aegis-fork",
    }  # fmt: skip
    request = promotion.PromoteRequest("staging", "production", yes=True, reason="fork release")
    with cluster.runner() as runner:
        promoted = promotion.promotable(runner, config, request, environ)
    assert {app: image.repository for app, image in promoted.images.items()} == {
        app: f"{fork}/{app}" for app in DIGESTS_V1
    }
    assert promoted.source.repository == "fork-owner/aegis-fork"
    assert all(t.startswith(f"{fork}/") for i in promoted.images.values() for t in i.tags)


def test_promote_refuses_an_unhealthy_staging(cluster: Cluster, tmp_path: Path) -> None:
    production = replace(cluster.config.environments["staging"], name="production",
                         namespace="aegis-production", kube_context="aegis-production",
                         timeout=Duration.parse("2s"))  # fmt: skip
    staging = replace(cluster.config.environments["staging"], timeout=Duration.parse("2s"))
    config = replace(cluster.config, environments={"staging": staging, "production": production})
    cluster.api.add_namespace("aegis-production")
    cluster.record("main-1111111", DIGESTS_V1)
    cluster.deploy()
    cluster.controller.stop()
    cluster.controller.mark_crashloop(NS, "aegis-monitor-api")
    environ = {
        **cluster.environ,
        "KUBE_CONFIG_PRODUCTION": cluster.api.kubeconfig(
            tmp_path / "production.yaml", "aegis-production", "aegis-production"
        ),
    }
    request = promotion.PromoteRequest("staging", "production", yes=True)
    with (
        pytest.raises(AegisError, match="staging is not healthy, nothing was promoted"),
        cluster.runner() as runner,
    ):
        promotion.promote(runner, config, request, environ)
    assert cluster.api.list("v1/secrets", "aegis-production", "owner=helm") == []
