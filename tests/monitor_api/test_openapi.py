"""The OpenAPI document describes the service: a property-based tester (schemathesis) drives
the real app with generated requests and checks every answer against the document (status
codes, content types, bodies). Two apps: every dependency unset (200s) and one refused (503).
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from monitor_api.app import create_app
from monitor_api.settings import load_settings
from schemathesis.checks import not_a_server_error

READY = create_app(load_settings({}))
NOT_READY = create_app(
    load_settings({"DATABASE_URL": "postgresql://u@127.0.0.1:1/db", "CHECK_TIMEOUT_SECONDS": "0.5"})
)
ready_schema = schemathesis.openapi.from_asgi("/openapi.json", READY)
not_ready_schema = schemathesis.openapi.from_asgi("/openapi.json", NOT_READY)
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))


@ready_schema.parametrize()
@EXAMPLES
def test_a_ready_service_answers_as_documented(case: schemathesis.Case[Any]) -> None:
    case.call_and_validate()


@not_ready_schema.parametrize()
@EXAMPLES
def test_a_not_ready_service_answers_as_documented(case: schemathesis.Case[Any]) -> None:
    # 503 is /readyz's documented answer here; every other check stays on.
    case.call_and_validate(excluded_checks=[not_a_server_error])


def test_the_document_lists_the_503_and_the_metrics_media_type() -> None:
    document = READY.openapi()
    readyz = document["paths"]["/readyz"]["get"]["responses"]
    assert set(readyz) >= {"200", "503"}
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert [media.split(";")[0] for media in metrics] == ["text/plain"]
    assert not {"/docs", "/redoc"} & set(document["paths"])
