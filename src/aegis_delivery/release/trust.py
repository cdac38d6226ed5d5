"""Which CA bundle an image build trusts, and why.

An image built from scratch trusts only its base's CA store, so behind a TLS-intercepting
proxy (a corporate laptop, many CI runners) ``pip install`` and ``npm ci`` inside the build
fail. A build therefore trusts what this machine trusts, with no setting: the bundle reaches
the build only as the BuildKit secret ``ca_bundle`` (never a layer, never a build arg).

The order, first match wins: ``--ca-bundle``, the configured variable (``AEGIS_CA_BUNDLE``),
``SSL_CERT_FILE``, then the system store (OpenSSL's default file, else the distribution's
bundle path). A bundle that is named but unusable is an input error before anything builds.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.errors import InputError

# Where distributions keep the system bundle (Debian/Ubuntu, Fedora/RHEL, Alpine/macOS, SUSE).
DISTRIBUTION_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
)
PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
SYSTEM_STORE = "the system store"


@dataclass(frozen=True)
class CaBundle:
    """A usable PEM bundle and where the choice came from (for doctor and error lines)."""

    path: Path
    source: str  # "--ca-bundle", a variable's name, or "the system store (...)"

    def secret(self) -> str:
        """The BuildKit ``--secret`` value the Dockerfiles read at /run/secrets/ca_bundle."""
        return f"id=ca_bundle,src={self.path}"

    def describe(self) -> str:
        return f"{self.path} (from {self.source})"


def system_candidates() -> tuple[str, ...]:
    """OpenSSL's compiled-in default file first (not the variable-derived one), then the
    distributions' paths."""
    openssl_default = ssl.get_default_verify_paths().openssl_cafile
    return (openssl_default, *DISTRIBUTION_BUNDLES) if openssl_default else DISTRIBUTION_BUNDLES


def check_bundle(path: Path, source: str) -> CaBundle:
    """The bundle exists, is not empty and holds at least one PEM certificate OpenSSL loads."""
    where = f"{path} (from {source})"
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"CA bundle {where}: no such file; expected a PEM CA bundle") from None
    except IsADirectoryError:
        raise InputError(f"CA bundle {where}: is a directory; expected a PEM file") from None
    except OSError as error:
        raise InputError(f"CA bundle {where}: cannot be read ({error.strerror})") from None
    if not content.strip():
        raise InputError(f"CA bundle {where}: the file is empty; expected PEM certificates")
    if PEM_CERTIFICATE not in content:
        raise InputError(
            f"CA bundle {where}: holds no PEM certificate ('-----BEGIN CERTIFICATE-----')"
        )
    try:
        # an empty context: the default one would load the whole system store first
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(
            cadata=content.decode("ascii")
        )
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as error:
        reason = re.sub(r"\s+", " ", str(error))[:120]
        raise InputError(f"CA bundle {where}: not a valid PEM bundle ({reason})") from None
    return CaBundle(path, source)


def resolve_ca_bundle(
    explicit: str | None,
    environ: Mapping[str, str],
    variable: str,
    system: Callable[[], Sequence[str]] = system_candidates,
) -> CaBundle | None:
    """The bundle a build uses: the first that is set, checked; None when the machine has
    no system bundle either (the build then trusts only its base image's store)."""
    for source, value in (("--ca-bundle", explicit), (variable, environ.get(variable)),
                          ("SSL_CERT_FILE", environ.get("SSL_CERT_FILE"))):  # fmt: skip
        if value:
            return check_bundle(Path(value), source)
    for candidate in system():
        if Path(candidate).is_file():
            return check_bundle(Path(candidate), f"{SYSTEM_STORE}, {candidate}")
    return None


# What pip, npm, curl, apt and Go (BuildKit) print when a certificate cannot be verified.
CERTIFICATE_FAILURE = re.compile(
    r"CERTIFICATE_VERIFY_FAILED|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
    r"|UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to get local issuer certificate"
    r"|self[- ]signed certificate in certificate chain|certificate signed by unknown authority"
    r"|certificate verify failed|server certificate verification failed",
    re.IGNORECASE,
)


def certificate_failure(log_text: str, bundle: CaBundle | None) -> str | None:
    """One line for a build that failed verifying a certificate, naming the remedy."""
    found = CERTIFICATE_FAILURE.search(log_text)
    if found is None:
        return None
    trusted = f"the build trusted {bundle.describe()}" if bundle else "the build had no CA bundle"
    return (
        f"TLS certificate verification failed inside the build ({found.group(0)}): {trusted}, "
        "which does not hold your proxy's CA; pass it with --ca-bundle PATH"
    )
