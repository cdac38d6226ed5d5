"""The build and release tasks (config, doctor, gate, tags, build, scan, push, sbom,
provenance, keygen). Exit codes follow one contract (docs/exit-codes.md): 0 ok, 1 failed,
2 bad input, 3 gate findings, 4 tool unavailable, 6 provenance refused, 130/143 interrupted.
"""

from __future__ import annotations

import os
from pathlib import Path

from invoke.context import Context

from aegis_delivery import gates, reports
from aegis_delivery.session import task_session
from aegis_delivery.task_options import (
    BUILD_ARG,
    CA_BUNDLE,
    DRY_RUN,
    JSON,
    SUMMARY,
    VERBOSE,
    task,
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
