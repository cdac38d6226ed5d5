"""What the toolkit ships as a distribution: a wheel and an sdist another repository installs.

The checks are about names in the archives (and the wheel's metadata), so they are pure and
run on what `uv build` wrote: the library and its `py.typed` inside, nothing of this monorepo
(tests, apps, chart, workflow) beside it, one version. `nox -s build` runs them after `twine
check`; `python -m aegis_delivery.distribution DIST` runs them alone (exit 1 on a problem), and
`--import-check` checks, in a clean environment with the wheel installed, that importing the
library loads nothing heavy.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from collections.abc import Iterable, Sequence
from email.parser import Parser
from pathlib import Path

PACKAGE = "aegis_delivery"
# Nothing of the monorepo may travel with the library.
FOREIGN = ("tests/", "apps/", "helm/", ".github/", "benchmarks/", "scripts/", "docs/")
# `import aegis_delivery` must stay light: an adopting repository's `invoke --list` too.
HEAVY_MODULES = ("python_on_whales", "kubernetes", "docker", "oras", "pydantic")


def wheel_problems(names: Iterable[str], metadata: str, version: str) -> list[str]:
    """What is wrong with a wheel of *version*, from its member names and METADATA text."""
    members = list(names)
    problems = [f"{name} does not belong in the wheel" for name in members
                if not name.startswith((f"{PACKAGE}/", f"aegis_delivery-{version}.dist-info/"))
                ]  # fmt: skip
    if f"{PACKAGE}/py.typed" not in members:
        problems.append(f"{PACKAGE}/py.typed is missing: type checkers would ignore the types")
    if f"{PACKAGE}/__init__.py" not in members:
        problems.append(f"{PACKAGE}/__init__.py is missing")
    fields = Parser().parsestr(metadata)
    if fields.get("Version") != version:
        problems.append(f"METADATA says version {fields.get('Version')!r}, expected {version!r}")
    if not fields.get_all("Classifier"):
        problems.append("METADATA has no classifiers")
    if not fields.get("Requires-Python"):
        problems.append("METADATA has no Requires-Python")
    return problems


def sdist_problems(names: Iterable[str], version: str) -> list[str]:
    """What is wrong with an sdist: everything under one top directory, no monorepo files."""
    top = f"aegis_delivery-{version}/"
    problems: list[str] = []
    for name in names:
        if name == top.rstrip("/"):
            continue
        if not name.startswith(top):
            problems.append(f"{name} is outside {top}")
        elif name.removeprefix(top).startswith(FOREIGN):
            problems.append(f"{name} does not belong in the sdist")
    return problems


def check_directory(dist: Path, version: str) -> list[str]:
    """Every problem of the one wheel and one sdist of *version* in *dist*."""
    wheels = sorted(dist.glob(f"aegis_delivery-{version}-*.whl"))
    sdists = sorted(dist.glob(f"aegis_delivery-{version}.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        found = ", ".join(sorted(p.name for p in dist.iterdir())) if dist.is_dir() else "nothing"
        return [f"expected one wheel and one sdist of {version} in {dist}, found: {found}"]
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"aegis_delivery-{version}.dist-info/METADATA").decode()
    with tarfile.open(sdists[0]) as sdist:
        members = sdist.getnames()
    return wheel_problems(names, metadata, version) + sdist_problems(members, version)


def heavy_imports(loaded: Iterable[str]) -> list[str]:
    """The heavy libraries among *loaded* module names (after ``import aegis_delivery``)."""
    return sorted(name for name in loaded if name.split(".")[0] in HEAVY_MODULES)


def main(arguments: Sequence[str]) -> int:
    """``DIST``: check the archives; ``--import-check``: in an environment where the wheel is
    installed, `import aegis_delivery` (done to run this module) loaded nothing heavy."""
    from aegis_delivery import __version__

    if list(arguments) == ["--import-check"]:
        heavy = heavy_imports(sys.modules)
        if heavy:
            sys.stderr.write(f"error: import aegis_delivery loaded {', '.join(heavy)}\n")
            return 1
        sys.stdout.write(f"ok: import aegis_delivery {__version__} loads no heavy library\n")
        return 0
    dist = Path(arguments[0]) if arguments else Path("dist")
    problems = check_directory(dist, __version__)
    for problem in problems:
        sys.stderr.write(f"error: {problem}\n")
    if not problems:
        sys.stdout.write(f"ok: {dist}: one wheel and one sdist of aegis-delivery {__version__}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
