"""Kubernetes access: the kubeconfig from ``KUBE_CONFIG``, the context guard, the Lease lock,
and kubectl command lines.

``KUBE_CONFIG`` (base64) is decoded to a 0600 temporary file used through ``KUBECONFIG``,
registered with the masker (never printed) and deleted by the runner's cleanups on every exit
path, signals included.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.cluster.helm import Target
from aegis_delivery.errors import AegisError, InputError
from aegis_delivery.runner import Runner

LEASE_PREFIX = "aegis-deploy-"


def decode_kubeconfig(encoded: str, variable: str = "KUBE_CONFIG") -> str:
    """The kubeconfig text from base64, or an error naming the variable (never its content)."""
    import yaml  # deferred: keeps `invoke --list` fast

    try:
        text = base64.b64decode("".join(encoded.split()), validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InputError(
            f"{variable} is not valid base64: expected `base64 -w0 kubeconfig`"
        ) from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        document = None
    if (
        not isinstance(document, dict)
        or document.get("kind") != "Config"
        or not document.get("clusters")
    ):
        raise InputError(
            f"{variable} decodes to something that is not a kubeconfig "
            "(expected kind: Config with clusters, contexts and users)"
        )
    return text


def credential_values(document: object) -> list[str]:
    """Every value under ``users`` (tokens, keys, passwords): masked wherever they appear,
    not only as whole kubeconfig lines."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            found.append(node)

    if isinstance(document, dict):
        for entry in document.get("users") or []:
            if isinstance(entry, dict):
                walk(entry.get("user"))
    return found


def kubeconfig_variable(environ: Mapping[str, str], environment: str) -> str:
    """``KUBE_CONFIG_<ENVIRONMENT>`` when set (promotion reads two clusters), else KUBE_CONFIG."""
    specific = "KUBE_CONFIG_" + environment.upper().replace("-", "_")
    return specific if environ.get(specific, "").strip() else "KUBE_CONFIG"


def materialize_kubeconfig(
    runner: Runner, environ: Mapping[str, str], environment: str = ""
) -> dict[str, str]:
    """Environment for kubectl/helm: ``KUBECONFIG`` pointing at the decoded file, or {}."""
    variable = kubeconfig_variable(environ, environment) if environment else "KUBE_CONFIG"
    encoded = environ.get(variable, "")
    if not encoded.strip():
        return {}
    import yaml

    runner.masker.add(encoded)
    text = decode_kubeconfig(encoded, variable)
    runner.masker.add(text, lines=False)
    for secret in credential_values(yaml.safe_load(text)):
        runner.masker.add(secret)
    descriptor, name = tempfile.mkstemp(prefix="aegis-kubeconfig-", suffix=".yaml")
    path = Path(name)
    runner.add_cleanup(lambda: path.unlink(missing_ok=True))
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    path.chmod(0o600)
    return {"KUBECONFIG": str(path)}


def kubectl_flags(target: Target) -> tuple[str, ...]:
    return (f"--context={target.kube_context}", f"--namespace={target.namespace}")


def current_context_argv(kubectl: Path) -> tuple[str, ...]:
    return (str(kubectl), "config", "current-context")


def namespace_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    return (str(kubectl), f"--context={target.kube_context}", "get", "namespace", target.namespace,
            "--output", "name")  # fmt: skip


def check_context(current: str, expected: str) -> None:
    if current.strip() != expected:
        raise InputError(
            f"the current kube context is {current.strip() or '(none)'!r} but this environment "
            f"expects {expected!r}: switch with `kubectl config use-context {expected}` "
            "or fix [tool.aegis.environments] kube_context"
        )


def lease_name(release: str) -> str:
    return f"{LEASE_PREFIX}{release}"[:63]


def lease_manifest(
    release: str,
    namespace: str,
    holder: str,
    duration_seconds: int,
    now: dt.datetime,
    resource_version: str | None = None,
) -> str:
    """The Lease; with *resource_version* it replaces exactly that version or fails (409)."""
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    metadata: dict[str, object] = {
        "name": lease_name(release),
        "namespace": namespace,
        "labels": {"app.kubernetes.io/managed-by": "aegis-delivery"},
    }
    if resource_version is not None:
        metadata["resourceVersion"] = resource_version
    document = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration_seconds,
                 "acquireTime": stamp, "renewTime": stamp},
    }  # fmt: skip
    return json.dumps(document)


def lease_create_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "create", "--filename", "-", "--output", "name")


def lease_replace_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    """Take over a stale lock: a PUT with the read resourceVersion, so only one waiter wins."""
    return (str(kubectl), *kubectl_flags(target), "replace", "--filename", "-", "--output", "name")


def lease_get_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "get", "lease", lease_name(target.release),
            "--output", "json")  # fmt: skip


def lease_delete_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "delete", "lease", lease_name(target.release),
            "--ignore-not-found")  # fmt: skip


@dataclass(frozen=True)
class LeaseState:
    holder: str
    renewed: dt.datetime
    duration_seconds: int
    resource_version: str | None = None

    def stale(self, now: dt.datetime) -> bool:
        return now >= self.renewed + dt.timedelta(seconds=self.duration_seconds)


def parse_lease(raw: str) -> LeaseState:
    try:
        document = json.loads(raw)
        spec = document["spec"]
        renewed = dt.datetime.fromisoformat(
            str(spec.get("renewTime") or spec["acquireTime"]).replace("Z", "+00:00")
        )
        if renewed.tzinfo is None:
            renewed = renewed.replace(tzinfo=dt.UTC)
        version = (document.get("metadata") or {}).get("resourceVersion")
        return LeaseState(
            str(spec.get("holderIdentity", "unknown")),
            renewed,
            int(spec["leaseDurationSeconds"]),
            str(version) if version is not None else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AegisError(f"cannot read the deploy lock Lease: {raw[:200]}") from None


def rollout_argv(kubectl: Path, target: Target, deployment: str, timeout: str) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "rollout", "status", f"deployment/{deployment}",
            "--timeout", timeout, "--watch")  # fmt: skip


def pods_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    selector = f"app.kubernetes.io/instance={target.release}"
    return (str(kubectl), *kubectl_flags(target), "get", "pods", "--selector", selector,
            "--output", "json")  # fmt: skip


def events_argv(kubectl: Path, target: Target, pod: str) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "get", "events", "--field-selector",
            f"involvedObject.name={pod}", "--sort-by", ".lastTimestamp")  # fmt: skip


def logs_argv(kubectl: Path, target: Target, pod: str, lines: int = 20) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "logs", pod, "--tail", str(lines),
            "--all-containers")  # fmt: skip


def services_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "get", "services",
            "--selector", f"app.kubernetes.io/instance={target.release}")  # fmt: skip


def nats_ping_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "exec", "deployment/nats-box", "--",
            "nats", "server", "ping")  # fmt: skip


AUDIT_LABEL = "aegis-delivery/audit"


def audit_name(release: str, revision: int) -> str:
    return f"aegis-audit-{release}-v{revision}"[:253]


def audit_manifest(target: Target, revision: int, values: Mapping[str, str]) -> str:
    """Who and why for a revision helm cannot describe (a rollback): a ConfigMap of its own.

    Not an annotation on helm's storage Secret: helm replaces that Secret whole on its next
    write (``helm test``, the next upgrade), which drops foreign annotations.
    """
    document = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": audit_name(target.release, revision),
            "namespace": target.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "aegis-delivery",
                "app.kubernetes.io/instance": target.release,
                AUDIT_LABEL: "true",
            },
        },
        "data": {"revision": str(revision), **values},
    }
    return json.dumps(document)


def create_argv(kubectl: Path, target: Target) -> tuple[str, ...]:
    return (str(kubectl), *kubectl_flags(target), "create", "--filename", "-", "--output", "name")


# -- preview namespaces (cluster/preview.py): cluster-scoped, so no --namespace


def namespaces_argv(kubectl: Path, kube_context: str, selector: str) -> tuple[str, ...]:
    return (str(kubectl), f"--context={kube_context}", "get", "namespaces",
            "--selector", selector, "--output", "json")  # fmt: skip


def namespace_json_argv(kubectl: Path, kube_context: str, name: str) -> tuple[str, ...]:
    return (str(kubectl), f"--context={kube_context}", "get", "namespace", name,
            "--output", "json")  # fmt: skip


def namespace_create_argv(kubectl: Path, kube_context: str) -> tuple[str, ...]:
    return (str(kubectl), f"--context={kube_context}", "create", "--filename", "-",
            "--output", "name")  # fmt: skip


def annotate_namespace_argv(
    kubectl: Path, kube_context: str, name: str, annotations: Mapping[str, str]
) -> tuple[str, ...]:
    pairs = (f"{key}={value}" for key, value in sorted(annotations.items()))
    return (str(kubectl), f"--context={kube_context}", "annotate", "namespace", name,
            "--overwrite", *pairs)  # fmt: skip


def delete_namespace_argv(
    kubectl: Path, kube_context: str, name: str, timeout: str
) -> tuple[str, ...]:
    """Waits until the namespace (and all it holds) is gone, or fails after *timeout*."""
    return (str(kubectl), f"--context={kube_context}", "delete", "namespace", name,
            "--ignore-not-found", "--wait=true", f"--timeout={timeout}")  # fmt: skip
