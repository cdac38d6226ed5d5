"""The `local` environment: the stack (monitor-api, monitor-ui, NATS, PostgreSQL) in Docker
Compose, from the images just built, verified on the same endpoints the cluster's probes use.

PostgreSQL keeps its data in a named volume and gets a password generated on first use
(``local-postgres-password`` in the work directory, mode 0600); the password is masked in
every line the toolkit prints and never appears on the command line.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import GateFailed, InputError
from aegis_delivery.runner import Action, Runner, Step
from aegis_delivery.verification import VerifyReport

COMPOSE_FILE = "compose.local.json"
PASSWORD_FILE = "local-postgres-password"  # noqa: S105 - a file name, not a password
DATABASE = "aegis"  # the user and the database
POSTGRES_DATA = "postgres-data"  # the named volume; `invoke down --keep-data` keeps it
# In-container paths the read-only images need writable (tmpfs), as in the chart's emptyDirs.
CONTAINER_TMP = "/tmp"  # noqa: S108 - a tmpfs inside the container, not a host path
NEXT_CACHE = "/app/.next/cache"  # JSON is YAML: Compose reads it, Python writes it safely


def compose_document(
    config: DeliveryConfig, images: Mapping[str, str], database_password: str
) -> dict[str, object]:
    """The Compose project: hardened like the chart (read-only root, writable /tmp, non-root)."""
    local = config.local
    hardened = {
        "read_only": True,
        "tmpfs": [CONTAINER_TMP],
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "restart": "no",
    }
    database_url = f"postgresql://{DATABASE}:{database_password}@postgres:5432/{DATABASE}"
    return {
        "name": local.project,
        "services": {
            "nats": {"image": local.nats_image, **hardened},
            "postgres": {
                **hardened,
                "image": local.postgres_image,
                "user": "postgres",
                # The socket's directory; the image makes it writable by all (sticky), as the
                # official image does: a tmpfs keeps that mode, not the owner.
                "tmpfs": [CONTAINER_TMP, "/var/run/postgresql"],
                "environment": {
                    "POSTGRES_USER": DATABASE,
                    "POSTGRES_DB": DATABASE,
                    "POSTGRES_PASSWORD": database_password,
                    "PGDATA": "/var/lib/postgresql/data",
                },
                "volumes": [f"{POSTGRES_DATA}:/var/lib/postgresql/data"],
                "healthcheck": {
                    "test": [
                        "CMD",
                        "pg_isready",
                        "-h",
                        "127.0.0.1",
                        "-U",
                        DATABASE,
                        "-d",
                        DATABASE,
                    ],
                    "interval": "2s",
                    "timeout": "3s",
                    "retries": 30,
                },
            },
            "monitor-api": {
                **hardened,
                "image": images["monitor-api"],
                "environment": {
                    "NATS_URL": "nats://nats:4222",
                    "DATABASE_URL": database_url,
                    "CHECK_TIMEOUT_SECONDS": "2",
                },
                "ports": [f"127.0.0.1:{local.api_port}:8000"],
                # PostgreSQL answers before the API starts (its health check), as in staging.
                "depends_on": {
                    "nats": {"condition": "service_started"},
                    "postgres": {"condition": "service_healthy"},
                },
            },
            "monitor-ui": {
                **hardened,
                "image": images["monitor-ui"],
                "tmpfs": [CONTAINER_TMP, NEXT_CACHE],
                "environment": {"MONITOR_API_URL": "http://monitor-api:8000"},
                "ports": [f"127.0.0.1:{local.ui_port}:3000"],
                "depends_on": ["monitor-api"],
            },
        },
        "volumes": {POSTGRES_DATA: {}},
    }


def database_password(runner: Runner, config: DeliveryConfig) -> str:
    """The local database's password: kept while its volume lives, made on first use."""
    path = config.work(PASSWORD_FILE)
    try:
        password = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        password = ""
    if not password:
        password = secrets.token_urlsafe(24)
        runner.write_file(path, password + "\n", "keep the local database's password", private=True)
    runner.masker.add(password)
    return password


def compose_file(config: DeliveryConfig) -> Path:
    return config.work(COMPOSE_FILE)


def compose_argv(config: DeliveryConfig, *arguments: str) -> tuple[str, ...]:
    return ("docker", "compose", "--project-name", config.local.project,
            "--file", str(compose_file(config)), *arguments)  # fmt: skip


def up(runner: Runner, config: DeliveryConfig, images: Mapping[str, str]) -> None:
    """Write the Compose file (private: it holds the database password) and start the stack."""
    document = compose_document(config, images, database_password(runner, config))
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    runner.write_file(compose_file(config), text, "write the Compose file", private=True)
    runner.run(Step(compose_argv(config, "up", "--detach", "--force-recreate", "--remove-orphans"),
                    "start the local stack"))  # fmt: skip


def down(runner: Runner, config: DeliveryConfig, keep_data: bool = False) -> None:
    """Stop the stack: no container or network is left, nor (unless kept) the database."""
    if not compose_file(config).exists():
        runner.console.info("no local stack to stop")
        return
    volumes = () if keep_data else ("--volumes",)
    runner.run(
        Step(compose_argv(config, "down", *volumes, "--remove-orphans"), "stop the local stack")
    )
    if not keep_data:  # its volume is gone, so is the password that opened it
        password = config.work(PASSWORD_FILE)
        runner.perform(
            Action((Step(("rm", "-f", str(password)), "forget the database password"),),
                   lambda: password.unlink(missing_ok=True))
        )  # fmt: skip


def running_tag(config: DeliveryConfig) -> str:
    """The image tag the local stack runs (from its Compose file), for `invoke verify`."""
    try:
        document = json.loads(compose_file(config).read_text(encoding="utf-8"))
        image = str(document["services"]["monitor-api"]["image"])
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"no local stack to verify ({compose_file(config)} is missing or unreadable): "
            "run `invoke pipeline` first"
        ) from None
    return image.rsplit(":", 1)[-1]


@dataclass(frozen=True)
class HttpCheck:
    name: str
    url: str
    accept: Callable[[int, str], str | None]  # None when fine, else what is wrong


def _status_ok(status: int, body: str) -> str | None:
    return None if status == 200 else f"answered {status}: {body[:200]}"


def checks(config: DeliveryConfig, expected_tag: str) -> list[HttpCheck]:
    """The endpoints the cluster's probes and `helm test` use, plus the build identity."""
    api = f"http://127.0.0.1:{config.local.api_port}"
    ui = f"http://127.0.0.1:{config.local.ui_port}"

    def ready(status: int, body: str) -> str | None:
        if status != 200:
            return f"answered {status}: {body[:300]}"
        found = json.loads(body).get("checks", {})
        for dependency, name in (("nats", "NATS"), ("postgres", "PostgreSQL")):
            said = found.get(dependency, {}).get("status")
            if said != "ok":
                return f"{name} check is {said!r}, expected 'ok'"
        return None

    def version(status: int, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        tag = json.loads(body).get("image_tag")
        return None if tag == expected_tag else f"runs image tag {tag!r}, expected {expected_tag!r}"

    def page(status: int, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        if "API unreachable" in body or "ready" not in body:
            return "shows the API as not ready"
        # every dependency the stack runs is configured (PostgreSQL as in staging)
        return "shows a dependency as not configured" if "not configured" in body else None

    return [
        HttpCheck("monitor-api /healthz", f"{api}/healthz", _status_ok),
        HttpCheck("monitor-api /readyz", f"{api}/readyz", ready),
        HttpCheck("monitor-api /version", f"{api}/version", version),
        HttpCheck("monitor-ui /api/health", f"{ui}/api/health", _status_ok),
        HttpCheck("monitor-ui /", f"{ui}/", page),
    ]


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback only
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8", "replace")


def verify(
    runner: Runner,
    config: DeliveryConfig,
    expected_tag: str,
    sleep: Callable[[float], None] = time.sleep,
) -> VerifyReport:
    """Each check must pass within the timeout; the first that never does is named.

    The checks are HTTP requests, run as the runner's in-process actions: questions, so a dry
    run asks them too, until a planned change (then the stack asked is not the planned one).
    """
    report = VerifyReport()
    deadline = time.monotonic() + config.local.verify_timeout.seconds

    def poll(check: HttpCheck) -> tuple[str | None]:
        """(None,) when the check passed, else (what was wrong,), once time is up."""
        while True:
            try:
                problem = check.accept(*fetch(check.url))
            except (OSError, ValueError) as error:
                problem = f"no answer ({error})"
            if problem is None or time.monotonic() >= deadline:
                return (problem,)
            sleep(1.0)

    for check in checks(config, expected_tag):
        question = Step(("GET", check.url), f"check {check.name}", changes=False)
        answer = runner.perform(Action((question,), functools.partial(poll, check)))
        if answer is None:  # after a planned change the stack asked is not the one planned
            report.planned(check.name)
            continue
        (problem,) = answer
        report.add(check.name, problem is None, problem or "ok")
        if problem is not None:
            service = check.name.split()[0]
            logs = runner.probe(
                Step(compose_argv(config, "logs", "--tail", "20", service), "logs", capture=True,
                     changes=False)
            )  # fmt: skip
            for line in (logs.stdout or logs.stderr).strip().splitlines()[-20:]:
                runner.console.output_line(line)
            raise GateFailed(f"verify failed: {check.name} {problem}")
    passed = [str(check["check"]) for check in report.checks if check["ok"]]
    if passed:
        runner.console.success(f"verify: {len(passed)} checks passed ({'; '.join(passed)})")
    return report
