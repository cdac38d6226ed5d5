"""The `local` environment: the stack (monitor-api, monitor-ui, NATS) in Docker Compose, from
the images just built, verified on the same endpoints the cluster's probes use.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import GateFailed
from aegis_delivery.runner import Runner, Step
from aegis_delivery.verification import VerifyReport

COMPOSE_FILE = "compose.local.json"
# In-container paths the read-only images need writable (tmpfs), as in the chart's emptyDirs.
CONTAINER_TMP = "/tmp"  # noqa: S108 - a tmpfs inside the container, not a host path
NEXT_CACHE = "/app/.next/cache"  # JSON is YAML: Compose reads it, Python writes it safely


def compose_document(config: DeliveryConfig, images: Mapping[str, str]) -> dict[str, object]:
    """The Compose project: hardened like the chart (read-only root, writable /tmp, non-root)."""
    local = config.local
    hardened = {
        "read_only": True,
        "tmpfs": [CONTAINER_TMP],
        "security_opt": ["no-new-privileges:true"],
        "cap_drop": ["ALL"],
        "restart": "no",
    }
    return {
        "name": local.project,
        "services": {
            "nats": {"image": local.nats_image, **hardened},
            "monitor-api": {
                **hardened,
                "image": images["monitor-api"],
                "environment": {"NATS_URL": "nats://nats:4222", "CHECK_TIMEOUT_SECONDS": "2"},
                "ports": [f"127.0.0.1:{local.api_port}:8000"],
                "depends_on": ["nats"],
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
    }


def compose_file(config: DeliveryConfig) -> Path:
    return config.work(COMPOSE_FILE)


def compose_argv(config: DeliveryConfig, *arguments: str) -> tuple[str, ...]:
    return ("docker", "compose", "--project-name", config.local.project,
            "--file", str(compose_file(config)), *arguments)  # fmt: skip


def up(runner: Runner, config: DeliveryConfig, images: Mapping[str, str]) -> None:
    """Write the Compose file and start (or update) the stack."""
    document = compose_document(config, images)
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    runner.write_file(compose_file(config), text, "write the Compose file")
    runner.run(Step(compose_argv(config, "up", "--detach", "--force-recreate", "--remove-orphans"),
                    "start the local stack"))  # fmt: skip


def down(runner: Runner, config: DeliveryConfig) -> None:
    if not compose_file(config).exists():
        runner.console.info("no local stack to stop")
        return
    runner.run(
        Step(compose_argv(config, "down", "--volumes", "--remove-orphans"), "stop the local stack")
    )


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
        nats = json.loads(body).get("checks", {}).get("nats", {}).get("status")
        return None if nats == "ok" else f"NATS check is {nats!r}, expected 'ok'"

    def version(status: int, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        tag = json.loads(body).get("image_tag")
        return None if tag == expected_tag else f"runs image tag {tag!r}, expected {expected_tag!r}"

    def page(status: int, body: str) -> str | None:
        if status != 200:
            return f"answered {status}"
        return (
            None
            if "API unreachable" not in body and "ready" in body
            else "shows the API as not ready"
        )

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

    The checks are HTTP requests, not steps: after a planned change (a dry run) they are
    listed, since the stack they would ask is not the one the plan describes.
    """
    report = VerifyReport()
    if not runner.real_state:
        for check in checks(config, expected_tag):
            runner.console.info(f"[dry-run] check {check.name}: GET {check.url}")
            report.planned(check.name)
        return report
    deadline = time.monotonic() + config.local.verify_timeout.seconds
    for check in checks(config, expected_tag):
        while True:
            try:
                problem = check.accept(*fetch(check.url))
            except (OSError, ValueError) as error:
                problem = f"no answer ({error})"
            if problem is None or time.monotonic() >= deadline:
                break
            sleep(1.0)
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
        runner.console.success(f"{check.name}")
    return report
