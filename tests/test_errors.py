"""The exception tree drawn in ``monitor/errors.py`` is the tree the classes make, and no
public exception of the project lives anywhere else."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from monitor import errors

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"


def drawn_tree() -> dict[str, str]:
    """Each class the docstring draws, with the class above it (``Exception`` for a root)."""
    doc = errors.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\nPrivate signals", 1)[0]
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in block.splitlines():
        if not line.strip() or not line.lstrip()[0].isupper() or line.startswith(" " * 20):
            continue  # blank, or a note continued under its class
        indent = len(line) - len(line.lstrip())
        name = line.split()[0]
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parents[name] = stack[-1][1] if stack else "Exception"
        stack.append((indent, name))
    return parents


def test_the_docstring_draws_every_exception_under_its_base() -> None:
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == errors.__name__
    }
    tree = drawn_tree()

    assert set(tree) == set(classes)
    for name, parent in tree.items():
        assert parent in {base.__name__ for base in classes[name].__bases__}, (name, parent)
    assert set(classes) <= set(errors.__all__)


def test_no_public_exception_is_defined_outside_errors() -> None:
    exceptions = {*errors.__all__, "Exception", "BaseException", "ValueError", "RuntimeError"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
            if bases & exceptions or any(b.endswith(("Error", "Exception")) for b in bases):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}")
    assert found == []
