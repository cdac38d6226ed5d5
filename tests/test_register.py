"""The one way to use the toolkit's gates and tasks: a repository's noxfile.py and tasks.py
register them from the library, and this repository's own do exactly that."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from invoke.tasks import Task

from aegis_delivery import nox_sessions, tasks_cluster, tasks_release
from aegis_delivery.invoke_tasks import collection
from tests.conftest import REPOSITORY

TASKS_PY = "from aegis_delivery.invoke_tasks import collection\n\nns = collection()\n"
NOXFILE = "from aegis_delivery.nox_sessions import register\n\nregister(only={only})\n"


def test_the_collection_holds_every_task_of_the_library_once() -> None:
    defined = {
        value.name
        for module in (tasks_release, tasks_cluster)
        for value in vars(module).values()
        if isinstance(value, Task)
    }
    assert set(collection().task_names) == defined
    assert {"deploy", "preview-down", "push", "sbom"} <= defined


def test_this_repository_registers_them_the_same_way() -> None:
    tasks = (REPOSITORY / "tasks.py").read_text()
    assert "from aegis_delivery.invoke_tasks import collection" in tasks
    assert "ns = collection()" in tasks and "@task" not in tasks
    noxfile = (REPOSITORY / "noxfile.py").read_text()
    assert "from aegis_delivery.nox_sessions import" in noxfile and "\nregister()\n" in noxfile
    names = [name for name, _, _ in nox_sessions.GATES]
    assert names == ["lint", "format", "typecheck", "tests", "logic", "dockerfiles", "chart",
                     "workflows", "docs", "build"]  # fmt: skip


@pytest.mark.entry
def test_another_repository_gets_the_tasks_and_the_gates_it_registers(tmp_path: Path) -> None:
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "tasks.py").write_text(TASKS_PY)
    (tmp_path / "noxfile.py").write_text(NOXFILE.format(only='["lint", "typecheck"]'))
    listed = subprocess.run(
        [sys.executable, "-m", "invoke", "--list", "--list-format", "json"], cwd=tmp_path,
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert {task["name"] for task in json.loads(listed)["tasks"]} == set(collection().task_names)
    nox = shutil.which("nox", path=str(Path(sys.executable).parent)) or "nox"
    sessions = subprocess.run(
        [nox, "--list", "--json"], cwd=tmp_path, capture_output=True, text=True, check=True,
        timeout=60,
    ).stdout  # fmt: skip
    assert {entry["session"] for entry in json.loads(sessions)} == {"lint", "typecheck"}
