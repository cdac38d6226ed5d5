"""`invoke pipeline`: the stages CI runs, in CI's order, stopping at the first failure with the
stage named. `local` runs the stack in Docker Compose; `staging` runs the helm path.

    gate -> build -> scan -> push (when a registry is configured) -> deploy -> verify
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aegis_delivery import deploy as deploy_flow
from aegis_delivery import gates, images, local, publishing, scanning
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import AegisError, InputError
from aegis_delivery.runner import Runner

STAGES = ("gate", "build", "scan", "push", "deploy", "verify")


@dataclass(frozen=True)
class PipelineRequest:
    environment: str
    skip: tuple[str, ...] = ()
    build_args: tuple[str, ...] = ()


def run_stage(runner: Runner, name: str, action: Callable[[], object]) -> None:
    """Run one stage; a failure keeps its exit code and says which stage it was."""
    runner.console.step(f"stage {name}")
    try:
        action()
    except AegisError as error:
        error.message = f"stage {name} failed: {error.message}"
        error.args = (error.message,)
        raise


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
    if request.environment != "local":
        config.environment(request.environment)  # an unknown environment fails before anything
    plan = publishing.plan_images(config, build_args=request.build_args, environ=env)
    tag = next((t for t in plan.decision.tags if t != "latest"), plan.decision.tags[0])
    ran: list[str] = []
    outcomes: list[images.BuildOutcome] = []
    registry_configured = request.environment != "local" or config.local.push

    def stage(name: str, action: Callable[[], object]) -> None:
        if name in request.skip:
            runner.console.warn(f"stage {name} skipped (--skip {name})")
            return
        run_stage(runner, name, action)
        ran.append(name)

    stage("gate", lambda: runner.run(gates.nox_step(())))
    stage("build", lambda: outcomes.extend(publishing.build(runner, plan)))
    scan_directory = config.root / publishing.WORK_DIRECTORY / "scan"

    def scan() -> None:
        targets = publishing.scan_targets(plan, outcomes)
        scanning.raise_on_findings(scanning.scan(runner, config, targets, scan_directory))

    stage("scan", scan)
    if registry_configured:
        stage("push", lambda: publishing.push(runner, config, plan, force=True, environ=env))
    else:
        runner.console.info("stage push skipped: [tool.aegis.local] push is false")
    images = {request_.app: request_.tags[-1] for request_ in plan.builds}
    if request.environment == "local":
        stage("deploy", lambda: local.up(runner, config, images))
        stage("verify", lambda: local.verify(runner, config, tag))
    else:
        deployed: list[deploy_flow.DeployOutcome] = []

        def deploy() -> None:
            request_ = deploy_flow.DeployRequest(request.environment, None, None, yes=True)
            identity = (tag, plan.context.source_sha, plan.context.actor, plan.repository)
            deployed.append(
                deploy_flow.deploy(
                    runner, config, request_, env, publish=lambda _: {}, computed=lambda: identity,
                    verify_after=False,
                )
            )  # fmt: skip

        def verify() -> None:
            cluster = deploy_flow.connect(runner, config, request.environment, env)
            digests = dict(deployed[0].digests) if deployed else {}
            deploy_flow.run_verify(runner, config, cluster, digests)

        stage("deploy", deploy)
        stage("verify", verify)
    return ran
