"""Shared fixtures: a console that records, and a runner built on it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from aegis_delivery.console import Console
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner

REPOSITORY = Path(__file__).resolve().parent.parent


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
    with Runner(console, masker, grace_seconds=5) as active:
        yield active
