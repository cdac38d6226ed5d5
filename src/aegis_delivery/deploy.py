"""Deploy, rollback, verify and status: guards first, then exactly the printed commands.

Order of a deploy: validate input -> kube access -> guards (context, namespace, no pending
release) -> images (emergency: build and push; else check they exist and pin digests) ->
values -> lock (a Lease in the namespace) -> ``helm upgrade --install`` -> unlock -> verify.
Nothing that changes the cluster runs before every guard has passed; ``--dry-run`` prints the
whole sequence and runs none of it (only ``helm version``, to know which flags to print).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aegis_delivery import helm as helm_cli
from aegis_delivery import kube, registry, verify
from aegis_delivery.config import DeliveryConfig, EnvironmentConfig
from aegis_delivery.errors import AegisError, CommandFailed, GateFailed, InputError
from aegis_delivery.helm import Helm, Revision, Target
from aegis_delivery.runner import Runner, Step
from aegis_delivery.tools import require
from aegis_delivery.validation import docker_tag, non_empty

LOCK_POLL_SECONDS = 5.0
VERIFY_POLL_SECONDS = 5.0


def values_key(app: str) -> str:
    """``monitor-api`` -> ``monitorApi``, the chart's key for the app."""
    first, *rest = app.split("-")
    return first + "".join(part.capitalize() for part in rest)


def deployment_values(
    config: DeliveryConfig, repository: str, tag: str, digests: Mapping[str, str]
) -> dict[str, object]:
    """The values one deploy adds: the tag for both, and a digest per app where one is known."""
    apps: dict[str, object] = {}
    for app in config.apps:
        image: dict[str, str] = {"repository": f"{config.registry}/{repository}/{app}".lower()}
        if digests.get(app):
            image["digest"] = digests[app]
        apps[values_key(app)] = {"image": image}
    return {"global": {"imageTag": tag}, "apps": apps}


def read_digests(path: Path, tag: str) -> dict[str, str]:
    """Digests recorded by `invoke push` for *tag*; {} when the file is for another tag."""
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise InputError(f"{path} is not valid JSON: delete it and re-run `invoke push`") from None
    if document.get("tag") != tag:
        return {}
    return {app: str(entry["digest"]) for app, entry in document.get("images", {}).items()}


def resolve_digests(
    runner: Runner, config: DeliveryConfig, repository: str, tag: str
) -> dict[str, str]:
    """Each app's image must exist in the registry; its current digest is what gets pinned.

    A digest recorded by `invoke push` for the same tag must still be what the registry serves.
    """
    recorded = read_digests(config.build.digests_file, tag)
    resolved: dict[str, str] = {}
    for app in config.apps:
        reference = f"{config.registry}/{repository}/{app}:{tag}".lower()
        try:
            served = registry.remote_digest(
                runner, reference, config.build.push_attempts, config.build.retry_base_seconds
            )
        except CommandFailed as error:
            raise AegisError(
                f"{reference} cannot be resolved in the registry "
                f"({error.message.splitlines()[-1]}): "
                "push it first (`invoke push`) or deploy a tag that exists"
            ) from None
        if served is None:  # a dry run: nothing resolved, show what push recorded
            if app in recorded:
                resolved[app] = recorded[app]
            continue
        if app in recorded and served != recorded[app]:
            raise AegisError(f"{reference} now points at {served}, not the pushed {recorded[app]}")
        resolved[app] = served
    return resolved


def write_values(
    config: DeliveryConfig, repository: str, tag: str, digests: Mapping[str, str]
) -> Path:
    import yaml  # deferred: keeps `invoke --list` fast

    path = config.chart / "values.deployment.yaml"
    header = "# Written by `invoke values` for one deploy; not committed.\n"
    path.write_text(
        header + yaml.safe_dump(deployment_values(config, repository, tag, digests), sort_keys=True)
    )
    return path


def description(tag: str, sha: str, actor: str, reason: str | None) -> str:
    text = f"tag={tag} sha={sha[:7]} by={actor}"
    return f"{text} reason={reason}" if reason else text


@dataclass
class Cluster:
    """The binaries and environment every cluster command uses."""

    helm: Helm
    kubectl: Path
    env: Mapping[str, str]
    target: Target
    environment: EnvironmentConfig

    def step(
        self, argv: Sequence[str], purpose: str, *, capture: bool = True, stdin: str | None = None
    ) -> Step:
        return Step(tuple(argv), purpose, env=dict(self.env), capture=capture, stdin=stdin)


def connect(
    runner: Runner, config: DeliveryConfig, environment_name: str, environ: Mapping[str, str]
) -> Cluster:
    """Resolve the environment and binaries and materialise KUBE_CONFIG; contacts no cluster."""
    environment = config.environment(environment_name)
    helm_path = require("helm", config.root)
    version = runner.probe(
        Step((str(helm_path), "version", "--short"), "helm version", capture=True)
    )
    if not version.ok:
        raise AegisError(f"helm does not run: {(version.stderr or version.stdout).strip()}")
    helm = Helm(helm_path, helm_cli.parse_version(version.stdout))
    kubectl = require("kubectl", config.root)
    env = kube.materialize_kubeconfig(runner, environ)
    return Cluster(helm, kubectl, env, Target.of(config.release, environment), environment)


# -- guards ----------------------------------------------------------------------------------


def guard_context(runner: Runner, cluster: Cluster) -> None:
    if runner.dry_run:
        runner.run(
            cluster.step(kube.current_context_argv(cluster.kubectl), "check the kube context")
        )
        return
    result = runner.probe(cluster.step(kube.current_context_argv(cluster.kubectl), "kube context"))
    if not result.ok:
        raise InputError(f"no usable kube context: {(result.stderr or result.stdout).strip()}")
    kube.check_context(result.stdout, cluster.target.kube_context)


def guard_namespace(runner: Runner, cluster: Cluster, create_namespace: bool) -> None:
    step = cluster.step(kube.namespace_argv(cluster.kubectl, cluster.target), "check the namespace")
    result = runner.run(step, check=False)
    if result.ran and not result.ok:
        said = (result.stderr or result.stdout).strip()
        if "NotFound" in said and not create_namespace:
            raise InputError(
                f"namespace {cluster.target.namespace!r} does not exist: create it, or pass "
                "--create-namespace"
            )
        if "NotFound" not in said:
            raise CommandFailed(step.display(runner.masker), result.returncode, said)


def history(runner: Runner, cluster: Cluster) -> list[Revision]:
    step = cluster.step(helm_cli.history_argv(cluster.helm, cluster.target), "release history")
    result = runner.run(step, check=False)
    if not result.ran:
        return []
    if not result.ok:
        if helm_cli.release_missing(result.stderr):
            return []
        raise CommandFailed(step.display(runner.masker), result.returncode, result.stderr.strip())
    return helm_cli.parse_history(result.stdout)


def recover_pending(
    runner: Runner,
    cluster: Cluster,
    revisions: Sequence[Revision],
    recover: bool,
    uninstall_stuck_install: bool,
) -> None:
    """Refuse a pending release unless asked to recover it, explicitly."""
    stuck = helm_cli.pending(revisions)
    if stuck is None:
        return
    if stuck.status == "pending-install":
        if not uninstall_stuck_install:
            raise InputError(
                f"release {cluster.target.release!r} is stuck in pending-install (revision "
                f"{stuck.revision}); it was never deployed, so it can only be uninstalled: "
                "re-run with --recover --uninstall-stuck-install"
            )
        runner.console.warn(f"uninstalling {cluster.target.release} stuck in pending-install")
        argv = helm_cli.uninstall_argv(cluster.helm, cluster.target, cluster.environment)
        runner.run(cluster.step(argv, "uninstall the stuck first install", capture=False))
        return
    good = helm_cli.last_deployed(revisions, before=stuck.revision)
    if not recover or good is None:
        hint = (
            f"`invoke deploy --recover` rolls back to revision {good.revision}"
            if good
            else ("no deployed revision exists to roll back to")
        )
        raise InputError(
            f"release {cluster.target.release!r} is {stuck.status} at revision {stuck.revision} "
            f"(an interrupted run?): {hint}"
        )
    runner.console.warn(
        f"recovering: rolling back {stuck.status} revision {stuck.revision} to {good.revision}"
    )
    argv = helm_cli.rollback_argv(cluster.helm, cluster.target, good.revision, cluster.environment)
    runner.run(cluster.step(argv, f"roll back to revision {good.revision}", capture=False))


# -- the lock --------------------------------------------------------------------------------


def lock_holder(environ: Mapping[str, str]) -> str:
    """Who holds the lock, as the waiting deploy will name it: user, host, run."""
    user = environ.get("GITHUB_ACTOR") or environ.get("USER") or "unknown"
    run = environ.get("GITHUB_RUN_ID") or uuid.uuid4().hex[:8]
    return f"{user}@{socket.gethostname()}/{run}"


@dataclass
class DeployLock:
    """A coordination.k8s.io/v1 Lease: the second deploy waits, then fails naming the holder."""

    runner: Runner
    cluster: Cluster
    holder: str = field(default_factory=lambda: lock_holder(os.environ))
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    sleep: Callable[[float], None] = time.sleep
    held: bool = False

    def acquire(self) -> None:
        target, kubectl = self.cluster.target, self.cluster.kubectl
        duration = self.cluster.environment.timeout.seconds + 120
        deadline = self.clock() + dt.timedelta(seconds=self.cluster.environment.lock_wait.seconds)
        while True:
            manifest = kube.lease_manifest(
                target.release, target.namespace, self.holder, duration, self.clock()
            )
            create = self.cluster.step(
                kube.lease_create_argv(kubectl, target), "take the deploy lock", stdin=manifest
            )
            result = self.runner.run(create, check=False)
            if not result.ran or result.ok:
                self.held = True
                # Also on a signal or an error before the explicit release.
                self.runner.add_cleanup(self.release)
                return
            if "AlreadyExists" not in result.stderr:
                raise CommandFailed(
                    create.display(self.runner.masker), result.returncode, result.stderr.strip()
                )
            current = self.runner.run(
                self.cluster.step(kube.lease_get_argv(kubectl, target), "read the lock"),
                check=False,
            )
            if not current.ok:
                continue  # released between our create and get: try again
            state = kube.parse_lease(current.stdout)
            if state.stale(self.clock()):
                self.runner.console.warn(f"removing a stale deploy lock held by {state.holder}")
                self.runner.run(
                    self.cluster.step(
                        kube.lease_delete_argv(kubectl, target), "remove the stale lock"
                    )
                )
                continue
            if self.clock() >= deadline:
                raise AegisError(
                    f"another deploy holds the lock {kube.lease_name(target.release)!r} in "
                    f"{target.namespace}: {state.holder} (since {state.renewed:%H:%M:%S} UTC); "
                    f"waited {self.cluster.environment.lock_wait.text}"
                )
            self.runner.console.info(f"waiting for the deploy lock held by {state.holder}")
            self.sleep(LOCK_POLL_SECONDS)

    def release(self) -> None:
        """Delete the Lease only if it is still ours: never someone else's lock."""
        if not self.held:
            return
        self.held = False
        target, kubectl = self.cluster.target, self.cluster.kubectl
        if self.runner.dry_run:
            self.runner.run(
                self.cluster.step(
                    kube.lease_delete_argv(kubectl, target), "release the deploy lock"
                )
            )
            return
        current = self.runner.probe(
            self.cluster.step(kube.lease_get_argv(kubectl, target), "read the lock")
        )
        if current.ok and kube.parse_lease(current.stdout).holder == self.holder:
            self.runner.probe(
                self.cluster.step(
                    kube.lease_delete_argv(kubectl, target), "release the deploy lock"
                )
            )


# -- diagnosis and verification --------------------------------------------------------------


def diagnose(runner: Runner, cluster: Cluster) -> None:
    """After a failed upgrade: pods that are not ready, their events and last log lines."""
    pods = runner.probe(cluster.step(kube.pods_argv(cluster.kubectl, cluster.target), "pods"))
    if not pods.ok:
        runner.console.warn("could not list pods for diagnosis")
        return
    for pod in verify.parse_pods(pods.stdout):
        if pod.ready and not pod.problem:
            continue
        runner.console.error(f"{pod.name}: {pod.problem or 'not ready'}")
        for argv in (kube.events_argv(cluster.kubectl, cluster.target, pod.name),
                     kube.logs_argv(cluster.kubectl, cluster.target, pod.name)):  # fmt: skip
            answer = runner.probe(cluster.step(argv, "diagnose"))
            for line in (answer.stdout or answer.stderr).strip().splitlines()[-10:]:
                runner.console.output_line(line)
    after = history(runner, cluster)
    if after:
        latest = max(after, key=lambda r: r.revision)
        runner.console.info(
            f"release is now revision {latest.revision}: {latest.status} ({latest.description})"
        )


@dataclass
class VerifyReport:
    checks: list[dict[str, object]] = field(default_factory=list)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail})

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check["ok"] for check in self.checks)


def run_verify(
    runner: Runner,
    config: DeliveryConfig,
    cluster: Cluster,
    expected_digests: Mapping[str, str],
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> VerifyReport:
    report = VerifyReport()
    target, kubectl, environment = cluster.target, cluster.kubectl, cluster.environment
    if runner.dry_run:
        runner.run(cluster.step(kube.pods_argv(kubectl, target), "pods"))
        for app in config.apps:
            runner.run(
                cluster.step(
                    kube.rollout_argv(
                        kubectl, target, f"{target.release}-{app}", environment.timeout.text
                    ),
                    f"rollout {app}",
                )
            )
        runner.run(cluster.step(helm_cli.test_argv(cluster.helm, target, environment), "helm test"))
        if environment.nats:
            runner.run(cluster.step(kube.nats_ping_argv(kubectl, target), "NATS ping"))
        return report
    # Poll pods first: a crash-looping or unpullable pod fails now, not after the timeout.
    deadline = monotonic() + environment.timeout.seconds
    while True:
        pods = runner.run(cluster.step(kube.pods_argv(kubectl, target), "pods"), check=False)
        if not pods.ok:
            report.add(
                "pods", False, f"cluster unreachable: {(pods.stderr or pods.stdout).strip()}"
            )
            raise GateFailed(f"verify: cannot list pods: {(pods.stderr or pods.stdout).strip()}")
        verdicts = verify.parse_pods(pods.stdout)
        problems = verify.check_pods(verdicts, expected_digests)
        fatal = [p for p in verdicts if p.problem] or not verdicts
        if not problems or fatal or monotonic() >= deadline:
            break
        sleep(VERIFY_POLL_SECONDS)
    report.add("pods", not problems, "; ".join(problems) or f"{len(verdicts)} pods ready")
    if problems:
        diagnose(runner, cluster)
        raise GateFailed("verify failed: " + "; ".join(problems))
    for app in config.apps:
        step = cluster.step(
            kube.rollout_argv(kubectl, target, f"{target.release}-{app}", environment.timeout.text),
            f"rollout {app}",
        )
        result = runner.run(step, check=False)
        report.add(f"rollout {app}", result.ok, (result.stdout or result.stderr).strip()[-200:])
    test = runner.run(
        cluster.step(helm_cli.test_argv(cluster.helm, target, environment), "helm test"),
        check=False,
    )
    report.add("helm test", test.ok, (test.stdout or test.stderr).strip()[-300:])
    if environment.nats:
        ping = runner.run(
            cluster.step(kube.nats_ping_argv(kubectl, target), "NATS ping"), check=False
        )
        report.add("nats", ping.ok, (ping.stdout or ping.stderr).strip()[-200:])
    if not report.passed:
        failed = [str(c["check"]) for c in report.checks if not c["ok"]]
        raise GateFailed(f"verify failed: {', '.join(failed)}")
    return report


# -- the tasks' bodies -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeployRequest:
    environment: str
    tag: str | None
    reason: str | None
    yes: bool
    create_namespace: bool = False
    recover: bool = False
    uninstall_stuck_install: bool = False


def confirm(question: str, environ: Mapping[str, str]) -> None:
    """Ask on a terminal; in CI or with --yes the caller skips this. No terminal: refuse."""
    if not sys.stdin.isatty():
        raise InputError(f"{question} needs confirmation: re-run with --yes")
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in {"y", "yes"}:
        raise InputError("not confirmed: nothing was changed")


def validate_request(request: DeployRequest) -> str | None:
    """Input checks that need no cluster: the tag grammar and, for emergencies, a reason."""
    if request.tag is not None:
        docker_tag(request.tag)
        return non_empty(
            request.reason,
            what="--reason",
            hint="an emergency deploy records why, e.g. --reason 'hotfix for INC-123'",
        )
    return request.reason


@dataclass
class DeployOutcome:
    environment: str
    tag: str
    description: str
    digests: Mapping[str, str]
    revision: int | None = None
    verify: VerifyReport | None = None

    def document(self) -> dict[str, object]:
        return {
            "environment": self.environment,
            "tag": self.tag,
            "description": self.description,
            "digests": dict(self.digests),
            "revision": self.revision,
            "verify": self.verify.checks if self.verify else [],
        }


def deploy(
    runner: Runner,
    config: DeliveryConfig,
    request: DeployRequest,
    environ: Mapping[str, str],
    publish: Callable[[str], Mapping[str, str]],
    computed: Callable[[], tuple[str, str, str, str]],
    verify_after: bool = True,
) -> DeployOutcome:
    """``publish(tag)`` builds and pushes an emergency tag, returning its digests;
    ``computed()`` gives (tag, sha, actor, repository) for this commit."""
    reason = validate_request(request)
    tag, sha, actor, repository = computed()
    emergency = request.tag is not None
    if emergency:
        tag = str(request.tag)
    cluster = connect(runner, config, request.environment, environ)
    text = description(tag, sha, actor, reason)
    if emergency:
        runner.console.warn(
            f"EMERGENCY DEPLOY of {tag!r} to {request.environment}: built from the working tree; "
            "the quality gates were NOT run by this command"
        )
        in_ci = environ.get("CI", "").lower() == "true"
        if not (request.yes or in_ci or runner.dry_run):
            confirm(f"deploy {tag} to {request.environment}?", environ)
    guard_context(runner, cluster)
    guard_namespace(runner, cluster, request.create_namespace)
    recover_pending(
        runner, cluster, history(runner, cluster), request.recover, request.uninstall_stuck_install
    )
    # Emergency: build, scan and push the tag now; otherwise it must already be in the registry.
    digests = publish(tag) if emergency else resolve_digests(runner, config, repository, tag)
    values = config.chart / "values.deployment.yaml"
    if runner.dry_run:
        document = deployment_values(config, repository, tag, digests)
        runner.console.info(f"[dry-run] write {values}: {json.dumps(document, sort_keys=True)}")
    else:
        write_values(config, repository, tag, digests)
    lock = DeployLock(runner, cluster)
    lock.acquire()
    upgrade = helm_cli.upgrade_argv(
        cluster.helm,
        cluster.target,
        config.chart,
        [values],
        tag,
        cluster.environment,
        text,
        request.create_namespace,
    )
    try:
        runner.run(cluster.step(upgrade, f"deploy {tag} to {request.environment}", capture=False))
    except CommandFailed:
        runner.console.error("helm upgrade failed; what the cluster shows:")
        diagnose(runner, cluster)
        raise
    finally:
        lock.release()
    revisions = history(runner, cluster)
    outcome = DeployOutcome(request.environment, tag, text, digests)
    if revisions:
        outcome.revision = max(r.revision for r in revisions)
    if verify_after:
        outcome.verify = run_verify(runner, config, cluster, digests)
    return outcome


def rollback(
    runner: Runner,
    config: DeliveryConfig,
    environment_name: str,
    revision: int | None,
    yes: bool,
    environ: Mapping[str, str],
) -> DeployOutcome:
    cluster = connect(runner, config, environment_name, environ)
    guard_context(runner, cluster)
    revisions = history(runner, cluster)
    for item in sorted(revisions, key=lambda r: r.revision):
        runner.console.info(
            f"revision {item.revision}: {item.status} {item.updated} {item.description}"
        )
    chosen: int | None = revision
    if not runner.dry_run:  # a dry run has no history to choose from: helm picks the previous
        chosen = helm_cli.rollback_target(revisions, revision).revision
    if not (yes or runner.dry_run or environ.get("CI", "").lower() == "true"):
        confirm(
            f"roll back {cluster.target.release} in {environment_name} to revision {chosen}?",
            environ,
        )
    lock = DeployLock(runner, cluster)
    lock.acquire()
    try:
        argv = helm_cli.rollback_argv(cluster.helm, cluster.target, chosen, cluster.environment)
        where = f"revision {chosen}" if chosen else "the previous revision"
        runner.run(cluster.step(argv, f"roll back to {where}", capture=False))
    finally:
        lock.release()
    outcome = DeployOutcome(environment_name, "", f"rollback to {chosen}", {}, chosen)
    outcome.verify = run_verify(runner, config, cluster, {})
    return outcome


def status(
    runner: Runner, config: DeliveryConfig, environment_name: str, environ: Mapping[str, str]
) -> dict[str, object]:
    cluster = connect(runner, config, environment_name, environ)
    target, kubectl = cluster.target, cluster.kubectl
    state = runner.run(
        cluster.step(helm_cli.status_argv(cluster.helm, target), "release status"), check=False
    )
    revisions = history(runner, cluster)
    pods = runner.run(cluster.step(kube.pods_argv(kubectl, target), "pods"), check=False)
    runner.run(
        cluster.step(kube.services_argv(kubectl, target), "services", capture=False), check=False
    )
    verdicts = verify.parse_pods(pods.stdout) if pods.ok and pods.ran else []
    release = (
        json.loads(state.stdout).get("info", {}).get("status") if state.ok and state.ran else None
    )
    return {
        "release": target.release,
        "namespace": target.namespace,
        "status": release,
        "history": [r.__dict__ for r in revisions],
        "pods": [p.as_dict() for p in verdicts],
    }
