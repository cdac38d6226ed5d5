"""The tasks that act on an environment: values, deploy, rollback, verify, diff, history,
promote, status, the whole pipeline and the local stack's down, and previews. Invoke's own
``--dry`` and each task's ``--dry-run`` mean the same thing: every change is printed, never made.
"""

from __future__ import annotations

import os

from invoke.context import Context

from aegis_delivery import reports, validation
from aegis_delivery.session import task_session
from aegis_delivery.task_options import (
    ALLOW_UNVERIFIED,
    BUILD_ARG,
    DRY_RUN,
    ENV,
    JSON,
    SUMMARY,
    VERBOSE,
    YES,
    task,
)


@task(help={"env": ENV, "tag": "an explicit tag (pinned only if the release record has it)",
            "dry_run": DRY_RUN})  # fmt: skip
def values(c: Context, env: str = "staging", tag: str | None = None, dry_run: bool = False) -> None:
    """Write helm/values.deployment.yaml from the release record: tag and pinned digests."""
    from aegis_delivery.cluster import (
        values as chart_values,  # deferred: keeps `invoke --list` fast
    )

    with task_session(c, dry_run=dry_run) as session:
        path, chosen, pinned = chart_values.values_for(
            session.runner, session.config, env, tag, os.environ
        )
        session.console.success(f"{path} (tag {chosen}, {pinned} digests pinned)")


@task(
    help={"env": ENV, "tag": "deploy this tag: the EMERGENCY path (builds, scans and pushes it)",
          "reason": "why (emergency; recorded in the release description); asked at a terminal",
          "create_namespace": "create the namespace if it does not exist",
          "recover": "roll back a release left pending by an interrupted run, then deploy",
          "uninstall_stuck_install": "with --recover: uninstall a first install stuck pending",
          "allow_unverified": ALLOW_UNVERIFIED,
          "yes": YES, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON, "verbose": VERBOSE},
)  # fmt: skip
def deploy(
    c: Context,
    env: str = "staging",
    tag: str | None = None,
    reason: str | None = None,
    create_namespace: bool = False,
    recover: bool = False,
    uninstall_stuck_install: bool = False,
    allow_unverified: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
    verbose: bool = False,
) -> None:
    """helm upgrade --install the release record (or --tag) with guards, lock and verify."""
    from aegis_delivery import emergency  # deferred: keeps `invoke --list` fast
    from aegis_delivery.cluster import deploy as deploy_flow

    with task_session(
        c, dry_run=dry_run, json_output=json, summary=summary, verbose=verbose
    ) as session:
        request = deploy_flow.DeployRequest(
            env, tag, reason, yes, create_namespace, recover, uninstall_stuck_install,
            allow_unverified,
        )  # fmt: skip
        outcome = emergency.deploy(session.runner, session.config, request, os.environ)
        reports.show_outcome(session.console, outcome)


@task(help={"env": ENV, "revision": "roll back to this revision (default: the previous one)",
            "reason": "why (recorded on the revision the rollback creates); asked at a terminal",
            "allow_unverified": ALLOW_UNVERIFIED,
            "yes": YES, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})  # fmt: skip
def rollback(
    c: Context,
    env: str = "staging",
    revision: str | None = None,
    reason: str | None = None,
    allow_unverified: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
) -> None:
    """Show the history, roll back (to --revision N or the previous one), then verify."""
    from aegis_delivery.cluster import deploy as deploy_flow  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        number = validation.positive_revision(revision) if revision is not None else None
        request = deploy_flow.RollbackRequest(env, number, yes, reason, allow_unverified)
        outcome = deploy_flow.rollback(session.runner, session.config, request, os.environ)
        reports.show_outcome(session.console, outcome)


@task(help={"env": ENV, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})
def verify(
    c: Context,
    env: str = "staging",
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
) -> None:
    """Rollouts, pods ready on the recorded digests, helm test, NATS: fail fast with reasons."""
    from aegis_delivery.cluster import inspect  # deferred: keeps `invoke --list` fast
    from aegis_delivery.verification import VerifyOutcome

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        if env == "local":  # the Compose stack of `invoke pipeline`, on the same endpoints
            from aegis_delivery import local as local_env

            config = session.config
            report = local_env.verify(session.runner, config, local_env.running_tag(config))
        else:
            report = inspect.verify(session.runner, session.config, env, os.environ)
        reports.show_outcome(session.console, VerifyOutcome(env, report))


@task(help={"env": ENV, "tag": "compare this tag instead of the release record's",
            "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})  # fmt: skip
def diff(
    c: Context,
    env: str = "staging",
    tag: str | None = None,
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
) -> None:
    """What a deploy would change: rendered manifests against the live release, as objects."""
    from aegis_delivery.cluster import inspect  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        found = inspect.diff(session.runner, session.config, env, os.environ, tag)
        reports.show_diff(session.console, env, found)


@task(help={"env": ENV, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})
def history(
    c: Context, env: str = "staging", dry_run: bool = False, summary: bool = False,
    json: bool = False,
) -> None:  # fmt: skip
    """The audit trail: revision, time, status, tag, digests, who and why."""
    from aegis_delivery.cluster import inspect  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        trail = inspect.audit(session.runner, session.config, env, os.environ)
        reports.show_history(session.console, trail)


@task(
    name="promote",
    help={"from_": "the environment whose running, verified digests are promoted",
          "to": "the environment they are deployed to", "reason": "why (recorded)",
          "record_only": "only read and verify the source and write the release record (CI)",
          "allow_unverified": ALLOW_UNVERIFIED,
          "yes": YES, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON},
)  # fmt: skip
def promote(
    c: Context,
    from_: str = "staging",
    to: str = "production",
    reason: str | None = None,
    record_only: bool = False,
    allow_unverified: bool = False,
    yes: bool = False,
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
) -> None:
    """Deploy to --to exactly the digests running and verified in --from: no rebuild, no re-tag."""
    from aegis_delivery import promote as promotion  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        request = promotion.PromoteRequest(from_, to, yes, reason, record_only, allow_unverified)
        result = promotion.promote(session.runner, session.config, request, os.environ)
        reports.show_published(session.console, result, session.config.build.release_file)


@task(help={"env": ENV, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})
def status(
    c: Context,
    env: str = "staging",
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
) -> None:
    """Release status and history, pods with images and readiness, services."""
    from aegis_delivery.cluster import inspect  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        document = inspect.status(session.runner, session.config, env, os.environ)
        reports.show_outcome(session.console, document)


@task(
    iterable=["skip", "build_arg"],
    help={"env": "local (Docker Compose on this machine) or an environment from the config",
          "skip": "skip this stage (repeatable): gate, build, scan, push, deploy, verify",
          "offline": "no registry reachable: local base images, vulnerability scan OFF, local only",
          "full_gate": "run every gate (a local run runs lint, format, typecheck, logic tests)",
          "build_arg": BUILD_ARG, "dry_run": DRY_RUN, "verbose": VERBOSE},
)  # fmt: skip
def pipeline(
    c: Context,
    env: str = "local",
    skip: list[str] | None = None,
    build_arg: list[str] | None = None,
    offline: bool = False,
    full_gate: bool = False,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """The whole CI pipeline here: gate, build, scan, push, deploy, verify; stops at a failure."""
    from aegis_delivery import pipeline as pipeline_flow  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, verbose=verbose) as session:
        request = pipeline_flow.PipelineRequest(
            env, tuple(skip or ()), tuple(build_arg or ()), offline, full_gate
        )
        ran = pipeline_flow.run(session.runner, session.config, request)
        verdict = "planned (dry run)" if session.runner.dry_run else "passed"
        session.console.success(f"pipeline ({env}): {', '.join(ran)} {verdict}")


@task(help={"keep_data": "keep the local database's volume (and its password)",
            "dry_run": DRY_RUN})  # fmt: skip
def down(c: Context, keep_data: bool = False, dry_run: bool = False) -> None:
    """Stop the local stack started by `invoke pipeline --env local`: nothing is left behind."""
    from aegis_delivery import local as local_env  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run) as session:
        local_env.down(session.runner, session.config, keep_data=keep_data)


PR = "the pull request's number (1 to 999999999)"


@task(help={"pr": PR, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})
def preview(
    c: Context, pr: str, dry_run: bool = False, summary: bool = False, json: bool = False
) -> None:
    """Deploy pull request N's recorded images to its own namespace; prints its URL."""
    from aegis_delivery import preview_flow  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        number = validation.pull_request_number(pr)
        outcome = preview_flow.up(session.runner, session.config, number, os.environ)
        reports.show_preview(session.console, outcome)


@task(name="preview-down", help={"pr": PR, "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})
def preview_down(
    c: Context, pr: str, dry_run: bool = False, summary: bool = False, json: bool = False
) -> None:
    """Uninstall pull request N's preview and delete its namespace; absent is done (exit 0)."""
    from aegis_delivery import preview_flow  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        number = validation.pull_request_number(pr)
        outcome = preview_flow.down(session.runner, session.config, number, os.environ)
        reports.show_preview(session.console, outcome)


@task(name="preview-gc", help={"dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})
def preview_gc(
    c: Context, dry_run: bool = False, summary: bool = False, json: bool = False
) -> None:
    """Delete every expired preview and every one whose pull request is closed (GITHUB_TOKEN)."""
    from aegis_delivery import preview_flow  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        found = preview_flow.gc(session.runner, session.config, os.environ)
        reports.show_previews(session.console, found)


@task(name="preview-list", help={"dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON})
def preview_list(
    c: Context, dry_run: bool = False, summary: bool = False, json: bool = False
) -> None:
    """Every preview: pull request, sha, age, expiry, URL and release status."""
    from aegis_delivery import preview_flow  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        found = preview_flow.listing(session.runner, session.config, os.environ)
        reports.show_previews(session.console, found)
