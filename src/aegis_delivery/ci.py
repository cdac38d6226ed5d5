"""Where a run happens, one rule each: are we in CI (console, prompts, build plans), and who
runs it (release records, helm descriptions, the deploy lock)."""

from __future__ import annotations

import os
from collections.abc import Mapping


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
