"""YAML from users, loaded with bounds: a few hundred bytes must not cost gigabytes.

``yaml.safe_load`` builds no arbitrary objects, but it follows anchors and aliases: a
"billion laughs" document of ten lists of ten aliases each is a few hundred bytes, and
whatever walks the result (validation, printing) walks 10^9 nodes. PyYAML shares aliased
nodes, so the cost only shows later, far from the file that caused it. ``load_yaml`` counts
aliases while composing and, before constructing anything, the nodes the document would have
with every alias expanded, and refuses past small bounds (or a cycle, which never ends).

Every YAML file a user hands in (``entities.yaml`` of a gallery) goes through here.
"""

from __future__ import annotations

from typing import Any

import yaml

from monitor.errors import YamlLimitError

__all__ = ["MAX_ALIASES", "MAX_NODES", "load_yaml"]

MAX_ALIASES = 100
"""Aliases (``*name``) one document may use; hand-written galleries use a handful, if any."""

MAX_NODES = 200_000
"""Nodes one document may have once every alias is expanded (a 5,000-entity gallery has
about 100,000)."""


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, stream: str | bytes, max_aliases: int, max_nodes: int) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._max_aliases = max_aliases
        self._max_nodes = max_nodes

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > self._max_aliases:
                raise YamlLimitError(f"more than {self._max_aliases} aliases: write the values out")
        return super().compose_node(parent, index)

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _expanded_size(node, self._max_nodes)
        return node


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """How many nodes ``root`` has with aliases expanded; raises past ``limit`` or on a cycle.

    Each distinct node is sized once (memoised), so this is linear in the document's size
    however large its expansion would be.
    """
    sizes: dict[int, int] = {}
    open_: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise YamlLimitError("a node refers to itself through an alias")
        open_.add(key)
        total = 1
        children: list[Any] = node.value if isinstance(node.value, list) else []
        for child in children:
            parts = child if isinstance(child, tuple) else (child,)  # mapping: (key, value)
            for part in parts:
                total += size(part)
                if total > limit:
                    raise YamlLimitError(
                        f"expands to more than {limit:,} nodes (aliases of aliases?)"
                    )
        open_.discard(key)
        sizes[key] = total
        return total

    return size(root)


def load_yaml(
    text: str | bytes, *, max_aliases: int = MAX_ALIASES, max_nodes: int = MAX_NODES
) -> Any:
    """``yaml.safe_load`` with the bounds above; raises ``YamlLimitError`` past them and
    ``yaml.YAMLError`` for malformed YAML."""
    loader = _BoundedLoader(text, max_aliases, max_nodes)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise YamlLimitError("nested too deeply") from None
    finally:
        loader.dispose()
