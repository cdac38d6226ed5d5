"""Signing and checking DSSE envelopes with a key pair, offline: securesystemslib's Signer API
over pyca/cryptography (ECDSA P-256 or Ed25519), no online service.

The private key is PEM text from a secret; it is never written, printed or put in an error
(errors name where it came from, never what it holds). The public keys deploy trusts are PEM
files committed to the repository. The envelope is DSSE with the in-toto payload type, the
layout cosign's attestations use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aegis_delivery.errors import ConfigError, InputError, Untrusted

if TYPE_CHECKING:  # imported where used: only the tasks that sign or verify load them
    from securesystemslib.signer import CryptoSigner, SSlibKey

KeyKind = Literal["ecdsa", "ed25519"]


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


def generate(kind: KeyKind = "ecdsa") -> KeyPair:
    """A new key pair (ECDSA P-256 by default: what cosign generates too)."""
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner.generate_ecdsa() if kind == "ecdsa" else CryptoSigner.generate_ed25519()
    return KeyPair(signer.private_bytes.decode("ascii"), _public_pem(signer))


def _public_pem(signer: CryptoSigner) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = signer.public_key._crypto_key()
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def public_half(private_pem: str, source: str) -> str:
    """The public key (PEM) of a private key: which committed key a stored secret matches."""
    return _public_pem(load_signer(private_pem, source))


def load_signer(private_pem: str, source: str) -> CryptoSigner:
    """A signer for the PEM private key read from *source* (a variable's name)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from securesystemslib.signer import CryptoSigner

    try:
        private = load_pem_private_key(private_pem.encode("utf-8"), password=None)
    except (ValueError, TypeError, UnicodeError):
        raise InputError(
            f"{source} does not hold an unencrypted PEM private key: write a new pair with "
            "`invoke keygen` and store the private half in it"
        ) from None
    curve_ok = isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == "secp256r1"
    if not (curve_ok or isinstance(private, ed25519.Ed25519PrivateKey)):
        raise InputError(f"{source} holds a key that is neither ECDSA P-256 nor Ed25519")
    return CryptoSigner(private)


def sign(payload: bytes, payload_type: str, signer: CryptoSigner) -> bytes:
    """The DSSE envelope (JSON) of *payload*, signed by *signer*."""
    from securesystemslib.dsse import Envelope

    envelope = Envelope(payload, payload_type, {})
    envelope.sign(signer)
    return json.dumps(envelope.to_dict(), sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class TrustedKey:
    """A public key deploy trusts, with the file it came from (named in every verdict)."""

    path: Path
    pem: str


def trusted_keys(paths: tuple[Path, ...], root: Path) -> list[TrustedKey]:
    """The committed public keys of ``[tool.aegis.trust] keys``; a missing or broken one is a
    configuration error naming it."""
    if not paths:
        raise ConfigError(
            "[tool.aegis.trust] keys lists no public key: write a pair with `invoke keygen`, "
            "commit the public half and name it there"
        )
    keys = []
    for path in paths:
        shown = _shown(path, root)
        try:
            pem = path.read_text(encoding="ascii")
        except (OSError, UnicodeError):
            raise ConfigError(
                f"trusted key {shown} cannot be read: commit the public half of the signing "
                "key there (`invoke keygen --public-key " + str(shown) + "`)"
            ) from None
        _public_key(pem, str(shown))
        keys.append(TrustedKey(path, pem))
    return keys


def _public_key(pem: str, source: str) -> SSlibKey:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key
    from securesystemslib.signer import SSlibKey

    try:
        return SSlibKey.from_crypto(load_pem_public_key(pem.encode("ascii")))
    except (ValueError, TypeError, UnicodeError):
        raise ConfigError(
            f"trusted key {source} is not a PEM public key (ECDSA or Ed25519)"
        ) from None


def open_envelope(
    raw: bytes, payload_type: str, keys: list[TrustedKey], root: Path
) -> tuple[bytes, Path]:
    """The payload of a DSSE envelope signed by one of *keys*, and that key's file; else
    ``Untrusted`` saying what was wrong (outside input: any bytes at all)."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import FormatError, VerificationError

    try:
        document = json.loads(raw)
        envelope = Envelope.from_dict(document)
    except (ValueError, KeyError, TypeError, AttributeError, FormatError, UnicodeDecodeError):
        raise Untrusted("the attestation is not a DSSE envelope") from None
    if envelope.payload_type != payload_type:
        raise Untrusted(
            f"the envelope's payload type is {envelope.payload_type!r}, not {payload_type}"
        )
    shown = [_shown(trusted.path, root) for trusted in keys]
    for trusted, name in zip(keys, shown, strict=True):
        key = _public_key(trusted.pem, name)
        try:
            envelope.verify([key], 1)
        except (VerificationError, ValueError):
            if key.keyid in envelope.signatures:
                raise Untrusted(
                    f"its signature by {name} does not match the statement: the statement was "
                    "changed after it was signed"
                ) from None
            continue
        return envelope.payload, trusted.path
    if not envelope.signatures:
        raise Untrusted("the envelope carries no signature")
    raise Untrusted(f"it is signed by a key that is not trusted (trusted: {', '.join(shown)})")


def _shown(path: Path, root: Path) -> str:
    return str(path.relative_to(root) if path.is_relative_to(root) else path)
