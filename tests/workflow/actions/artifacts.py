"""The artifact and SARIF stand-ins' logic (run by their composite actions under act).

upload: the files matching `path` (lines, globs, `!` excludes) are copied to
AEGIS_ACT_ARTIFACTS/NAME, relative to their least common ancestor, as upload-artifact roots
them. download: NAME (or every artifact matching `pattern`, each into its own directory unless
merge-multiple) is copied into `path`. sarif: each file must be SARIF 2.1.0 with the fields code
scanning reads. Standard library only: it runs with whatever python3 the job has.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path


def set_output(text: str) -> None:
    with Path(os.environ["GITHUB_OUTPUT"]).open("a", encoding="utf-8") as out:
        out.write(text)


def fail(message: str) -> None:
    print(f"::error::{message}")
    raise SystemExit(1)


def store() -> Path:
    root = os.environ.get("AEGIS_ACT_ARTIFACTS")
    if not root:
        fail("AEGIS_ACT_ARTIFACTS is not set: the artifact stand-ins run under nox -s workflow")
    return Path(str(root))


def matched(patterns: list[str], workspace: Path) -> list[Path]:
    included: set[Path] = set()
    excluded: set[Path] = set()
    for pattern in patterns:
        target = excluded if pattern.startswith("!") else included
        # glob.glob, not Path.glob: upload-artifact's patterns may climb with '..'
        found_paths = glob.glob(  # noqa: PTH207
            pattern.lstrip("!"), root_dir=workspace, recursive=True
        )
        for found in found_paths:
            path = (workspace / found).resolve()
            files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
            target.update(files)
    return sorted(included - excluded)


def upload() -> None:
    name = os.environ["NAME"] or "artifact"
    workspace = Path.cwd().resolve()
    lines = [line.strip() for line in os.environ["PATHS"].splitlines() if line.strip()]
    files = matched(lines, workspace)
    if not files:
        behaviour = os.environ.get("IF_NO_FILES_FOUND", "warn")
        message = f"no files were found with the provided path: {' '.join(lines)}"
        if behaviour == "error":
            fail(message)
        if behaviour == "warn":
            print(f"::warning::{message}. No artifacts will be uploaded.")
        return
    roots = [(workspace / line.lstrip("!")).resolve() for line in lines if not line.startswith("!")]
    anchors = [r if r.is_dir() else r.parent for r in roots if "*" not in str(r)]
    anchors += [Path(str(r).split("*", 1)[0]).parent for r in roots if "*" in str(r)]
    root = Path(os.path.commonpath([*anchors, *(f.parent for f in files)]))
    target = store() / name
    if target.exists():
        if os.environ.get("OVERWRITE") != "true":
            fail(f"an artifact named {name!r} already exists in this run")
        shutil.rmtree(target)
    digest = hashlib.sha256()
    for file in files:
        relative = file.relative_to(root)
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, target / relative)
        digest.update(str(relative).encode() + file.read_bytes())
    set_output(f"artifact-id={name}\nartifact-digest={digest.hexdigest()}\n")
    print(f"uploaded {len(files)} file(s) as artifact {name!r} (root {root})")


def download() -> None:
    name, pattern = os.environ.get("NAME", ""), os.environ.get("PATTERN", "")
    destination = Path(os.environ.get("DESTINATION") or ".")
    available = sorted(p.name for p in store().iterdir()) if store().is_dir() else []
    if name:
        if name not in available:
            fail(f"Unable to download artifact(s): Artifact not found for name: {name}")
        chosen, merge = [name], True
    else:
        chosen = [a for a in available if fnmatch.fnmatch(a, pattern or "*")]
        merge = os.environ.get("MERGE_MULTIPLE") == "true"
    for artifact in chosen:
        target = destination if merge else destination / artifact
        shutil.copytree(store() / artifact, target, dirs_exist_ok=True)
        print(f"downloaded artifact {artifact!r} into {target}")
    set_output(f"download-path={destination.resolve()}\n")


def sarif() -> None:
    location = Path(os.environ.get("SARIF_FILE") or "../results")
    files = sorted(location.glob("*.sarif")) if location.is_dir() else [location]
    if not files or not all(f.is_file() for f in files):
        fail(f"no SARIF file at {location}")
    for file in files:
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except ValueError as error:
            fail(f"{file}: not JSON ({error})")
        if document.get("version") != "2.1.0" or not isinstance(document.get("runs"), list):
            fail(f"{file}: not SARIF 2.1.0 (version and runs are required)")
        for index, run in enumerate(document["runs"]):
            if not isinstance(run.get("tool", {}).get("driver", {}).get("name"), str):
                fail(f"{file}: runs[{index}].tool.driver.name is required")
            for number, result in enumerate(run.get("results", [])):
                if not isinstance(result.get("message", {}).get("text"), str):
                    fail(f"{file}: runs[{index}].results[{number}].message.text is required")
        kept = store() / "sarif" / (os.environ.get("CATEGORY") or "default")
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, kept / file.name)
        print(f"{file}: valid SARIF 2.1.0, {len(document['runs'])} run(s)")
    set_output(f"sarif-id=local-{os.environ.get('CATEGORY') or 'default'}\n")


if __name__ == "__main__":
    {"upload": upload, "download": download, "sarif": sarif}[sys.argv[1]]()
