"""The one question the toolkit asks GitHub's REST API: is a pull request still open?

Preview garbage collection (``invoke preview-gc``) removes a closed pull request's preview at
once, not only when it expires. Without ``GITHUB_TOKEN`` nothing is asked and expiry alone
decides; a failed question is a warning, never a removal: only GitHub's "closed" removes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping

from aegis_delivery.console import Console
from aegis_delivery.errors import InputError

API = "https://api.github.com"  # GITHUB_API_URL overrides it (GitHub Enterprise sets it)
TIMEOUT_SECONDS = 10


def api_url(environ: Mapping[str, str]) -> str:
    url = environ.get("GITHUB_API_URL", "").strip() or API
    if not url.startswith(("https://", "http://")):
        raise InputError(f"GITHUB_API_URL={url!r} is not an http(s) URL: expected one like {API}")
    return url.rstrip("/")


def pull_request_state(
    environ: Mapping[str, str], repository: str, number: int
) -> tuple[str | None, str]:
    """("open" or "closed", "") from GitHub, or (None, why it is not known)."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by api_url
        f"{api_url(environ)}/repos/{repository}/pulls/{number}",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {environ['GITHUB_TOKEN'].strip()}",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        return None, f"GitHub answered {error.code} for pull request #{number}"
    except (OSError, ValueError) as error:
        return None, f"GitHub could not be asked about pull request #{number}: {error}"
    state = document.get("state") if isinstance(document, dict) else None
    if state not in ("open", "closed"):
        return None, f"GitHub's answer for pull request #{number} has no state"
    return str(state), ""


def pull_request_states(
    console: Console, environ: Mapping[str, str], repository: str, numbers: Iterable[int]
) -> dict[int, str | None]:
    """Each pull request's state; {} without a token (expiry alone decides then)."""
    if not environ.get("GITHUB_TOKEN", "").strip():
        console.info("no GITHUB_TOKEN: previews are removed by expiry only")
        return {}
    states: dict[int, str | None] = {}
    for number in numbers:
        state, why = pull_request_state(environ, repository, number)
        if why:
            console.warn(f"{why}: its preview is kept unless it has expired")
        states[number] = state
    return states
