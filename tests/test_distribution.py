"""The toolkit as a distribution another repository installs (`nox -s build`).

The archive checks are pure (member names and METADATA); one test builds the real wheel and
sdist with `uv build`, checks them, installs the wheel into a clean environment and imports it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from aegis_delivery import __version__
from aegis_delivery.distribution import (
    check_directory,
    heavy_imports,
    sdist_problems,
    wheel_problems,
)
from tests.conftest import REPOSITORY

METADATA = (
    f"Metadata-Version: 2.4\nName: aegis-delivery\nVersion: {__version__}\n"
    "Requires-Python: >=3.11,<3.14\nClassifier: Typing :: Typed\n"
)
GOOD_WHEEL = [
    "aegis_delivery/__init__.py",
    "aegis_delivery/py.typed",
    "aegis_delivery/runner.py",
    f"aegis_delivery-{__version__}.dist-info/METADATA",
]


def test_a_good_wheel_has_no_problem() -> None:
    assert wheel_problems(GOOD_WHEEL, METADATA, __version__) == []


def test_each_wheel_problem_is_named() -> None:
    names = [*GOOD_WHEEL[:1], "tests/test_runner.py", "apps/monitor-api/app.py"]
    metadata = METADATA.replace(f"Version: {__version__}", "Version: 9.9.9")
    metadata = metadata.replace("Classifier: Typing :: Typed\n", "")
    problems = wheel_problems(names, metadata, __version__)
    assert "tests/test_runner.py does not belong in the wheel" in problems
    assert "apps/monitor-api/app.py does not belong in the wheel" in problems
    assert any("py.typed is missing" in problem for problem in problems)
    assert f"METADATA says version '9.9.9', expected {__version__!r}" in problems
    assert "METADATA has no classifiers" in problems


def test_an_sdist_holds_nothing_of_the_monorepo() -> None:
    top = f"aegis_delivery-{__version__}"
    good = [top, f"{top}/pyproject.toml", f"{top}/src/aegis_delivery/__init__.py"]
    assert sdist_problems(good, __version__) == []
    bad = [*good, f"{top}/tests/test_runner.py", f"{top}/helm/Chart.yaml", "elsewhere.txt"]
    assert sdist_problems(bad, __version__) == [
        f"{top}/tests/test_runner.py does not belong in the sdist",
        f"{top}/helm/Chart.yaml does not belong in the sdist",
        f"elsewhere.txt is outside {top}/",
    ]


def test_heavy_imports_are_found_by_their_top_package() -> None:
    loaded = ["json", "python_on_whales.components", "kubernetes", "aegis_delivery.runner"]
    assert heavy_imports(loaded) == ["kubernetes", "python_on_whales.components"]


def test_an_empty_directory_says_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "other.txt").write_text("")
    assert check_directory(tmp_path, __version__) == [
        f"expected one wheel and one sdist of {__version__} in {tmp_path}, found: other.txt"
    ]


@pytest.mark.entry
def test_the_real_wheel_and_sdist_build_check_install_and_import(tmp_path: Path) -> None:
    uv = [sys.executable, "-m", "uv"]
    dist = tmp_path / "dist"
    subprocess.run([*uv, "build", "--out-dir", str(dist), str(REPOSITORY)], check=True,
                   capture_output=True)  # fmt: skip
    assert check_directory(dist, __version__) == []
    clean = tmp_path / "clean"
    subprocess.run([*uv, "venv", "--quiet", str(clean)], check=True, capture_output=True)
    python = clean / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    subprocess.run([*uv, "pip", "install", "--quiet", "--python", str(python), str(wheel)],
                   check=True, capture_output=True)  # fmt: skip
    checked = subprocess.run(
        [str(python), "-I", "-m", "aegis_delivery.distribution", "--import-check"],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert f"import aegis_delivery {__version__} loads no heavy library" in checked.stdout
    typed = subprocess.run(
        [str(python), "-I", "-c", "import aegis_delivery, pathlib; "
         "print((pathlib.Path(aegis_delivery.__file__).parent / 'py.typed').exists())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert typed.stdout.strip() == "True"
