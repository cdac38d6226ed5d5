"""Previews executed by the real helm (4 and 3) and kubectl against the local Kubernetes API
(`tests/kube_api.py`): created, refreshed, listed, collected and removed, with GitHub's answer
about each pull request from a loopback stand-in (`GITHUB_API_URL`, as GitHub Enterprise sets
it). Each test asserts on what the API holds afterwards: namespaces, their labels and
annotations, helm's release Secrets, and the objects the chart made in each namespace.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import pytest

from aegis_delivery import clock, preview_flow, reports
from aegis_delivery.cluster import preview
from aegis_delivery.config import DeliveryConfig, Duration, load_config
from aegis_delivery.config_trust import ProvenancePolicy
from aegis_delivery.errors import AegisError, InputError
from aegis_delivery.masking import Masker
from aegis_delivery.runner import Runner
from tests.conftest import REPOSITORY, RecordingConsole
from tests.kube_api import JSON, FakeCluster, LocalKubeAPI
from tests.published import printed
from tests.records import provenance_off, release_record
from tests.test_cluster_lifecycle import pinned_binaries, policy_by_tag

pytestmark = [pytest.mark.binaries, pytest.mark.cluster]
CONTEXT = "aegis-preview"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
DIGESTS = {"monitor-api": "sha256:" + "5" * 64, "monitor-ui": "sha256:" + "6" * 64}


class PullRequests(http.server.BaseHTTPRequestHandler):
    """GitHub's pulls endpoint: each number's state from ``states``; others are a 404."""

    states: ClassVar[dict[str, str]] = {}

    def do_GET(self) -> None:
        state = self.states.get(self.path.rsplit("/", 1)[-1])
        if state is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.end_headers()
        self.wfile.write(json.dumps({"state": state}).encode())

    def log_message(self, *_: object) -> None:
        pass


@dataclass
class Previews:
    api: LocalKubeAPI
    controller: FakeCluster
    config: DeliveryConfig
    environ: dict[str, str]
    console: RecordingConsole
    monkeypatch: pytest.MonkeyPatch

    def at(self, moment: dt.datetime) -> None:
        self.monkeypatch.setattr(clock, "now", lambda: moment)

    def up(
        self, number: int, sha: str, digests: dict[str, str] = DIGESTS
    ) -> preview_flow.PreviewOutcome:
        record = release_record(f"pr-{number}-{sha[:7]}", digests=digests)
        record = record.model_copy(update={"source": record.source.model_copy(update={"sha": sha})})
        self.config.build.release_file.write_text(record.text())
        with Runner(self.console, self.console.masker, grace_seconds=5) as runner:
            return preview_flow.up(runner, self.config, number, self.environ)

    def down(self, number: int) -> preview_flow.PreviewOutcome:
        with Runner(self.console, self.console.masker, grace_seconds=5) as runner:
            return preview_flow.down(runner, self.config, number, self.environ)

    def gc(self, environ: dict[str, str] | None = None) -> preview_flow.PreviewList:
        with Runner(self.console, self.console.masker, grace_seconds=5) as runner:
            return preview_flow.gc(runner, self.config, {**self.environ, **(environ or {})})

    def listing(self) -> preview_flow.PreviewList:
        with Runner(self.console, self.console.masker, grace_seconds=5) as runner:
            return preview_flow.listing(runner, self.config, self.environ)

    def namespaces(self) -> dict[str, JSON]:
        return {ns["metadata"]["name"]: ns for ns in self.api.list("v1/namespaces")}

    def statuses(self, number: int) -> list[tuple[int, str]]:
        name = f"aegis-pr-{number}"
        found = []
        for secret in self.api.list("v1/secrets", name, "owner=helm"):
            raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
            release = json.loads(gzip.decompress(raw))
            assert release["name"] == name
            found.append((int(release["version"]), str(release["info"]["status"])))
        return sorted(found)


@pytest.fixture(params=[4, 3], ids=["helm4", "helm3"])
def previews(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Previews]:
    chart = pinned_binaries(tmp_path, monkeypatch, int(request.param))
    base = load_config(REPOSITORY / "pyproject.toml")
    assert base.preview is not None, "pyproject.toml turns previews on"
    settings = replace(base.preview, timeout=Duration.parse("20s"))
    config = replace(
        provenance_off(base), chart=chart, preview=settings,
        preview_provenance=ProvenancePolicy(),
        build=replace(base.build, release_file=tmp_path / "release.json"),
    )  # fmt: skip
    with LocalKubeAPI() as api, FakeCluster(api) as controller:
        encoded = api.kubeconfig(tmp_path / "kubeconfig.yaml", CONTEXT, "default")
        controller.start(delay=0)
        environ = {"KUBE_CONFIG_PREVIEW": encoded, "USER": "ops"}
        found = Previews(api, controller, config, environ, RecordingConsole(Masker()), monkeypatch)
        found.at(T0)
        yield found
        assert controller.errors == []


def test_previews_are_created_refreshed_collected_and_removed(previews: Previews) -> None:
    seven = previews.up(7, "a" * 40)
    assert seven.status == "created" and seven.url == "https://pr-7.preview.aegistrader.internal"
    assert seven.deployed is not None and seven.deployed.verify is not None
    assert seven.deployed.verify.passed
    assert printed("preview", reports.show_preview, seven)["url"] == seven.url
    previews.up(8, "b" * 40)
    previews.up(9, "c" * 40)
    namespace = previews.namespaces()["aegis-pr-7"]["metadata"]
    assert namespace["labels"][preview.NUMBER_LABEL] == "7"
    assert namespace["annotations"][preview.HEAD_SHA] == "a" * 40
    assert namespace["annotations"][preview.OPENED_BY] == "ops"
    assert namespace["annotations"][preview.EXPIRES_AT] == "2026-12-04T09:00:00Z"
    # Its own release in its own namespace, with the preview's values and the PR's host.
    assert previews.statuses(7) == [(1, "deployed")]
    ingresses = previews.api.list("networking.k8s.io/v1/ingresses", "aegis-pr-7")
    hosts = [rule["host"] for ingress in ingresses for rule in ingress["spec"]["rules"]]
    assert hosts == ["pr-7.preview.aegistrader.internal"]
    assert [q["metadata"]["name"] for q in previews.api.list("v1/resourcequotas", "aegis-pr-7")]
    assert previews.api.list("v1/limitranges", "aegis-pr-7")
    assert len(previews.api.list("networking.k8s.io/v1/networkpolicies", "aegis-pr-7")) == 2
    deployments = previews.api.list("apps/v1/deployments", "aegis-pr-7")
    assert {d["spec"]["replicas"] for d in deployments} == {1}

    # A new push refreshes the same release: revision 2, a later expiry, the same creation.
    previews.at(T0 + dt.timedelta(hours=48))
    refreshed = previews.up(7, "d" * 40)
    assert refreshed.status == "refreshed"
    assert previews.statuses(7) == [(1, "superseded"), (2, "deployed")]
    notes = previews.namespaces()["aegis-pr-7"]["metadata"]["annotations"]
    assert notes[preview.EXPIRES_AT] == "2026-12-06T09:00:00Z"
    assert notes[preview.CREATED_AT] == "2026-12-01T09:00:00Z"
    assert notes[preview.HEAD_SHA] == "d" * 40

    # A namespace that is not ours, named like a preview or not, is never touched.
    previews.api.add_namespace("aegis-pr-99")
    previews.api.add_namespace("team-billing")
    with pytest.raises(InputError, match="not a preview the toolkit made"):
        previews.up(99, "e" * 40)
    with pytest.raises(InputError, match="not a preview the toolkit made"):
        previews.down(99)
    assert previews.statuses(99) == []

    listed = printed("previews", reports.show_previews, previews.listing())
    assert [(row["pull_request"], row["status"]) for row in listed["previews"]] == [
        (7, "deployed"), (8, "deployed"), (9, "deployed"),
    ]  # fmt: skip

    # gc, 73 hours on: #8 has expired, GitHub says #9 is closed, #7 (refreshed) stays.
    previews.at(T0 + dt.timedelta(hours=73))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PullRequests)
    PullRequests.states = {"7": "open", "8": "open", "9": "closed"}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        collected = previews.gc(
            {"GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "aegistrader/aegistrader",
             "GITHUB_API_URL": f"http://127.0.0.1:{server.server_port}"}
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    document = printed("previews", reports.show_previews, collected)
    assert sorted(document["removed"]) == [8, 9]
    reasons = {row["pull_request"]: row["reason"] for row in document["previews"]}
    assert reasons == {7: "open", 8: "expired", 9: "closed"}
    left = previews.namespaces()
    assert "aegis-pr-8" not in left and "aegis-pr-9" not in left
    assert {"aegis-pr-7", "aegis-pr-99", "team-billing"} <= set(left)
    assert previews.statuses(8) == [] and previews.statuses(9) == []

    # Down, then down again: the second is a note and exit 0.
    assert previews.down(7).status == "removed"
    assert "aegis-pr-7" not in previews.namespaces()
    again = previews.down(7)
    assert again.status == "absent" and "nothing to remove" in again.note
    assert "aegis-pr-99" in previews.namespaces()


def test_the_cap_refuses_the_eleventh_naming_the_oldest(previews: Previews) -> None:
    for number in range(1, 11):  # ten previews, as the API holds them
        stamp = preview.Stamp(number, "f" * 40, "ops", f"pr-{number}-fffffff", "", T0
                              + dt.timedelta(minutes=number), 3600)  # fmt: skip
        previews.api.put("v1/namespaces", json.loads(stamp.manifest(f"aegis-pr-{number}")))
    with pytest.raises(AegisError, match="max_previews") as refused:
        previews.up(11, "1" * 40)
    assert "the oldest are #1 (aegis-pr-1" in refused.value.message
    assert "aegis-pr-11" not in previews.namespaces()
    assert previews.statuses(11) == []
    # One without a release (its deploy never ran) goes all the same.
    assert previews.down(1).status == "removed"
    assert "aegis-pr-1" not in previews.namespaces()


def test_a_dry_run_asks_for_real_and_changes_nothing(previews: Previews) -> None:
    record = release_record("pr-5-5555555", digests=DIGESTS)
    previews.config.build.release_file.write_text(record.text())
    with Runner(previews.console, previews.console.masker, dry_run=True) as runner:
        planned = preview_flow.up(runner, previews.config, 5, previews.environ)
    assert planned.status == "created" and planned.dry_run
    text = previews.console.text
    assert "[dry-run] create namespace aegis-pr-5 (preview of #5)" in text
    assert "helm upgrade --install aegis-pr-5 " in text
    assert "aegis-pr-5" not in previews.namespaces()
    assert previews.statuses(5) == []


def test_a_fork_gets_no_preview_and_is_told_why(previews: Previews, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({
        "repository": {"full_name": "aegistrader/aegistrader"},
        "pull_request": {"number": 12, "head": {"sha": "1" * 40, "repo": {
            "full_name": "stranger/aegistrader"}}, "user": {"login": "stranger"}},
    }))  # fmt: skip
    previews.environ.update(
        GITHUB_EVENT_NAME="pull_request", GITHUB_EVENT_PATH=str(event),
        GITHUB_REPOSITORY="aegistrader/aegistrader", GITHUB_SHA="2" * 40,
        GITHUB_REF="refs/pull/12/merge", GITHUB_ACTIONS="true", CI="true",
    )  # fmt: skip
    skipped = previews.up(12, "1" * 40)
    assert skipped.status == "skipped" and "fork" in skipped.note
    assert printed("preview", reports.show_preview, skipped)["status"] == "skipped"
    assert "aegis-pr-12" not in previews.namespaces()
    with pytest.raises(InputError, match="pull request #12"):
        previews.up(13, "1" * 40)


def test_a_first_deploy_that_fails_leaves_no_preview_and_a_refresh_keeps_its_own(
    previews: Previews,
) -> None:
    previews.up(6, "6" * 40)
    settings = previews.config.preview
    assert settings is not None
    short = replace(settings, timeout=Duration.parse("3s"))
    previews.config = replace(previews.config, preview=short)
    broken = {"monitor-api": "sha256:" + "9" * 64, "monitor-ui": DIGESTS["monitor-ui"]}
    previews.controller.start(policy_by_tag({broken["monitor-api"]: "crashloop"}), 0)
    with pytest.raises(AegisError, match="failed"):
        previews.up(5, "5" * 40, broken)
    assert "aegis-pr-5" not in previews.namespaces()
    with pytest.raises(AegisError, match="failed"):
        previews.up(6, "7" * 40, broken)  # a refresh that fails: the last good one stays
    assert "aegis-pr-6" in previews.namespaces()
    assert previews.statuses(6)[-1][1] == "deployed"
