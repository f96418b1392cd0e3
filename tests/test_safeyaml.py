"""YAML a user hands in is loaded with bounds on aliases and expansion (issue 11, found 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from monitor.errors import GalleryFormatError, YamlLimitError
from monitor.likeness.gallery.entities import load_entities
from monitor.safeyaml import MAX_ALIASES, load_yaml


def laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs": each level a list of ``width`` aliases of the level below."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*l{level - 1}"] * width)
        lines.append(f"l{level}: &l{level} [{refs}]")
    entity = f"entities:\n  - {{id: x, name: X, kind: actor, aliases: *l{levels}}}\n"
    return "\n".join(lines) + "\n" + entity


def test_a_small_alias_bomb_is_refused_by_its_expanded_size_though_it_has_few_aliases() -> None:
    bomb = laughs(8)  # 72 aliases, under the alias bound, but 9^9 nodes expanded
    assert len(bomb.encode()) < 700 and bomb.count("*") < MAX_ALIASES
    with pytest.raises(YamlLimitError, match="expands to more than"):
        load_yaml(bomb)


def test_too_many_aliases_are_refused() -> None:
    text = "base: &b 1\nitems: [" + ", ".join(["*b"] * (MAX_ALIASES + 1)) + "]\n"
    with pytest.raises(YamlLimitError, match="aliases"):
        load_yaml(text)


def test_a_self_referring_alias_is_refused() -> None:
    with pytest.raises(YamlLimitError, match="refers to itself"):
        load_yaml("a: &a [1, *a]\n")


def test_deep_nesting_is_refused_not_a_crash() -> None:
    with pytest.raises(YamlLimitError, match="nested too deeply"):
        load_yaml("[" * 50_000 + "]" * 50_000)


def test_ordinary_yaml_with_a_few_aliases_loads_like_safe_load() -> None:
    text = "common: &c {franchise: Scream}\nentities:\n  - {id: a, extra: *c}\n  - {id: b, x: *c}\n"
    assert load_yaml(text) == yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object:os.system ls")


def test_an_entities_file_bomb_is_a_gallery_format_error(tmp_path: Path) -> None:
    path = tmp_path / "entities.yaml"
    path.write_text(laughs(8))
    with pytest.raises(GalleryFormatError, match="expands to more than"):
        load_entities(path)
