"""The quality gates as nox sessions, to register in a repository's ``noxfile.py``::

    from aegis_delivery.nox_sessions import register

    register()

The toolkit's own noxfile is exactly that, plus the sessions only this repository has (its
workflow under act, the system parts). Each gate installs one dependency group of the
repository's pyproject.toml from its uv.lock and reads every threshold from pyproject.toml
(``[tool.aegis]``, ``[tool.coverage]``, ``[tool.mypy]``): it holds no figure of its own. nox
is imported only when a noxfile calls ``register``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import nox

NOX_VERSION = ">=2025.2.9"
# The pinned helm 4, helm 3, kubectl and trivy: run by the chart gate when the repository has it.
TOOLS_INSTALLER = "scripts/install-tools"


def settings() -> dict[str, Any]:
    """``[tool.aegis]`` of the pyproject.toml beside the noxfile (nox runs there)."""
    with Path("pyproject.toml").open("rb") as file:
        document: dict[str, Any] = tomllib.load(file)
    return dict(document["tool"]["aegis"])


def uv() -> tuple[str, ...]:
    """uv on PATH (CI's setup-uv), else the one installed beside nox (scripts/bootstrap)."""
    found = shutil.which("uv")
    return (found,) if found else (sys.executable, "-m", "uv")


def install(session: nox.Session, group: str) -> None:
    """The project and one dependency group (PEP 735), exactly as uv.lock pins them, compiled
    to bytecode: where PYTHONDONTWRITEBYTECODE is set (many CI images and dev containers), every
    interpreter the tests start would otherwise compile all its imports from source again."""
    session.run_install(
        *uv(), "sync", "--locked", "--compile-bytecode", "--no-default-groups", "--group", group,
        env={"UV_PROJECT_ENVIRONMENT": str(session.virtualenv.location)},
        external=True,
    )  # fmt: skip


# The test sessions keep bytecode caches (git and the image builds ignore __pycache__) whatever
# PYTHONDONTWRITEBYTECODE says: without them each pytest worker rewrites and compiles every test
# module and plugin again, and each of the ~130 entry-point interpreters compiles the toolkit.
BYTECODE_CACHED: dict[str, str | None] = {"PYTHONDONTWRITEBYTECODE": None}


def workers() -> tuple[str, ...]:
    """pytest-xdist's processes ([tool.aegis.gates] test_workers); tests/conftest.py keeps the
    tests that share a resource on one of them."""
    count = int(settings()["gates"]["test_workers"])
    return ("--numprocesses", str(count)) if count else ()


def lint(session: nox.Session) -> None:
    """Lint with ruff (rules, including security ones, in pyproject.toml)."""
    install(session, "lint")
    session.run("ruff", "check", ".", *session.posargs)


def format_gate(session: nox.Session) -> None:
    """Check formatting with black; `nox -s format -- --fix` rewrites the files."""
    install(session, "format")
    if "--fix" in session.posargs:
        session.run("black", ".")
    else:
        session.run("black", "--check", "--diff", ".", *session.posargs)


def typecheck(session: nox.Session) -> None:
    """mypy --strict, then the annotation-coverage figure and its gate."""
    install(session, "typecheck")
    session.run("mypy", *session.posargs)
    session.run("python", "-m", "aegis_delivery.annotation_coverage")


def tests(session: nox.Session) -> None:
    """pytest with branch coverage; fails under [tool.coverage.report] fail_under."""
    install(session, "test")
    # `invoke gate --json` reads the figure there (gate_figures: FIGURES_ENV, COVERAGE_FIGURE)
    figures = os.environ.get("AEGIS_GATE_FIGURES")
    report = (f"--cov-report=json:{figures}/coverage.json",) if figures else ()
    session.run(
        "pytest", *workers(), "--cov", "--cov-report=term-missing", *report, *session.posargs,
        env=BYTECODE_CACHED,
    )  # fmt: skip


def logic(session: nox.Session) -> None:
    """The logic tests only, in-process (no Docker, cluster, binaries, UI, or entry-point
    subprocesses): the quick local gate."""
    install(session, "test")
    marks = "not docker and not cluster and not binaries and not ui and not entry"
    session.run("pytest", *workers(), "-q", "-m", marks, *session.posargs, env=BYTECODE_CACHED)


def dockerfiles(session: nox.Session) -> None:
    """hadolint on every app's Dockerfile; fails at [tool.aegis.gates] dockerfile level."""
    install(session, "dockerfiles")
    aegis = settings()
    threshold = aegis["gates"]["dockerfile_failure_threshold"]
    paths = [app["dockerfile"] for app in aegis["apps"].values()]
    session.run("hadolint", "--failure-threshold", threshold, *paths, *session.posargs)


def chart(session: nox.Session) -> None:
    """helm lint/template (helm 3 and 4) per values file, schema validation, trivy config."""
    install(session, "chart")
    if Path(TOOLS_INSTALLER).is_file():  # the pinned helm 3/4 and trivy (this repository's)
        session.run(TOOLS_INSTALLER, external=True)
    session.run("python", "-m", "aegis_delivery.chart_gate", *session.posargs)


def workflows(session: nox.Session) -> None:
    """actionlint and zizmor (offline) on the CI/CD workflow: no findings allowed."""
    install(session, "workflows")
    session.run("actionlint", *session.posargs)
    session.run("zizmor", "--offline", ".github/workflows")


def docs(session: nox.Session) -> None:
    """The pages behind the README, built by MkDocs in strict mode (mkdocs.yml)."""
    install(session, "docs")
    # not --quiet: MkDocs then drops the warnings strict mode counts (a broken link passes)
    session.run("mkdocs", "build", "--strict", *session.posargs)


def build(session: nox.Session) -> None:
    """The library as a distribution: wheel and sdist built by `uv build`, checked by `twine
    check --strict` and by aegis_delivery.distribution (py.typed in, nothing of the monorepo,
    one version), then installed into a clean environment where `import aegis_delivery` must
    not load Docker, Kubernetes or other heavy libraries."""
    install(session, "build")
    dist = Path(session.create_tmp()) / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run(*uv(), "build", "--out-dir", str(dist), external=True)
    archives = sorted(str(path) for path in [*dist.glob("*.whl"), *dist.glob("*.tar.gz")])
    session.run("twine", "check", "--strict", *archives)
    session.run("python", "-m", "aegis_delivery.distribution", str(dist))
    clean = Path(session.create_tmp()) / "clean"
    session.run(*uv(), "venv", "--quiet", "--clear", str(clean), external=True)
    wheel = next(dist.glob("*.whl"))
    session.run(*uv(), "pip", "install", "--quiet", "--python", str(clean / "bin" / "python"),
                str(wheel), external=True)  # fmt: skip
    check = [str(clean / "bin" / "python"), "-I", "-m", "aegis_delivery.distribution"]
    session.run(*check, "--import-check", external=True)


Gate = Callable[["nox.Session"], None]
# In the order `nox` runs them; `logic` is the quick local gate, left out of a plain `nox`.
GATES: tuple[tuple[str, Gate, dict[str, Any]], ...] = (
    ("lint", lint, {}),
    ("format", format_gate, {}),
    ("typecheck", typecheck, {}),
    ("tests", tests, {}),
    ("logic", logic, {"default": False}),
    ("dockerfiles", dockerfiles, {}),
    ("chart", chart, {}),
    ("workflows", workflows, {}),
    ("docs", docs, {}),
    ("build", build, {}),
)


def register(*, only: Iterable[str] | None = None) -> None:
    """Make the gates (or *only* those named) this noxfile's sessions, with the options they
    rely on: uv environments, reused between runs, a missing interpreter an error."""
    import nox

    nox.needs_version = NOX_VERSION
    nox.options.default_venv_backend = "uv"
    nox.options.reuse_venv = "yes"
    nox.options.error_on_missing_interpreters = True
    chosen = set(only) if only is not None else None
    for name, gate, options in GATES:
        if chosen is None or name in chosen:
            nox.session(name=name, **options)(gate)
