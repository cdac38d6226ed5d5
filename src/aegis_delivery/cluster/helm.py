"""Helm command lines for helm 3 and helm 4, and the release states helm reports.

Helm 4 renamed flags: ``--atomic`` became ``--rollback-on-failure``, ``--force`` became
``--force-replace``, and ``--wait`` takes a strategy (``--wait=watcher``). Each plan is checked
against the real helm 3.17 and 4.1 binaries by the contract tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.config import EnvironmentConfig
from aegis_delivery.errors import AegisError, InputError

PENDING_STATES = frozenset({"pending-install", "pending-upgrade", "pending-rollback"})


@dataclass(frozen=True)
class Helm:
    """A helm binary and its major version."""

    path: Path
    major: int

    @property
    def wait(self) -> tuple[str, ...]:
        return ("--wait=watcher",) if self.major >= 4 else ("--wait",)


def parse_version(text: str) -> int:
    """``v4.1.4+g05fa379`` -> 4."""
    cleaned = text.strip().removeprefix("v")
    major = cleaned.split(".", 1)[0]
    if not major.isdigit():
        raise AegisError(f"cannot read helm's version from {text.strip()!r}")
    return int(major)


@dataclass(frozen=True)
class Target:
    """Where a command acts: release, namespace, kube context."""

    release: str
    namespace: str
    kube_context: str

    @classmethod
    def of(cls, release: str, environment: EnvironmentConfig) -> Target:
        return cls(release, environment.namespace, environment.kube_context)

    def helm_flags(self) -> tuple[str, ...]:
        return (f"--namespace={self.namespace}", f"--kube-context={self.kube_context}")


def upgrade_argv(
    helm: Helm,
    target: Target,
    chart: Path,
    values: Sequence[Path],
    environment: EnvironmentConfig,
    description: str,
    create_namespace: bool,
) -> tuple[str, ...]:
    """The tag and digests travel in the values file only; free text uses ``--flag=value``."""
    argv = [
        str(helm.path),
        "upgrade",
        "--install",
        target.release,
        str(chart),
        *target.helm_flags(),
    ]
    for file in values:
        argv.append(f"--values={file}")
    argv += ["--timeout", environment.timeout.text]
    # No --atomic: its rollback would share this timeout (cluster/undo.py rolls back instead).
    argv += [*helm.wait, "--history-max", str(environment.history_max)]
    argv.append(f"--description={description}")
    if create_namespace:
        argv.append("--create-namespace")
    argv += environment.helm_args
    return tuple(argv)


def rollback_argv(
    helm: Helm, target: Target, revision: int | None, environment: EnvironmentConfig
) -> tuple[str, ...]:
    """To the revision chosen from the history; None (history unknown in a dry run): helm's
    own choice, the previous revision."""
    chosen = (str(revision),) if revision is not None else ()
    return (
        str(helm.path), "rollback", target.release, *chosen, *target.helm_flags(),
        *helm.wait, "--timeout", environment.rollback_timeout.text,
        "--history-max", str(environment.history_max),
    )  # fmt: skip


def uninstall_argv(helm: Helm, target: Target, environment: EnvironmentConfig) -> tuple[str, ...]:
    return (
        str(helm.path), "uninstall", target.release, *target.helm_flags(),
        *helm.wait, "--timeout", environment.rollback_timeout.text,
    )  # fmt: skip


def status_argv(helm: Helm, target: Target) -> tuple[str, ...]:
    return (str(helm.path), "status", target.release, *target.helm_flags(), "--output", "json")


def history_argv(helm: Helm, target: Target) -> tuple[str, ...]:
    return (str(helm.path), "history", target.release, *target.helm_flags(), "--output", "json")


def list_argv(helm: Helm, kube_context: str, pattern: str) -> tuple[str, ...]:
    """Every release whose name matches *pattern* (a regular expression), in any namespace and
    in any state (helm 4 lists every state by default; helm 3 needs --all)."""
    every = ("--all",) if helm.major < 4 else ()
    return (str(helm.path), "list", "--all-namespaces", f"--kube-context={kube_context}",
            *every, f"--filter={pattern}", "--output", "json")  # fmt: skip


def parse_list(raw: str) -> dict[str, str]:
    """``helm list -o json`` as {namespace/release: status}."""
    try:
        entries = json.loads(raw) if raw.strip() else []
    except ValueError:
        raise AegisError(f"helm list answered something that is not JSON: {raw[:200]}") from None
    found: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict):
            key = f"{entry.get('namespace', '')}/{entry.get('name', '')}"
            found[key] = str(entry.get("status", "unknown"))
    return found


def get_values_argv(helm: Helm, target: Target, revision: int) -> tuple[str, ...]:
    """The values a revision was deployed with (what the toolkit set: tag and digests)."""
    return (str(helm.path), "get", "values", target.release, f"--revision={revision}",
            *target.helm_flags(), "--output", "json")  # fmt: skip


def parse_values(raw: str) -> dict[str, object]:
    """``helm get values -o json`` as a mapping (an empty answer, or ``null``, is {})."""
    try:
        values = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise AegisError(
            f"helm get values answered something that is not JSON: {raw[:200]}"
        ) from None
    return values if isinstance(values, dict) else {}


def get_manifest_argv(helm: Helm, target: Target) -> tuple[str, ...]:
    """The manifests of the live release (hooks excluded by helm)."""
    return (str(helm.path), "get", "manifest", target.release, *target.helm_flags())


def template_argv(
    helm: Helm, target: Target, chart: Path, values: Sequence[Path]
) -> tuple[str, ...]:
    """The manifests a release would render, offline (no cluster contacted)."""
    return (str(helm.path), "template", target.release, str(chart),
            f"--namespace={target.namespace}", *(f"--values={v}" for v in values))  # fmt: skip


def test_argv(helm: Helm, target: Target, environment: EnvironmentConfig) -> tuple[str, ...]:
    return (
        str(helm.path), "test", target.release, *target.helm_flags(),
        "--timeout", environment.timeout.text, "--logs",
    )  # fmt: skip


@dataclass(frozen=True)
class Revision:
    revision: int
    status: str
    chart: str
    app_version: str
    description: str
    updated: str


def parse_history(raw: str) -> list[Revision]:
    """``helm history -o json``; an empty answer means no release yet."""
    if not raw.strip():
        return []
    try:
        items = json.loads(raw)
    except ValueError:
        raise AegisError(f"helm history answered something that is not JSON: {raw[:200]}") from None
    if items is None:
        return []
    if not isinstance(items, list):
        raise AegisError(f"helm history answered JSON that is not a list: {raw[:200]}")
    revisions = []
    for item in items:
        number = item.get("revision") if isinstance(item, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise AegisError(f"helm history answered an entry without a revision: {item!r:.200}")
        revisions.append(
            Revision(
                number,
                str(item.get("status", "")),
                str(item.get("chart", "")),
                str(item.get("app_version", "")),
                str(item.get("description", "")),
                str(item.get("updated", "")),
            )
        )
    return revisions


def parse_status(raw: str) -> str | None:
    """The release's state from `helm status -o json` (``deployed``, ``failed``, ...)."""
    try:
        info = json.loads(raw).get("info", {})
    except (ValueError, AttributeError):
        raise AegisError(f"helm status answered something that is not JSON: {raw[:200]}") from None
    status = info.get("status") if isinstance(info, dict) else None
    return str(status) if status is not None else None


def release_missing(stderr: str) -> bool:
    return "release: not found" in stderr or "has no deployed releases" in stderr


def pending(history: Sequence[Revision]) -> Revision | None:
    latest = max(history, key=lambda r: r.revision, default=None)
    return latest if latest is not None and latest.status in PENDING_STATES else None


def last_deployed(history: Sequence[Revision], before: int | None = None) -> Revision | None:
    """The newest revision that was deployed or superseded (a known good state)."""
    candidates = [
        r for r in history
        if r.status in {"deployed", "superseded"} and (before is None or r.revision < before)
    ]  # fmt: skip
    return max(candidates, key=lambda r: r.revision, default=None)


def rollback_target(history: Sequence[Revision], requested: int | None) -> Revision:
    """The revision a rollback goes to: N if it exists, else the one before the current."""
    if not history:
        raise InputError("the release has no history: there is nothing to roll back to")
    if requested is not None:
        found = next((r for r in history if r.revision == requested), None)
        if found is None:
            known = ", ".join(str(r.revision) for r in sorted(history, key=lambda r: r.revision))
            raise InputError(f"revision {requested} is not in the history; known: {known}")
        return found
    current = max(history, key=lambda r: r.revision)
    previous = last_deployed(history, before=current.revision)
    if previous is None:
        raise InputError(f"no earlier deployed revision than {current.revision} to roll back to")
    return previous
