"""The console layer: progress and errors for people, JSON for machines.

Rich formatting only on an interactive terminal outside CI; plain lines otherwise, so CI
logs stay greppable. Messages (progress, warnings, errors, child output) go to stderr; data
goes to stdout: result tables, an SBOM, or with ``--json`` the one JSON document (and then
the tables join the messages on stderr), so ``invoke X > file`` keeps only the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from aegis_delivery.ci import in_ci
from aegis_delivery.masking import Masker

if TYPE_CHECKING:
    import rich.console


# The --json documents' compatibility version, written into each one here; documents.py (the
# models and their schemas, which import pydantic: never at a task's start) takes it from here.
JSON_SCHEMA_VERSION = 1


def is_plain(stream: IO[str], environ: Mapping[str, str] | None = None) -> bool:
    """Plain output when not on a TTY, in CI, or when NO_COLOR asks for it."""
    env = os.environ if environ is None else environ
    if in_ci(env) or "NO_COLOR" in env:
        return True
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def _cell(value: object) -> str:
    """A Markdown table cell: scalars as they are, the rest as compact JSON, pipes escaped."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text.replace("|", "\\|").replace("\n", " ")


class Console:
    """Everything a task prints goes through here, masked."""

    def __init__(
        self,
        masker: Masker,
        *,
        json_mode: bool = False,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
        plain: bool | None = None,
    ) -> None:
        self.masker = masker
        self.json_mode = json_mode
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        # Messages never mix into the data; with --json the document is the only data.
        self.human = self.err
        self.tables = self.err if json_mode else self.out
        self.plain = is_plain(self.human) if plain is None else plain
        # GitHub's step summary (`--summary`): short markdown written from the task's JSON.
        self.summary_file: Path | None = None
        # Whether the one JSON document was written (a failure then adds none of its own).
        self.emitted = False
        self._rich: rich.console.Console | None = None
        self._rich_tables: rich.console.Console | None = None
        if not self.plain:
            import rich.console  # deferred: keeps `invoke --list` fast

            self._rich = rich.console.Console(file=self.human, highlight=False)
            self._rich_tables = rich.console.Console(file=self.tables, highlight=False)

    def _write(self, stream: IO[str], text: str) -> None:
        stream.write(self.masker.mask(text) + "\n")
        stream.flush()

    def _styled(self, style: str, prefix: str, message: str) -> None:
        masked = self.masker.mask(message)
        if self._rich is not None:
            from rich.markup import escape

            self._rich.print(f"[{style}]{escape(prefix)}[/] {escape(masked)}")
        else:
            self._write(self.human, f"{prefix} {masked}")

    def step(self, message: str) -> None:
        """A stage of the task starts."""
        self._styled("bold cyan", "==>", message)

    def info(self, message: str) -> None:
        self._styled("dim", "   ", message)

    def success(self, message: str) -> None:
        self._styled("bold green", "ok:", message)

    def warn(self, message: str) -> None:
        self._styled("bold yellow", "warning:", message)

    def error(self, message: str) -> None:
        """Errors always go to stderr, whatever the mode."""
        masked = self.masker.mask(message)
        if self._rich is not None and self.human is self.err:
            from rich.markup import escape

            self._rich.print(f"[bold red]error:[/] {escape(masked)}")
        else:
            self._write(self.err, f"error: {masked}")

    def data(self, text: str) -> None:
        """The task's data (an SBOM, a document) on stdout; messages never mix into it."""
        self._write(self.out, text.rstrip("\n"))

    def output_line(self, line: str) -> None:
        """One line streamed from a child process."""
        self._write(self.human, "    " + line.rstrip("\n"))

    @contextlib.contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        """One live line at a terminal (rich's spinner), updated through what it yields;
        nothing in plain mode (the caller prints plain start and end lines instead)."""
        if self._rich is None:
            yield lambda _text: None
            return
        from rich.markup import escape

        with self._rich.status(escape(self.masker.mask(text))) as live:
            yield lambda update: live.update(escape(self.masker.mask(update)))

    def relative(self, path: Path) -> str:
        """*path* as a reader can open it from here: relative to the working directory."""
        try:
            return str(path.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A result table: data, so on stdout (on stderr beside a --json document)."""
        if self._rich_tables is not None:
            import rich.table

            table = rich.table.Table(title=title)
            for column in columns:
                table.add_column(column)
            for row in rows:
                table.add_row(*(self.masker.mask(cell) for cell in row))
            self._rich_tables.print(table)
            return
        widths = [
            max(len(str(column)), *(len(row[index]) for row in rows)) if rows else len(column)
            for index, column in enumerate(columns)
        ]
        lines = [title, "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        self._write(self.tables, "\n".join(line.rstrip() for line in lines))

    def summarize(self, title: str, document: Mapping[str, Any]) -> None:
        """Append the result to the step summary, when one was asked for: a Markdown table of
        the document's fields (nested values as compact JSON)."""
        if self.summary_file is None:
            return
        rows = [f"| {key} | {_cell(value)} |" for key, value in sorted(document.items())]
        text = f"### {title}\n\n| field | value |\n|---|---|\n" + "\n".join(rows) + "\n\n"
        self._append_summary(text)

    def summarize_failure(self, message: str, code: int) -> None:
        if self.summary_file is None:
            return
        first = message.splitlines()[0] if message else ""
        self._append_summary(f"### Failed (exit {code})\n\n> {first}\n\n")

    def _append_summary(self, text: str) -> None:
        assert self.summary_file is not None  # noqa: S101 - checked by both callers
        with self.summary_file.open("a", encoding="utf-8") as summary:
            summary.write(self.masker.mask(text))

    def emit_json(self, document: Mapping[str, Any]) -> None:
        """The machine-readable result: one JSON document on stdout, masked like the rest,
        with its ``schema`` version (documents.py: fields are added, never renamed)."""
        self.emitted = True
        versioned = {"schema": JSON_SCHEMA_VERSION, **document}
        self._write(self.out, json.dumps(versioned, indent=2, sort_keys=True))
