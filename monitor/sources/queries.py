"""What to search for: the gallery's names, aliases and franchise hashtags, and the key words
of each entity's descriptions.

Searches find clips that name what they show; many infringing clips do not, which is why every
platform also reads broad listings (popular, trending, new in watched communities) and the
pictures decide. Uploaders who avoid a name describe instead, and search APIs match words, so
each description also becomes a query of its key words, all of which must appear ("pale
creature flower head" finds what "Demogorgon" does not). The key words are the description's
first ``KEY_WORDS`` words that are not English function words, in their order: no model runs
in the crawler, and a search of more words than that finds almost nothing. Name queries come
first, so a quota that keeps only the first queries keeps every entity's names. Queries are built once per gallery here and rendered by each adapter in its
platform's syntax (YouTube's ``|``, X's ``OR`` and operators, TikTok's condition objects).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from monitor.likeness.gallery.entities import Entity, load_entities

__all__ = ["KEY_WORDS", "Query", "hashtag", "key_words", "load_gallery_entities", "queries_for"]

_NOT_TAG = re.compile(r"[\W_]+", re.UNICODE)
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?", re.UNICODE)

KEY_WORDS = 4
"""Words of a description searched together (all must match)."""

_FUNCTION_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "nor",
        "so",
        "yet",
        "for",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "with",
        "from",
        "into",
        "onto",
        "over",
        "under",
        "about",
        "above",
        "below",
        "after",
        "before",
        "during",
        "through",
        "between",
        "among",
        "against",
        "without",
        "within",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "am",
        "has",
        "have",
        "had",
        "do",
        "does",
        "did",
        "who",
        "whom",
        "whose",
        "which",
        "that",
        "this",
        "these",
        "those",
        "there",
        "here",
        "it",
        "its",
        "he",
        "his",
        "him",
        "she",
        "her",
        "hers",
        "they",
        "them",
        "their",
        "theirs",
        "we",
        "our",
        "you",
        "your",
        "i",
        "me",
        "my",
        "mine",
        "as",
        "like",
        "than",
        "then",
        "when",
        "while",
        "where",
        "why",
        "how",
        "what",
        "very",
        "much",
        "many",
        "more",
        "most",
        "some",
        "any",
        "all",
        "each",
        "every",
        "both",
        "either",
        "neither",
        "no",
        "not",
        "only",
        "own",
        "same",
        "such",
        "too",
        "can",
        "could",
        "will",
        "would",
        "shall",
        "should",
        "may",
        "might",
        "must",
        "just",
        "also",
        "often",
        "always",
        "never",
        "one",
        "ones",
    ]
)


@dataclass(frozen=True)
class Query:
    """One entity's search terms: phrases (names, aliases) and hashtags (without ``#``), any
    of which may match; or ``words``, a description's key words, all of which must."""

    key: str
    terms: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    words: tuple[str, ...] = ()


def key_words(description: str, most: int = KEY_WORDS) -> tuple[str, ...]:
    """The first ``most`` words of ``description`` that say something, lower case."""
    found: dict[str, None] = {}
    for word in _WORD.findall(description.casefold()):
        if len(word) > 2 and word not in _FUNCTION_WORDS:
            found.setdefault(word)
    return tuple(found)[:most]


def hashtag(text: str) -> str:
    """``"Stranger Things"`` as the tag people write: ``StrangerThings``."""
    return "".join(part[:1].upper() + part[1:] for part in _NOT_TAG.split(text) if part)


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for value in values:
        value = value.strip()
        if value and value.casefold() not in seen:
            seen[value.casefold()] = value
    return tuple(seen.values())


def queries_for(entities: Iterable[Entity], limit: int | None = None) -> list[Query]:
    """One query of names per entity, in gallery order, then one per description; ``limit``
    keeps the first ones (quota)."""
    entities = list(entities)
    queries = []
    for entity in entities:
        tags = [hashtag(name) for name in entity.names]
        if entity.franchise:
            tags.append(hashtag(entity.franchise))
        queries.append(
            Query(
                key=f"entity:{entity.id}",
                terms=_unique(entity.names),
                hashtags=_unique(tag for tag in tags if len(tag) > 1),
            )
        )
    for entity in entities:
        searched: set[tuple[str, ...]] = set()
        for number, description in enumerate(entity.described, start=1):
            words = key_words(description)
            if len(words) >= 2 and words not in searched:
                searched.add(words)
                queries.append(Query(key=f"entity:{entity.id}:described:{number}", words=words))
    return queries[:limit] if limit is not None else queries


def load_gallery_entities(gallery: Path | None) -> list[Entity]:
    """The entities of a gallery folder or of its built folder (``<gallery>/built``)."""
    if gallery is None:
        return []
    for folder in (gallery, gallery.parent):
        if (folder / "entities.yaml").is_file():
            return load_entities(folder / "entities.yaml")
    from monitor.likeness.gallery.built import Gallery

    return [entry.entity for entry in Gallery.load(gallery).entities.values()]
