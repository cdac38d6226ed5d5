"""`invoke pipeline`: the stages CI runs, in CI's order, stopping at the first failure with the
stage named. `local` runs the stack in Docker Compose; another environment runs the helm path.

    gate -> build -> scan -> push (when a registry is configured) -> deploy -> verify

The release is decided once (the image plan) and, once pushed, carried as the release record
from push to deploy to verify, exactly as CI carries it between jobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aegis_delivery import gates, local
from aegis_delivery.cluster import deploy as deploy_flow
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import AegisError, InputError
from aegis_delivery.release import images, publish
from aegis_delivery.release.record import ReleaseRecord
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
    local_stack = request.environment == "local"
    if not local_stack:
        config.environment(request.environment)  # an unknown environment fails before anything
    plan = publish.plan_images(config, build_args=request.build_args, environ=env)
    ran: list[str] = []
    outcomes: list[images.BuildOutcome] = []
    released: list[ReleaseRecord] = []

    def stage(name: str, action: Callable[[], object]) -> None:
        if name in request.skip:
            runner.console.warn(f"stage {name} skipped (--skip {name})")
            return
        run_stage(runner, name, action)
        ran.append(name)

    stage("gate", lambda: runner.run(gates.nox_step(())))
    stage("build", lambda: outcomes.extend(publish.build(runner, plan)))
    stage("scan", lambda: publish.scan(runner, config, plan, outcomes))
    if not local_stack or config.local.push:
        stage(
            "push",
            lambda: released.append(publish.release(runner, config, plan, force=True, environ=env)),
        )
    else:
        runner.console.info("stage push skipped: [tool.aegis.local] push is false")
    if local_stack:
        stage("deploy", lambda: local.up(runner, config, {r.app: r.tags[0] for r in plan.builds}))
        stage("verify", lambda: local.verify(runner, config, plan.tag))
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
    stage("verify", lambda: deploy_flow.verify(runner, config, environment, env, record()))
    return ran
