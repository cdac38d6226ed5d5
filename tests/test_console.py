"""The console: plain where it must be, JSON alone on stdout, secrets masked everywhere."""

from __future__ import annotations

import io
import json

import pytest

from aegis_delivery.console import Console, is_plain
from aegis_delivery.masking import Masker
from tests.conftest import RecordingConsole


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("environ", "tty", "plain"),
    [
        ({}, True, False),
        ({"CI": "true"}, True, True),
        ({"NO_COLOR": "1"}, True, True),
        ({}, False, True),
    ],
    ids=["terminal", "ci", "no-color", "pipe"],
)
def test_plain_detection(environ: dict[str, str], tty: bool, plain: bool) -> None:
    stream = FakeTerminal() if tty else io.StringIO()
    assert is_plain(stream, environ) is plain


def test_json_mode_keeps_stdout_for_the_document() -> None:
    console = RecordingConsole(Masker(["tok-secret"]), json_mode=True)
    console.step("building")
    console.warn("careful with tok-secret")
    console.emit_json({"tags": ["latest"], "token": "tok-secret"})
    document = json.loads(console.stdout.getvalue())
    assert document == {"schema": 1, "tags": ["latest"], "token": "***"}
    assert "building" in console.stderr.getvalue()
    assert "careful with ***" in console.stderr.getvalue()


def test_errors_go_to_stderr_and_tables_align() -> None:
    console = RecordingConsole(Masker())
    console.error("boom")
    console.table("apps", ("app", "tag"), [("monitor-api", "latest"), ("ui", "main-abc1234")])
    assert console.stderr.getvalue() == "error: boom\n"
    lines = console.stdout.getvalue().splitlines()
    assert lines[0] == "apps"
    assert lines[1] == "app          tag"
    assert lines[3] == "ui           main-abc1234"


def test_rich_output_on_a_terminal_is_masked() -> None:
    terminal = FakeTerminal()
    console = Console(Masker(["tok-secret"]), out=terminal, err=terminal, plain=False)
    console.success("pushed with tok-secret [bold]")
    console.table("t", ("a",), [("tok-secret",)])
    console.error("failed tok-secret")
    text = terminal.getvalue()
    assert "tok-secret" not in text
    assert "pushed with ***" in text and "[bold]" in text
