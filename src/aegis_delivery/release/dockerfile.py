"""Which base images a Dockerfile builds on, as its FROM lines resolve them: the global ARGs
(defaults, overridden by build arguments) substituted, earlier stages and ``scratch`` left
out. Pure; a provenance names these as the build's resolved dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_ARG = re.compile(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)(?:=(\S*))?\s*$", re.IGNORECASE)
_FROM = re.compile(
    r"^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+([A-Za-z0-9_.-]+))?\s*$", re.IGNORECASE
)


def _logical_lines(text: str) -> list[str]:
    """Lines with backslash continuations joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    if pending.strip():
        lines.append(pending.strip())
    return [line for line in lines if line]


def _expand(text: str, values: Mapping[str, str]) -> str:
    return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), ""), text)


def base_images(text: str, build_args: Mapping[str, str]) -> tuple[str, ...]:
    """The images the FROM lines name, in order, each once."""
    values: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    seen_from = False
    for line in _logical_lines(text):
        argument = _ARG.match(line)
        if argument and not seen_from:  # only global ARGs reach FROM lines
            name, default = argument.group(1), argument.group(2)
            values[name] = build_args.get(name, _expand(default or "", values))
            continue
        stage = _FROM.match(line)
        if stage is None:
            continue
        seen_from = True
        image = _expand(stage.group(1), values)
        if image and image.lower() != "scratch" and image not in stages and image not in found:
            found.append(image)
        if stage.group(2):
            stages.add(stage.group(2))
    return tuple(found)
