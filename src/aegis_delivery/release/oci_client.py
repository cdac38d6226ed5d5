"""The registry client for OCI artifacts: oras-py's transport and authentication (basic, or
ghcr.io's bearer token dance), with a deadline on every request and our own retry of what is
transient; every manifest and blob read is checked against its digest.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urljoin

from aegis_delivery.release.oci import (
    CYCLONEDX,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    ImageRef,
    Json,
    RegistryError,
    fallback_tag,
    sha256_of,
)
from aegis_delivery.release.registry import one_line
from aegis_delivery.retry import with_retries

if TYPE_CHECKING:
    import requests
    import requests.adapters

PROBE_TIMEOUT_SECONDS = 10.0
# Every registry request: (connect, read) seconds. oras-py sets none, so a registry that
# accepts the connection and never answers would hold a push for ever.
REQUEST_TIMEOUT_SECONDS = (10.0, 60.0)
# In all, with backoff from RETRY_BASE_SECONDS, for what retry.is_transient calls transient
# (timeouts, resets, 5xx, 429); oras-py's own retry (five attempts, sleeping up to 81 s, any
# error) is bypassed.
REQUEST_ATTEMPTS = 3
RETRY_BASE_SECONDS = 1.0


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

    def referrers(self, subject: str, artifact_type: str = CYCLONEDX) -> list[Json]:
        """The subject's referrers of one type: the referrers API, else the fallback tag."""
        url = f"{self.base}/referrers/{subject}?artifactType={quote(artifact_type, safe='')}"
        response = self.request("GET", url, {"Accept": OCI_INDEX})
        if response.status_code == 200 and "json" in response.headers.get("Content-Type", ""):
            entries = list(response.json().get("manifests", []))
        elif response.status_code == 404:
            index = self.manifest(fallback_tag(subject), accept=OCI_INDEX)
            entries = list(json.loads(index[0]).get("manifests", [])) if index else []
        else:
            raise self.failure(response, f"list the referrers of {subject}")
        return [entry for entry in entries if entry.get("artifactType") == artifact_type]

    def exists(self, digest: str) -> bool:
        response = self.request(
            "HEAD", f"{self.base}/manifests/{digest}", {"Accept": MANIFEST_ACCEPT}
        )
        return response.status_code == 200


Connect = Callable[[ImageRef, "str | None", "str | None"], RegistryClient]
