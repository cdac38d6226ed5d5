"""Annotation coverage: the share of functions whose parameters and return are all annotated.

mypy --strict rejects unannotated functions, but it reports errors, not a figure. This gate
measures the figure itself from the syntax tree and fails below the threshold configured in
``[tool.aegis.gates] annotation_coverage``.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery import gate_figures
from aegis_delivery.config import load_config
from aegis_delivery.errors import ExitCode

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class UnannotatedFunction:
    path: Path
    line: int
    name: str
    missing: tuple[str, ...]

    def describe(self) -> str:
        """``file:line: message``, the format editors and CI annotate."""
        return f"{self.path}:{self.line}: {self.name}() lacks annotations for: " + ", ".join(
            self.missing
        )


@dataclass(frozen=True)
class AnnotationReport:
    total: int
    unannotated: tuple[UnannotatedFunction, ...]

    @property
    def annotated(self) -> int:
        return self.total - len(self.unannotated)

    @property
    def percent(self) -> float:
        return 100.0 if self.total == 0 else 100.0 * self.annotated / self.total

    def summary(self) -> str:
        return (
            f"annotation coverage: {self.percent:.1f}% "
            f"({self.annotated} of {self.total} functions)"
        )


def _missing_annotations(node: FunctionNode, is_method: bool) -> tuple[str, ...]:
    arguments = node.args
    positional = [*arguments.posonlyargs, *arguments.args]
    if is_method and positional and not _is_static(node):
        positional = positional[1:]  # self / cls are inferred
    missing = [
        argument.arg
        for argument in (*positional, *arguments.kwonlyargs)
        if argument.annotation is None
    ]
    for star, prefix in ((arguments.vararg, "*"), (arguments.kwarg, "**")):
        if star is not None and star.annotation is None:
            missing.append(prefix + star.arg)
    if node.returns is None:
        missing.append("return")
    return tuple(missing)


def _is_static(node: FunctionNode) -> bool:
    return any(
        isinstance(decorator, ast.Name) and decorator.id == "staticmethod"
        for decorator in node.decorator_list
    )


def scan_source(source: str, path: Path) -> tuple[int, list[UnannotatedFunction]]:
    """Count the functions in one file and list those missing any annotation."""
    tree = ast.parse(source, filename=str(path))
    total = 0
    unannotated: list[UnannotatedFunction] = []

    def visit(node: ast.AST, in_class: bool) -> None:
        nonlocal total
        for child in ast.iter_child_nodes(node):
            if isinstance(child, FunctionNode):
                total += 1
                missing = _missing_annotations(child, in_class)
                if missing:
                    unannotated.append(UnannotatedFunction(path, child.lineno, child.name, missing))
                visit(child, in_class=False)
            else:
                visit(child, in_class=isinstance(child, ast.ClassDef))

    visit(tree, in_class=False)
    return total, unannotated


def python_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.suffix == ".py" and path.is_file():
            files.append(path)
    return files


def measure(paths: Iterable[Path]) -> AnnotationReport:
    total = 0
    unannotated: list[UnannotatedFunction] = []
    for file in python_files(paths):
        count, missing = scan_source(file.read_text(encoding="utf-8"), file)
        total += count
        unannotated.extend(missing)
    return AnnotationReport(total=total, unannotated=tuple(unannotated))


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the configured paths (or those given) and gate on the configured threshold."""
    config = load_config()
    arguments = list(sys.argv[1:] if argv is None else argv)
    roots = [Path(p) for p in arguments] or [config.root / p for p in config.gates.annotation_paths]
    report = measure(roots)
    for item in report.unannotated:
        sys.stdout.write(item.describe() + "\n")
    sys.stdout.write(report.summary() + "\n")
    threshold = config.gates.annotation_coverage
    figure = gate_figures.Figure("annotation coverage", round(report.percent, 2), threshold)
    where = os.environ.get(gate_figures.FIGURES_ENV)
    gate_figures.write_figure(where, gate_figures.ANNOTATION_FIGURE, figure)
    if report.percent < threshold:
        sys.stdout.write(f"annotation coverage is below the required {threshold:.1f}%\n")
        return int(ExitCode.GATE_FINDINGS)
    return int(ExitCode.OK)


if __name__ == "__main__":
    raise SystemExit(main())
