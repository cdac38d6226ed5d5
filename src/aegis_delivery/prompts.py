"""Questions at a terminal: the reason for a change to an environment, and a confirmation.

Asked only when a person is there: stdin is a terminal, and neither ``--yes`` nor CI said
otherwise. Without one, a missing answer is an input error (exit 2) that says how to give it.
Ctrl-C at a prompt is an interruption (exit 130) and nothing has run yet.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO

from aegis_delivery.console import Console
from aegis_delivery.errors import InputError
from aegis_delivery.validation import printable_line


class Prompter:
    """Asks on *stdin*/*stream* when *interactive* and stdin is a terminal."""

    def __init__(
        self,
        *,
        interactive: bool,
        stdin: IO[str] | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.interactive = interactive
        self.stdin = stdin or sys.stdin
        self.stream = stream or sys.stderr

    @property
    def can_ask(self) -> bool:
        isatty = getattr(self.stdin, "isatty", None)
        return self.interactive and callable(isatty) and bool(isatty())

    def _ask(self, question: str) -> str:
        self.stream.write(question)
        self.stream.flush()
        line = self.stdin.readline()
        if not line:
            raise InputError("no answer (end of input): nothing was changed")
        return line.strip()

    def reason(self, given: str | None, *, what: str, hint: str) -> str:
        """The reason as given, or asked for at a terminal; one printable line either way."""
        if given is not None:
            return printable_line(given, what=what, hint=hint)
        if not self.can_ask:
            raise InputError(
                f"{what} is required: {hint} (or run the command at a terminal without --yes "
                "to be asked for it)"
            )
        answer = self._ask("Reason (one line, recorded in the release description): ")
        return printable_line(answer, what="the reason", hint=hint)

    def confirm(self, title: str, details: Sequence[str], *, console: Console) -> None:
        """Show what is about to happen and ask; skipped with --yes or in CI."""
        if not self.interactive:
            return
        if not self.can_ask:
            raise InputError(f"{title} needs confirmation: re-run with --yes")
        console.warn(title)
        for line in details:
            console.info(line)
        answer = self._ask("Go ahead? [y/N] ").lower()
        if answer not in {"y", "yes"}:
            raise InputError("not confirmed: nothing was changed")
