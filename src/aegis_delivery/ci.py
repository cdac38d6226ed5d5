"""Where a run happens, one rule each: are we in CI (console, prompts, build plans), and who
runs it (release records, helm descriptions, the deploy lock)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    """``CI`` set to true or 1, as GitHub Actions and most CI systems do."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").strip().lower() in {"true", "1"}


def on_github_actions(environ: Mapping[str, str] | None = None) -> bool:
    """A GitHub Actions runner: where the ``gha`` cache and step summaries exist."""
    env = os.environ if environ is None else environ
    return in_ci(env) and env.get("GITHUB_ACTIONS") == "true"


def current_user(environ: Mapping[str, str] | None = None) -> str:
    """The GitHub actor in Actions, else the local user (USER, USERNAME, then the account)."""
    import getpass

    env = os.environ if environ is None else environ
    named = env.get("GITHUB_ACTOR") or env.get("USER") or env.get("USERNAME")
    if named:
        return named
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name anywhere (a bare container)
        return "unknown"


def default_branch_refusal(environ: Mapping[str, str] | None = None) -> str | None:
    """Why this GitHub Actions run may not release (None when it may, or outside Actions).

    An emergency release skips the gates and holds the registry and cluster credentials, so in
    Actions it runs only from the repository's default branch, whatever the environment's
    settings say. The default branch comes from the event payload (``GITHUB_EVENT_PATH``).
    """
    env = os.environ if environ is None else environ
    if not on_github_actions(env):
        return None
    ref = env.get("GITHUB_REF", "")
    try:
        event = json.loads(Path(env.get("GITHUB_EVENT_PATH", "")).read_text(encoding="utf-8"))
        default = event["repository"]["default_branch"]
    except (OSError, ValueError, KeyError, TypeError):
        return "the default branch is unknown (no GITHUB_EVENT_PATH payload): refusing to release"
    if not isinstance(default, str) or ref != f"refs/heads/{default}":
        return (
            f"emergency deploys run only from the default branch refs/heads/{default}, "
            f"not {ref or 'an unknown ref'}: dispatch the workflow from {default}"
        )
    return None
