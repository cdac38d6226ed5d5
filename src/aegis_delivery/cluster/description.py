"""The note the toolkit leaves on every helm revision (`helm upgrade --description`), written
and read here only: ``tag=T sha=S by=WHO [promoted-from=ENV@N] [unverified=APP,APP] [reason=WHY]``
(``unverified``: the apps deployed with --allow-unverified, their provenance refused).

The reason comes last because it may hold spaces; every other field is one word. helm's own
descriptions ("Install complete", "Rollback to 2") parse as a note with no fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELD = re.compile(r"(?:^|\s)(tag|sha|by|promoted-from|unverified)=(\S+)")
_REASON = re.compile(r"(?:^|\s)reason=(.*)$", re.DOTALL)


@dataclass(frozen=True)
class RevisionNote:
    """Who deployed what, from which commit, and why."""

    tag: str | None = None
    sha: str | None = None  # seven hex digits as written
    by: str | None = None
    promoted_from: str | None = None  # ENV@REVISION
    reason: str | None = None
    unverified: str | None = None  # APP,APP: deployed although their provenance was refused

    def render(self) -> str:
        """The description helm records; the reason last, on one line."""
        words = [f"tag={self.tag}", f"sha={(self.sha or '')[:7]}", f"by={self.by}"]
        if self.promoted_from:
            words.append(f"promoted-from={self.promoted_from}")
        if self.unverified:
            words.append(f"unverified={self.unverified}")
        text = " ".join(words)
        return f"{text} reason={self.reason}" if self.reason else text

    @classmethod
    def parse(cls, description: str) -> RevisionNote:
        """The fields a description holds; absent ones are None (never a made-up value)."""
        reason_match = _REASON.search(description)
        head = description[: reason_match.start()] if reason_match else description
        fields = {name: value for name, value in _FIELD.findall(head)}
        return cls(
            tag=fields.get("tag"),
            sha=fields.get("sha"),
            by=fields.get("by"),
            promoted_from=fields.get("promoted-from"),
            reason=reason_match.group(1) if reason_match and reason_match.group(1) else None,
            unverified=fields.get("unverified"),
        )
