"""Caption matching finds names and aliases as words, whatever the case, accents or hashtags."""

from __future__ import annotations

import pytest

from monitor.likeness.captions import find_alias

NAMES = ("Go gopher", "gopher", "Amélie Poulain")


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("Look, the GO GOPHER dancing!", "Go gopher"),
        ("a gopher drawn in pencil", "gopher"),
        ("#GoGopher edit 🔥", "Go gopher"),
        ("amelie poulain lookalike", "Amélie Poulain"),
        ("gophers everywhere", None),
        ("goph er", None),
        ("", None),
        (None, None),
    ],
)
def test_find_alias(caption: str | None, expected: str | None) -> None:
    assert find_alias(caption, NAMES) == expected
