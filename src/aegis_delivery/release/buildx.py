"""Running the builds: the Docker engine's checks, then every app's buildx build at once
through python-on-whales, each one's BuildKit output in its own log, and a failure said in one
line (a refused certificate, an unpullable base image) with the log's tail."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from aegis_delivery import progress
from aegis_delivery.console import Console
from aegis_delivery.errors import CommandFailed, ToolUnavailable
from aegis_delivery.release.images import BUILDX_HINT, BuildRequest
from aegis_delivery.release.trust import certificate_failure
from aegis_delivery.runner import Action, Runner, Step

# -- the engine -----------------------------------------------------------------------------


def require_engine(runner: Runner) -> None:
    """The Docker engine answers and buildx is installed; checked before anything is built."""
    engine = runner.probe(
        Step(("docker", "info", "--format", "{{.ServerVersion}}"), "engine", capture=True)
    )
    if not engine.ok:
        detail = (engine.stderr or engine.stdout).strip().splitlines()[-1:] or ["no answer"]
        raise ToolUnavailable(f"the Docker engine is not running or not reachable: {detail[0]}")
    buildx = runner.probe(Step(("docker", "buildx", "version"), "buildx", capture=True))
    if not buildx.ok:
        raise ToolUnavailable(BUILDX_HINT)


def label(request: BuildRequest) -> str:
    """How a build is named in logs: the app, and its platform when it is one of several."""
    return f"{request.app} {request.platform}" if request.staged else request.app


@dataclass
class BuildOutcome:
    app: str
    log_file: Path
    error: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""  # label(request): the app, with its platform when staged
    seconds: float = 0.0

    @property
    def digest(self) -> str | None:
        value = self.metadata.get("containerimage.digest")
        return value if isinstance(value, str) else None


def say_done(console: Console, outcome: BuildOutcome) -> None:
    progress.say_finished(console, f"build {outcome.label or outcome.app}",
                          outcome.error is None, outcome.seconds, outcome.log_file)  # fmt: skip


def _build_one(
    request: BuildRequest, console: Console, log_file: Path, lock: threading.Lock, echo: bool
) -> BuildOutcome:
    """One build; its BuildKit output goes to *log_file*, and to the console only with
    *echo* (--verbose): otherwise one line says when it ends and how long it took."""
    from python_on_whales import docker
    from python_on_whales.exceptions import DockerException

    outcome = BuildOutcome(request.app, log_file, label=label(request))
    started = time.monotonic()
    if not echo:
        progress.say_started(console, f"build {label(request)}")
    with log_file.open("w", encoding="utf-8") as log:
        try:
            logs = docker.buildx.build(**request.whales_arguments(), stream_logs=True)
            for line in cast("Iterator[str]", logs):
                log.write(line)
                log.flush()  # the log is where a reader (or `tail -f`) follows the build
                if echo:
                    with lock:
                        console.output_line(f"[{label(request)}] {line.rstrip()}")
        except DockerException as error:
            outcome.error = f"exit code {error.return_code}"
            log.write(f"\n{error}\n")
    outcome.seconds = time.monotonic() - started
    if not echo and console.plain:  # at a terminal the main thread says it, after the live line
        say_done(console, outcome)
    if outcome.error is None and request.metadata_file.exists():
        outcome.metadata = json.loads(request.metadata_file.read_text(encoding="utf-8"))
    return outcome


# Drivers that cannot export a build cache (`--cache-to`): BuildKit refuses the whole build.
NO_CACHE_EXPORT_DRIVERS = frozenset({"docker"})


def builder_driver(runner: Runner) -> str | None:
    """The driver of the buildx builder in use (`docker`, `docker-container`, ...), if known."""
    found = runner.probe(Step(("docker", "buildx", "inspect"), "buildx builder", capture=True))
    if not found.ok:
        return None
    for line in found.stdout.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Driver" and value.strip():
            return value.strip()
    return None


def without_unsupported_cache(
    requests: Sequence[BuildRequest], driver: str | None, console: Console
) -> list[BuildRequest]:
    """A cache the builder cannot export degrades to no cache, said once, never a failure
    (the docker driver on a runner with no docker-container builder set up)."""
    cached = [r for r in requests if r.cache_to or r.cache_from]
    if driver not in NO_CACHE_EXPORT_DRIVERS or not cached:
        return list(requests)
    console.warn(
        f"the buildx builder uses the {driver} driver, which cannot export a build cache: "
        "building without one (a docker-container builder, e.g. docker/setup-buildx-action, "
        "restores it)"
    )
    return [replace(r, cache_from=None, cache_to=None) for r in requests]


def build_all(requests: Sequence[BuildRequest], runner: Runner) -> list[BuildOutcome]:
    """Build the apps concurrently; a failure names the app and keeps every app's log.

    The builds are one in-process action (python-on-whales runs buildx from threads):
    each app's command line is what the plan shows; in a dry run nothing is built ([])."""
    if any(r.cache_to or r.cache_from for r in requests):
        requests = without_unsupported_cache(requests, builder_driver(runner), runner.console)
    steps = tuple(Step(r.argv(), f"build {label(r)}") for r in requests)
    return runner.perform(Action(steps, lambda: _build_concurrently(requests, runner))) or []


def _build_concurrently(requests: Sequence[BuildRequest], runner: Runner) -> list[BuildOutcome]:
    require_engine(runner)
    lock = threading.Lock()
    for request in requests:
        request.metadata_file.parent.mkdir(parents=True, exist_ok=True)
    echo = runner.log_directory is None  # --verbose (or no task frame): the raw output
    building = "building " + ", ".join(label(request) for request in requests)
    with (
        runner.library_children(),
        ThreadPoolExecutor(max_workers=len(requests) or 1) as pool,
        runner.console.status(building) if not echo else contextlib.nullcontext(),
    ):
        futures = [
            pool.submit(
                _build_one,
                request,
                runner.console,
                request.metadata_file.with_suffix(".log"),
                lock,
                echo,
            )
            for request in requests
        ]
        outcomes = [future.result() for future in futures]
    if not echo and not runner.console.plain:
        for outcome in outcomes:
            say_done(runner.console, outcome)
    failed = [outcome for outcome in outcomes if outcome.error]
    if failed:
        names = ", ".join(f"{o.label or o.app} ({o.error}, log: {o.log_file})" for o in failed)
        trust = requests[0].trust if requests else None
        logs = [read_log(outcome.log_file) for outcome in failed]
        refused = next((line for text in logs if (line := certificate_failure(text, trust))), None)
        if refused:  # one line: the cause and the flag that fixes it, then where the log is
            raise CommandFailed(f"docker buildx build of {names}: {refused}", 1)
        remedy = next((r for text in logs if (r := unpullable_base(text))), None)
        tail = "" if echo else "\n".join(logs[0].splitlines()[-progress.TAIL_LINES :])
        raise CommandFailed(f"docker buildx build of {names}", 1, remedy or tail)
    return outcomes


# What BuildKit says when a base image cannot be pulled (no registry reachable, no such image).
_UNPULLABLE = re.compile(
    r"failed to resolve source metadata for (\S+)|pull access denied for (\S+)"
    r"|failed to do request: Head \"https://([^\"]+)\""
)


def read_log(log_file: Path) -> str:
    try:
        return log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def unpullable_base(log_text: str) -> str | None:
    """One line naming the image that could not be pulled, and the remedy."""
    found = _UNPULLABLE.search(log_text)
    if found is None:
        return None
    image = next(group for group in found.groups() if group).rstrip(":,")
    return (
        f"the base image {image} cannot be pulled from here: on a machine without registry "
        "access run `invoke pipeline --offline` (locally made base images)"
    )
