"""What a deploy may trust, as settings: the committed public keys and the signing key's
variable (``[tool.aegis.trust]``), and each environment's provenance policy
(``require_provenance``, ``allow_unverified``, ``provenance_refs``). ``config.py`` reads
them through here; every mistake names its key like every other setting.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from pathlib import Path

from aegis_delivery.config_table import Table, default_of, keys_of, relative_path

_VARIABLE = re.compile(r"^[A-Z_][A-Z0-9_]*\Z")
_REF = re.compile(r"^refs/[A-Za-z0-9_.{}*/-]+\Z")


@dataclass(frozen=True, kw_only=True)
class TrustSettings:
    # Public keys (PEM) whose signatures deploy accepts: committed, reviewed like code.
    keys: tuple[Path, ...] = ()
    # The variable (a CI secret) holding the private signing key, PEM; masked everywhere.
    signing_key_env: str = "AEGIS_SIGNING_KEY"


@dataclass(frozen=True, kw_only=True)
class ProvenancePolicy:
    """One environment's rule: must every image carry a verified provenance, may a person
    override that (``--allow-unverified``, recorded), and from which refs may it be built."""

    require_provenance: bool = False
    allow_unverified: bool = False
    # Git refs a build must come from, as globs; ``{default_branch}`` is [tool.aegis]'s.
    # Empty: any ref of this repository.
    provenance_refs: tuple[str, ...] = ()

    def allows_ref(self, ref: str, default_branch: str) -> bool:
        patterns = [p.replace("{default_branch}", default_branch) for p in self.provenance_refs]
        return not patterns or any(fnmatch.fnmatchcase(ref, pattern) for pattern in patterns)


def load_trust(table: Table, root: Path) -> TrustSettings:
    table.unknown_keys(keys_of(TrustSettings))
    listed = table.get("keys", list, "a list of public key files (PEM), relative paths", [])
    keys = []
    for index, item in enumerate(listed):
        if not isinstance(item, str):
            raise table.fail("keys", "a list of public key files (PEM), relative paths", item)
        keys.append(relative_path(Table({str(index): item}, f"{table.path}.keys", table.source),
                                  str(index), root))  # fmt: skip
    variable = table.get(
        "signing_key_env", str, "an environment variable name like AEGIS_SIGNING_KEY",
        default_of(TrustSettings, "signing_key_env"),
    )  # fmt: skip
    if not _VARIABLE.match(variable):
        raise table.fail("signing_key_env", "an environment variable name (A-Z, 0-9, _)", variable)
    return TrustSettings(keys=tuple(keys), signing_key_env=variable)


def load_policy(table: Table) -> ProvenancePolicy:
    """An environment table's provenance keys (the rest of the table is config.py's)."""
    expected = "a list of git ref globs like 'refs/heads/{default_branch}' or 'refs/tags/v*'"
    refs = table.get("provenance_refs", list, expected, [])
    for ref in refs:
        if not isinstance(ref, str) or not _REF.match(ref):
            raise table.fail("provenance_refs", expected, ref)
    return ProvenancePolicy(
        **{
            key: table.get(key, bool, "true or false", default_of(ProvenancePolicy, key))
            for key in ("require_provenance", "allow_unverified")
        },
        provenance_refs=tuple(refs),
    )


def policy_keys() -> set[str]:
    return keys_of(ProvenancePolicy)
