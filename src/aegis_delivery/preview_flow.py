"""Preview environments, run: ``up`` deploys pull request N's recorded images to its own
namespace and release, ``down`` removes them, ``gc`` removes every expired or closed one, and
``listing`` shows them all. The decisions are ``cluster/preview.py``'s; the deploy is the one
every environment uses (``cluster/deploy.py``), so a preview gets the same guards, lock,
provenance gate, rollback and verify as staging.

Every cluster command is a runner step: ``--dry-run`` prints each change (create the namespace,
deploy, uninstall, delete), while the questions (which previews exist) run for real.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeGuard

from aegis_delivery import clock, github
from aegis_delivery.ci import current_user
from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster import kube
from aegis_delivery.cluster import preview as rules
from aegis_delivery.cluster.access import Cluster, connect, said
from aegis_delivery.cluster.deploy import DeployOutcome, DeployRequest, deploy
from aegis_delivery.cluster.helm import Target
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.config_preview import ENVIRONMENT, PreviewSettings
from aegis_delivery.errors import AegisError, CommandFailed, InputError, Interrupted
from aegis_delivery.release.context import BuildContext, detect
from aegis_delivery.release.record import ReleaseRecord, read_record
from aegis_delivery.runner import Runner

FORK_NOTE = (
    "no preview for a pull request from a fork: its code never gets the preview cluster's "
    "credentials; review its diff, or push the branch to this repository"
)


@dataclass
class PreviewOutcome:
    """One preview's create, refresh, skip or removal."""

    action: str  # up, down
    number: int
    namespace: str
    url: str
    status: str  # created, refreshed, skipped, removed, absent
    note: str = ""
    expires_at: str | None = None
    deployed: DeployOutcome | None = None
    dry_run: bool = False  # every change was printed, none made

    def document(self) -> dict[str, object]:
        return {
            "action": self.action,
            "pull_request": self.number,
            "namespace": self.namespace,
            "release": self.namespace,
            "url": self.url,
            "status": self.status,
            "note": self.note,
            "expires_at": self.expires_at,
            "deploy": self.deployed.document() if self.deployed else None,
            "dry_run": self.dry_run,
        }


@dataclass
class PreviewList:
    """Every preview, or what gc decided for each."""

    now: dt.datetime
    previews: Sequence[rules.Preview] = ()
    releases: Mapping[str, str] = field(default_factory=dict)  # namespace/release: status
    decisions: Sequence[rules.Decision] = ()

    def status(self, preview: rules.Preview) -> str:
        if preview.phase != "Active":
            return preview.phase.lower()
        return self.releases.get(f"{preview.namespace}/{preview.namespace}", "no release")

    def document(self) -> dict[str, object]:
        if self.decisions:
            return {
                "previews": [d.document(self.now) for d in self.decisions],
                "removed": [d.preview.number for d in self.decisions if d.remove],
            }
        found = [p.document(self.now, self.status(p)) for p in self.previews]
        return {"previews": found, "removed": []}

    def rows(self) -> list[tuple[str, ...]]:
        """One table row per preview: pr, sha, age, expires, url, status (or gc's reason)."""
        verdicts = {d.preview.number: d.reason for d in self.decisions}
        shown = [d.preview for d in self.decisions] if self.decisions else list(self.previews)
        return [
            (f"#{p.number}", p.head_sha[:7], _age(self.now, p.created), clock.rfc3339(p.expires),
             p.url, verdicts.get(p.number) or self.status(p))
            for p in shown
        ]  # fmt: skip


def _age(now: dt.datetime, since: dt.datetime | None) -> str:
    if since is None:
        return "?"
    hours, rest = divmod(int((now - since).total_seconds()), 3600)
    return f"{hours}h{rest // 60:02d}m"


def _cluster(
    runner: Runner, config: DeliveryConfig, number: int, environ: Mapping[str, str]
) -> tuple[PreviewSettings, DeliveryConfig, dict[str, str], Cluster]:
    """The preview settings, pull request *number*'s config, credentials and cluster."""
    settings = rules.settings_of(config)
    chosen = rules.preview_config(config, number)
    env = rules.credentials(environ, settings)
    return settings, chosen, env, connect(runner, chosen, ENVIRONMENT, env)


def _retarget(cluster: Cluster, config: DeliveryConfig, number: int) -> Cluster:
    """The same binaries and credentials, aimed at pull request *number*'s release."""
    chosen = rules.preview_config(config, number)
    environment = chosen.environments[ENVIRONMENT]
    return replace(cluster, target=Target.of(chosen.release, environment), environment=environment)


UNKNOWN: Mapping[str, object] = {"unknown": True}  # a dry run's unanswered question


def _found(namespace: Mapping[str, object] | None) -> TypeGuard[Mapping[str, object]]:
    """Whether the API answered with a namespace (not absent, not unasked)."""
    return namespace is not None and namespace is not UNKNOWN


def _namespace(runner: Runner, cluster: Cluster, name: str) -> Mapping[str, object] | None:
    """The namespace as the API holds it; None when absent, UNKNOWN when not asked."""
    argv = kube.namespace_json_argv(cluster.kubectl, cluster.target.kube_context, name)
    step = cluster.read(argv, f"is there a namespace {name}")
    result = runner.run(step, check=False)
    if not result.ran:
        return UNKNOWN
    if not result.ok:
        if "NotFound" in said(result):
            return None
        raise CommandFailed(step.display(runner.masker), result.returncode, said(result))
    return rules.parse_namespace(result.stdout)


def _previews(runner: Runner, cluster: Cluster) -> list[rules.Preview]:
    argv = kube.namespaces_argv(cluster.kubectl, cluster.target.kube_context, rules.SELECTOR)
    result = runner.run(cluster.read(argv, "list the previews"))
    return rules.parse_namespaces(result.stdout) if result.ran else []


def _pull_request_context(
    config: DeliveryConfig, number: int, environ: Mapping[str, str]
) -> BuildContext:
    """This run's context; in a pull request's run, --pr must be that pull request."""
    context = detect(config.root, environ)
    if context.pull_request is not None and context.pull_request != number:
        raise InputError(
            f"--pr {number} but this run is for pull request #{context.pull_request}: a run "
            "deploys only its own pull request's preview"
        )
    return context


def _record_for(config: DeliveryConfig, number: int) -> ReleaseRecord:
    record = read_record(config.build.release_file)
    if not record.tag.startswith(f"pr-{number}-"):
        raise InputError(
            f"the release record ({config.build.release_file}) is for {record.tag!r}, not pull "
            f"request #{number}'s pr-{number}-SHA7: `invoke push` in that pull request's run "
            "writes it"
        )
    return record


def up(
    runner: Runner, config: DeliveryConfig, number: int, environ: Mapping[str, str]
) -> PreviewOutcome:
    """Create or refresh pull request *number*'s preview: namespace, then the deploy."""
    settings = rules.settings_of(config)
    name, url = settings.name(number), f"https://{settings.host(number)}"
    context = _pull_request_context(config, number, environ)
    if context.pull_request_fork:  # the report says why, on the console and in the summary
        return PreviewOutcome("up", number, name, "", "skipped", FORK_NOTE)
    record = _record_for(config, number)
    settings, chosen, env, cluster = _cluster(runner, config, number, environ)
    existing = _namespace(runner, cluster, name)
    if _found(existing) and not rules.owned(existing, number):
        raise rules.foreign(name)
    refusal = rules.cap_refusal(_previews(runner, cluster), settings, number)
    if refusal is not None:
        raise refusal
    author = context.pull_request_author or current_user(environ)
    stamp = rules.Stamp(number, record.source.sha, author, record.tag, url, clock.now(),
                        settings.ttl.seconds)  # fmt: skip
    context_name = cluster.target.kube_context
    if not _found(existing):
        step = cluster.change(
            kube.namespace_create_argv(cluster.kubectl, context_name),
            f"create namespace {name} (preview of #{number})",
            capture=True,
            stdin=stamp.manifest(name),
        )
    else:
        argv = kube.annotate_namespace_argv(cluster.kubectl, context_name, name, stamp.refreshed())
        step = cluster.change(argv, f"refresh namespace {name}: expires later", capture=True)
    runner.run(step)
    request = DeployRequest(ENVIRONMENT, yes=True, values=rules.chart_values(settings, number))
    try:
        deployed = deploy(runner, chosen, request, env, record=record)
    except AegisError as failure:
        if not _found(existing) and not isinstance(failure, Interrupted):
            # A first deploy that failed leaves no empty preview behind (its release was
            # uninstalled by the deploy); a refresh keeps what ran before it.
            runner.console.warn(f"removing namespace {name}: its first deploy failed")
            _remove(runner, cluster, settings, name)
        raise
    expires = stamp.annotations()[rules.EXPIRES_AT]
    status = "refreshed" if _found(existing) else "created"
    return PreviewOutcome("up", number, name, url, status, expires_at=expires, deployed=deployed,
                          dry_run=runner.dry_run)  # fmt: skip


def _remove(runner: Runner, cluster: Cluster, settings: PreviewSettings, name: str) -> None:
    """Uninstall the release (absent is fine), then delete the namespace and wait for it."""
    uninstall = helm_cli.uninstall_argv(cluster.helm, cluster.target, cluster.environment)
    step = cluster.change(uninstall, f"uninstall release {name}", capture=True)
    result = runner.run(step, check=False)
    if result.ran and not result.ok and not helm_cli.release_missing(result.stderr):
        raise CommandFailed(step.display(runner.masker), result.returncode, said(result))
    timeout = settings.delete_timeout.text
    argv = kube.delete_namespace_argv(cluster.kubectl, cluster.target.kube_context, name, timeout)
    try:
        runner.run(cluster.change(argv, f"delete namespace {name}, waiting up to {timeout}"))
    except CommandFailed as failure:
        raise AegisError(
            f"namespace {name} could not be deleted, or is not gone after {timeout} "
            f"({failure.message.splitlines()[-1]}): `kubectl get namespace {name} -o yaml` "
            "shows what holds it (finalizers)"
        ) from None


def down(
    runner: Runner, config: DeliveryConfig, number: int, environ: Mapping[str, str]
) -> PreviewOutcome:
    """Remove pull request *number*'s preview; one that is not there is already done."""
    settings, _, _, cluster = _cluster(runner, config, number, environ)
    name = settings.name(number)
    existing = _namespace(runner, cluster, name)
    if _found(existing) and not rules.owned(existing, number):
        raise rules.foreign(name)
    if existing is None:
        note = f"no preview of #{number} ({name} does not exist): nothing to remove"
        return PreviewOutcome("down", number, name, "", "absent", note)
    _remove(runner, cluster, settings, name)
    return PreviewOutcome("down", number, name, "", "removed", dry_run=runner.dry_run)


def listing(runner: Runner, config: DeliveryConfig, environ: Mapping[str, str]) -> PreviewList:
    """Every preview with its release's status."""
    settings, _, _, cluster = _cluster(runner, config, 0, environ)  # 0: only the context counts
    previews = _previews(runner, cluster)
    pattern = f"^{settings.namespace_prefix}[0-9]+$"
    argv = helm_cli.list_argv(cluster.helm, cluster.target.kube_context, pattern)
    result = runner.run(cluster.read(argv, "list the preview releases"))
    releases = helm_cli.parse_list(result.stdout) if result.ran else {}
    return PreviewList(clock.now(), previews, releases)


def gc(runner: Runner, config: DeliveryConfig, environ: Mapping[str, str]) -> PreviewList:
    """Remove every preview that has expired or whose pull request GitHub says is closed."""
    settings, _, _, cluster = _cluster(runner, config, 0, environ)  # retargeted per removal
    previews = _previews(runner, cluster)
    repository = environ.get("GITHUB_REPOSITORY", "").strip()
    numbers = [p.number for p in previews if not p.keep]
    states = (
        github.pull_request_states(runner.console, environ, repository, numbers)
        if repository
        else {}
    )
    if not repository:
        runner.console.info("no GITHUB_REPOSITORY: previews are removed by expiry only")
    now = clock.now()
    decisions = rules.gc_decisions(previews, now, states)
    failed: list[str] = []
    for decision in decisions:
        if not decision.remove:
            continue
        number = decision.preview.number
        runner.console.info(f"preview #{number}: {decision.reason}, removing")
        try:
            _remove(runner, _retarget(cluster, config, number), settings,
                    decision.preview.namespace)  # fmt: skip
        except AegisError as error:
            failed.append(f"#{number}: {error.message.splitlines()[0]}")
    outcome = PreviewList(now, previews, decisions=decisions)
    if failed:
        incomplete = AegisError(f"preview-gc could not remove {len(failed)}: " + "; ".join(failed))
        incomplete.details.update(outcome.document())
        raise incomplete
    return outcome
