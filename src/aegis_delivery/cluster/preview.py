"""Preview environments as data: which namespaces are the toolkit's previews, what they carry,
when they expire, and what garbage collection and the cap decide. Pure: the commands that
read and change the cluster are in ``preview_flow.py``.

A preview of pull request N is the namespace and helm release ``PREFIX+N``. The namespace is
the toolkit's own only when it carries all three labels below; a namespace without them is
never touched, whatever its name. Who, which commit, since and until when are annotations.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from aegis_delivery.ci import in_ci
from aegis_delivery.clock import rfc3339
from aegis_delivery.config import DeliveryConfig, EnvironmentConfig
from aegis_delivery.config_preview import CREDENTIALS, ENVIRONMENT, PreviewSettings
from aegis_delivery.config_trust import ProvenancePolicy
from aegis_delivery.errors import AegisError, ConfigError, InputError

MANAGED_BY = "app.kubernetes.io/managed-by"
OWNER = "aegis-delivery"
PREVIEW_LABEL = "aegis-delivery/preview"
NUMBER_LABEL = "aegis-delivery/pull-request"
# `kubectl label namespace aegis-pr-7 aegis-delivery/keep=true` pins a preview: gc keeps it.
KEEP_LABEL = "aegis-delivery/keep"
SELECTOR = f"{MANAGED_BY}={OWNER},{PREVIEW_LABEL}=true"
HEAD_SHA = "aegis-delivery/head-sha"
OPENED_BY = "aegis-delivery/opened-by"
CREATED_AT = "aegis-delivery/created-at"
EXPIRES_AT = "aegis-delivery/expires-at"
URL = "aegis-delivery/url"
TAG = "aegis-delivery/tag"
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def settings_of(config: DeliveryConfig) -> PreviewSettings:
    """The preview settings, or an error saying how to turn previews on."""
    if config.preview is None:
        raise ConfigError(
            f"{config.source}: previews are off: add a [tool.aegis.preview] table with domain "
            "and kube_context (docs/previews.md)"
        )
    return config.preview


def read_stamp(text: object) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Preview:
    """One live preview, as its namespace describes it."""

    number: int
    namespace: str
    head_sha: str
    opened_by: str
    created: dt.datetime | None
    expires: dt.datetime  # EPOCH when the annotation is missing or unreadable: expired
    url: str
    tag: str
    keep: bool
    phase: str  # Active, Terminating

    def expired(self, now: dt.datetime) -> bool:
        return not self.keep and now >= self.expires

    def document(self, now: dt.datetime, status: str = "") -> dict[str, object]:
        age = int((now - self.created).total_seconds()) if self.created else None
        return {
            "pull_request": self.number,
            "namespace": self.namespace,
            "head_sha": self.head_sha,
            "tag": self.tag,
            "opened_by": self.opened_by,
            "created_at": rfc3339(self.created) if self.created else None,
            "age_seconds": age,
            "expires_at": rfc3339(self.expires),
            "expired": self.expired(now),
            "keep": self.keep,
            "url": self.url,
            "phase": self.phase,
            "status": status or self.phase,
        }


def owned(namespace: Mapping[str, object], number: int | None = None) -> bool:
    """Whether a namespace is one of the toolkit's previews (of pull request *number*)."""
    metadata = namespace.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, dict) else None
    if not isinstance(labels, dict):
        return False
    ours = labels.get(MANAGED_BY) == OWNER and labels.get(PREVIEW_LABEL) == "true"
    mark = labels.get(NUMBER_LABEL)
    return ours and isinstance(mark, str) and mark.isdigit() and (
        number is None or mark == str(number)
    )  # fmt: skip


def parse_preview(namespace: Mapping[str, object]) -> Preview | None:
    """A namespace as a preview; None when it is not the toolkit's."""
    if not owned(namespace):
        return None
    metadata = namespace["metadata"]
    if not isinstance(metadata, dict):  # owned() checked it; this tells the type checker
        return None
    labels = metadata["labels"]
    notes = metadata.get("annotations")
    notes = notes if isinstance(notes, dict) else {}
    status = namespace.get("status")
    phase = status.get("phase") if isinstance(status, dict) else None
    return Preview(
        number=int(labels[NUMBER_LABEL]),
        namespace=str(metadata.get("name", "")),
        head_sha=str(notes.get(HEAD_SHA, "")),
        opened_by=str(notes.get(OPENED_BY, "")),
        created=read_stamp(notes.get(CREATED_AT)),
        expires=read_stamp(notes.get(EXPIRES_AT)) or EPOCH,
        url=str(notes.get(URL, "")),
        tag=str(notes.get(TAG, "")),
        keep=labels.get(KEEP_LABEL) == "true",
        phase=str(phase or "Active"),
    )


def _answer(raw: str, command: str) -> Mapping[str, object]:
    try:
        document = json.loads(raw)
    except ValueError:
        raise AegisError(f"{command} answered something that is not JSON: {raw[:200]}") from None
    return document if isinstance(document, dict) else {}


def parse_namespaces(raw: str) -> list[Preview]:
    """``kubectl get namespaces -o json`` as the previews among them, oldest first."""
    items = _answer(raw, "kubectl get namespaces").get("items")
    items = items if isinstance(items, list) else []
    found = [p for item in items if isinstance(item, dict) and (p := parse_preview(item))]
    return sorted(found, key=lambda p: (p.created or EPOCH, p.number))


def parse_namespace(raw: str) -> Mapping[str, object]:
    return _answer(raw, "kubectl get namespace")


def foreign(name: str) -> InputError:
    return InputError(
        f"namespace {name!r} exists but is not a preview the toolkit made (it lacks the labels "
        f"{MANAGED_BY}={OWNER}, {PREVIEW_LABEL}=true and {NUMBER_LABEL}): it is never touched; "
        "rename or remove it yourself, or change [tool.aegis.preview] namespace_prefix"
    )


@dataclass(frozen=True)
class Stamp:
    """What a create or refresh writes on the namespace."""

    number: int
    head_sha: str
    opened_by: str
    tag: str
    url: str
    now: dt.datetime
    ttl_seconds: int

    def annotations(self, created: dt.datetime | None = None) -> dict[str, str]:
        expires = self.now + dt.timedelta(seconds=self.ttl_seconds)
        return {
            HEAD_SHA: self.head_sha,
            OPENED_BY: self.opened_by,
            CREATED_AT: rfc3339(created or self.now),
            EXPIRES_AT: rfc3339(expires),
            URL: self.url,
            TAG: self.tag,
        }

    def refreshed(self) -> dict[str, str]:
        """A refresh moves the expiry and the commit on; who opened it and since when stay."""
        notes = self.annotations()
        return {key: notes[key] for key in (HEAD_SHA, EXPIRES_AT, URL, TAG)}

    def manifest(self, name: str) -> str:
        labels = {MANAGED_BY: OWNER, PREVIEW_LABEL: "true", NUMBER_LABEL: str(self.number)}
        document = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": labels, "annotations": self.annotations()},
        }
        return json.dumps(document)


def environment(
    settings: PreviewSettings, number: int, provenance: ProvenancePolicy
) -> EnvironmentConfig:
    """Pull request *number*'s environment: its namespace, the preview context, short budgets."""
    return EnvironmentConfig(
        name=ENVIRONMENT,
        namespace=settings.name(number),
        kube_context=settings.kube_context,
        timeout=settings.timeout,
        rollback_timeout=settings.timeout,
        history_max=3,
        nats=False,  # a preview has no NATS of its own to ping
        provenance=provenance,
    )


def preview_config(config: DeliveryConfig, number: int) -> DeliveryConfig:
    """The settings a preview deploys with: the same chart and deploy path, its own release
    and its one environment."""
    settings = settings_of(config)
    chosen = environment(settings, number, config.preview_provenance)
    return replace(config, release=settings.name(number), environments={ENVIRONMENT: chosen})


def chart_values(settings: PreviewSettings, number: int) -> dict[str, object]:
    """What differs between two previews besides their images: the ingress host (the chart's
    values.preview.yaml has the rest, with the ingress off until a host is given here)."""
    return {"ingress": {"enabled": True, "host": settings.host(number)}}


def credentials(environ: Mapping[str, str], settings: PreviewSettings) -> dict[str, str]:
    """The environment a preview's commands see: KUBE_CONFIG_PREVIEW, or staging's kubeconfig
    only when the settings share it; never staging's by accident."""
    chosen = {k: v for k, v in environ.items() if not k.startswith("KUBE_CONFIG")}
    own = environ.get(CREDENTIALS, "").strip()
    staging = (environ.get("KUBE_CONFIG_STAGING") or environ.get("KUBE_CONFIG", "")).strip()
    if own:
        chosen[CREDENTIALS] = own
    elif settings.share_staging_credentials and staging:
        chosen[CREDENTIALS] = staging
    elif in_ci(environ):
        raise InputError(
            f"{CREDENTIALS} is not set: previews reach their cluster with credentials of their "
            "own (a base64 kubeconfig secret); set it, or let them use staging's with "
            "[tool.aegis.preview] share_staging_credentials = true"
        )
    return chosen


def cap_refusal(
    previews: Sequence[Preview], settings: PreviewSettings, number: int
) -> AegisError | None:
    """A new preview beyond max_previews is refused, naming the oldest (gc's candidates)."""
    others = [p for p in previews if p.number != number]
    if len(others) < settings.max_previews:
        return None
    oldest = ", ".join(f"#{p.number} ({p.namespace}, since {rfc3339(p.created or EPOCH)})"
                       for p in others[:3])  # fmt: skip
    return AegisError(
        f"{len(others)} previews exist, the most [tool.aegis.preview] max_previews allows: "
        f"no preview for #{number}; the oldest are {oldest}: `invoke preview-down --pr N` or "
        "`invoke preview-gc` frees room"
    )


@dataclass(frozen=True)
class Decision:
    """What gc does with one preview, and why."""

    preview: Preview
    remove: bool
    reason: str  # expired, closed, kept (keep label), open, unexpired

    def document(self, now: dt.datetime) -> dict[str, object]:
        return {**self.preview.document(now), "removed": self.remove, "reason": self.reason}


def gc_decisions(
    previews: Sequence[Preview], now: dt.datetime, states: Mapping[int, str | None]
) -> list[Decision]:
    """Remove what is expired or whose pull request is closed (*states*: GitHub's answer per
    number, None where not asked or not known); keep what is pinned or still wanted."""
    decided = []
    for preview in previews:
        state = states.get(preview.number)
        if preview.keep:
            decided.append(Decision(preview, False, "kept (keep label)"))
        elif state == "closed":
            decided.append(Decision(preview, True, "closed"))
        elif preview.expired(now):
            decided.append(Decision(preview, True, "expired"))
        else:
            decided.append(Decision(preview, False, "open" if state == "open" else "unexpired"))
    return decided
