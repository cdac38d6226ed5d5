"""The pages behind the README build strictly, and the README's links reach them."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPOSITORY

# Not --quiet: MkDocs then drops the warnings strict mode counts, and a broken link passes.
MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]


def build(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MKDOCS, "--site-dir", str(root / "site")], cwd=root,
                          capture_output=True, text=True, check=False)  # fmt: skip


def copy_of_docs(tmp_path: Path) -> Path:
    shutil.copytree(REPOSITORY / "docs", tmp_path / "docs")
    shutil.copy(REPOSITORY / "mkdocs.yml", tmp_path / "mkdocs.yml")
    return tmp_path


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    result = build(copy_of_docs(tmp_path))
    assert result.returncode == 0, result.stderr


def test_a_broken_link_or_a_page_left_out_fails_the_build(tmp_path: Path) -> None:
    root = copy_of_docs(tmp_path)
    page = root / "docs" / "deploy.md"
    page.write_text(page.read_text() + "\nSee [the missing page](missing.md).\n")
    broken = build(root)
    assert broken.returncode != 0 and "missing.md" in broken.stderr
    page.write_text(page.read_text().replace("See [the missing page](missing.md).\n", ""))
    (root / "docs" / "orphan.md").write_text("# Nobody links here\n")
    orphaned = build(root)
    assert orphaned.returncode != 0 and "orphan.md" in orphaned.stderr


def test_the_readme_links_reach_pages_that_exist() -> None:
    readme = (REPOSITORY / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert links, "the README points at its docs pages"
    assert [link for link in links if not (REPOSITORY / link).is_file()] == []
    assert len(readme.splitlines()) <= 200, "the README stays short: the rest goes to docs/"
