"""The map in docs/architecture.md is the code's: every room on it, every import an arrow down."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import REPOSITORY

LIBRARY = REPOSITORY / "src" / "aegis_delivery"
MAP = REPOSITORY / "docs" / "architecture.md"
ROW = re.compile(
    r"^\| `(?P<room>[a-z_/]+\.py)` \| (?P<floor>\d+) \| [^|]+ \| (?P<imports>[^|]+) \|$"
)
MODULE_LINES = 400
CLASS_LINES = 150


def room_of(path: Path) -> str:
    return path.relative_to(LIBRARY).as_posix()


def rooms_on_disk() -> dict[str, Path]:
    return {room_of(path): path for path in LIBRARY.rglob("*.py") if path.name != "__init__.py"}


def the_map() -> dict[str, tuple[int, frozenset[str]]]:
    """room -> (floor, the rooms it may import), as the page says."""
    found: dict[str, tuple[int, frozenset[str]]] = {}
    for line in MAP.read_text(encoding="utf-8").splitlines():
        if (match := ROW.match(line)) is None:
            continue
        listed = match["imports"].strip()
        imports = frozenset(
            f"{name.strip().replace('.', '/')}.py" for name in listed.split(",") if listed != "-"
        )
        assert match["room"] not in found, f"{match['room']} is on the map twice"
        found[match["room"]] = (int(match["floor"]), imports)
    return found


def imported_rooms(path: Path, rooms: set[str]) -> set[str]:
    """Every room of ours this module imports: at the top, inside functions, for types."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aegis_delivery"):
            base = (node.module or "").removeprefix("aegis_delivery").strip(".").replace(".", "/")
            for alias in node.names:
                candidate = f"{base}/{alias.name}".strip("/") + ".py"
                found.add(candidate if candidate in rooms else f"{base}.py")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("aegis_delivery."):
                    found.add(alias.name.removeprefix("aegis_delivery.").replace(".", "/") + ".py")
    return found - {room_of(path), ".py"}


def test_the_map_lists_every_room_and_only_those() -> None:
    on_disk, mapped = set(rooms_on_disk()), set(the_map())
    assert on_disk - mapped == set(), "rooms missing from docs/architecture.md"
    assert mapped - on_disk == set(), "rooms on the map without a file"


@pytest.mark.parametrize("room", sorted(rooms_on_disk()))
def test_a_room_imports_only_what_its_line_names_from_floors_below(room: str) -> None:
    rooms = the_map()
    floor, allowed = rooms[room]
    imported = imported_rooms(rooms_on_disk()[room], set(rooms))
    assert imported - allowed == set(), f"{room} imports rooms its line does not name"
    above = {other for other in allowed if rooms[other][0] >= floor}
    assert above == set(), f"{room} (floor {floor}) may not import from its floor or above"


@pytest.mark.parametrize("room", sorted(rooms_on_disk()))
def test_no_module_or_class_outgrows_what_a_reader_can_hold(room: str) -> None:
    source = rooms_on_disk()[room].read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MODULE_LINES, f"{room} is over {MODULE_LINES} lines"
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.end_lineno is not None:
            length = node.end_lineno - node.lineno + 1
            assert length <= CLASS_LINES, f"{room}: class {node.name} has {length} lines"


def test_the_release_half_never_imports_the_cluster_half() -> None:
    for room, (_, imports) in the_map().items():
        if room.startswith("release/"):
            assert not {i for i in imports if i.startswith("cluster/")}, room
        if room.startswith("cluster/"):
            assert "release/publish.py" not in imports, room
