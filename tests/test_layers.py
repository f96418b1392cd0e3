"""The packages depend one way, as ``../shared/DESIGN.md`` draws them, read from the imports.

From the bottom: what every layer may use (errors, records, metrics, storage, assets pinned by
hash, the one retry policy); ``media``; the ``likeness`` library, which knows nothing of how the
monitor is configured or run; ``evidence`` (the files and signed URLs that the scorer, the
notifier and the review page share); the domain packages (``sources``, ``alerts``,
``review``, ``demo``), which know no Kafka and read only their own settings group;
``config``, which composes those groups; ``pipeline``, which wires it all onto the broker;
and the command line on top. Every import of the package is
read, including those inside functions, so a shortcut cannot hide in a late import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"

BOTTOM = frozenset({"errors", "records", "metrics", "storage", "safeyaml", "assets", "retry"})
LIBRARIES = BOTTOM | {"media", "likeness"}
DOMAIN = LIBRARIES | {"evidence"}
COMPOSED = frozenset({"sources", "alerts", "review"})
"""The packages that declare a settings group (``<package>.settings``) for ``config``."""

MAY_IMPORT: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "records": frozenset({"errors"}),
    "metrics": frozenset(),
    "storage": frozenset({"errors"}),
    "safeyaml": frozenset({"errors"}),
    "assets": frozenset({"errors"}),
    "retry": frozenset(),
    "media": BOTTOM,
    "likeness": BOTTOM | {"media"},
    "evidence": LIBRARIES,
    "sources": DOMAIN,
    "alerts": DOMAIN,
    "review": DOMAIN,
    "demo": DOMAIN | {"sources"},
    "config": LIBRARIES | COMPOSED,
    "pipeline": DOMAIN | COMPOSED | {"demo", "config"},
    "cli": DOMAIN | COMPOSED | {"demo", "config", "pipeline"},
    "__main__": frozenset({"cli"}),
    "__init__": frozenset(),
}
"""For each top-level module or package of ``monitor``, what it may import besides itself
(``config`` only the settings modules of ``COMPOSED``)."""

KAFKA = ("aiokafka", "faust", "kafka", "mode")
KNOWS_NO_KAFKA = frozenset(MAY_IMPORT) - {"pipeline", "cli", "__main__"}


def _imports(path: Path, parts: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """``(line, module)`` for every import in the file (module ``parts``), absolute or
    relative, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = parts[: len(parts) - node.level]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.lineno, node.module


def violations(root: Path) -> list[str]:
    """Each import of the package at ``root`` that points the wrong way, as ``file:line``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent)
        owner = relative.parts[1].removesuffix(".py")
        allowed = MAY_IMPORT.get(owner)
        if allowed is None:
            found.append(f"{relative}: package {owner!r} has no place in the layers")
            continue
        for line, module in _imports(path, relative.with_suffix("").parts):
            name = module.split(".")
            if name[0] == root.name and len(name) > 1 and name[1] not in {owner, *allowed}:
                found.append(f"{relative}:{line} imports {module} ({owner} may not use {name[1]})")
            elif (
                owner == "config"
                and name[1:2]
                and name[1] in COMPOSED
                and name[2:3] != ["settings"]
            ):
                found.append(f"{relative}:{line} imports {module} (config takes only settings)")
            elif owner in KNOWS_NO_KAFKA and name[0] in KAFKA:
                found.append(f"{relative}:{line} imports {module} ({owner} knows no Kafka)")
    return found


def test_every_import_of_the_monitor_points_down_the_layers() -> None:
    assert violations(PACKAGE) == []


def test_every_module_of_the_monitor_has_a_place_in_the_layers() -> None:
    modules = {
        p.name.removesuffix(".py")
        for p in PACKAGE.iterdir()
        if p.suffix == ".py" or (p / "__init__.py").is_file()
    }
    assert modules <= set(MAY_IMPORT)


@pytest.mark.parametrize(
    ("where", "planted"),
    [
        ("media/planted.py", "from monitor.likeness import weights\n"),
        ("likeness/planted.py", "def late() -> None:\n    from monitor.config import Settings\n"),
        ("alerts/planted.py", "from monitor.pipeline.app import Pipeline\n"),
        ("sources/planted.py", "import aiokafka\n"),
        ("records.py", "from .pipeline import app\n"),
        ("review/planted.py", "from monitor.config import Settings\n"),
        ("config.py", "from monitor.alerts.notifier import Notifier\n"),
        ("newcomer.py", "x = 1\n"),
    ],
)
def test_a_planted_wrong_import_is_caught(where: str, planted: str, tmp_path: Path) -> None:
    root = tmp_path / "monitor"
    (root / Path(where).parent).mkdir(parents=True, exist_ok=True)
    (root / where).write_text(planted)
    [caught] = violations(root)
    assert caught.startswith(f"monitor/{where}")
