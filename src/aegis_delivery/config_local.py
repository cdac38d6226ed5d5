"""The `local` environment's settings (``[tool.aegis.local]``): the Compose stack of
`invoke pipeline` on this machine, its ports, its images and their offline stand-ins.
``config.py`` reads them through here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from aegis_delivery.config_table import Duration, Table, default_of, keys_of


@dataclass(frozen=True, kw_only=True)
class LocalSettings:
    project: str
    nats_image: str
    api_port: int = 18000
    ui_port: int = 13000
    verify_timeout: Duration = Duration.parse("90s")  # noqa: RUF009 - frozen
    push: bool = False
    # `invoke pipeline --offline`: locally made base images (scripts/local-base-images).
    offline_bases: Mapping[str, str] = field(default_factory=dict)
    offline_nats_image: str = "aegis-local/nats:bookworm"
    # PostgreSQL, as staging has it (an image with the official image's POSTGRES_* interface).
    postgres_image: str = "postgres:15-bookworm"
    offline_postgres_image: str = "aegis-local/postgres:15"


def load_local(table: Table, name_pattern: re.Pattern[str]) -> LocalSettings:
    table.unknown_keys(keys_of(LocalSettings))
    bases = table.get("offline_bases", dict, "a table of app = image", {})
    if not all(isinstance(v, str) and v.strip() for v in bases.values()):
        raise table.fail("offline_bases", "a table of app = image reference", bases)
    ports = {}
    for key in ("api_port", "ui_port"):
        port = table.get(key, int, "a port from 1024 to 65535", default_of(LocalSettings, key))
        if not 1024 <= port <= 65535:
            raise table.fail(key, "a port from 1024 to 65535", port)
        ports[key] = port
    project = table.text("project", "a Compose project name")
    if not name_pattern.match(project):
        raise table.fail("project", "lower case letters, digits and '-'", project)
    return LocalSettings(
        project=project,
        nats_image=table.text("nats_image", "an image reference"),
        api_port=ports["api_port"],
        ui_port=ports["ui_port"],
        verify_timeout=table.duration(
            "verify_timeout", default_of(LocalSettings, "verify_timeout")
        ),
        push=table.get("push", bool, "true or false", default_of(LocalSettings, "push")),
        offline_bases=dict(bases),
        **{
            key: table.get(key, str, "an image reference", default_of(LocalSettings, key))
            for key in ("offline_nats_image", "postgres_image", "offline_postgres_image")
        },
    )
