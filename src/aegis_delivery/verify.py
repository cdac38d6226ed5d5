"""Verdicts on what the cluster reports: pods ready, running the deployed image, or failing."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aegis_delivery.errors import AegisError

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
    """``kubectl get pods -o json`` as verdicts, one per pod."""
    try:
        items = json.loads(raw)["items"]
    except (ValueError, KeyError, TypeError):
        raise AegisError(f"kubectl returned pods that are not JSON: {raw[:200]}") from None
    verdicts = []
    for pod in items:
        metadata, status = pod.get("metadata", {}), pod.get("status", {})
        statuses = status.get("containerStatuses") or []
        problem = None
        for container in statuses:
            state = container.get("state", {})
            waiting = state.get("waiting") or {}
            terminated = state.get("terminated") or (
                container.get("lastState", {}).get("terminated") or {}
            )
            if waiting.get("reason") in FATAL_WAITING:
                problem = f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
                if terminated.get("message"):
                    problem += f" (last exit: {terminated['message'].strip()})"
                break
        if problem is None and status.get("phase") == "Failed":
            problem = f"pod failed: {status.get('reason', '')} {status.get('message', '')}".strip()
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        first = statuses[0] if statuses else {}
        verdicts.append(
            PodVerdict(
                name=str(metadata.get("name", "")),
                app=str(metadata.get("labels", {}).get("app.kubernetes.io/name", "")),
                ready=conditions.get("Ready") == "True",
                image=str(first.get("image", "")),
                image_id=str(first.get("imageID", "")),
                problem=problem,
            )
        )
    return verdicts


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
