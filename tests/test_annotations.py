"""The annotation-coverage figure counts what mypy --strict would demand."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aegis_delivery import annotation_coverage
from aegis_delivery.annotation_coverage import measure, scan_source

SOURCE = textwrap.dedent("""
    def complete(a: int, *args: str, b: int = 1, **kwargs: str) -> int:
        def inner(x):
            return x
        return a

    def no_return(a: int):
        pass

    class Thing:
        def method(self, value: int) -> None: ...
        @staticmethod
        def static(value) -> None: ...
        @classmethod
        def build(cls) -> "Thing": ...
        async def fetch(self, *args, **kwargs) -> None: ...
    """)


def test_counts_functions_and_names_what_is_missing() -> None:
    total, missing = scan_source(SOURCE, Path("m.py"))
    assert total == 7
    found = {item.name: item.missing for item in missing}
    assert found == {
        "inner": ("x", "return"),
        "no_return": ("return",),
        "static": ("value",),
        "fetch": ("*args", "**kwargs"),
    }
    assert missing[0].describe() == "m.py:3: inner() lacks annotations for: x, return"


def test_report_figures(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(SOURCE)
    (tmp_path / "b.py").write_text("def f() -> None: ...\n")
    (tmp_path / "notes.txt").write_text("def g(): ...\n")
    report = measure([tmp_path / "pkg", tmp_path / "b.py", tmp_path / "notes.txt"])
    assert (report.total, report.annotated) == (8, 4)
    assert report.summary() == "annotation coverage: 50.0% (4 of 8 functions)"
    assert measure([]).percent == 100.0


def test_the_gate_fails_below_the_configured_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.py").write_text(SOURCE)
    assert annotation_coverage.main([str(tmp_path)]) == 3
    output = capsys.readouterr().out
    assert "annotation coverage: 42.9% (3 of 7 functions)" in output
    assert "below the required 100.0%" in output


def test_the_repository_itself_is_fully_annotated(capsys: pytest.CaptureFixture[str]) -> None:
    assert annotation_coverage.main([]) == 0
    assert "annotation coverage: 100.0%" in capsys.readouterr().out
