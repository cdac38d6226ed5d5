"""`invoke keygen`: a new signing key pair, the private half where it cannot be committed by
mistake (outside the repository, mode 0600 from its first byte), the public half where the
trust list names it; the public half is printed, the private half never.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.config import DeliveryConfig
from aegis_delivery.errors import InputError
from aegis_delivery.release import signing
from aegis_delivery.runner import Runner

DEFAULT_PRIVATE = Path("~/.config/aegis/signing-key.pem")
DEFAULT_PUBLIC = Path("keys/aegis-release.pub")


@dataclass(frozen=True)
class NewKey:
    private_key: Path
    public_key: Path
    public_pem: str
    trusted: bool  # the public key's path is already in [tool.aegis.trust] keys
    signing_key_env: str

    def document(self) -> dict[str, object]:
        return {
            "private_key": str(self.private_key), "public_key": str(self.public_key),
            "public_pem": self.public_pem, "trusted": self.trusted,
            "signing_key_env": self.signing_key_env,
        }  # fmt: skip


def keygen(
    runner: Runner,
    config: DeliveryConfig,
    *,
    private_key: str | None = None,
    public_key: str | None = None,
    kind: str = "ecdsa",
    force: bool = False,
) -> NewKey:
    """Write a new pair; refuses (before writing anything) to put the private half inside the
    repository or to replace an existing file without --force."""
    if kind not in ("ecdsa", "ed25519"):
        raise InputError(f"--kind {kind!r}: expected ecdsa (P-256) or ed25519")
    private = Path(private_key).expanduser() if private_key else DEFAULT_PRIVATE.expanduser()
    configured = config.trust.keys[0] if config.trust.keys else config.root / DEFAULT_PUBLIC
    public = Path(public_key) if public_key else configured
    public = public if public.is_absolute() else config.root / public
    private = private if private.is_absolute() else Path.cwd() / private
    if private.resolve().is_relative_to(config.root.resolve()):
        raise InputError(
            f"--private-key {private} is inside the repository, where it could be committed: "
            f"write it elsewhere (default {DEFAULT_PRIVATE}) and store it as the "
            f"{config.trust.signing_key_env} secret"
        )
    for path in (private, public):
        if path.exists() and not force:
            raise InputError(f"{path} exists: pass --force to replace it (and re-sign)")
    pair = signing.generate("ecdsa" if kind == "ecdsa" else "ed25519")
    runner.masker.add(pair.private_pem)
    runner.write_file(private, pair.private_pem, "write the private key", private=True)
    runner.write_file(public, pair.public_pem, "write the public key")
    trusted = any(p.resolve() == public.resolve() for p in config.trust.keys)
    return NewKey(private, public, pair.public_pem, trusted, config.trust.signing_key_env)
