"""What to search for: the gallery's names, aliases and franchise hashtags.

Searches find clips that name what they show; many infringing clips do not, which is why every
platform also reads broad listings (popular, trending, new in watched communities) and the
pictures decide. Queries are built once per gallery here and rendered by each adapter in its
platform's syntax (YouTube's ``|``, X's ``OR`` and operators, TikTok's condition objects).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from monitor.likeness.gallery.entities import Entity, load_entities

__all__ = ["Query", "hashtag", "load_gallery_entities", "queries_for"]

_NOT_TAG = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True)
class Query:
    """One entity's search terms: phrases (names, aliases) and hashtags (without ``#``)."""

    key: str
    terms: tuple[str, ...]
    hashtags: tuple[str, ...]


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
    """One query per entity, in gallery order; ``limit`` keeps the first ones (quota)."""
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
