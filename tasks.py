"""AegisTrader delivery tasks. Each task is flags -> one call into ``aegis_delivery`` -> one report.

Run ``invoke --list`` for the list and ``invoke --help TASK`` for a task's flags. Exit codes
follow one contract (README, "Exit codes"): 0 ok, 1 failed, 2 bad input, 3 gate findings,
4 tool unavailable, 6 provenance refused, 130/143 interrupted. Invoke's own ``--dry`` and
each task's ``--dry-run`` mean the same thing: every change is printed, never made.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import cast

from invoke.context import Context
from invoke.tasks import task as invoke_task

from aegis_delivery import gates, reports, validation
from aegis_delivery.session import task_session

TaskBody = Callable[..., None]


def task(**options: object) -> Callable[[TaskBody], TaskBody]:
    """Invoke's @task without automatic short flags: no letter means two things in two tasks."""
    return cast(Callable[[TaskBody], TaskBody], invoke_task(auto_shortflags=False, **options))


DRY_RUN = "print every change instead of making it (questions still run); same as `invoke --dry`"
SUMMARY = "also write the result to GitHub's step summary ($GITHUB_STEP_SUMMARY)"
JSON = "print the result as one JSON document on stdout"
VERBOSE = "stream every command's raw output (BuildKit, helm, nox); default: one line each"
ALLOW_UNVERIFIED = (
    "deploy images whose provenance does not verify: only where the environment's policy"
    " allows it; recorded in the release description and the audit trail"
)
CA_BUNDLE = (
    "a PEM CA bundle for the builds (BuildKit secret ca_bundle); default: AEGIS_CA_BUNDLE,"
    " SSL_CERT_FILE, then the system store"
)


@task(help={"json": JSON})
def config(c: Context, json: bool = False) -> None:
    """Show the delivery settings from pyproject.toml [tool.aegis], validated."""
    with task_session(c, json_output=json) as session:
        reports.show_config(session.console, session.config)


@task(help={"json": JSON, "ca_bundle": CA_BUNDLE})
def doctor(c: Context, json: bool = False, ca_bundle: str | None = None) -> None:
    """Check every tool the tasks use (and its version) and the CA bundle builds trust."""
    with task_session(c, json_output=json) as session:
        reports.show_tools(session, ca_bundle)


@task(
    iterable=["session"],
    help={"session": "run only this Nox session (repeatable)", "dry_run": DRY_RUN, "json": JSON},
)
def gate(
    c: Context, session: list[str] | None = None, dry_run: bool = False, json: bool = False
) -> None:
    """Run the quality gates (the same `nox` CI runs); --json: results and figures."""
    with task_session(c, dry_run=dry_run, json_output=json) as task:
        gates.run_gates(task.runner, task.config, session or [])


APP = "only this app (repeatable); default: every app in [tool.aegis.apps]"
TAG = "an explicit image tag instead of the computed ones (emergency deploys)"
PLATFORM = "comma-separated platforms; default: the host's locally, the apps' list in CI"
FORCE = "publish even from a context that publishes nothing (a PR, a feature branch)"
SARIF = "also write SARIF files (GitHub code scanning) into this directory"
BUILD_ARG = "KEY=VALUE for every app or APP:KEY=VALUE for one, e.g. a BASE_IMAGE (repeatable)"


@task(help={"tag": TAG, "summary": SUMMARY, "json": JSON})
def tags(c: Context, tag: str | None = None, summary: bool = False, json: bool = False) -> None:
    """Print the image references for this commit (GitHub event or local checkout)."""
    from aegis_delivery.release import publish  # deferred: keeps `invoke --list` fast

    with task_session(c, json_output=json, summary=summary) as session:
        reports.show_tags(session.console, publish.plan_images(session.config, tag=tag))


@task(
    iterable=["app", "build_arg"],
    help={"app": APP, "tag": TAG, "platform": PLATFORM, "ca_bundle": CA_BUNDLE,
          "build_arg": BUILD_ARG, "no_cache": "rebuild every step, as a fresh machine does",
          "dry_run": DRY_RUN, "verbose": VERBOSE},
)  # fmt: skip
def build(
    c: Context,
    app: list[str] | None = None,
    tag: str | None = None,
    platform: str | None = None,
    ca_bundle: str | None = None,
    build_arg: list[str] | None = None,
    no_cache: bool = False,
    dry_run: bool = False,
    verbose: bool = False,
) -> None:
    """Build the images with buildx (concurrently), tagged for this commit."""
    from aegis_delivery.release import publish  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, verbose=verbose) as session:
        plan = publish.plan_images(
            session.config, apps=app or [], tag=tag, platform=platform, ca_bundle=ca_bundle,
            build_args=build_arg or [], no_cache=no_cache,
        )  # fmt: skip
        publish.build(session.runner, plan)


@task(
    iterable=["app", "build_arg"],
    help={"app": APP, "tag": TAG, "build": "build the images first (one CI step)",
          "build_arg": BUILD_ARG, "sarif": SARIF, "dry_run": DRY_RUN, "summary": SUMMARY,
          "json": JSON},
)  # fmt: skip
def scan(
    c: Context,
    app: list[str] | None = None,
    tag: str | None = None,
    build: bool = False,
    build_arg: list[str] | None = None,
    sarif: str | None = None,
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
) -> None:
    """Scan the built images and Dockerfiles with Trivy; exit 3 on findings, 4 if it can't."""
    from aegis_delivery.release import images, publish  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json, summary=summary) as session:
        plan = publish.plan_images(  # what is here: the host's platform, in CI too
            session.config, apps=app or [], tag=tag, build_args=build_arg or [],
            platform=images.host_platform(),
        )  # fmt: skip
        found = publish.build_and_scan(
            session.runner, session.config, plan, build=build, sarif=Path(sarif) if sarif else None
        )
        reports.show_scan(session.console, found, session.config.scan.vulnerabilities)


@task(
    iterable=["app", "build_arg"],
    help={"app": APP, "tag": TAG, "platform": PLATFORM, "ca_bundle": CA_BUNDLE,
          "build_arg": BUILD_ARG, "force": FORCE, "sarif": SARIF,
          "stage": "a CI platform job: build, scan and push this --platform under its staging "
                   "tag, for the merge job (no release tag moves, no record)",
          "merge": "the CI merge job: merge the staged platforms (platforms/ in the work "
                   "directory) into one index under every tag, then write the release record; "
                   "builds nothing",
          "dry_run": DRY_RUN, "summary": SUMMARY, "json": JSON, "verbose": VERBOSE},
)  # fmt: skip
def push(
    c: Context,
    app: list[str] | None = None,
    tag: str | None = None,
    platform: str | None = None,
    ca_bundle: str | None = None,
    build_arg: list[str] | None = None,
    force: bool = False,
    sarif: str | None = None,
    stage: bool = False,
    merge: bool = False,
    dry_run: bool = False,
    summary: bool = False,
    json: bool = False,
    verbose: bool = False,
) -> None:
    """Build, scan, publish the tags, then write the release record that deploy reads."""
    from aegis_delivery.release import publish  # deferred: keeps `invoke --list` fast

    with task_session(
        c, dry_run=dry_run, json_output=json, summary=summary, verbose=verbose
    ) as session:
        plan = publish.plan_images(
            session.config, apps=app or [], tag=tag, platform=platform, ca_bundle=ca_bundle,
            build_args=build_arg or [], stage=stage,
        )  # fmt: skip
        result = publish.push(
            session.runner, session.config, plan, force=force, stage_only=stage, merge=merge,
            sarif_directory=Path(sarif) if sarif else None,
        )  # fmt: skip
        reports.show_published(session.console, result, session.config.build.release_file)


ENV = "the environment from [tool.aegis.environments]"
YES = "do not ask (CI never asks): confirmation, and the reason must then be given as a flag"


@task(help={"app": "the app whose SBOM to fetch (e.g. monitor-api)",
            "output": "write the SBOM to this file (default: the SBOM itself on stdout)",
            "dry_run": DRY_RUN, "json": JSON})  # fmt: skip
def sbom(
    c: Context, app: str, output: str | None = None, dry_run: bool = False, json: bool = False
) -> None:
    """The CycloneDX SBOM attached in the registry to the recorded image's digest."""
    from aegis_delivery.release import sbom as sbom_flow  # deferred: keeps `invoke --list` fast
    from aegis_delivery.release.record import read_record

    with task_session(c, dry_run=dry_run, json_output=json) as session:
        record = read_record(session.config.build.release_file)
        fetched = sbom_flow.fetch_recorded(record, app, os.environ, session.config.registry)
        if output is not None:
            session.runner.write_file(Path(output), fetched.document.decode(), f"SBOM of {app}")
        reports.show_sbom(session.console, fetched, output)


@task(
    help={
        "app": "the app whose provenance to show (e.g. monitor-api)",
        "tag": "that tag's image instead of the release record's",
        "env": "judge it by this environment's policy",
        "dry_run": DRY_RUN,
        "json": JSON,
    }
)
def provenance(
    c: Context,
    app: str,
    tag: str | None = None,
    env: str = "staging",
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """The signed provenance attached to an image and whether --env would deploy it (exit 6)."""
    from aegis_delivery.release import attestation  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json) as session:
        pinned = attestation.image_of(session.runner, session.config, app, tag, os.environ)
        found = attestation.inspect(session.runner, session.config, app, pinned, env, os.environ)
        reports.show_provenance(session.console, found)


@task(help={"private_key": "where the private key goes (default ~/.config/aegis/signing-key.pem;"
                           " never inside the repository)",
            "public_key": "where the public key goes (default: the first trusted key's path)",
            "kind": "ecdsa (P-256, the default) or ed25519", "force": "replace existing files",
            "dry_run": DRY_RUN, "json": JSON})  # fmt: skip
def keygen(
    c: Context,
    private_key: str | None = None,
    public_key: str | None = None,
    kind: str = "ecdsa",
    force: bool = False,
    dry_run: bool = False,
    json: bool = False,
) -> None:
    """A new signing key pair: the private half 0600 for the secret, the public half printed."""
    from aegis_delivery.release import keygen as keys  # deferred: keeps `invoke --list` fast

    with task_session(c, dry_run=dry_run, json_output=json) as session:
        made = keys.keygen(
            session.runner, session.config, private_key=private_key, public_key=public_key,
            kind=kind, force=force,
        )  # fmt: skip
        reports.show_keygen(session.console, made)


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
