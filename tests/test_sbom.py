"""SBOMs as OCI 1.1 referrers, against the real Distribution 2.8 registry (htpasswd auth).

Distribution 2.8 has no referrers API, so these tests exercise the fallback the
distribution-spec defines: the ``sha256-<hex>`` tag holding an index of the image's referrers.
The images here are small synthetic ones pushed through the same client (no engine needed);
the real images, with Trivy's real SBOMs, are in tests/docker/test_publish.py.
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from invoke.context import Context
from invoke.exceptions import Exit

from aegis_delivery import tasks_release as tasks
from aegis_delivery.errors import InputError
from aegis_delivery.release import oci, oci_client, sbom
from aegis_delivery.release.oci import ImageRef, RegistryError
from aegis_delivery.release.oci_client import RegistryClient
from tests.conftest import REPOSITORY
from tests.docker_support import LocalRegistry
from tests.records import release_record

CYCLONEDX = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"name": "a"}]}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    server = LocalRegistry(tmp_path_factory.mktemp("sbom-registry"))
    server.start()
    yield server
    server.stop()


def push_image(server: LocalRegistry, repository: str, content: bytes) -> ImageRef:
    """A small OCI image (config + one layer), pushed by digest; returns it."""
    placeholder = ImageRef(server.host, repository, "sha256:" + "0" * 64)
    client = RegistryClient(placeholder, server.USER, server.PASSWORD)
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": client.put_blob(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": client.put_blob(content),
                "size": len(content),
            }
        ],
    }
    body = oci.canonical(manifest)
    digest = oci.sha256_of(body)
    client.put_manifest(digest, body, oci.OCI_MANIFEST)
    return ImageRef(server.host, repository, digest)


def document(name: str) -> bytes:
    return json.dumps({**CYCLONEDX, "metadata": {"component": {"name": name}}}).encode()


def test_an_sbom_attached_to_a_digest_is_fetched_back_by_it(registry: LocalRegistry) -> None:
    image = push_image(registry, "aegis/app-one", b"layer one")
    attached = sbom.attach(image, document("one"), registry.USER, registry.PASSWORD)
    fetched, manifest = sbom.fetch(image, registry.USER, registry.PASSWORD)
    assert fetched == document("one") and manifest == attached
    # Distribution 2.8: no referrers API, so the fallback tag holds the index.
    base = f"http://{registry.host}/v2/aegis/app-one"
    auth = (registry.USER, registry.PASSWORD)
    assert (
        requests.get(f"{base}/referrers/{image.digest}", auth=auth, timeout=10).status_code == 404
    )
    index = requests.get(
        f"{base}/manifests/{oci.fallback_tag(image.digest)}",
        auth=auth,
        headers={"Accept": oci.OCI_INDEX},
        timeout=10,
    ).json()
    assert [(e["digest"], e["artifactType"]) for e in index["manifests"]] == [
        (attached, oci.CYCLONEDX)
    ]
    artifact = requests.get(
        f"{base}/manifests/{attached}", auth=auth, headers={"Accept": oci.OCI_MANIFEST}, timeout=10
    ).json()
    assert artifact["subject"]["digest"] == image.digest
    assert artifact["artifactType"] == oci.CYCLONEDX
    # The image itself is untouched: same digest, and no tag but the fallback was added.
    tags = requests.get(f"{base}/tags/list", auth=auth, timeout=10).json()["tags"]
    assert tags == [oci.fallback_tag(image.digest)]


def test_the_newest_sbom_wins_unless_the_recorded_one_is_asked_for(
    registry: LocalRegistry,
) -> None:
    image = push_image(registry, "aegis/app-two", b"layer two")
    first = sbom.attach(
        image, document("v1"), registry.USER, registry.PASSWORD, created="2026-01-01T00:00:00Z"
    )
    second = sbom.attach(
        image, document("v2"), registry.USER, registry.PASSWORD, created="2026-02-01T00:00:00Z"
    )
    assert first != second
    assert sbom.fetch(image, registry.USER, registry.PASSWORD) == (document("v2"), second)
    recorded = sbom.fetch(image, registry.USER, registry.PASSWORD, manifest_digest=first)
    assert recorded == (document("v1"), first)
    # Attaching the same document with the same time again is idempotent: no new entry.
    again = sbom.attach(
        image, document("v1"), registry.USER, registry.PASSWORD, created="2026-01-01T00:00:00Z"
    )
    assert again == first
    client = RegistryClient(image, registry.USER, registry.PASSWORD)
    assert sorted(e["digest"] for e in client.referrers(image.digest)) == sorted([first, second])


def test_an_image_without_an_sbom_says_how_to_get_one(registry: LocalRegistry) -> None:
    image = push_image(registry, "aegis/app-three", b"layer three")
    with pytest.raises(oci.SbomNotFound, match=r"no CycloneDX SBOM refers to .*invoke push"):
        sbom.fetch(image, registry.USER, registry.PASSWORD)


def test_a_wrong_password_is_one_line_and_attaches_nothing(registry: LocalRegistry) -> None:
    image = push_image(registry, "aegis/app-four", b"layer four")
    with pytest.raises(RegistryError, match="refused the credentials") as raised:
        sbom.attach(image, document("x"), registry.USER, "wrong-password")
    assert "\n" not in raised.value.message and "wrong-password" not in raised.value.message
    with pytest.raises(oci.SbomNotFound):
        sbom.fetch(image, registry.USER, registry.PASSWORD)


def test_a_stopped_registry_fails_fast_with_its_name(tmp_path: Path) -> None:
    stopped = LocalRegistry(tmp_path)  # configured, never started: nothing listens
    image = ImageRef(stopped.host, "aegis/app", "sha256:" + "1" * 64)
    with pytest.raises(RegistryError, match=f"reach {stopped.host}"):
        sbom.fetch(image, None, None)


class MisbehavingRegistry:
    """A loopback "registry" that answers its ping, then what each test tells it to."""

    def __init__(self, answers: list[int | None]) -> None:
        self.answers = answers  # per request after the ping: a status, None = never answer
        self.asked: list[str] = []
        self.release = threading.Event()
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/v2/":
                    status: int | None = 200
                else:
                    registry.asked.append(self.path)
                    status = registry.answers.pop(0) if registry.answers else 404
                if status is None:
                    registry.release.wait(30)  # holds the connection: no answer
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.host = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(oci_client, "REQUEST_TIMEOUT_SECONDS", (2.0, 0.5))
    monkeypatch.setattr(oci_client, "RETRY_BASE_SECONDS", 0.01)


@pytest.mark.usefixtures("quick_retries")
def test_a_registry_that_never_answers_is_a_one_line_error_not_a_hang() -> None:
    silent = MisbehavingRegistry([None] * oci_client.REQUEST_ATTEMPTS)
    image = ImageRef(silent.host, "aegis/app", "sha256:" + "3" * 64)
    started = time.monotonic()
    try:
        with pytest.raises(RegistryError) as raised:
            sbom.fetch(image, None, None)
    finally:
        silent.close()
    assert raised.value.message == (
        f"GET {silent.host}: the registry did not answer within 0.5s (3 attempts)"
    )
    assert len(silent.asked) == oci_client.REQUEST_ATTEMPTS  # retried, then given up
    assert time.monotonic() - started < 10  # three read timeouts, not oras-py's minutes


@pytest.mark.usefixtures("quick_retries")
def test_a_transient_5xx_is_retried_with_a_notice_and_a_final_one_is_reported() -> None:
    flaky = MisbehavingRegistry([503, 404, 404])  # referrers: 503, then no API; no fallback tag
    notices: list[str] = []
    digest = "sha256:" + "4" * 64
    try:
        client = RegistryClient(
            ImageRef(flaky.host, "aegis/app", digest), None, None, notices.append
        )
        assert client.referrers(digest) == []
        assert [path.split("?")[0] for path in flaky.asked] == [
            f"/v2/aegis/app/referrers/{digest}",
            f"/v2/aegis/app/referrers/{digest}",
            f"/v2/aegis/app/manifests/{oci.fallback_tag(digest)}",
        ]
        assert len(notices) == 1 and notices[0].startswith(f"GET {flaky.host}: HTTP 503; retry 1")
        flaky.answers[:] = [502] * oci_client.REQUEST_ATTEMPTS
        with pytest.raises(RegistryError, match=r"list the referrers of .*: HTTP 502"):
            client.referrers(digest)
        assert len(notices) == 1 + oci_client.REQUEST_ATTEMPTS - 1
    finally:
        flaky.close()


def test_not_a_cyclonedx_document_is_refused_before_the_registry_is_asked() -> None:
    image = ImageRef("127.0.0.1:1", "aegis/app", "sha256:" + "2" * 64)

    def never(*_: object) -> RegistryClient:
        raise AssertionError("the registry was contacted")

    for bad in (b"", b"not json", b"[]", json.dumps({"bomFormat": "SPDX"}).encode()):
        with pytest.raises(RegistryError, match="SBOM of"):
            sbom.attach(image, bad, None, None, connect=never)


def test_the_recorded_app_and_digest_are_checked_first() -> None:
    record = release_record("main-1", digests={"monitor-api": "sha256:" + "3" * 64})

    def never(*_: object) -> RegistryClient:
        raise AssertionError("the registry was contacted")

    with pytest.raises(InputError, match="unknown app 'nope': the release record has"):
        sbom.fetch_recorded(record, "nope", {}, "ghcr.io", connect=never)


@given(st.text(max_size=80))
def test_any_text_is_an_image_reference_or_a_one_line_input_error(text: str) -> None:
    try:
        image = ImageRef.parse(text)
    except InputError as error:
        assert "\n" not in error.message.replace(repr(text), "")
    else:
        assert image.pinned == text and image.digest.startswith("sha256:")


@given(st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True))
def test_the_fallback_tag_is_a_valid_tag(digest: str) -> None:
    tag = oci.fallback_tag(digest)
    assert tag == digest.replace(":", "-")
    assert len(tag) <= 128 and tag[0].isalnum()


def test_only_loopback_registries_speak_plain_http() -> None:
    for host, plain in (
        ("127.0.0.1:5000", True), ("localhost:5000", True), ("localhost", True),
        ("ghcr.io", False), ("127.0.0.1.evil.example", False), ("registry.local:5000", False),
    ):  # fmt: skip
        assert ImageRef(host, "o/r", "sha256:" + "4" * 64).plain_http is plain, host


def test_invoke_sbom_puts_the_recorded_sbom_alone_on_stdout(
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = push_image(registry, "aegis/r/monitor-api", b"api layer")
    recorded = sbom.attach(
        image, document("api"), registry.USER, registry.PASSWORD, created="2026-01-01T00:00:00Z"
    )
    sbom.attach(image, document("newer, not recorded"), registry.USER, registry.PASSWORD)
    record = release_record(
        "main-1", digests={"monitor-api": image.digest}, repository=f"{registry.host}/aegis/r"
    )
    api = record.images["monitor-api"].model_copy(update={"sbom": recorded})
    record = record.model_copy(update={"images": {"monitor-api": api}})
    shutil.copy(REPOSITORY / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / ".aegis").mkdir()
    (tmp_path / ".aegis" / "release.json").write_text(record.text())
    monkeypatch.setenv("AEGIS_CONFIG", str(tmp_path / "pyproject.toml"))
    monkeypatch.setenv("REGISTRY_USER", registry.USER)
    monkeypatch.setenv("REGISTRY_PASSWORD", registry.PASSWORD)
    tasks.sbom(Context(), app="monitor-api")
    printed = capsys.readouterr()
    assert printed.out.strip() == document("api").decode()  # the recorded one, not the newest
    assert f"1 components, attached to {image.pinned} as {recorded}" in printed.err
    tasks.sbom(Context(), app="monitor-api", json=True)
    summary = json.loads(capsys.readouterr().out)
    assert summary["sbom_manifest"] == recorded and summary["format"] == "CycloneDX 1.6"
    saved = tmp_path / "api.cdx.json"
    tasks.sbom(Context(), app="monitor-api", output=str(saved))
    assert saved.read_bytes() == document("api")
    assert "bomFormat" not in capsys.readouterr().out  # the file has it, the console does not
    with pytest.raises(Exit) as refused:
        tasks.sbom(Context(), app="monitor-ui", json=True)
    assert refused.value.code == 2
    assert "unknown app 'monitor-ui'" in json.loads(capsys.readouterr().out)["error"]
