"""The registry side of publishing: login through stdin, push with retries, digests checked.

The password only ever travels on stdin and is registered with the masker before anything
runs, so neither an argv, a log line nor an exception's text can carry it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aegis_delivery.errors import AegisError, CommandFailed, InputError
from aegis_delivery.retry import with_retries
from aegis_delivery.runner import Runner, Step
from aegis_delivery.validation import image_digest

PUSHED_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")
_Parsed = TypeVar("_Parsed")


def one_line(text: str, limit: int = 200) -> str:
    """A registry's (or a tool's) answer, squeezed onto one line for an error message."""
    return " ".join(text.split())[:limit]


@dataclass(frozen=True)
class Credentials:
    registry: str
    username: str
    password: str


def credentials(registry: str, environ: Mapping[str, str]) -> Credentials:
    """REGISTRY_USER/REGISTRY_PASSWORD, else GITHUB_TOKEN (as GITHUB_ACTOR); checked first."""
    user, password = environ.get("REGISTRY_USER", ""), environ.get("REGISTRY_PASSWORD", "")
    if user and password:
        return Credentials(registry, user, password)
    if user or password:
        missing = "REGISTRY_PASSWORD" if user else "REGISTRY_USER"
        raise InputError(f"REGISTRY_USER and REGISTRY_PASSWORD go together: {missing} is not set")
    token = environ.get("GITHUB_TOKEN", "")
    if token:
        return Credentials(registry, environ.get("GITHUB_ACTOR") or "github-actions", token)
    raise InputError(
        f"no credentials for {registry}: set GITHUB_TOKEN (with packages: write) or "
        "REGISTRY_USER and REGISTRY_PASSWORD"
    )


def login_step(credentials: Credentials) -> Step:
    return Step(
        argv=("docker", "login", "--username", credentials.username, "--password-stdin",
              credentials.registry),
        purpose=f"log in to {credentials.registry}",
        stdin=credentials.password,
        secrets=(credentials.password,),
        capture=True,
    )  # fmt: skip


def login(
    runner: Runner, credentials: Credentials, attempts: int = 1, base_seconds: float = 1.0
) -> None:
    """``docker login``: a transient failure (5xx, reset, timeout) is retried; a wrong
    password or token is final at once."""

    def attempt() -> None:
        result = runner.run(login_step(credentials), check=False)
        if result.ran and not result.ok:
            said = runner.masker.mask((result.stderr or result.stdout).strip())
            raise AegisError(
                f"login to {credentials.registry} as {credentials.username} failed: {said}"
            )

    def on_retry(number: int, delay: float, message: str) -> None:
        runner.console.warn(
            f"log in to {credentials.registry}: transient failure; retry {number} in {delay:.1f}s"
        )

    with_retries(
        attempt,
        attempts=attempts,
        base_seconds=base_seconds,
        describe=str,
        on_retry=on_retry,
    )


def _retrying(runner: Runner, step: Step, attempts: int, base_seconds: float) -> str | None:
    """Run a registry step with retries on transient failures; its stdout, None if not run."""

    def attempt() -> str | None:
        result = runner.run(step, check=False)
        if result.ran and not result.ok:
            said = runner.masker.mask((result.stderr or result.stdout).strip())
            raise CommandFailed(step.display(runner.masker), result.returncode, said)
        return result.stdout if result.ran else None

    def on_retry(number: int, delay: float, message: str) -> None:
        last = message.strip().splitlines()[-1] if message.strip() else message
        runner.console.warn(
            f"{step.purpose}: transient failure ({last}); retry {number} in {delay:.1f}s"
        )

    return with_retries(
        attempt,
        attempts=attempts,
        base_seconds=base_seconds,
        describe=str,
        on_retry=on_retry,
    )


def push(runner: Runner, reference: str, attempts: int, base_seconds: float) -> str | None:
    """``docker push``; returns the digest the registry acknowledged (None in a dry run)."""
    step = Step(("docker", "push", reference), f"push {reference}", capture=True)
    output = _retrying(runner, step, attempts, base_seconds)
    if output is None:
        return None
    found = PUSHED_DIGEST.search(output)
    if found is None:
        raise CommandFailed(f"docker push {reference}", 0, "the push reported no digest")
    return found.group(1)


def merge_platforms(
    runner: Runner,
    sources: Sequence[str],
    references: Sequence[str],
    attempts: int,
    base_seconds: float,
) -> None:
    """One index from the platforms' pushed (and scanned) digests, under every release tag.

    Nothing is rebuilt or re-pushed; the same sources in the same order give the same index
    digest, so a retried merge changes nothing.
    """
    argv = ["docker", "buildx", "imagetools", "create"]
    for reference in references:
        argv += ["--tag", reference]
    argv += list(sources)
    step = Step(tuple(argv), f"merge {len(sources)} platforms into {references[0]}", capture=True)
    _retrying(runner, step, attempts, base_seconds)


def _inspect(
    runner: Runner,
    step: Step,
    attempts: int,
    base_seconds: float,
    parse: Callable[[Any], _Parsed],
    unexpected: str,
) -> _Parsed | None:
    """Ask ``imagetools inspect`` and parse its JSON; any other answer is one clear error."""
    output = _retrying(runner, step, attempts, base_seconds)
    if output is None:
        return None
    try:
        return parse(json.loads(output))
    except (ValueError, KeyError, TypeError, InputError):
        answer = f"{unexpected}: {one_line(output)}"
        raise CommandFailed(step.display(runner.masker), 0, answer) from None


def index_platforms(
    runner: Runner, reference: str, attempts: int, base_seconds: float
) -> dict[str, str] | None:
    """``{os/arch: digest}`` of the index the registry serves for *reference*."""
    step = Step(
        ("docker", "buildx", "imagetools", "inspect", "--raw", reference),
        f"read the platforms of {reference}",
        capture=True,
        changes=False,
    )

    def platforms(document: Any) -> dict[str, str]:  # noqa: ANN401 - JSON
        return {
            f"{entry['platform']['os']}/{entry['platform']['architecture']}": image_digest(
                entry["digest"], what=f"a platform digest of {reference}"
            )
            for entry in document["manifests"]
        }

    return _inspect(runner, step, attempts, base_seconds, platforms, "not an image index")


def remote_digest(runner: Runner, reference: str, attempts: int, base_seconds: float) -> str | None:
    """The digest the registry serves for *reference* now."""
    step = Step(
        ("docker", "buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"),
        f"resolve {reference}",
        capture=True,
        changes=False,
    )

    def digest(document: Any) -> str:  # noqa: ANN401 - JSON
        return image_digest(document["digest"], what=f"digest of {reference}")

    return _inspect(runner, step, attempts, base_seconds, digest, "unexpected answer")


def push_tags(
    runner: Runner, app: str, references: Sequence[str], attempts: int, base_seconds: float
) -> str | None:
    """Push one single-platform app under its tags; the digest they serve (None in a dry run)."""
    acknowledged = {
        digest
        for reference in references
        if (digest := push(runner, reference, attempts, base_seconds)) is not None
    }
    if len(acknowledged) > 1:
        raise CommandFailed(f"push of {app}", 1, f"inconsistent digests {acknowledged}")
    expected = next(iter(acknowledged), None)
    check_tags(runner, references, expected, attempts, base_seconds)
    return expected


def check_tags(
    runner: Runner,
    references: Sequence[str],
    expected: str | None,
    attempts: int,
    base_seconds: float,
) -> None:
    """Every tag must serve the digest just published, or a concurrent push moved it."""
    for reference in references:
        served = remote_digest(runner, reference, attempts, base_seconds)
        if served is not None and served != expected:
            raise CommandFailed(
                f"verify {reference}",
                1,
                f"the registry serves {served} but {expected} was just pushed: "
                "the tag was moved by a concurrent push",
            )
