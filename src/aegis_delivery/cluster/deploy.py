"""Deploy, rollback, verify and status: what changes an environment, in order, with guards.

A deploy ships one release record (``invoke push`` wrote it; CI carries it as an artifact):

    input checks -> kube access -> guards (context, namespace) -> images (emergency: build,
    scan, push, record; else the recorded digests must resolve) -> values file -> lock (a
    Lease) -> no pending release (or --recover) -> ``helm upgrade --install`` -> unlock -> verify

Every command is a step of the runner, so ``--dry-run`` (and Invoke's ``--dry``) prints this
very sequence: questions before the first change run for real, every change is printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from aegis_delivery.ci import current_user, in_ci
from aegis_delivery.cluster import helm as helm_cli
from aegis_delivery.cluster import kube
from aegis_delivery.cluster.access import (
    Cluster,
    connect,
    connect_guarded,
    guard_context,
    guard_namespace,
    history,
    known_history,
    recover_pending,
)
from aegis_delivery.cluster.description import RevisionNote
from aegis_delivery.cluster.inspect import release_diff
from aegis_delivery.cluster.lock import DeployLock, lock_holder
from aegis_delivery.cluster.undo import undo_failed_upgrade
from aegis_delivery.cluster.values import (
    PlannedImage,
    environment_values,
    planned_images,
    write_values,
)
from aegis_delivery.cluster.verify import verify_cluster
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import AegisError, CommandFailed, Untrusted
from aegis_delivery.prompts import Prompter
from aegis_delivery.release import attestation, registry
from aegis_delivery.release.attestation import GateResult
from aegis_delivery.release.record import (
    ReleaseRecord,
    read_record,
)
from aegis_delivery.runner import Runner
from aegis_delivery.verification import VerifyReport


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    tag: str | None = None  # the emergency path: build, scan and push this tag first
    reason: str | None = None
    yes: bool = False
    create_namespace: bool = False
    recover: bool = False
    uninstall_stuck_install: bool = False
    # Deploy images whose provenance does not verify, where the policy allows it (recorded).
    allow_unverified: bool = False
    # Chart values this deploy sets besides the images (a preview's ingress host).
    values: Mapping[str, object] = field(default_factory=dict)


@dataclass
class DeployOutcome:
    environment: str
    tag: str
    description: str
    digests: Mapping[str, str]
    revision: int | None = None
    verify: VerifyReport | None = None
    completed: list[str] = field(default_factory=list)
    step: str = "start"  # the step under way: a failure's document names it
    provenance: GateResult | None = None

    def document(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "tag": self.tag,
            "description": self.description,
            "digests": dict(self.digests),
            "revision": self.revision,
            "verify": self.verify.checks if self.verify else [],
            "completed": list(self.completed),
            "provenance": provenance_document(self.provenance),
        }


def provenance_document(result: GateResult | None) -> dict[str, object]:
    """What the provenance gate found, for --json: each verdict, and what went unverified."""
    if result is None:
        return {"required": False, "verified": [], "unverified": []}
    return {
        "required": result.required,
        "verified": [verdict.document() for verdict in result.verdicts],
        "unverified": list(result.unverified),
    }


@contextmanager
def failure_document(outcome: DeployOutcome) -> Iterator[None]:
    """A failure carries what had completed into the --json failure document."""
    try:
        yield
    except AegisError as error:
        error.details.update(outcome.document())
        error.details["failed_step"] = outcome.step
        raise


def check_images(runner: Runner, config: DeliveryConfig, record: ReleaseRecord) -> None:
    """Every recorded image must still be in the registry, by digest."""
    for app, image in record.images.items():
        try:
            registry.remote_digest(runner, image.pinned, *config.build.retry)
        except CommandFailed as error:
            raise AegisError(
                f"{app}: {image.pinned} cannot be resolved in the registry "
                f"({error.message.splitlines()[-1]}): push it again (`invoke push`)"
            ) from None


@dataclass(frozen=True)
class BuildNow:
    """A release made during the deploy (the emergency path, `emergency.deploy`): built,
    scanned and pushed once the deploy is confirmed, by a flow that stands above this layer."""

    tag: str
    source_sha: str
    publish: Callable[[], ReleaseRecord]


def deploy(
    runner: Runner,
    config: DeliveryConfig,
    request: DeployRequest,
    environ: Mapping[str, str],
    *,
    prompter: Prompter | None = None,
    record: ReleaseRecord | None = None,
    verify_after: bool = True,
    build_now: BuildNow | None = None,
) -> DeployOutcome:
    """Deploy the release record (or, on the emergency path, the release *build_now* makes)."""
    config.environment(request.environment)  # input first: an unknown environment runs nothing
    attestation.check_override(config, request.environment, request.allow_unverified)
    emergency = build_now is not None
    interactive = not (request.yes or in_ci(environ))
    ask = prompter or Prompter(interactive=interactive)
    reason = request.reason
    if build_now is None and record is None:
        record = read_record(config.build.release_file)
    cluster = connect(runner, config, request.environment, environ)
    tag = build_now.tag if build_now else record.tag if record is not None else ""
    sha = build_now.source_sha if build_now else record.source.sha if record else ""
    promoted = record.promoted_from if record is not None else None
    reason = reason or (record.reason if record is not None else None)
    text = RevisionNote(tag, sha[:7], current_user(environ), promoted, reason).render()
    outcome = DeployOutcome(request.environment, tag, text, {})
    with failure_document(outcome):
        outcome.step = "guards"
        guard_context(runner, cluster)
        guard_namespace(runner, cluster, request.create_namespace)
        outcome.completed.append("guards")
        outcome.step = "diff"
        diff = release_diff(runner, config, cluster, tag, record, environ, request.values)
        diff.show(runner.console, request.environment)
        where = (
            f"kube context {cluster.target.kube_context}, namespace {cluster.target.namespace}, "
            f"release {cluster.target.release}"
        )
        changes = diff.summary(6)
        if emergency:
            ask.confirm(
                f"EMERGENCY DEPLOY of {tag!r} to {request.environment}",
                [where, "built from the working tree, scanned and pushed now: the quality gates "
                 "are NOT run", f"reason: {reason}", *changes],
                console=runner.console,
            )  # fmt: skip
        else:
            ask.confirm(
                f"deploy {tag!r} to {request.environment}",
                [where, *changes],
                console=runner.console,
            )
        outcome.step = "publish" if build_now is not None else "check images"
        if build_now is not None:
            record = build_now.publish()
            outcome.completed.append("publish")
        elif record is not None:
            check_images(runner, config, record)
        outcome.digests = record.digests() if record else {}
        if record is not None:
            outcome.step = "provenance"
            outcome.provenance = attestation.gate(
                runner, config, request.environment,
                {app: image.pinned for app, image in record.images.items()}, environ,
                allow_unverified=request.allow_unverified,
            )  # fmt: skip
            if outcome.provenance.unverified:
                unverified = ",".join(outcome.provenance.unverified)
                text = replace(RevisionNote.parse(text), unverified=unverified).render()
                outcome.description = text
            if outcome.provenance.required:
                outcome.completed.append("provenance")
        outcome.step = "values"
        values = write_values(runner, config, tag, record, environ, request.values)
        outcome.step = "lock"
        lock = DeployLock(runner, cluster, holder=lock_holder(environ))
        lock.acquire()
        # Under the lock: a release pending now was left by an interrupted run, not by a deploy
        # that is still going (that one holds the lock, and this deploy waited for it).
        try:
            recover_pending(
                runner, cluster, history(runner, cluster), request.recover,
                request.uninstall_stuck_install,
            )  # fmt: skip
        except AegisError:
            lock.release()
            raise
        upgrade = helm_cli.upgrade_argv(
            cluster.helm,
            cluster.target,
            config.chart,
            [*environment_values(config, request.environment), values],
            cluster.environment,
            text,
            request.create_namespace,
        )
        outcome.step = "upgrade"
        try:  # the Lease is held across the upgrade and, when it fails, the rollback
            runner.run(cluster.change(upgrade, f"deploy {tag} to {request.environment}"))
        except CommandFailed as failure:
            raise undo_failed_upgrade(runner, cluster, tuple(config.apps), failure, tag) from None
        finally:
            lock.release()
        outcome.completed.append("upgrade")
        revisions = history(runner, cluster)
        if revisions:
            outcome.revision = max(r.revision for r in revisions)
        if verify_after:
            outcome.step = "verify"
            outcome.verify = verify_cluster(runner, tuple(config.apps), cluster, outcome.digests)
            outcome.completed.append("verify")
    return outcome


@dataclass(frozen=True)
class RollbackRequest:
    environment: str
    revision: int | None = None  # None: the last deployed revision before the current one
    yes: bool = False
    reason: str | None = None  # asked at a terminal; required as a flag without one
    allow_unverified: bool = False


ROLLBACK_HINT = "a rollback records why, e.g. --reason 'INC-123: v1.4 breaks login'"


def show_revisions(runner: Runner, revisions: Sequence[helm_cli.Revision]) -> None:
    for item in sorted(revisions, key=lambda r: r.revision):
        runner.console.info(
            f"revision {item.revision}: {item.status} {item.updated} {item.description}"
        )


def revision_images(
    runner: Runner, config: DeliveryConfig, cluster: Cluster, revision: int
) -> list[PlannedImage]:
    """The images a rollback to *revision* brings back, from the values it was deployed with
    ([] when helm cannot say: the plan then names only the revision)."""
    step = cluster.read(
        helm_cli.get_values_argv(cluster.helm, cluster.target, revision),
        f"values of revision {revision}",
    )
    result = runner.run(step, check=False)
    if not (result.ran and result.ok):
        return []
    values = helm_cli.parse_values(result.stdout)
    return planned_images(config, values, f"revision {revision}'s values")


def rollback(
    runner: Runner,
    config: DeliveryConfig,
    request: RollbackRequest,
    environ: Mapping[str, str],
    *,
    prompter: Prompter | None = None,
) -> DeployOutcome:
    """Roll back to an explicit revision chosen from the history, record why, then verify.

    helm rollback takes no description, so who and why are recorded in a ConfigMap
    ``aegis-audit-RELEASE-vN`` for the revision the rollback creates.
    """
    config.environment(request.environment)
    attestation.check_override(config, request.environment, request.allow_unverified)
    ask = prompter or Prompter(interactive=not (request.yes or in_ci(environ)))
    reason = ask.reason(request.reason, what="--reason", hint=ROLLBACK_HINT)
    cluster = connect_guarded(runner, config, request.environment, environ)
    revisions = known_history(runner, cluster)
    target: int | None = request.revision
    checked: GateResult | None = None
    if revisions is not None:  # None: not answered (a dry run without the cluster)
        show_revisions(runner, revisions)
        chosen = helm_cli.rollback_target(revisions, request.revision)
        target = chosen.revision
        images = revision_images(runner, config, cluster, target)
        brought_back = [image.line() for image in images]
        for line in brought_back:
            runner.console.info(line)
        checked = rollback_provenance(runner, config, request, images, environ)
        ask.confirm(
            f"roll back {cluster.target.release} in {request.environment} to revision {target}",
            [f"revision {target}: {chosen.status} {chosen.description}", *brought_back],
            console=runner.console,
        )
    where = f"revision {target}" if target is not None else "the previous revision"
    lock = DeployLock(runner, cluster, holder=lock_holder(environ))
    lock.acquire()
    try:
        argv = helm_cli.rollback_argv(cluster.helm, cluster.target, target, cluster.environment)
        runner.run(cluster.change(argv, f"roll back to {where}"))
        if revisions:
            created = max(r.revision for r in revisions) + 1
            who = {"by": current_user(environ), "reason": reason, "action": f"rollback to {where}"}
            if checked is not None and checked.unverified:
                who["unverified"] = ",".join(checked.unverified)
            record = cluster.change(
                kube.create_argv(cluster.kubectl, cluster.target),
                f"record who and why for revision {created}",
                capture=True,
                stdin=kube.audit_manifest(cluster.target, created, who),
            )
            runner.run(record)
    finally:
        lock.release()
    text = f"rollback to {where} by={current_user(environ)} reason={reason}"
    outcome = DeployOutcome(request.environment, "", text, {}, target, provenance=checked)
    outcome.completed.append("rollback")
    outcome.verify = verify_cluster(runner, tuple(config.apps), cluster, {})
    outcome.completed.append("verify")
    return outcome


def rollback_provenance(
    runner: Runner,
    config: DeliveryConfig,
    request: RollbackRequest,
    images: Sequence[PlannedImage],
    environ: Mapping[str, str],
) -> GateResult:
    """A rollback brings images back: they pass the same provenance gate as a deploy's. An
    image the revision names by tag only cannot be checked, so it is refused the same way."""
    policy = config.environment(request.environment).provenance
    pinned = {image.app: image.reference for image in images if "@sha256:" in image.reference}
    unpinned = [image for image in images if image.app not in pinned]
    if policy.require_provenance and unpinned:
        refused = Untrusted(
            f"{unpinned[0].app}: {unpinned[0].reference} is not pinned by digest, so its "
            f"provenance cannot be checked: roll back to a revision deployed by digest, or "
            f"{attestation.OVERRIDE}"
        )
        if not request.allow_unverified:
            raise refused
        runner.console.warn(f"UNVERIFIED (--allow-unverified, recorded): {refused.message}")
    result = attestation.gate(
        runner, config, request.environment, pinned, environ,
        allow_unverified=request.allow_unverified,
    )  # fmt: skip
    if policy.require_provenance:
        result.unverified.extend(image.app for image in unpinned)
    return result
