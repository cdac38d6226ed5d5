"""Reading one TOML table so that every mistake names its exact key, the file, what was
expected and what was found; and the settings' value types (``Duration``). Each table's keys
are its settings class's fields (``keys_of``), and its defaults those fields' defaults
(``default_of``): declared once, in ``config.py``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from aegis_delivery.errors import ConfigError

_DURATION = re.compile(r"^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?\Z")

T = TypeVar("T")


@dataclass(frozen=True)
class Duration:
    """A Go-style duration (``10m``, ``1h30m``, ``90s``), as helm and kubectl take it."""

    text: str
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Duration:
        match = _DURATION.match(text)
        if not text or match is None:
            raise ValueError(f"{text!r} is not a duration like '10m', '90s' or '1h30m'")
        hours, minutes, seconds = (int(group or 0) for group in match.groups())
        total = hours * 3600 + minutes * 60 + seconds
        if total <= 0:
            raise ValueError(f"{text!r} must be longer than zero")
        return cls(text=text, seconds=total)


def keys_of(settings: type[Any]) -> set[str]:
    """A table's keys: its settings class's fields (``name`` is the table's own name)."""
    return {f.name for f in dataclasses.fields(settings)} - {"name"}


def default_of(settings: type[Any], key: str) -> Any:  # noqa: ANN401 - any field's type
    """The one default of a key: its field's."""
    found = {f.name: f for f in dataclasses.fields(settings)}[key]
    if found.default is not dataclasses.MISSING:
        return found.default
    if found.default_factory is not dataclasses.MISSING:
        return found.default_factory()
    return None


class Table:
    """A TOML table that knows its dotted path, so every error names the exact key."""

    def __init__(self, data: Mapping[str, object], path: str, source: Path) -> None:
        self.data = data
        self.path = path
        self.source = source

    def fail(self, key: str, expected: str, got: object = None) -> ConfigError:
        where = f"{self.path}.{key}" if key else self.path
        found = "it is missing" if got is None else f"found {got!r}"
        return ConfigError(f"{self.source}: [{where}] must be {expected}; {found}")

    def get(self, key: str, kind: type[T], expected: str, default: object = None) -> T:
        value = self.data.get(key, default)
        # bool is an int subclass: never accept true/false where a number is expected.
        if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
            raise self.fail(key, expected, value)
        return value

    def number(self, key: str, expected: str) -> float:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, expected, value)
        return float(value)

    def text(self, key: str, expected: str = "a non-empty string") -> str:
        value = self.get(key, str, expected)
        if not value.strip():
            raise self.fail(key, expected, value)
        return value

    def table(self, key: str) -> Table:
        value = self.get(key, dict, "a table")
        return Table(value, f"{self.path}.{key}", self.source)

    def strings(self, key: str, expected: str) -> tuple[str, ...]:
        value = self.get(key, list, expected)
        if not value or not all(isinstance(item, str) and item for item in value):
            raise self.fail(key, expected, value)
        return tuple(value)

    def duration(self, key: str, default: Duration) -> Duration:
        text = self.get(key, str, "a duration like '10m'", default.text)
        try:
            return Duration.parse(text)
        except ValueError as error:
            raise self.fail(key, "a duration like '10m', '90s' or '1h30m'", text) from error

    def unknown_keys(self, allowed: set[str]) -> None:
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise ConfigError(
                f"{self.source}: [{self.path}] has unknown key {extra[0]!r}; "
                f"expected only {', '.join(sorted(allowed))}"
            )


def relative_path(table: Table, key: str, root: Path) -> Path:
    text = table.text(key, "a path relative to the repository root")
    if PurePosixPath(text).is_absolute() or ".." in PurePosixPath(text).parts:
        raise table.fail(key, "a path inside the repository (relative, no '..')", text)
    return root / text
