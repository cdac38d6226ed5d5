"""The quality gate as the task runner sees it: one ``nox`` command, the same one CI runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from aegis_delivery import clock
from aegis_delivery.runner import Runner, Step
from aegis_delivery.tools import beside_interpreter


def nox_command() -> str:
    """The nox installed beside this Python (`.venv/bin/nox`, no activation needed), else PATH's."""
    beside = beside_interpreter("nox")
    return str(beside) if beside is not None else "nox"


def nox_step(sessions: Sequence[str]) -> Step:
    """``nox`` runs every default session; named sessions narrow it (``-s lint tests``)."""
    argv: tuple[str, ...] = (nox_command(),)
    if sessions:
        argv += ("--sessions", *sessions)
    return Step(argv=argv, purpose="quality gates")


GATE_RECORD = "gate-passed.json"  # in the work directory


def tree_fingerprint(runner: Runner, root: Path, own_outputs: Path) -> str:
    """A hash of every file git would see (tracked, or untracked and not ignored), by content.

    The quick gate's verdict depends on nothing else, so an equal fingerprint means the gate
    would pass again; any edit, added or deleted file changes it.
    """
    listed = runner.run(
        Step(
            (
                "git",
                "-C",
                str(root),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ),
            "list the files the gate checks",
            capture=True,
            changes=False,
        )
    ).stdout
    digest = hashlib.sha256()
    # The toolkit's own outputs (its work directory) are not inputs.
    own = f"{own_outputs.relative_to(root).as_posix()}/" if own_outputs.is_relative_to(root) else ""
    names = set(listed.split("\0"))
    for name in sorted(n for n in names if n and not (own and n.startswith(own))):
        digest.update(name.encode() + b"\0")
        try:
            digest.update(hashlib.sha256((root / name).read_bytes()).digest())
        except OSError:  # deleted from the tree, still in the index
            digest.update(b"\0missing")
    return digest.hexdigest()


def passed_before(record: Path, sessions: Sequence[str], fingerprint: str) -> str | None:
    """When these sessions last passed on exactly this tree (None: never, or a changed tree).

    The record is the toolkit's own cache: unreadable or foreign content just means "run it".
    """
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(document, dict):
        return None
    same = document.get("fingerprint") == fingerprint and document.get("sessions") == list(sessions)
    passed_at = document.get("passed_at")
    return passed_at if same and isinstance(passed_at, str) else None


def remember_pass(runner: Runner, record: Path, sessions: Sequence[str], fingerprint: str) -> None:
    document = {
        "fingerprint": fingerprint,
        "sessions": list(sessions),
        "passed_at": clock.iso(),
    }
    runner.write_file(record, json.dumps(document) + "\n", "remember the gate passed")


def quick_gate(runner: Runner, root: Path, work: Path, sessions: Sequence[str]) -> bool:
    """Run the quick gate unless it passed on exactly this tree; whether it ran."""
    record = work / GATE_RECORD
    fingerprint = tree_fingerprint(runner, root, work)
    passed_at = passed_before(record, sessions, fingerprint)
    if passed_at is not None:
        runner.console.info(
            f"gate: {' '.join(sessions)} passed on exactly this tree at {passed_at}: not run "
            "again (any change runs it; --full-gate runs every gate)"
        )
        return False
    runner.run(nox_step(sessions))
    remember_pass(runner, record, sessions, fingerprint)
    return True
