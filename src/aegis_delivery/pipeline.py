"""`invoke pipeline`: the stages CI runs, in CI's order, stopping at the first failure with the
stage named. `local` runs the stack in Docker Compose; another environment runs the helm path.

    gate -> build -> scan -> push (when a registry is configured) -> deploy -> verify

The release is decided once (the image plan) and, once pushed, carried as the release record
from push to deploy to verify, exactly as CI carries it between jobs.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aegis_delivery import gates, local, progress
from aegis_delivery.ci import in_ci
from aegis_delivery.cluster import deploy as deploy_flow
from aegis_delivery.cluster import inspect, kube
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import AegisError, InputError, ToolUnavailable
from aegis_delivery.release import buildx, publish, registry
from aegis_delivery.release.record import ReleaseRecord
from aegis_delivery.runner import Runner, Step
from aegis_delivery.tools import locate

STAGES = ("gate", "build", "scan", "push", "deploy", "verify")


# The quick gate a local run starts with; CI (and --full-gate) runs every session.
QUICK_GATE = ("lint", "format", "typecheck", "logic")
OFFLINE_WARNING = (
    "OFFLINE: building from locally made base images ([tool.aegis.local] offline_bases), "
    "VULNERABILITY SCANNING IS OFF, nothing is pushed: a local environment only"
)


@dataclass(frozen=True)
class PipelineRequest:
    environment: str
    skip: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()
    offline: bool = False
    full_gate: bool = False


def offline_settings(
    config: DeliveryConfig, request: PipelineRequest
) -> tuple[DeliveryConfig, tuple[str, ...]]:
    """The configuration and build args of an air-gapped local run."""
    if request.environment != "local":
        raise InputError(
            f"--offline builds the local environment only, not {request.environment!r}: "
            "a release for a cluster is built from the real base images and fully scanned"
        )
    bases = tuple(f"{app}:BASE_IMAGE={image}" for app, image in config.local.offline_bases.items())
    offline = replace(
        config,
        scan=replace(config.scan, vulnerabilities=False),
        local=replace(
            config.local,
            nats_image=config.local.offline_nats_image,
            postgres_image=config.local.offline_postgres_image,
            push=False,
        ),
    )
    return offline, (*bases, *request.build_args)


def preflight(
    runner: Runner,
    config: DeliveryConfig,
    request: PipelineRequest,
    environ: Mapping[str, str],
) -> None:
    """Every stage's preconditions, checked in seconds before the first stage starts."""
    stages = set(STAGES) - set(request.skip)
    local_stack = request.environment == "local"
    problems: list[AegisError] = []

    def check(action: Callable[[], object]) -> None:
        try:
            action()
        except AegisError as error:
            problems.append(error)

    def have(tool: str, why: str) -> None:
        if locate(tool, config.root).path is None:
            problems.append(ToolUnavailable(f"{tool} is missing ({why}): scripts/bootstrap"))

    if stages & {"build", "deploy"} and (stages & {"build"} or local_stack):
        check(lambda: buildx.require_engine(runner))
    if local_stack and "deploy" in stages:
        compose = runner.probe(Step(("docker", "compose", "version"), "compose", capture=True))
        if not compose.ok:
            problems.append(ToolUnavailable("the docker compose plugin is missing"))
    if "scan" in stages:
        have("trivy", "the scan stage")
    if "gate" in stages and not Path(gates.nox_command()).is_file() and not shutil.which("nox"):
        problems.append(ToolUnavailable("nox is missing (the gate stage): scripts/bootstrap"))
    if "push" in stages and (not local_stack or config.local.push):
        check(lambda: registry.credentials(config.registry, environ))
    if not local_stack and stages & {"deploy", "verify"}:
        have("helm", "the deploy stage")
        have("kubectl", "the deploy stage")
        if environ.get("KUBE_CONFIG", "").strip():
            check(lambda: kube.decode_kubeconfig(environ["KUBE_CONFIG"]))
    if request.offline:
        wanted = [*config.local.offline_bases.values(), config.local.offline_nats_image,
                  config.local.offline_postgres_image]  # fmt: skip
        for image in wanted:
            found = runner.probe(Step(("docker", "image", "inspect", image), "image", capture=True))
            if not found.ok:
                problems.append(
                    ToolUnavailable(f"the local base image {image} is missing: as root, "
                                    "scripts/local-base-images (scripts/bootstrap runs it)")
                )  # fmt: skip
    if problems:
        message = "preflight: " + "; ".join(problem.message for problem in problems)
        if any(isinstance(problem, InputError) for problem in problems):
            raise InputError(message)
        raise ToolUnavailable(message)
    runner.console.info(
        f"preflight: every stage's preconditions hold ({', '.join(sorted(stages))})"
    )


@dataclass(frozen=True)
class StageRow:
    """One line of the table a pipeline run ends with."""

    stage: str
    result: str
    seconds: float
    produced: str

    def cells(self) -> tuple[str, str, str, str]:
        return (self.stage, self.result, progress.duration(self.seconds), self.produced)


def run_stage(runner: Runner, name: str, action: Callable[[], object]) -> object:
    """Run one stage; a failure keeps its exit code and says which stage it was."""
    runner.console.step(f"stage {name}")
    try:
        return action()
    except AegisError as error:
        error.message = f"stage {name} failed: {error.message}"
        error.args = (error.message,)
        raise


def produced(name: str, result: object, config: DeliveryConfig, plan: publish.ImagePlan) -> str:
    """What a stage made, in a table cell: images, digests, the revision, where to look."""
    if name == "build":
        return f"{', '.join(request.app for request in plan.builds)} :{plan.tag}"
    if name == "scan" and isinstance(result, list):
        scope = "" if config.scan.vulnerabilities else " (vulnerability scanning OFF)"
        return f"{len(result)} reports passed the gate{scope}"
    if name == "push" and isinstance(result, ReleaseRecord):
        return ", ".join(f"{app}@{digest[:19]}" for app, digest in result.digests().items())
    if name == "deploy" and result is None:  # the local stack
        return f"http://127.0.0.1:{config.local.ui_port} (status page)"
    if name == "deploy" and isinstance(result, deploy_flow.DeployOutcome):
        return f"revision {result.revision}" if result.revision else ""
    if name == "gate" and result is False:
        return "passed before on this tree"
    return ""


def show_table(runner: Runner, rows: Sequence[StageRow]) -> None:
    runner.console.table("pipeline", ("stage", "result", "duration", "produced"),
                         [row.cells() for row in rows])  # fmt: skip


def run(
    runner: Runner,
    config: DeliveryConfig,
    request: PipelineRequest,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The stages that ran, in order."""
    env = os.environ if environ is None else environ
    unknown = sorted(set(request.skip) - set(STAGES))
    if unknown:
        raise InputError(
            f"unknown stage {unknown[0]!r} to skip: expected one of {', '.join(STAGES)}"
        )
    local_stack = request.environment == "local"
    if not local_stack:
        config.environment(request.environment)  # an unknown environment fails before anything
    build_args = request.build_args
    if request.offline:
        config, build_args = offline_settings(config, request)
        runner.console.warn(OFFLINE_WARNING)
    plan = publish.plan_images(config, build_args=build_args, environ=env)
    preflight(runner, config, request, env)
    ran: list[str] = []
    released: list[ReleaseRecord] = []
    rows: list[StageRow] = []

    def stage(name: str, action: Callable[[], object]) -> None:
        if name in request.skip:
            runner.console.warn(f"stage {name} skipped (--skip {name})")
            rows.append(StageRow(name, "skipped", 0.0, f"--skip {name}"))
            return
        started = time.monotonic()
        try:
            result = run_stage(runner, name, action)
        except AegisError:
            rows.append(StageRow(name, "FAILED", time.monotonic() - started, ""))
            show_table(runner, rows)
            raise
        verdict = "planned" if runner.dry_run else "passed"
        made = "" if runner.dry_run else produced(name, result, config, plan)
        rows.append(StageRow(name, verdict, time.monotonic() - started, made))
        ran.append(name)

    full = request.full_gate or not local_stack or in_ci(env)
    if full:
        stage("gate", lambda: runner.run(gates.nox_step(())))
    else:
        stage("gate", lambda: gates.quick_gate(runner, config.root, config.work(), QUICK_GATE))
    stage("build", lambda: publish.build(runner, plan))
    stage("scan", lambda: publish.scan(runner, config, plan, table_when_passed=False))
    if not local_stack or config.local.push:

        def push() -> ReleaseRecord:
            released.append(publish.release(runner, config, plan, force=True, environ=env))
            return released[0]

        stage("push", push)
    else:
        runner.console.info("stage push skipped: [tool.aegis.local] push is false")
    if local_stack:
        stage("deploy", lambda: local.up(runner, config, {r.app: r.tags[0] for r in plan.builds}))
        stage("verify", lambda: local.verify(runner, config, plan.tag))
        show_table(runner, rows)
        return ran
    environment = request.environment

    def record() -> ReleaseRecord | None:
        return released[0] if released else None

    deploy_request = deploy_flow.DeployRequest(environment, yes=True)
    stage(
        "deploy",
        lambda: deploy_flow.deploy(
            runner, config, deploy_request, env, record=record(), verify_after=False
        ),
    )
    stage("verify", lambda: inspect.verify(runner, config, environment, env, record()))
    show_table(runner, rows)
    return ran
