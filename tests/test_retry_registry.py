"""Retries (transient vs final, Retry-After, bounded) and registry credentials."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from aegis_delivery.errors import InputError
from aegis_delivery.release.registry import credentials, login_step
from aegis_delivery.retry import delay_for, is_transient, with_retries


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("received unexpected HTTP status: 503 Service Unavailable", True),
        ("Get https://r/v2/: net/http: TLS handshake timeout", True),
        ("read tcp 127.0.0.1:1->127.0.0.1:5000: read: connection reset by peer", True),
        ("dial tcp 127.0.0.1:5000: connect: connection refused", True),
        ("toomanyrequests: retry-after: 7", True),
        ("unauthorized: authentication required", False),
        ("denied: permission_denied: write_package", False),
        ("manifest invalid: manifest invalid", False),
        ("error parsing HTTP 403 response body", False),
        ("no such image", False),
    ],
)
def test_transient_or_final(message: str, transient: bool) -> None:
    assert is_transient(message) is transient


def test_retry_after_is_honoured_and_backoff_grows() -> None:
    rng = random.Random(1)  # noqa: S311 - jitter
    assert delay_for("429 Too Many Requests, Retry-After: 7", 0, 1.0, rng) == 7.0
    delays = [delay_for("503", attempt, 1.0, rng) for attempt in range(4)]
    for attempt, delay in enumerate(delays):
        assert 2**attempt / 2 <= delay <= 2**attempt


def test_retries_are_bounded_then_the_last_error_is_raised() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def always_503() -> str:
        calls.append(1)
        raise RuntimeError("received unexpected HTTP status: 503")

    with pytest.raises(RuntimeError, match="503"):
        with_retries(
            always_503,
            attempts=4,
            base_seconds=0.5,
            describe=str,
            on_retry=lambda n, d, m: None,
            sleep=sleeps.append,
            rng=random.Random(0),  # noqa: S311 - jitter
        )
    assert len(calls) == 4 and len(sleeps) == 3


def test_final_errors_are_never_retried() -> None:
    calls: list[int] = []

    def denied() -> str:
        calls.append(1)
        raise RuntimeError("denied: requested access to the resource is denied")

    with pytest.raises(RuntimeError):
        with_retries(
            denied, attempts=5, base_seconds=1, describe=str, on_retry=lambda n, d, m: None
        )
    assert calls == [1]


def test_success_after_a_transient_failure() -> None:
    answers: Iterator[Exception | str] = iter([RuntimeError("connection reset by peer"), "ok"])

    def flaky() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    retried: list[int] = []
    result = with_retries(
        flaky, attempts=3, base_seconds=0.01, describe=str,
        on_retry=lambda n, d, m: retried.append(n), sleep=lambda s: None,
    )  # fmt: skip
    assert result == "ok" and retried == [1]


def test_credentials_and_the_login_command() -> None:
    token = credentials("ghcr.io", {"GITHUB_TOKEN": "ghs_abcdef123456", "GITHUB_ACTOR": "bot"})
    assert (token.username, token.password) == ("bot", "ghs_abcdef123456")
    explicit = credentials(
        "r", {"REGISTRY_USER": "u", "REGISTRY_PASSWORD": "pw-123456", "GITHUB_TOKEN": "t"}
    )
    assert explicit.username == "u"
    step = login_step(explicit)
    assert "pw-123456" not in step.argv and step.stdin == "pw-123456"
    assert "--password-stdin" in step.argv
    with pytest.raises(InputError, match="set GITHUB_TOKEN"):
        credentials("ghcr.io", {})
    with pytest.raises(InputError, match="REGISTRY_PASSWORD is not set"):
        credentials("ghcr.io", {"REGISTRY_USER": "u"})


def test_login_retries_a_transient_failure_but_not_a_wrong_password() -> None:
    from aegis_delivery.errors import AegisError
    from aegis_delivery.masking import Masker
    from aegis_delivery.release.registry import Credentials, login
    from tests.conftest import RecordingConsole
    from tests.fake_runner import ScriptedRunner

    console = RecordingConsole(Masker())
    credentials = Credentials("ghcr.io", "bot", "s3cret-token")
    with ScriptedRunner(console, console.masker) as runner:
        runner.answer(
            "login", reply=(1, "", "Error response from daemon: 502 Bad Gateway"), times=1
        )
        runner.answer("login", reply=(0, "Login Succeeded", ""))
        login(runner, credentials, attempts=3, base_seconds=0.01)
        assert len(runner.calls) == 2 and "transient failure; retry 1" in console.text
    with ScriptedRunner(console, console.masker) as runner:
        runner.answer("login", reply=(1, "", "Error response from daemon: unauthorized"))
        with pytest.raises(AegisError, match="failed: Error response from daemon: unauthorized"):
            login(runner, credentials, attempts=3, base_seconds=0.01)
        assert len(runner.calls) == 1  # final at once
