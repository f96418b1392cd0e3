"""The protected entities, as a rights team writes them by hand in ``entities.yaml``.

The file is edited by people, not programs, so every mistake is reported with the file, the
entry and the field at fault, and nothing is guessed: an unknown field is an error, because a
misspelt ``threshhold`` that silently does nothing is worse than a refusal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from monitor.errors import GalleryFormatError
from monitor.safeyaml import load_yaml

__all__ = ["DESCRIPTION_MAX", "Entity", "EntityKind", "load_entities"]

DESCRIPTION_MAX = 2000
"""Characters in one description: a paragraph, not a document."""

EntityKind = Literal["actor", "character"]


class Entity(BaseModel):
    """One protected actor or character."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,79}$")
    name: str = Field(min_length=1)
    kind: EntityKind
    franchise: str | None = None
    owner: str | None = None
    aliases: tuple[str, ...] = ()
    description: str | None = None
    """A note for people; it is also matched against captions, like ``descriptions``."""
    descriptions: tuple[str, ...] = ()
    """What the entity looks like, its signature scenes, its costume: free text a caption that
    avoids the name may still describe (``captions.py`` matches them by meaning)."""
    threshold: float | None = Field(default=None, gt=0.0, le=1.0)

    @field_validator("aliases", "descriptions", mode="before")
    @classmethod
    def _as_tuple(cls, value: object) -> object:
        if isinstance(value, str):
            return (value,)
        return tuple(value) if isinstance(value, list) else value

    @field_validator("descriptions")
    @classmethod
    def _no_empty_description(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        stripped = tuple(" ".join(text.split()) for text in value)
        for position, text in enumerate(stripped, start=1):
            if not text:
                raise ValueError(f"description {position} is empty: write one or remove it")
            if len(text) > DESCRIPTION_MAX:
                raise ValueError(f"description {position} is over {DESCRIPTION_MAX} characters")
        return stripped

    @property
    def names(self) -> tuple[str, ...]:
        """The name and every alias: what a caption may call this entity."""
        return (self.name, *self.aliases)

    @property
    def described(self) -> tuple[str, ...]:
        """Every description, the note first, each once."""
        notes = (self.description,) if self.description else ()
        return tuple(dict.fromkeys((*notes, *self.descriptions)))

    @property
    def sentences(self) -> tuple[str, ...]:
        """What a caption is compared with by meaning: every description, then the names."""
        return (*self.described, *self.names)


def load_entities(path: Path) -> list[Entity]:
    """Parse and validate ``entities.yaml``; raises ``GalleryFormatError`` naming the fault."""
    try:
        document = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GalleryFormatError(f"{path}: no entities file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GalleryFormatError(f"{path}: cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise GalleryFormatError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(document, dict):
        document = document.get("entities")
    if not isinstance(document, list) or not document:
        raise GalleryFormatError(f"{path}: expected a non-empty list of entities under 'entities:'")
    entities: list[Entity] = []
    seen: set[str] = set()
    for position, raw in enumerate(document, start=1):
        label = f"entry {position}" + (f" ({raw.get('id')})" if isinstance(raw, dict) else "")
        if not isinstance(raw, dict):
            raise GalleryFormatError(f"{path}: {label}: expected a mapping, got {raw!r}")
        try:
            entity = Entity.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'entry'}: {error['msg']}"
                for error in exc.errors()
            )
            raise GalleryFormatError(f"{path}: {label}: {problems}") from None
        if entity.id in seen:
            raise GalleryFormatError(f"{path}: {label}: duplicate entity id {entity.id!r}")
        seen.add(entity.id)
        entities.append(entity)
    return entities
