"""What every benchmark does with its table: write it to its results file and show it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path


def write_results(lines: Sequence[str], output: Path) -> None:
    text = "\n".join(lines) + "\n"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    sys.stdout.write(text)
