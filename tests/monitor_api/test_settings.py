"""Start-up validation: a malformed setting names its variable; unset URLs are optional."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from monitor_api.settings import SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert (settings.port, settings.nats_url, settings.database_url) == (8000, None, None)
    assert settings.check_timeout == 2.0
    assert settings.build.version == "0.0.0-dev"


def test_values_are_read() -> None:
    settings = load_settings(
        {
            "PORT": "9000",
            "NATS_URL": "nats://nats:4222",
            "DATABASE_URL": "postgresql://u:p@db:5432/aegis",
            "CHECK_TIMEOUT_SECONDS": "0.5",
            "APP_VERSION": "1.2.3",
            "GIT_SHA": "abc1234",
            "IMAGE_TAG": "main-abc1234",
            "LOG_LEVEL": "DEBUG",
        }
    )
    assert settings.port == 9000 and settings.check_timeout == 0.5
    assert settings.nats_url == "nats://nats:4222"
    assert settings.build.image_tag == "main-abc1234"
    assert settings.log_level == "debug"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("PORT", "80a", "PORT='80a' is not a port"),
        ("PORT", "70000", "PORT='70000' is not a port"),
        ("NATS_URL", "http://nats:4222", "NATS_URL='http://nats:4222' is not valid"),
        ("NATS_URL", "nats://nats:port", "NATS_URL is malformed"),
        ("DATABASE_URL", "postgresql://u:hunter2@:5432/db", "DATABASE_URL='postgresql://u:***@"),
        ("CHECK_TIMEOUT_SECONDS", "0", "CHECK_TIMEOUT_SECONDS='0' is not valid"),
        ("CHECK_TIMEOUT_SECONDS", "soon", "CHECK_TIMEOUT_SECONDS='soon'"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL='loud'"),
    ],
)
def test_malformed_values_name_the_variable(variable: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({variable: value})
    assert words in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_the_process_refuses_to_start_with_bad_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "monitor_api"],
        env={**os.environ, "NATS_URL": "nats://:4222"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid configuration: NATS_URL=" in result.stderr
