"""Shared fixtures: a console that records, and a runner built on it."""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from aegis_delivery.console import Console
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner
from aegis_delivery.tools import install_hint

REPOSITORY = Path(__file__).resolve().parent.parent
# What a GitHub Actions runner sets for every step. The suite runs the same inside a workflow
# job as on a laptop: each test that needs one of these sets it itself (the entry points and
# tools under test read them: the gha cache, the event, the repository), and every other test
# runs without them. CI keeps its documented meaning (a missing real part fails).
ACTIONS_VARIABLES = ("GITHUB_", "RUNNER_", "ACTIONS_")


def without_actions_variables(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Remove the runner's variables from *environ*; returns the names removed."""
    removed = [name for name in environ if name.startswith(ACTIONS_VARIABLES)]
    for name in removed:
        del environ[name]
    return removed


def pytest_configure(config: pytest.Config) -> None:
    """Before any test module is imported (in each xdist worker too)."""
    without_actions_variables(os.environ)


# pytest-xdist: every test is its own unit of work, except in the modules whose tests share
# what a module fixture made (a registry, built images, a Compose project, the Next.js
# build): such a module is one unit, run on one worker in order. Nothing else is shared: each
# test that builds, scans or deploys has its own work directory (and each Docker module its
# own Trivy cache, tests/docker/conftest.py).
WHOLE_MODULES = ("tests/docker/", "tests/apps/test_images.py", "tests/monitor_ui/")


def unit_of_work(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0]
    return module if module.startswith(WHOLE_MODULES) else nodeid


def numbered_repeats(collection: Sequence[str]) -> list[str]:
    """Items can share a node id (schemathesis's operations do under pytest 9.2), and xdist's
    scope scheduler keys its work by id: with the repeats numbered, each one runs."""
    seen: Counter[str] = Counter()
    numbered = []
    for nodeid in collection:
        seen[nodeid] += 1
        numbered.append(nodeid if seen[nodeid] == 1 else f"{nodeid}#{seen[nodeid]}")
    return numbered


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scope scheduler with the units above, largest first, so the long modules
    start at once beside the rest. (Not xdist's `xdist_group` marker: under pytest 9.2 it
    no longer reaches the scheduler.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrTestScheduling(LoadScopeScheduling):  # type: ignore[misc]  # untyped
        def _split_scope(self, nodeid: str) -> str:
            return unit_of_work(nodeid)

        def add_node_collection(self, node: object, collection: Sequence[str]) -> None:
            super().add_node_collection(node, numbered_repeats(collection))

    return ModuleOrTestScheduling(config, log)


def commit_checkout(root: Path, message: str = "x") -> None:
    """Make *root* a git checkout on main with everything in it committed."""
    import subprocess

    identity = ("-c", "user.name=t", "-c", "user.email=t@example.com")
    for arguments in (
        ("init", "-q", "-b", "main"),
        ("add", "-A"),
        (*identity, "commit", "-qm", message),
    ):
        subprocess.run(["git", "-C", str(root), *arguments], check=True, capture_output=True)


class RecordingConsole(Console):
    """A plain console writing into buffers the test can read."""

    def __init__(self, masker: Masker, *, json_mode: bool = False) -> None:
        self.stdout = io.StringIO()
        self.stderr = io.StringIO()
        super().__init__(masker, json_mode=json_mode, out=self.stdout, err=self.stderr, plain=True)

    @property
    def text(self) -> str:
        return self.stdout.getvalue() + self.stderr.getvalue()


@pytest.fixture
def masker() -> Masker:
    return Masker()


@pytest.fixture
def console(masker: Masker) -> RecordingConsole:
    return RecordingConsole(masker)


@pytest.fixture
def runner(console: RecordingConsole, masker: Masker) -> Iterator[Runner]:
    with Runner(console, masker, grace_seconds=5, install_hint=install_hint) as active:
        yield active
