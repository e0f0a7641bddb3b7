"""The rooms of minflow import only downwards: no arrow from a lower room to a higher one.

Every import statement of every module (those inside functions too) is read
with ``ast``; each module belongs to a room, and a room may import only rooms
on a lower floor (or its own). The ground floor, ``checks``, imports nothing
from minflow; ``data`` imports nothing from model, train, diagnostics or
commands.
"""

import ast
import pathlib

import minflow

PACKAGE = pathlib.Path(minflow.__file__).parent

# room -> floor; a room imports only rooms on a lower floor, or itself
FLOORS = {
    "checks": 0,
    "backend": 1,
    "threads": 1,
    "schedule": 1,
    "nn": 2,
    "data": 2,
    "distributions": 2,
    "optim": 2,
    "ema": 2,
    "checkpoint": 2,
    "gradcheck": 2,
    "flows": 3,
    "metrics": 3,
    "diagnostics": 4,
    "model": 5,
    "train": 6,
    "viz": 6,
    "zoo": 7,
    "continuous": 7,
    "commands": 8,
    "__main__": 9,
    "__init__": 9,
}


def _room(module_parts):
    """The room of a dotted module path inside minflow: its first part (``flows``, ``data``, ``model``)."""
    return module_parts[0] if module_parts else "__init__"


def _imports(path):
    """(room imported, line) for every import of minflow code in the file at ``path``."""
    relative = path.relative_to(PACKAGE).with_suffix("").parts  # e.g. ("flows", "actnorm")
    package = list(relative[:-1])  # the package the file is in
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from .. import y
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = base + (node.module.split(".") if node.module else [])
                names = [] if node.module else [alias.name for alias in node.names]
            elif node.module and node.module.split(".")[0] == "minflow":
                target, names = node.module.split(".")[1:], []
                names = [] if target else [alias.name for alias in node.names]
            else:
                continue
            if target:
                yield _room(target), node.lineno
            else:  # from . import metrics / from minflow import viz
                for name in names:
                    yield _room([name]), node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "minflow" and len(parts) > 1:
                    yield _room(parts[1:]), node.lineno


def test_every_module_is_in_a_room():
    rooms = {_room(p.relative_to(PACKAGE).with_suffix("").parts) for p in PACKAGE.rglob("*.py")}
    assert rooms <= set(FLOORS), f"modules outside every room: {sorted(rooms - set(FLOORS))}; add them to FLOORS"


def test_imports_point_only_downwards():
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _room(path.relative_to(PACKAGE).with_suffix("").parts)
        for room, line in _imports(path):
            if room != here and FLOORS[room] >= FLOORS[here]:
                bad.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {here} (floor {FLOORS[here]}) imports {room} (floor {FLOORS[room]})"
                )
    assert not bad, "imports from a lower room to a higher one:\n  " + "\n  ".join(bad)


def test_ground_floor_and_data_import_nothing_above_them():
    for path in [PACKAGE / "checks.py"]:
        assert list(_imports(path)) == [], f"{path.name} must import nothing from minflow"
    higher = {"model", "train", "diagnostics", "commands", "zoo", "viz", "metrics"}
    for path in (PACKAGE / "data").rglob("*.py"):
        found = {room for room, _ in _imports(path)} & higher
        assert not found, f"data/{path.name} imports {sorted(found)}"
