"""Typed delivery settings, loaded once from ``[tool.aegis]`` in ``pyproject.toml``.

Every fact the tasks need (registry, apps, chart, environments, gate thresholds) is read
here and nowhere else. A wrong or missing key fails with the key, the file and what was
expected, before any command runs.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# LocalSettings is part of the settings' API (config.LocalSettings): re-exported.
from aegis_delivery.config_local import LocalSettings as LocalSettings
from aegis_delivery.config_local import load_local
from aegis_delivery.config_preview import ENVIRONMENT as PREVIEW_ENVIRONMENT
from aegis_delivery.config_preview import PreviewSettings, load_preview

# Duration is part of the settings' API (config.Duration): re-exported.
from aegis_delivery.config_table import Duration as Duration
from aegis_delivery.config_table import Table, default_of, keys_of, relative_path
from aegis_delivery.config_trust import (
    ProvenancePolicy,
    TrustSettings,
    load_policy,
    load_trust,
    policy_keys,
)
from aegis_delivery.errors import ConfigError
from aegis_delivery.validation import (
    PLATFORM_PATTERN,
    SEVERITIES,
    check_alias,
    parse_severities,
)

TABLE = "tool.aegis"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")
_HELM_FLAG = re.compile(r"^--[a-z][a-z0-9-]*(=[^\s]*)?\Z")

HADOLINT_LEVELS = ("error", "warning", "info", "style")


@dataclass(frozen=True, kw_only=True)
class GateSettings:
    annotation_coverage: float
    annotation_paths: tuple[str, ...]
    dockerfile_failure_threshold: str
    test_workers: int = 4


@dataclass(frozen=True, kw_only=True)
class ScanSettings:
    severity: frozenset[str]
    ignore_unfixed: bool = False
    vulnerabilities: bool = True
    db_repository: str = ""


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    ca_bundle_env: str
    cache: str
    retry_base_seconds: float
    release_file: Path
    push_attempts: int = 4

    @property
    def retry(self) -> tuple[int, float]:
        """Attempts and base delay for every registry call (``registry.push(..., *retry)``)."""
        return self.push_attempts, self.retry_base_seconds


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    name: str
    context: Path
    dockerfile: Path
    platforms: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class EnvironmentConfig:
    name: str
    namespace: str
    kube_context: str
    timeout: Duration = Duration.parse("10m")  # noqa: RUF009 - frozen
    # A rollback's own budget (after a failed upgrade too): never what is left of `timeout`.
    rollback_timeout: Duration = Duration.parse("5m")  # noqa: RUF009 - frozen
    history_max: int = 10
    lock_wait: Duration = Duration.parse("5m")  # noqa: RUF009 - frozen
    nats: bool = False
    helm_args: tuple[str, ...] = ()
    # require_provenance, allow_unverified, provenance_refs (config_trust.py).
    provenance: ProvenancePolicy = field(default_factory=ProvenancePolicy)


@dataclass(frozen=True, kw_only=True)
class DeliveryConfig:
    root: Path
    source: Path
    registry: str
    repository: str
    default_branch: str
    chart: Path
    release: str
    gates: GateSettings
    scan: ScanSettings
    build: BuildSettings
    local: LocalSettings
    apps: Mapping[str, AppConfig]
    environments: Mapping[str, EnvironmentConfig]
    release_aliases: tuple[str, ...] = ()
    trust: TrustSettings = field(default_factory=TrustSettings)
    # Pull requests' preview environments ([tool.aegis.preview]); None: previews are off.
    preview: PreviewSettings | None = None
    preview_provenance: ProvenancePolicy = field(default_factory=ProvenancePolicy)
    # Where the toolkit writes what it makes: build logs, scan reports, SBOMs, staged
    # platforms, the Compose file, the gate's record. Relative to root (or absolute).
    work_directory: Path = Path(".aegis")

    def work(self, *parts: str) -> Path:
        """A path in the work directory (``config.work("scan")`` is ``ROOT/.aegis/scan``)."""
        return self.root.joinpath(self.work_directory, *parts)

    def app(self, name: str) -> AppConfig:
        """The named app, or an error that lists the apps that exist."""
        try:
            return self.apps[name]
        except KeyError:
            known = ", ".join(sorted(self.apps))
            raise ConfigError(f"unknown app {name!r}: expected one of {known}") from None

    def environment(self, name: str) -> EnvironmentConfig:
        """The named environment, or an error that lists the environments that exist."""
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            raise ConfigError(f"unknown environment {name!r}: expected one of {known}") from None


def _work_directory(table: Table) -> Path:
    """Optional; absolute paths are allowed (a CI scratch disk, a test's own directory)."""
    expected = "a directory, relative to the repository root or absolute"
    text = table.get(
        "work_directory", str, expected, str(default_of(DeliveryConfig, "work_directory"))
    )
    if not text.strip() or ".." in PurePosixPath(text).parts:
        raise table.fail("work_directory", expected, text)
    return Path(text)  # relative: under root, wherever root is


def _load_app(name: str, table: Table, root: Path) -> AppConfig:
    table.unknown_keys(keys_of(AppConfig))
    if not _NAME.match(name):
        raise table.fail("", "named in lower case letters, digits and '-'", name)
    platforms = table.strings("platforms", "a non-empty list of platforms like 'linux/amd64'")
    for platform in platforms:
        if not PLATFORM_PATTERN.match(platform):
            raise table.fail("platforms", "a list of platforms like 'linux/amd64'", platform)
    return AppConfig(
        name=name,
        context=relative_path(table, "context", root),
        dockerfile=relative_path(table, "dockerfile", root),
        platforms=platforms,
    )


def _helm_args(table: Table) -> tuple[str, ...]:
    """Extra helm flags: each one ``--flag`` or ``--flag=value``, so none can become a value."""
    expected = "a list of helm flags like '--server-side' or '--labels=team=ops'"
    value = table.get("helm_args", list, expected, [])
    for item in value:
        if not isinstance(item, str) or not _HELM_FLAG.match(item):
            raise table.fail("helm_args", expected, item)
    return tuple(value)


def _load_environment(name: str, table: Table) -> EnvironmentConfig:
    table.unknown_keys(keys_of(EnvironmentConfig) - {"provenance"} | policy_keys())
    if not _NAME.match(name) or len(name) > 63:
        raise table.fail("", "named like a DNS-1123 label (lower case, digits, '-')", name)
    namespace = table.text("namespace", "a Kubernetes namespace name")
    if not _NAME.match(namespace) or len(namespace) > 63:
        raise table.fail("namespace", "a DNS-1123 label (lower case, digits, '-')", namespace)
    kube_context = table.text("kube_context", "the expected kubectl context name")
    if kube_context.startswith("-") or any(
        c.isspace() or not c.isprintable() for c in kube_context
    ):
        raise table.fail(
            "kube_context", "a context name (no leading '-', no spaces or control characters)",
            kube_context,
        )  # fmt: skip
    history_max = table.get(
        "history_max", int, "a positive integer", default_of(EnvironmentConfig, "history_max")
    )
    if history_max < 1:
        raise table.fail("history_max", "a positive integer", history_max)
    return EnvironmentConfig(
        name=name,
        namespace=namespace,
        kube_context=kube_context,
        timeout=table.duration("timeout", default_of(EnvironmentConfig, "timeout")),
        rollback_timeout=table.duration(
            "rollback_timeout", default_of(EnvironmentConfig, "rollback_timeout")
        ),
        history_max=history_max,
        lock_wait=table.duration("lock_wait", default_of(EnvironmentConfig, "lock_wait")),
        nats=table.get("nats", bool, "true or false", default_of(EnvironmentConfig, "nats")),
        helm_args=_helm_args(table),
        provenance=load_policy(table),
    )


def _load_gates(table: Table) -> GateSettings:
    table.unknown_keys(keys_of(GateSettings))
    threshold = table.text("dockerfile_failure_threshold", "a hadolint level")
    if threshold not in HADOLINT_LEVELS:
        expected = f"one of {', '.join(HADOLINT_LEVELS)}"
        raise table.fail("dockerfile_failure_threshold", expected, threshold)
    coverage = table.number("annotation_coverage", "a percentage from 0 to 100")
    if not 0 <= coverage <= 100:
        raise table.fail("annotation_coverage", "a percentage from 0 to 100", coverage)
    workers = table.get(
        "test_workers", int, "an integer from 0 to 32", default_of(GateSettings, "test_workers")
    )
    if not 0 <= workers <= 32:
        raise table.fail("test_workers", "an integer from 0 to 32", workers)
    return GateSettings(
        test_workers=workers,
        annotation_coverage=coverage,
        annotation_paths=table.strings("annotation_paths", "a non-empty list of paths"),
        dockerfile_failure_threshold=threshold,
    )


def _load_scan(table: Table) -> ScanSettings:
    table.unknown_keys(keys_of(ScanSettings))
    expected = "an OCI repository like 'mirror.local/trivy-db'"
    mirror = table.get("db_repository", str, expected, default_of(ScanSettings, "db_repository"))
    if mirror.startswith("-") or any(c.isspace() for c in mirror):
        raise table.fail("db_repository", expected, mirror)
    text = table.text("severity", "a list like 'HIGH,CRITICAL'")
    try:
        severity = parse_severities(text)
    except ValueError:
        expected = f"a comma-separated list of {', '.join(SEVERITIES)}"
        raise table.fail("severity", expected, text) from None
    return ScanSettings(
        severity=severity,
        ignore_unfixed=table.get(
            "ignore_unfixed", bool, "true or false", default_of(ScanSettings, "ignore_unfixed")
        ),
        vulnerabilities=table.get(
            "vulnerabilities", bool, "true or false", default_of(ScanSettings, "vulnerabilities")
        ),
        db_repository=mirror,
    )


def _load_build(table: Table, root: Path) -> BuildSettings:
    table.unknown_keys(keys_of(BuildSettings))
    cache = table.text("cache", "one of none, registry, gha")
    if cache not in {"none", "registry", "gha"}:
        raise table.fail("cache", "one of none, registry, gha", cache)
    attempts = table.get(
        "push_attempts", int, "an integer from 1 to 10", default_of(BuildSettings, "push_attempts")
    )
    if not 1 <= attempts <= 10:
        raise table.fail("push_attempts", "an integer from 1 to 10", attempts)
    retry_base = table.number("retry_base_seconds", "seconds from 0 to 60, like 1.0")
    if not 0 <= retry_base <= 60:
        raise table.fail("retry_base_seconds", "seconds from 0 to 60, like 1.0", retry_base)
    return BuildSettings(
        ca_bundle_env=table.text("ca_bundle_env", "an environment variable name"),
        cache=cache,
        push_attempts=attempts,
        retry_base_seconds=retry_base,
        release_file=relative_path(table, "release_file", root),
    )


def _release_name(table: Table) -> str:
    """helm's own rule: a DNS-1123 label of at most 53 characters (helm adds suffixes)."""
    expected = "a Helm release name: lower case letters, digits and '-', at most 53 characters"
    name = table.text("release", expected)
    if not _NAME.match(name) or len(name) > 53:
        raise table.fail("release", expected, name)
    return name


def _release_aliases(table: Table) -> tuple[str, ...]:
    expected = "a list of tag templates like '{major}.{minor}' (never 'latest')"
    value = table.get("release_aliases", list, expected, [])
    for item in value:
        try:
            check_alias(item if isinstance(item, str) else "")
        except ValueError:
            raise table.fail("release_aliases", expected, item) from None
    return tuple(value)


def parse_config(document: Mapping[str, object], source: Path) -> DeliveryConfig:
    """Build the typed settings from a parsed ``pyproject.toml``; pure, for tests."""
    tool = document.get("tool")
    aegis = tool.get("aegis") if isinstance(tool, dict) else None
    if not isinstance(aegis, dict):
        raise ConfigError(f"{source}: the table [{TABLE}] is missing; see README 'Configuration'")
    top = Table(aegis, TABLE, source)
    top.unknown_keys(keys_of(DeliveryConfig) - {"source"})
    # `root` (optional) lets a configuration file live outside the checkout it describes.
    root = (source.parent / str(aegis.get("root", "."))).resolve()
    apps_table = top.table("apps")
    apps = {name: _load_app(name, apps_table.table(name), root) for name in sorted(apps_table.data)}
    if not apps:
        raise apps_table.fail("", "a table with at least one app")
    environments_table = top.table("environments")
    environments = {
        name: _load_environment(name, environments_table.table(name))
        for name in sorted(environments_table.data)
    }
    preview_table = top.table("preview") if "preview" in aegis else None
    preview = load_preview(preview_table, policy_keys()) if preview_table is not None else None
    preview_policy = load_policy(preview_table) if preview_table is not None else ProvenancePolicy()
    if preview is not None and PREVIEW_ENVIRONMENT in environments:
        raise environments_table.fail(
            PREVIEW_ENVIRONMENT, "absent: [tool.aegis.preview] is the preview environment", {}
        )
    return DeliveryConfig(
        root=root,
        source=source,
        registry=top.text("registry", "a registry host like 'ghcr.io'"),
        repository=top.text("repository", "OWNER/REPO under the registry"),
        default_branch=top.text("default_branch", "a branch name like 'main'"),
        chart=relative_path(top, "chart", root),
        release=_release_name(top),
        release_aliases=_release_aliases(top),
        gates=_load_gates(top.table("gates")),
        scan=_load_scan(top.table("scan")),
        build=_load_build(top.table("build"), root),
        local=load_local(top.table("local"), _NAME),
        apps=apps,
        environments=environments,
        work_directory=_work_directory(top),
        trust=load_trust(
            top.table("trust") if "trust" in aegis else Table({}, f"{TABLE}.trust", source), root
        ),
        preview=preview,
        preview_provenance=preview_policy,
    )


def find_pyproject(start: Path) -> Path:
    """The nearest ``pyproject.toml`` holding ``[tool.aegis]``, searching upwards from *start*."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file() and b"[tool.aegis]" in candidate.read_bytes():
            return candidate
    raise ConfigError(
        f"no pyproject.toml with a [{TABLE}] table in {start} or above; "
        "run the task from the repository checkout"
    )


def load_config(path: Path | None = None) -> DeliveryConfig:
    """Read and validate the settings; *path* defaults to the nearest ``pyproject.toml``."""
    # AEGIS_CONFIG points at another configuration (a test's, a fork's) without editing this one.
    configured = os.environ.get("AEGIS_CONFIG")
    source = (path or (Path(configured) if configured else find_pyproject(Path.cwd()))).resolve()
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{source}: cannot read it ({error.strerror})") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{source}: not valid TOML ({error})") from error
    return parse_config(document, source)
