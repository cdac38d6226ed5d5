"""Verification: is what runs what was released, and does it answer?

One report type for both places a release runs: the cluster (pods ready on the recorded
digests, rollouts, ``helm test``, NATS) and the local Compose stack (the same endpoints the
cluster's probes use, in ``local``). Pod verdicts are parsed from ``kubectl get pods -o json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aegis_delivery.errors import AegisError, GateFailed

if TYPE_CHECKING:
    from aegis_delivery.cluster.access import Cluster
    from aegis_delivery.runner import Runner

POLL_SECONDS = 5.0

# Waiting reasons that will not fix themselves within a rollout: fail fast on these.
FATAL_WAITING = frozenset(
    {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
     "CreateContainerConfigError", "CreateContainerError", "RunContainerError"}
)  # fmt: skip


@dataclass(frozen=True)
class PodVerdict:
    name: str
    app: str
    ready: bool
    image: str
    image_id: str
    problem: str | None  # reason and message when a container cannot run

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def parse_pods(raw: str) -> list[PodVerdict]:
    """``kubectl get pods -o json`` as verdicts, one per workload pod."""
    try:
        items = json.loads(raw)["items"]
        if not isinstance(items, list) or not all(isinstance(pod, dict) for pod in items):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise AegisError(f"kubectl returned pods that are not a pod list: {raw[:200]}") from None
    # Hook pods (the `helm test` pod, kept after it succeeded) are not the release's workload.
    return [_verdict(pod) for pod in items if not _is_hook(pod)]


def _is_hook(pod: Mapping[str, object]) -> bool:
    annotations = _mapping(_mapping(pod.get("metadata")).get("annotations"))
    return "helm.sh/hook" in annotations


def _mapping(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _verdict(pod: Mapping[str, object]) -> PodVerdict:
    """One pod's verdict; fields of the wrong shape read as absent, never as a crash."""
    metadata, status = _mapping(pod.get("metadata")), _mapping(pod.get("status"))
    raw_statuses = status.get("containerStatuses")
    statuses = [_mapping(c) for c in raw_statuses] if isinstance(raw_statuses, list) else []
    problem = None
    for container in statuses:
        state = _mapping(container.get("state"))
        waiting = _mapping(state.get("waiting"))
        terminated = _mapping(state.get("terminated")) or _mapping(
            _mapping(container.get("lastState")).get("terminated")
        )
        if waiting.get("reason") in FATAL_WAITING:
            problem = f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
            if terminated.get("message"):
                problem += f" (last exit: {str(terminated['message']).strip()})"
            break
    if problem is None and status.get("phase") == "Failed":
        problem = f"pod failed: {status.get('reason', '')} {status.get('message', '')}".strip()
    raw_conditions = status.get("conditions")
    conditions = {
        c.get("type"): c.get("status")
        for c in (_mapping(item) for item in raw_conditions or [])
    } if isinstance(raw_conditions, list) else {}  # fmt: skip
    first = statuses[0] if statuses else {}
    return PodVerdict(
        name=str(metadata.get("name", "")),
        app=str(_mapping(metadata.get("labels")).get("app.kubernetes.io/name", "")),
        ready=conditions.get("Ready") == "True",
        image=str(first.get("image", "")),
        image_id=str(first.get("imageID", "")),
        problem=problem,
    )


def check_pods(verdicts: Sequence[PodVerdict], expected_digests: Mapping[str, str]) -> list[str]:
    """Problems that fail verification: no pods, failing or unready pods, a wrong image."""
    if not verdicts:
        return ["no pods match the release: nothing is running"]
    problems = []
    for pod in verdicts:
        if pod.problem:
            problems.append(f"{pod.name}: {pod.problem}")
        elif not pod.ready:
            problems.append(f"{pod.name}: not ready")
        digest = expected_digests.get(pod.app)
        if digest and not pod.image_id.endswith(digest):
            problems.append(f"{pod.name}: runs {pod.image_id or pod.image}, expected {digest}")
    return problems


@dataclass
class VerifyReport:
    """Every check that ran, in order; passed when there was at least one and all passed."""

    checks: list[dict[str, object]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})

    def planned(self, name: str) -> None:
        """A check whose commands were printed, not run (a dry run)."""
        self.checks.append({"check": name, "ok": None, "detail": "planned (dry run)"})

    @property
    def failed(self) -> list[str]:
        return [str(check["check"]) for check in self.checks if check["ok"] is False]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and not self.failed

    def raise_on_failure(self) -> None:
        if self.failed:
            raise GateFailed(f"verify failed: {', '.join(self.failed)}")


def _tail(text: str, characters: int) -> str:
    return text.strip()[-characters:]


def diagnose(runner: Runner, cluster: Cluster) -> None:
    """After a failed upgrade or check: pods that are not ready, their events and last logs."""
    from aegis_delivery.cluster import kube
    from aegis_delivery.cluster.access import history

    pods = runner.run(
        cluster.read(kube.pods_argv(cluster.kubectl, cluster.target), "pods"), check=False
    )
    if not pods.ran:
        return
    if not pods.ok:
        runner.console.warn("could not list pods for diagnosis")
        return
    for pod in parse_pods(pods.stdout):
        if pod.ready and not pod.problem:
            continue
        runner.console.error(f"{pod.name}: {pod.problem or 'not ready'}")
        for argv in (kube.events_argv(cluster.kubectl, cluster.target, pod.name),
                     kube.logs_argv(cluster.kubectl, cluster.target, pod.name)):  # fmt: skip
            answer = runner.run(cluster.read(argv, "diagnose"), check=False)
            for line in (answer.stdout or answer.stderr).strip().splitlines()[-10:]:
                runner.console.output_line(line)
    after = history(runner, cluster)
    if after:
        latest = max(after, key=lambda r: r.revision)
        runner.console.info(
            f"release is now revision {latest.revision}: {latest.status} ({latest.description})"
        )


def verify_cluster(
    runner: Runner,
    apps: Sequence[str],
    cluster: Cluster,
    expected_digests: Mapping[str, str],
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> VerifyReport:
    """Pods (polled until ready, failing fast on a fatal reason), rollouts, helm test, NATS.

    The same steps run or print in a dry run: a check whose step was not run is "planned".
    """
    from aegis_delivery.cluster import helm as helm_cli
    from aegis_delivery.cluster import kube

    report = VerifyReport()
    target, kubectl, environment = cluster.target, cluster.kubectl, cluster.environment
    deadline = monotonic() + environment.timeout.seconds
    pods_step = cluster.read(kube.pods_argv(kubectl, target), "pods")
    while True:
        pods = runner.run(pods_step, check=False)
        if not pods.ran:
            report.planned("pods")
            break
        if not pods.ok:
            report.add(
                "pods", False, f"cluster unreachable: {_tail(pods.stderr or pods.stdout, 300)}"
            )
            raise GateFailed(f"verify: cannot list pods: {_tail(pods.stderr or pods.stdout, 300)}")
        verdicts = parse_pods(pods.stdout)
        problems = check_pods(verdicts, expected_digests)
        fatal = any(p.problem for p in verdicts) or not verdicts
        if not problems or fatal or monotonic() >= deadline:
            report.add("pods", not problems, "; ".join(problems) or f"{len(verdicts)} pods ready")
            break
        sleep(POLL_SECONDS)
    if report.failed:
        diagnose(runner, cluster)
        raise GateFailed("verify failed: " + str(report.checks[-1]["detail"]))
    steps = [
        (
            f"rollout {app}",
            cluster.read(
                kube.rollout_argv(
                    kubectl, target, f"{target.release}-{app}", environment.timeout.text
                ),
                f"rollout {app}",
            ),
        )
        for app in apps
    ]
    # helm test creates and deletes a test pod: a change, printed in a dry run.
    steps.append(
        (
            "helm test",
            cluster.change(
                helm_cli.test_argv(cluster.helm, target, environment), "helm test", capture=True
            ),
        )
    )
    if environment.nats:
        steps.append(("nats", cluster.read(kube.nats_ping_argv(kubectl, target), "NATS ping")))
    for name, step in steps:
        result = runner.run(step, check=False)
        if result.ran:
            said = result.stdout if result.ok else f"{result.stdout}\n{result.stderr}"
            report.add(name, result.ok, _tail(said, 300))
        else:
            report.planned(name)
    report.raise_on_failure()
    return report
