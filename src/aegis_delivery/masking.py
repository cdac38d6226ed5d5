"""Masking of secret values in everything the toolkit prints or raises.

One ``Masker`` per task run: the runner, the console and the error handler all pass text
through it, so a token that reached any of them is replaced before it reaches a log.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

MASK = "***"
# Environment variables whose values are secrets wherever they appear.
SECRET_ENVIRONMENT_VARIABLES = ("GITHUB_TOKEN", "REGISTRY_PASSWORD", "KUBE_CONFIG")
# Shorter values would mask ordinary words; such a "secret" is rejected by validation anyway.
MINIMUM_SECRET_LENGTH = 4


class Masker:
    """Replaces every registered secret value with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Masker:
        """A masker that already knows the secrets the process was given."""
        source = os.environ if environ is None else environ
        return cls(source.get(name, "") for name in SECRET_ENVIRONMENT_VARIABLES)

    def add(self, secret: str, *, lines: bool = True) -> None:
        """Register a secret (and each of its lines, for multi-line values like keys). A whole
        document (a kubeconfig) is added with ``lines=False``: its structural lines such as
        ``context:`` are not secrets; its credential values are registered one by one."""
        for candidate in (secret, *(secret.splitlines() if lines else ())):
            if len(candidate.strip()) >= MINIMUM_SECRET_LENGTH:
                self._secrets.add(candidate.strip())

    def mask(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    def __contains__(self, secret: str) -> bool:
        return secret in self._secrets
