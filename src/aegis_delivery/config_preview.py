"""Preview environments as settings (``[tool.aegis.preview]``): where each pull request's
preview lives, for how long, how many may live at once, and which credentials reach them.
``config.py`` reads them through here; every mistake names its key like every other setting.
"""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass

from aegis_delivery.config_table import Duration, Table, default_of, keys_of

_PREFIX = re.compile(r"^[a-z][a-z0-9-]*\Z")
_DOMAIN = re.compile(
    r"^(?=.{1,200}\Z)[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+\Z"
)
_CONTEXT = re.compile(r"^[^\s-][^\s]*\Z")
# The longest pull request number a preview takes (validation.pull_request_number).
NUMBER_DIGITS = 9
# helm's release names are at most 53 characters; the release is named like the namespace.
RELEASE_LIMIT = 53
# The environment name every preview deploys as: values.preview.yaml, KUBE_CONFIG_PREVIEW.
ENVIRONMENT = "preview"
CREDENTIALS = "KUBE_CONFIG_PREVIEW"


@dataclass(frozen=True, kw_only=True)
class PreviewSettings:
    """Where and how long the previews of pull requests live."""

    # Namespace and helm release of pull request N: PREFIX + N (``aegis-pr-7``).
    namespace_prefix: str = "aegis-pr-"
    # Each preview's ingress host is pr-N.DOMAIN (a wildcard DNS record points at the ingress).
    domain: str
    # The kube context of the preview cluster (KUBE_CONFIG_PREVIEW's, or the local kubeconfig's).
    kube_context: str
    # Without KUBE_CONFIG_PREVIEW, use staging's credentials: only when a team says so here.
    share_staging_credentials: bool = False
    # A preview not refreshed for this long is deleted by `invoke preview-gc` (label keep pins).
    ttl: Duration = Duration.parse("72h")  # noqa: RUF009 - frozen
    # A new preview beyond this many is refused, naming the oldest ones.
    max_previews: int = 10
    # helm's --wait budget for one preview, and how long a namespace may take to go away.
    timeout: Duration = Duration.parse("5m")  # noqa: RUF009 - frozen
    delete_timeout: Duration = Duration.parse("5m")  # noqa: RUF009 - frozen

    def name(self, number: int) -> str:
        """The namespace and the release of pull request *number*."""
        return f"{self.namespace_prefix}{number}"

    def host(self, number: int) -> str:
        return f"pr-{number}.{self.domain}"


def load_preview(table: Table, policy_keys: Set[str]) -> PreviewSettings:
    """The preview settings; the provenance policy's keys (*policy_keys*) share the table and
    are read by config.py, like each environment's."""
    table.unknown_keys(keys_of(PreviewSettings) | set(policy_keys))
    prefix = table.get(
        "namespace_prefix", str, "a DNS-1123 label prefix like 'aegis-pr-'",
        default_of(PreviewSettings, "namespace_prefix"),
    )  # fmt: skip
    if not _PREFIX.match(prefix) or len(prefix) + NUMBER_DIGITS > RELEASE_LIMIT:
        expected = (
            f"a DNS-1123 label prefix like 'aegis-pr-' (lower case, digits, '-'; at most "
            f"{RELEASE_LIMIT - NUMBER_DIGITS} characters)"
        )
        raise table.fail("namespace_prefix", expected, prefix)
    domain = table.text("domain", "a DNS domain like 'preview.example.com'")
    if not _DOMAIN.match(domain):
        raise table.fail("domain", "a lower-case DNS domain like 'preview.example.com'", domain)
    context = table.text("kube_context", "the preview cluster's kubectl context name")
    if not _CONTEXT.match(context) or not context.isprintable():
        raise table.fail("kube_context", "a context name (no leading '-', no spaces)", context)
    cap = table.get("max_previews", int, "an integer from 1 to 500",
                    default_of(PreviewSettings, "max_previews"))  # fmt: skip
    if not 1 <= cap <= 500:
        raise table.fail("max_previews", "an integer from 1 to 500", cap)
    share = table.get(
        "share_staging_credentials", bool, "true or false",
        default_of(PreviewSettings, "share_staging_credentials"),
    )  # fmt: skip
    return PreviewSettings(
        namespace_prefix=prefix,
        domain=domain,
        kube_context=context,
        share_staging_credentials=share,
        ttl=table.duration("ttl", default_of(PreviewSettings, "ttl")),
        max_previews=cap,
        timeout=table.duration("timeout", default_of(PreviewSettings, "timeout")),
        delete_timeout=table.duration(
            "delete_timeout", default_of(PreviewSettings, "delete_timeout")
        ),
    )
