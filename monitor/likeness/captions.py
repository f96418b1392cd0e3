"""Caption matching: the weak signal.

Uploaders who know a filter exists avoid the name, so a caption that does name an entity says
little on its own, and one that does not says nothing. It may tip a near-threshold picture
match over the line; it never flags a clip by itself (that is the scorer's rule, not this
module's). Matching is on whole words after folding case and accents, and hashtags match the
name written without spaces (``#GoGopher``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

__all__ = ["find_alias", "normalise"]

_NON_WORD = re.compile(r"[^0-9a-z]+")
_MIN_COMPACT = 4


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, words separated by single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return _NON_WORD.sub(" ", plain).strip()


def find_alias(caption: str | None, names: Iterable[str]) -> str | None:
    """The first of ``names`` that the caption mentions, or None."""
    if not caption:
        return None
    text = f" {normalise(caption)} "
    tokens = set(text.split())
    for name in names:
        wanted = normalise(name)
        if not wanted:
            continue
        if f" {wanted} " in text:
            return name
        compact = wanted.replace(" ", "")
        if len(compact) >= _MIN_COMPACT and compact in tokens:
            return name
    return None
