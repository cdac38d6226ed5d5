"""Documents exactly as the task frame prints them with --json, checked against the schemas
published under docs/schemas/ (documents.py): what programs read is what the tests check."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest
from invoke.exceptions import Exit

from aegis_delivery.errors import AegisError
from aegis_delivery.masking import Masker
from aegis_delivery.session import fail
from tests.conftest import REPOSITORY, RecordingConsole

SCHEMAS = REPOSITORY / "docs" / "schemas"


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.v1.json").read_text())
    return loaded


def valid(name: str, document: dict[str, Any]) -> dict[str, Any]:
    """*document* if its published schema accepts it (jsonschema's error otherwise)."""
    jsonschema.validate(document, schema(name))
    return document


def printed(name: str, show: Callable[..., None], *arguments: object) -> dict[str, Any]:
    """What ``show(console, *arguments)`` prints with --json, validated against *name*."""
    console = RecordingConsole(Masker(), json_mode=True)
    show(console, *arguments)
    return valid(name, json.loads(console.stdout.getvalue()))


def failure_printed(name: str, error: AegisError) -> dict[str, Any]:
    """The failure document the task frame prints for *error*, validated against *name* and
    against the common failure schema."""
    console = RecordingConsole(Masker(), json_mode=True)
    with pytest.raises(Exit):
        fail(console, error.message, error.exit_code, error.details)
    return valid("failure", valid(name, json.loads(console.stdout.getvalue())))
