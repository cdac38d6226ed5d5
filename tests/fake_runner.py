"""The runner's own fake: answers commands from a script at the argv level.

Each answer names words that must appear in the argv, in order; an unexpected command fails the
test (unlike a MagicMock, which accepts anything).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from aegis_delivery.runner import Result, Runner, Step

Reply = tuple[int, str, str] | Callable[[Step], tuple[int, str, str]]


@dataclass
class Answer:
    words: tuple[str, ...]
    reply: Reply
    times: int | None = None  # None: any number of times

    def matches(self, argv: Sequence[str]) -> bool:
        position = 0
        for word in self.words:
            try:
                position = list(argv).index(word, position) + 1
            except ValueError:
                return False
        return self.times is None or self.times > 0


class ScriptedRunner(Runner):
    """A Runner whose commands are answered by the script instead of executed."""

    script: list[Answer]

    def answer(self, *words: str, reply: Reply = (0, "", ""), times: int | None = None) -> None:
        if not hasattr(self, "script"):
            self.script = []
        self.script.append(Answer(words, reply, times))

    def _execute(self, step: Step) -> Result:
        if not hasattr(self, "calls"):
            self.calls: list[Step] = []
        self.calls.append(step)
        for answer in getattr(self, "script", []):
            if answer.matches(step.argv):
                if answer.times is not None:
                    answer.times -= 1
                code, stdout, stderr = (
                    answer.reply(step) if callable(answer.reply) else answer.reply
                )
                return Result(step, code, stdout, stderr, ran=True)
        raise AssertionError(f"unexpected command: {' '.join(step.argv)}")

    @property
    def output(self) -> str:
        """Everything the runner printed (the console is a RecordingConsole in tests)."""
        from tests.conftest import RecordingConsole

        return cast(RecordingConsole, self.console).text

    def ran(self, *words: str) -> bool:
        """Whether a command with these words was executed (not just printed)."""
        return any(
            Answer(words, (0, "", "")).matches(step.argv) for step in getattr(self, "calls", [])
        )
