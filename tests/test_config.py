"""The settings loader: the real pyproject loads, and each mistake names its key and file."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from aegis_delivery.config import Duration, load_config, parse_config
from aegis_delivery.errors import ConfigError, ExitCode
from tests.conftest import REPOSITORY

SOURCE = Path("/repo/pyproject.toml")


def real_document() -> dict[str, Any]:
    return tomllib.loads((REPOSITORY / "pyproject.toml").read_text())


def test_the_repository_settings_load() -> None:
    config = load_config(REPOSITORY / "pyproject.toml")
    assert set(config.apps) == {"monitor-api", "monitor-ui"}
    assert config.environment("staging").timeout == Duration("10m", 600)
    assert config.app("monitor-api").dockerfile == REPOSITORY / "apps/monitor-api/Dockerfile"
    assert config.gates.annotation_coverage == 100.0


def test_the_work_directory_is_the_checkouts_own_or_any_absolute_one(tmp_path: Path) -> None:
    document = real_document()
    assert parse_config(document, SOURCE).work("scan") == SOURCE.parent / ".aegis" / "scan"
    document["tool"]["aegis"]["work_directory"] = str(tmp_path / "out")
    assert parse_config(document, SOURCE).work("sbom", "a.json") == tmp_path / "out/sbom/a.json"
    document["tool"]["aegis"]["work_directory"] = "build/aegis"
    assert parse_config(document, SOURCE).work() == SOURCE.parent / "build/aegis"


def test_settings_are_found_from_a_subdirectory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPOSITORY / "src")
    assert load_config().source == REPOSITORY / "pyproject.toml"


@pytest.mark.parametrize(
    ("dotted_key", "value", "expected_words"),
    [
        ("registry", None, ["[tool.aegis.registry]", "it is missing"]),
        ("registry", 5, ["[tool.aegis.registry]", "found 5"]),
        ("chart", "/abs/chart", ["[tool.aegis.chart]", "inside the repository"]),
        ("chart", "../elsewhere", ["[tool.aegis.chart]", "no '..'"]),
        ("work_directory", "../out", ["[tool.aegis.work_directory]", "relative to the"]),
        ("work_directory", "", ["[tool.aegis.work_directory]", "or absolute"]),
        ("work_directory", 7, ["[tool.aegis.work_directory]", "found 7"]),
        ("apps.monitor-api.platforms", ["windows/amd64"], ["platforms", "windows/amd64"]),
        ("apps.monitor-api.platforms", [], ["platforms", "non-empty list"]),
        ("environments.staging.timeout", "ten minutes", ["timeout", "duration like '10m'"]),
        ("environments.staging.history_max", 0, ["history_max", "positive integer"]),
        ("environments.staging.history_max", True, ["history_max", "positive integer"]),
        ("environments.staging.namespace", "Aegis_Staging", ["namespace", "DNS-1123"]),
        ("environments.staging.kube_context", "", ["kube_context", "kubectl context"]),
        ("gates.test_workers", -1, ["test_workers", "0 to 32"]),
        ("gates.test_workers", "4", ["test_workers", "integer"]),
        ("gates.annotation_coverage", 101, ["annotation_coverage", "0 to 100"]),
        ("gates.annotation_coverage", "100", ["annotation_coverage", "percentage"]),
        ("environments.staging.colour", "blue", ["unknown key 'colour'", "namespace"]),
    ],
    ids=lambda value: str(value)[:30],
)
def test_a_wrong_or_missing_key_is_named_with_the_file(
    dotted_key: str, value: object, expected_words: list[str]
) -> None:
    document = copy.deepcopy(real_document())
    table = document["tool"]["aegis"]
    *parents, last = dotted_key.split(".")
    for parent in parents:
        table = table[parent]
    if value is None:
        del table[last]
    else:
        table[last] = value
    with pytest.raises(ConfigError) as raised:
        parse_config(document, SOURCE)
    message = str(raised.value)
    assert message.startswith(str(SOURCE))
    for word in expected_words:
        assert word in message
    assert raised.value.exit_code == ExitCode.BAD_INPUT


def test_a_missing_table_points_to_the_docs() -> None:
    with pytest.raises(ConfigError, match=r"\[tool.aegis\] is missing"):
        parse_config({"project": {}}, SOURCE)


def test_unknown_app_and_environment_list_what_exists() -> None:
    config = parse_config(real_document(), SOURCE)
    with pytest.raises(ConfigError, match="expected one of monitor-api, monitor-ui"):
        config.app("monitor")
    with pytest.raises(
        ConfigError, match="unknown environment 'prod': expected one of production, staging"
    ):
        config.environment("prod")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path / "pyproject.toml")
    broken = tmp_path / "pyproject.toml"
    broken.write_text("[tool.aegis\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_no_settings_anywhere_above(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"no pyproject.toml with a \[tool.aegis\] table"):
        load_config()


@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600), ("90s", 90), ("1h30m", 5400), ("2h", 7200)]
)
def test_durations(text: str, seconds: int) -> None:
    assert Duration.parse(text).seconds == seconds


@pytest.mark.parametrize("text", ["", "0s", "10", "m10", "1d", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        Duration.parse(text)
