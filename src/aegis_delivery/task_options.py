"""What every task shares: Invoke's @task without automatic short flags, and the help texts
of the flags that mean the same in every task (``--dry-run``, ``--json``, ``--summary``, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from invoke.tasks import task as invoke_task

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
BUILD_ARG = "KEY=VALUE for every app or APP:KEY=VALUE for one, e.g. a BASE_IMAGE (repeatable)"
ENV = "the environment from [tool.aegis.environments]"
YES = "do not ask (CI never asks): confirmation, and the reason must then be given as a flag"
