"""Where a run happens: the GitHub Actions event when there is one, else the local checkout.

Everything downstream (tags, descriptions, publishing decisions) reads this one object, so a
laptop and CI compute the same answer from the same commit.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from aegis_delivery.ci import current_user
from aegis_delivery.errors import InputError, ToolUnavailable


@dataclass(frozen=True)
class BuildContext:
    """The event, ref and commits a run is for."""

    source: str  # "github" or "local"
    event: str  # push, pull_request, workflow_dispatch, ..., or "local"
    ref: str  # refs/heads/main, refs/tags/v1.2.3, refs/pull/7/merge
    sha: str  # the commit checked out (for a pull request: GitHub's merge commit)
    repository: str | None  # OWNER/REPO when known
    actor: str
    pull_request: int | None = None
    pull_request_head_sha: str | None = None
    # A pull request whose head lives in another repository: its code gets no secrets.
    pull_request_fork: bool = False
    pull_request_author: str | None = None  # who opened it (the payload's user.login)
    # The source commit's time (git's %cI): the image's `created` label, so a rebuild of the
    # same commit is the same image. None when git cannot say (the label is then "now").
    committed: str | None = None

    @property
    def branch(self) -> str | None:
        return self.ref.removeprefix("refs/heads/") if self.ref.startswith("refs/heads/") else None

    @property
    def git_tag(self) -> str | None:
        return self.ref.removeprefix("refs/tags/") if self.ref.startswith("refs/tags/") else None

    @property
    def source_sha(self) -> str:
        """The commit the author pushed: a pull request's head, not its merge commit."""
        return self.pull_request_head_sha or self.sha


def _event_payload(path: str | None) -> Mapping[str, object]:
    if not path:
        return {}
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(
            f"GITHUB_EVENT_PATH={path} is not a readable JSON event: {error}"
        ) from None
    return document if isinstance(document, dict) else {}


def from_github(environ: Mapping[str, str]) -> BuildContext:
    """The context of a GitHub Actions run, from its documented environment variables."""
    missing = [name for name in ("GITHUB_REF", "GITHUB_SHA") if not environ.get(name)]
    if missing:
        raise InputError(f"GitHub Actions context is incomplete: {', '.join(missing)} not set")
    event = environ["GITHUB_EVENT_NAME"]
    number: int | None = None
    head_sha: str | None = None
    fork, author = False, None
    if event in {"pull_request", "pull_request_target"}:
        payload = _event_payload(environ.get("GITHUB_EVENT_PATH"))
        pull_request = payload.get("pull_request")
        if isinstance(pull_request, dict):
            raw_number = pull_request.get("number")
            number = raw_number if isinstance(raw_number, int) else None
            head = pull_request.get("head")
            if isinstance(head, dict) and isinstance(head.get("sha"), str):
                head_sha = head["sha"]
            fork = pull_request_fork(pull_request, payload, environ)
            user = pull_request.get("user")
            login = user.get("login") if isinstance(user, dict) else None
            author = login if isinstance(login, str) else None
        if number is None:
            # refs/pull/N/merge carries the number when the payload does not.
            parts = environ["GITHUB_REF"].split("/")
            if len(parts) == 4 and parts[1] == "pull" and parts[2].isdigit():
                number = int(parts[2])
        if number is None:
            raise InputError("pull_request event without a pull request number in the payload")
    return BuildContext(
        source="github",
        event=event,
        ref=environ["GITHUB_REF"],
        sha=environ["GITHUB_SHA"],
        repository=run_repository(environ),
        actor=environ.get("GITHUB_ACTOR", "github-actions"),
        pull_request=number,
        pull_request_head_sha=head_sha,
        pull_request_fork=fork,
        pull_request_author=author,
    )


def pull_request_fork(
    pull_request: Mapping[str, object], payload: Mapping[str, object], environ: Mapping[str, str]
) -> bool:
    """Whether the head is another repository's: a fork, a deleted fork (no head repository),
    or a payload that does not say (treated as a fork: it gets no secrets either way)."""
    head = pull_request.get("head")
    repo = head.get("repo") if isinstance(head, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    base = payload.get("repository")
    own = base.get("full_name") if isinstance(base, dict) else None
    own = own or environ.get("GITHUB_REPOSITORY")
    return not (isinstance(name, str) and isinstance(own, str) and name.lower() == own.lower())


# GitHub's grammar: an owner of 1-39 letters, digits or inner hyphens; a name of 1-100
# letters, digits, '.', '-' or '_' (not '.' or '..').
GITHUB_REPOSITORY = re.compile(
    r"(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?)/(?P<name>[A-Za-z0-9._-]{1,100})"
)


def github_repository(environ: Mapping[str, str]) -> str | None:
    """``GITHUB_REPOSITORY`` checked before anything runs: it becomes part of every image
    reference (a local clone's path there once made ``localhost:5999//srv/checkout/...``)."""
    value = environ.get("GITHUB_REPOSITORY") or None
    if value is None:
        return None
    found = GITHUB_REPOSITORY.fullmatch(value)
    if found is None or found["name"] in {".", ".."}:
        raise InputError(
            f"GITHUB_REPOSITORY={value!r} is not a GitHub repository: expected OWNER/NAME, "
            "e.g. aegistrader/aegistrader (under act, give the clone an "
            "https://github.com/OWNER/NAME.git origin)"
        )
    return value


def run_repository(environ: Mapping[str, str]) -> str | None:
    """The repository `detect` gives a run, without asking git: GitHub's in Actions, else none
    (the configured one applies)."""
    return github_repository(environ) if environ.get("GITHUB_EVENT_NAME") else None


def _git(root: Path, *arguments: str) -> str | None:
    try:
        # The user's own git, wherever PATH has it; a fixed, read-only query.
        result = subprocess.run(  # noqa: S603
            ["git", *arguments],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except FileNotFoundError:
        raise ToolUnavailable("git is not installed: it is needed to read the commit") from None
    return result.stdout.strip() if result.returncode == 0 else None


def from_git(root: Path, environ: Mapping[str, str]) -> BuildContext:
    """The context of a local checkout: its branch (or exact tag) and HEAD."""
    sha = _git(root, "rev-parse", "HEAD")
    if not sha:
        raise InputError(f"{root} is not a git checkout with a commit: cannot compute image tags")
    tag = _git(root, "describe", "--exact-match", "--tags", "HEAD")
    branch = _git(root, "symbolic-ref", "--quiet", "--short", "HEAD")
    ref = f"refs/tags/{tag}" if tag else f"refs/heads/{branch}" if branch else "HEAD"
    return BuildContext(
        source="local",
        event="local",
        ref=ref,
        sha=sha,
        repository=None,
        actor=current_user(environ),
    )


def detect(root: Path, environ: Mapping[str, str] | None = None) -> BuildContext:
    """GitHub's context when GitHub Actions set it, else the local checkout's; with the source
    commit's time, read here once so that planning stays pure."""
    env = os.environ if environ is None else environ
    context = from_github(env) if env.get("GITHUB_EVENT_NAME") else from_git(root, env)
    return replace(context, committed=commit_time(root, context.source_sha))


def commit_time(root: Path, sha: str) -> str | None:
    """The commit's time as git records it, or None where git cannot say."""
    try:
        return _git(root, "show", "-s", "--format=%cI", sha) or None
    except ToolUnavailable:
        return None
