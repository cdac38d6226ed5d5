"""The parallel run's units of work (tests/conftest.py): a new real-part module must say what it
shares, or pytest-xdist would run its tests on several workers at once."""

from __future__ import annotations

import re

from tests.conftest import REPOSITORY, WHOLE_MODULES, numbered_repeats, unit_of_work

MARKED = re.compile(r"^pytestmark = .*pytest\.mark\.(docker|ui)\b", re.MULTILINE)


def test_every_docker_and_ui_module_is_one_unit_of_work() -> None:
    real_parts = [
        path.relative_to(REPOSITORY).as_posix()
        for folder in ("tests/docker", "tests/monitor_ui")
        for path in sorted((REPOSITORY / folder).glob("test_*.py"))
    ]
    marked = [
        path.relative_to(REPOSITORY).as_posix()
        for path in sorted((REPOSITORY / "tests").rglob("test_*.py"))
        if MARKED.search(path.read_text())
    ]
    assert real_parts and set(marked) >= set(real_parts)
    assert [module for module in marked if not module.startswith(WHOLE_MODULES)] == []


def test_a_real_part_module_is_one_unit_and_other_tests_run_alone() -> None:
    module = "tests/docker/test_publish.py"
    assert unit_of_work(f"{module}::test_a") == unit_of_work(f"{module}::test_b") == module
    assert unit_of_work("tests/test_cluster_lifecycle.py::test_x[helm3]") == (
        "tests/test_cluster_lifecycle.py::test_x[helm3]"
    )


def test_items_sharing_a_node_id_stay_distinct_units() -> None:
    ids = ["t.py::a", "t.py::b", "t.py::a", "t.py::a"]
    assert numbered_repeats(ids) == ["t.py::a", "t.py::b", "t.py::a#2", "t.py::a#3"]
