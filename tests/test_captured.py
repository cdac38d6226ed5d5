"""The captured helm and kubectl outputs the logic tests answer with are what the pinned
binaries print today (tests/capture.py): captured again, they have the same shape and values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests import capture
from tests.services import require


@pytest.mark.binaries
@pytest.mark.cluster
@pytest.mark.parametrize("major", [4, 3], ids=["helm4", "helm3"])
def test_the_captured_outputs_are_what_the_binaries_print(major: int, tmp_path: Path) -> None:
    require(capture.helm_binary(major).exists(), "scripts/install-tools")
    fresh = capture.capture(major, tmp_path)
    for name, relative in capture.files(major).items():
        kept = (capture.CAPTURED / relative).read_text()
        hint = f"{relative} is stale: run `python -m tests.capture` and review the diff"
        assert capture.stable(name, fresh[name]) == capture.stable(name, kept), hint
        if name.endswith(".json"):
            assert capture.shape(json.loads(fresh[name])) == capture.shape(json.loads(kept)), hint


def test_shape_and_stable_values_see_what_a_parser_would() -> None:
    entry = {"revision": 1, "updated": "2026-11-27T15:52:43.4Z", "status": "deployed"}
    assert capture.shape([entry]) == [{"revision": "int", "updated": "str", "status": "str"}]
    assert capture.shape([entry]) != capture.shape([{**entry, "revision": "1"}])
    moved = json.dumps([{**entry, "updated": "2027-01-01T00:00:00Z"}])
    assert capture.stable("helm-history-pending.json", moved) == capture.stable(
        "helm-history-pending.json", json.dumps([entry])
    )
    assert capture.stable("helm-history-pending.json", json.dumps([entry])) != capture.stable(
        "helm-history-pending.json", json.dumps([{**entry, "status": "failed"}])
    )


@pytest.mark.parametrize("major", [4, 3], ids=["helm4", "helm3"])
def test_the_parsers_read_what_each_helm_major_printed(major: int) -> None:
    from aegis_delivery.cluster import helm, history, kube

    folder = capture.CAPTURED / f"helm{major}"
    assert helm.parse_version((folder / "helm-version.txt").read_text()) == major
    revisions = helm.parse_history((folder / "helm-history-pending.json").read_text())
    assert [(r.revision, r.status) for r in revisions] == [
        (1, "superseded"), (2, "deployed"), (3, "pending-upgrade"),
    ]  # fmt: skip
    assert revisions[1].description == "tag=main-2222222 sha=2222222 by=ci"
    pending = helm.pending(revisions)
    assert pending is not None and pending.revision == 3
    deployed = helm.last_deployed(revisions)
    assert deployed is not None and deployed.revision == 2
    tag, digests = history.deployed_values((folder / "helm-get-values-2.json").read_text())
    assert tag == "main-2222222" and digests == {"monitorApi": "sha256:" + "2" * 64}
    state = kube.parse_lease((capture.CAPTURED / "helm4" / "kubectl-get-lease.json").read_text())
    assert (state.holder, state.duration_seconds) == (capture.HOLDER, 620)
    assert state.renewed == capture.LEASE_TIME and state.resource_version is not None
