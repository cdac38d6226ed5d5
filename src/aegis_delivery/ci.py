"""The one rule for "are we in CI?", used by the console, the prompts and the build plans."""

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
