"""SBOMs stored with the images: a CycloneDX document per published image, attached to the
image's digest in the registry as an OCI 1.1 artifact whose ``subject`` is the image.

Trivy writes the SBOM (``--format cyclonedx`` needs no vulnerability database). oras-py
carries every registry request and its authentication (basic, or the bearer token dance of
ghcr.io). oras-py has no referrers support, so this module composes the artifact manifest
itself (exact bytes, exact digests) and, on registries without the referrers API
(Distribution 2.8 answers 404), maintains the distribution-spec 1.1 fallback: the tag
``sha256-<hex>`` holding an OCI index of the image's referrers. Reading goes the same way:
the referrers API first, then the fallback tag. Every hop is checked against its digest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

from aegis_delivery import clock
from aegis_delivery.errors import AegisError, ExitCode, InputError
from aegis_delivery.release import registry
from aegis_delivery.release.registry import Credentials, one_line
from aegis_delivery.retry import with_retries
from aegis_delivery.runner import Runner, Step
from aegis_delivery.validation import image_digest

if TYPE_CHECKING:
    import requests
    import requests.adapters

    from aegis_delivery.release.record import ReleaseRecord

CYCLONEDX = "application/vnd.cyclonedx+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
# Without these, Distribution 2.8 converts to schema 1, whose digest is another one.
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST))
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"
PROBE_TIMEOUT_SECONDS = 10.0
# Every registry request: (connect, read) seconds. oras-py sets none, so a registry that
# accepts the connection and never answers would hold a push for ever.
REQUEST_TIMEOUT_SECONDS = (10.0, 60.0)
# In all, with backoff from RETRY_BASE_SECONDS, for what retry.is_transient calls transient
# (timeouts, resets, 5xx, 429); oras-py's own retry (five attempts, sleeping up to 81 s, any
# error) is bypassed.
REQUEST_ATTEMPTS = 3
RETRY_BASE_SECONDS = 1.0
LOOPBACK = re.compile(r"^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$")

Json = dict[str, Any]


class RegistryError(AegisError):
    """The registry refused or failed a request: one line, what and why."""

    exit_code = ExitCode.FAILED

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(f"{what}: {detail}")


class SbomNotFound(AegisError):
    """No CycloneDX SBOM refers to the image (it was pushed before SBOMs, or by hand)."""

    exit_code = ExitCode.FAILED


@dataclass(frozen=True)
class ImageRef:
    """An image in a registry by digest: ``host/owner/repo/app@sha256:...``."""

    host: str
    repository: str
    digest: str

    @classmethod
    def parse(cls, pinned: str) -> ImageRef:
        name, separator, digest = pinned.partition("@")
        host, slash, repository = name.partition("/")
        if not separator or not slash or not repository:
            raise InputError(f"{pinned!r} is not an image by digest: expected HOST/REPO@sha256:...")
        return cls(host, repository, image_digest(digest, what=f"digest of {pinned!r}"))

    @property
    def pinned(self) -> str:
        return f"{self.host}/{self.repository}@{self.digest}"

    @property
    def plain_http(self) -> bool:
        return plain_http(self.host)


def plain_http(host: str) -> bool:
    """Loopback registries speak plain HTTP, as Docker allows; every other one TLS."""
    return bool(LOOPBACK.match(host))


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(document: Json) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8")


def fallback_tag(digest: str) -> str:
    """The referrers tag schema (distribution-spec 1.1): ``<alg>-<hex>``, truncated."""
    algorithm, _, encoded = digest.partition(":")
    return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{algorithm[:32]}-{encoded[:64]}")


def artifact_manifest(
    subject_digest: str,
    subject_media_type: str,
    subject_size: int,
    sbom: bytes,
    created: str,
) -> Json:
    """The OCI 1.1 artifact manifest of one SBOM: empty config, one CycloneDX layer."""
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": CYCLONEDX,
        "config": {"mediaType": EMPTY_CONFIG, "digest": sha256_of(EMPTY_BLOB), "size": 2},
        "layers": [
            {
                "mediaType": CYCLONEDX,
                "digest": sha256_of(sbom),
                "size": len(sbom),
                "annotations": {TITLE: "sbom.cdx.json"},
            }
        ],
        "subject": {
            "mediaType": subject_media_type,
            "digest": subject_digest,
            "size": subject_size,
        },
        "annotations": {CREATED: created},
    }


def newest_first(entries: list[Json]) -> list[Json]:
    """Referrer descriptors, newest ``created`` first; later entries win ties."""
    ordered = sorted(
        enumerate(entries),
        key=lambda pair: (str((pair[1].get("annotations") or {}).get(CREATED, "")), pair[0]),
        reverse=True,
    )
    return [entry for _, entry in ordered]


class _Transient(Exception):
    """A 5xx or 429 reply: retried, and returned as it is when the attempts run out."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _described(error: BaseException) -> str:
    """A failed attempt on one line, in the words retry.is_transient reads."""
    if isinstance(error, _Transient):
        retry_after = error.response.headers.get("Retry-After", "")
        hint = f" retry-after: {retry_after}" if retry_after.isdigit() else ""
        return f"HTTP {error.response.status_code}{hint}"
    return f"{type(error).__name__}: {one_line(str(error))}"


def _gave_up(error: requests.RequestException) -> str:
    """Why the request failed for good: a deadline by name, else what requests said."""
    import requests

    connect, read = REQUEST_TIMEOUT_SECONDS
    if isinstance(error, requests.ConnectTimeout):
        return f"no connection within {connect:g}s ({REQUEST_ATTEMPTS} attempts)"
    if isinstance(error, requests.Timeout):
        return f"the registry did not answer within {read:g}s ({REQUEST_ATTEMPTS} attempts)"
    return _described(error)


def _deadline_adapter(default: tuple[float, float]) -> requests.adapters.HTTPAdapter:
    """requests' transport with a default (connect, read) timeout on every request."""
    from requests import PreparedRequest, Response
    from requests.adapters import HTTPAdapter

    class Deadline(HTTPAdapter):
        def send(
            self,
            request: PreparedRequest,
            stream: bool = False,
            timeout: float | tuple[float | None, float | None] | None = None,
            verify: bool | str = True,
            cert: str | tuple[str, str] | None = None,
            proxies: dict[str, str] | None = None,
        ) -> Response:
            chosen = default if timeout is None else timeout
            return super().send(request, stream, chosen, verify, cert, proxies)

    return Deadline()


class RegistryClient:
    """One repository of one registry, through oras-py's transport and authentication."""

    def __init__(
        self,
        image: ImageRef,
        username: str | None,
        password: str | None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        import oras.provider  # lazily: `invoke --list` never loads registry libraries
        import requests

        scheme = "http" if image.plain_http else "https"
        self.image = image
        self.base = f"{scheme}://{image.host}/v2/{image.repository}"
        # Fail fast on an unreachable registry (oras-py retries for minutes), and pick the
        # authentication from the challenge: htpasswd registries answer "Basic realm=...".
        try:
            ping = requests.get(f"{scheme}://{image.host}/v2/", timeout=PROBE_TIMEOUT_SECONDS)
        except requests.RequestException as error:
            raise RegistryError(
                f"reach {image.host}", f"the registry did not answer: {type(error).__name__}"
            ) from None
        challenge = ping.headers.get("Www-Authenticate", "").split(" ", 1)[0].lower()
        self.registry: Any = oras.provider.Registry(
            image.host,
            insecure=image.plain_http,
            auth_backend="basic" if challenge == "basic" else "token",
        )
        deadline = _deadline_adapter(REQUEST_TIMEOUT_SECONDS)
        for prefix in ("http://", "https://"):
            self.registry.session.mount(prefix, deadline)
        if username and password:
            self.registry.auth.set_basic_auth(username, password)
        # oras-py's request with its authentication but without its retry decorator
        # (functools.wraps keeps the undecorated method); the retry is ours, in request().
        undecorated = oras.provider.Registry.do_request
        self._send = functools.partial(
            getattr(undecorated, "__wrapped__", undecorated), self.registry
        )
        self.on_retry = on_retry

    def request(
        self, method: str, url: str, headers: Mapping[str, str] | None = None, data: bytes = b""
    ) -> requests.Response:
        """One request, retried when the failure is transient (retry.is_transient: timeouts,
        resets, 5xx, 429); a registry that never answers is an error, not a hang."""
        import requests

        def once() -> requests.Response:
            reply: requests.Response = self._send(url, method, data or None, dict(headers or {}))
            if reply.status_code >= 500 or reply.status_code == 429:
                raise _Transient(reply)
            return reply

        def on_retry(number: int, delay: float, message: str) -> None:
            if self.on_retry is not None:
                self.on_retry(
                    f"{method} {self.image.host}: {message}; retry {number} in {delay:.1f}s"
                )

        try:
            response = with_retries(
                once, attempts=REQUEST_ATTEMPTS, base_seconds=RETRY_BASE_SECONDS,
                describe=_described, on_retry=on_retry,
            )  # fmt: skip
        except _Transient as error:  # still failing after the attempts: the caller reads it
            response = error.response
        except requests.RequestException as error:
            raise RegistryError(f"{method} {self.image.host}", _gave_up(error)) from None
        if response.status_code in (401, 403):
            raise RegistryError(
                f"{self.image.host}",
                f"the registry refused the credentials ({response.status_code}): check "
                "REGISTRY_USER/REGISTRY_PASSWORD or GITHUB_TOKEN (packages: read/write)",
            )
        return response

    def failure(self, response: requests.Response, what: str) -> RegistryError:
        return RegistryError(what, f"HTTP {response.status_code}: {one_line(response.text)}")

    def manifest(self, reference: str, accept: str = MANIFEST_ACCEPT) -> tuple[bytes, str] | None:
        """The manifest's exact bytes and media type, None when absent; digests verified."""
        response = self.request("GET", f"{self.base}/manifests/{reference}", {"Accept": accept})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.failure(response, f"read manifest {reference}")
        body = response.content
        if reference.startswith("sha256:") and sha256_of(body) != reference:
            raise RegistryError(f"read manifest {reference}", "its bytes do not match the digest")
        media_type = str(json.loads(body).get("mediaType") or "")
        return body, media_type or response.headers.get("Content-Type", "").split(";")[0]

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> requests.Response:
        response = self.request(
            "PUT", f"{self.base}/manifests/{reference}", {"Content-Type": media_type}, body
        )
        if response.status_code != 201:
            raise self.failure(response, f"write manifest {reference}")
        return response

    def put_blob(self, data: bytes) -> str:
        digest = sha256_of(data)
        if self.request("HEAD", f"{self.base}/blobs/{digest}").status_code == 200:
            return digest
        started = self.request("POST", f"{self.base}/blobs/uploads/", {"Content-Length": "0"})
        location = started.headers.get("Location")
        if started.status_code != 202 or not location:
            raise self.failure(started, "start a blob upload")
        url = urljoin(self.base + "/", location)
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        response = self.request("PUT", url, {"Content-Type": "application/octet-stream"}, data)
        if response.status_code != 201:
            raise self.failure(response, f"upload blob {digest}")
        return digest

    def blob(self, digest: str, size: int) -> bytes:
        response = self.request("GET", f"{self.base}/blobs/{digest}")
        if response.status_code != 200:
            raise self.failure(response, f"read blob {digest}")
        data = response.content
        if sha256_of(data) != digest or len(data) != size:
            raise RegistryError(f"read blob {digest}", "its bytes do not match the digest")
        return data

    def referrers(self, subject: str) -> list[Json]:
        """The subject's CycloneDX referrers: the referrers API, else the fallback tag."""
        url = f"{self.base}/referrers/{subject}?artifactType={quote(CYCLONEDX, safe='')}"
        response = self.request("GET", url, {"Accept": OCI_INDEX})
        if response.status_code == 200 and "json" in response.headers.get("Content-Type", ""):
            entries = list(response.json().get("manifests", []))
        elif response.status_code == 404:
            index = self.manifest(fallback_tag(subject), accept=OCI_INDEX)
            entries = list(json.loads(index[0]).get("manifests", [])) if index else []
        else:
            raise self.failure(response, f"list the referrers of {subject}")
        return [entry for entry in entries if entry.get("artifactType") == CYCLONEDX]

    def add_to_fallback_index(self, subject: str, descriptor: Json, attempts: int = 3) -> None:
        """Read, add, write the fallback tag's index; re-read to confirm (no If-Match in 2.8)."""
        tag = fallback_tag(subject)
        for _ in range(attempts):
            found = self.manifest(tag, accept=OCI_INDEX)
            if found is not None and found[1] != OCI_INDEX:
                raise RegistryError(f"update {tag}", f"the tag holds a {found[1]}, not an index")
            entries = list(json.loads(found[0]).get("manifests", [])) if found else []
            entries = [e for e in entries if e.get("digest") != descriptor["digest"]]
            entries = [e for e in entries if self.exists(str(e.get("digest", "")))]
            index = {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [*entries, descriptor],
            }
            self.put_manifest(tag, canonical(index), OCI_INDEX)
            written = self.manifest(tag, accept=OCI_INDEX)
            if written and any(
                e.get("digest") == descriptor["digest"]
                for e in json.loads(written[0]).get("manifests", [])
            ):
                return
        raise RegistryError(f"update {tag}", "another writer kept replacing the index")

    def exists(self, digest: str) -> bool:
        response = self.request(
            "HEAD", f"{self.base}/manifests/{digest}", {"Accept": MANIFEST_ACCEPT}
        )
        return response.status_code == 200


Connect = Callable[[ImageRef, "str | None", "str | None"], RegistryClient]


def attach(
    image: ImageRef,
    sbom: bytes,
    username: str | None,
    password: str | None,
    *,
    created: str | None = None,
    connect: Connect = RegistryClient,
) -> str:
    """Attach *sbom* to the image; returns the SBOM artifact manifest's digest."""
    document_check(sbom, image.pinned)
    client = connect(image, username, password)
    subject = client.manifest(image.digest)
    if subject is None:
        raise RegistryError(f"attach the SBOM to {image.pinned}", "the image is not there")
    subject_body, subject_type = subject
    client.put_blob(EMPTY_BLOB)
    client.put_blob(sbom)
    stamp = created or clock.rfc3339()
    manifest = artifact_manifest(image.digest, subject_type, len(subject_body), sbom, stamp)
    body = canonical(manifest)
    digest = sha256_of(body)
    response = client.put_manifest(digest, body, OCI_MANIFEST)
    # A registry with the referrers API says so with OCI-Subject; else the fallback tag.
    if response.headers.get("OCI-Subject") != image.digest:
        client.add_to_fallback_index(
            image.digest,
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(body),
                "artifactType": CYCLONEDX,
                "annotations": manifest["annotations"],
            },
        )
    return digest


def fetch(
    image: ImageRef,
    username: str | None,
    password: str | None,
    *,
    manifest_digest: str | None = None,
    connect: Connect = RegistryClient,
) -> tuple[bytes, str]:
    """The image's SBOM and its artifact manifest digest: the recorded one when given, else
    the newest. Every manifest and blob is checked against its digest."""
    client = connect(image, username, password)
    entries = newest_first(client.referrers(image.digest))
    if manifest_digest is not None:
        entries = [entry for entry in entries if entry.get("digest") == manifest_digest]
    for entry in entries:
        digest = str(entry["digest"])
        found = client.manifest(digest, accept=OCI_MANIFEST)
        if found is None:  # a stale fallback entry: its manifest was deleted
            continue
        manifest = json.loads(found[0])
        if (manifest.get("subject") or {}).get("digest") != image.digest:
            continue
        for layer in manifest.get("layers", []):
            if layer.get("mediaType") == CYCLONEDX:
                return client.blob(str(layer["digest"]), int(layer["size"])), digest
    which = f"SBOM {manifest_digest}" if manifest_digest else "CycloneDX SBOM"
    raise SbomNotFound(
        f"no {which} refers to {image.pinned}: push the release again (`invoke push`) to "
        "attach one"
    )


def document_check(sbom: bytes, what: str) -> None:
    """A CycloneDX JSON document, or a one-line error naming what Trivy wrote instead."""
    try:
        document = json.loads(sbom)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"SBOM of {what}", "Trivy wrote no JSON document") from None
    if not isinstance(document, dict) or document.get("bomFormat") != "CycloneDX":
        raise RegistryError(f"SBOM of {what}", "Trivy's output is not a CycloneDX document")


def trivy_argv(trivy: str, pinned: str, output: Path) -> tuple[str, ...]:
    """CycloneDX from the registry copy (no engine needed, no vulnerability database)."""
    return (
        trivy, "image",
        "--format", "cyclonedx",
        "--output", str(output),
        "--image-src", "remote",
        *(("--insecure",) if plain_http(pinned.split("/", 1)[0]) else ()),
        "--quiet",
        "--disable-telemetry",
        "--skip-version-check",
        pinned,
    )  # fmt: skip


def publish(
    runner: Runner,
    trivy: str,
    repository: str,
    digest: str | None,
    directory: Path,
    credentials: Credentials,
) -> str | None:
    """Generate the image's SBOM with Trivy and attach it; the artifact manifest's digest.

    None in a dry run, where both steps are printed (the digest is not known yet).
    """
    pinned = f"{repository}@{digest or '<digest>'}"
    app = repository.rsplit("/", 1)[-1]
    output = directory / f"sbom-{app}.cdx.json"
    generate = Step(
        trivy_argv(trivy, pinned, output),
        f"SBOM of {app} (CycloneDX)",
        env={"TRIVY_USERNAME": credentials.username, "TRIVY_PASSWORD": credentials.password},
        secrets=(credentials.password,),
        capture=True,
    )
    attach_step = Step(("attach-sbom", pinned, str(output)), f"attach the SBOM to {pinned}")
    if digest is None:  # a dry run: nothing pushed, nothing to attach to
        runner.announce(generate)
        runner.announce(attach_step)
        return None
    image = ImageRef.parse(pinned)
    directory.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    runner.run(generate)
    runner.announce(attach_step)
    if not output.exists():
        raise RegistryError(f"SBOM of {pinned}", f"Trivy wrote no {output.name}")
    connect = functools.partial(RegistryClient, on_retry=runner.console.warn)
    return attach(
        image, output.read_bytes(), credentials.username, credentials.password, connect=connect
    )


@dataclass(frozen=True)
class FetchedSbom:
    """An SBOM read back from the registry, with where it came from."""

    app: str
    image: str  # the image by digest
    manifest: str  # the SBOM artifact manifest's digest
    document: bytes

    def summary(self) -> dict[str, object]:
        parsed = json.loads(self.document)
        components = parsed.get("components", []) if isinstance(parsed, dict) else []
        return {
            "app": self.app,
            "image": self.image,
            "sbom_manifest": self.manifest,
            "sbom_sha256": sha256_of(self.document),
            "format": f"CycloneDX {parsed.get('specVersion', '?')}",
            "components": len(components) if isinstance(components, list) else 0,
        }


def fetch_recorded(
    record: ReleaseRecord,
    app: str,
    environ: Mapping[str, str],
    registry_host: str,
    *,
    connect: Connect = RegistryClient,
) -> FetchedSbom:
    """`invoke sbom --app APP`: the SBOM attached to the recorded image's digest."""
    if app not in record.images:
        raise InputError(f"unknown app {app!r}: the release record has {', '.join(record.images)}")
    published = record.images[app]
    if published.digest is None:
        raise InputError(f"the release record has no digest for {app}: run `invoke push` first")
    image = ImageRef.parse(published.pinned)
    username: str | None = None
    password: str | None = None
    try:
        found = registry.credentials(registry_host, environ)
        username, password = found.username, found.password
    except InputError:  # reading a public image needs no credentials
        pass
    document, manifest = fetch(
        image, username, password, manifest_digest=published.sbom, connect=connect
    )
    document_check(document, image.pinned)
    return FetchedSbom(app, image.pinned, manifest, document)
