"""Verification: is what runs what was released, and does it answer?

One report type for both places a release runs: the cluster (pods ready on the recorded
digests, rollouts, ``helm test``, NATS) and the local Compose stack (the same endpoints the
cluster's probes use, in ``local``). Pod verdicts are parsed from ``kubectl get pods -o json``.
Pure: verdicts and parsing only; asking the cluster is `cluster/verify.py`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aegis_delivery.errors import AegisError, GateFailed

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


@dataclass(frozen=True)
class VerifyOutcome:
    """`invoke verify`: which environment was verified, and the report."""

    environment: str
    report: VerifyReport

    def document(self) -> dict[str, object]:
        return {"environment": self.environment, "verify": self.report.checks}
