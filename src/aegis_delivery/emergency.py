"""`invoke deploy --tag T`: the emergency path, a flow across both halves of the pipeline.

It plans the images from the working tree (release/), asks why, and hands ``cluster.deploy``
a ``BuildNow``: after the guards and the confirmation, the images are built, scanned and
pushed with the release record written, then deployed by digest like any release. Here, above
both layers, so ``cluster/`` never imports the publish flow. Without a tag it is a plain deploy
of the release record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aegis_delivery.ci import default_branch_refusal, in_ci
from aegis_delivery.cluster import deploy as cluster_deploy
from aegis_delivery.cluster.deploy import BuildNow, DeployOutcome, DeployRequest
from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import InputError
from aegis_delivery.prompts import Prompter
from aegis_delivery.release import publish
from aegis_delivery.runner import Runner

REASON_HINT = "an emergency deploy records why, e.g. --reason 'hotfix for INC-123'"


def deploy(
    runner: Runner,
    config: DeliveryConfig,
    request: DeployRequest,
    environ: Mapping[str, str],
    *,
    prompter: Prompter | None = None,
    verify_after: bool = True,
) -> DeployOutcome:
    """Deploy the release record, or with ``request.tag`` build that release now and deploy it."""
    if request.tag is None:
        return cluster_deploy.deploy(
            runner, config, request, environ, prompter=prompter, verify_after=verify_after
        )
    config.environment(request.environment)  # input first: an unknown environment runs nothing
    refusal = default_branch_refusal(environ)
    if refusal is not None:
        raise InputError(refusal)
    plan = publish.plan_images(config, tag=request.tag, environ=environ)
    ask = prompter or Prompter(interactive=not (request.yes or in_ci(environ)))
    reason = ask.reason(request.reason, what="--reason", hint=REASON_HINT)
    build_now = BuildNow(
        plan.tag,
        plan.context.source_sha,
        lambda: publish.release(runner, config, plan, force=True, environ=environ, reason=reason),
    )
    return cluster_deploy.deploy(
        runner, config, replace(request, reason=reason), environ,
        prompter=ask, verify_after=verify_after, build_now=build_now,
    )  # fmt: skip
