"""The gallery folder a rights team edits: what is in it, checked before any model runs.

Layout::

    entities.yaml            who is protected (see ``entities.py``)
    refs/<entity_id>/...     reference images or clips of each entity
    footage/<entity_id>/...  optional: the entity's own footage (film, show), matched by hash
    negatives/...            optional: look-alikes and benign content, for calibration
    cohort/...               optional: characters the team sees often and does not protect
                             (other studios'), added to the bundled cohort that visual
                             scores are measured against
    negatives/dismissed/<entity_id>/...
                             written by the review loop: evidence of alerts dismissed as false
                             positives (negatives of that entity only) and the fingerprints
                             (``*.pdq.json``) of the clips, which must not flag it again

Files are listed in sorted order so that the same folder always builds the same gallery.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from monitor.assets import sha256_of
from monitor.errors import GalleryFormatError, NoUsableReferenceError
from monitor.likeness.footage.fingerprint import FINGERPRINT_SUFFIX
from monitor.likeness.gallery.entities import Entity, load_entities

__all__ = ["DISMISSED", "GalleryFolder", "negative_owner", "read_folder"]

DISMISSED = Path("negatives") / "dismissed"


def _media_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )


def negative_owner(relative: str) -> str | None:
    """The one entity a negative belongs to (a dismissal's), or None for a negative of all."""
    parts = Path(relative).parts
    return parts[2] if len(parts) > 3 and Path(*parts[:2]) == DISMISSED else None


@dataclass(frozen=True)
class GalleryFolder:
    root: Path
    entities: tuple[Entity, ...]
    references: dict[str, tuple[Path, ...]]
    negatives: tuple[Path, ...]
    footage: dict[str, tuple[Path, ...]]
    dismissed: dict[str, tuple[Path, ...]] = field(default_factory=dict)
    """Fingerprints of clips dismissed for each entity."""
    cohort: tuple[Path, ...] = ()
    """The team's own cohort pictures."""

    @property
    def entities_file(self) -> Path:
        return self.root / "entities.yaml"

    @cached_property
    def file_digests(self) -> dict[Path, str]:
        """The sha256 of every file a build reads, in build order; each file is read once,
        whether for the content version or for the build cache's keys."""
        media = (
            *self.references.values(),
            *self.footage.values(),
            self.negatives,
            *self.dismissed.values(),
            self.cohort,
        )
        return {path: sha256_of(path) for group in media for path in group}

    def content_digest(self) -> str:
        """sha256 over the entities file and every media file's relative path and bytes."""
        digest = hashlib.sha256()
        digest.update(self.entities_file.read_bytes())
        for path, file_digest in self.file_digests.items():
            digest.update(path.relative_to(self.root).as_posix().encode())
            digest.update(bytes.fromhex(file_digest))
        return digest.hexdigest()


def read_folder(root: Path) -> GalleryFolder:
    """List a gallery folder; raises ``GalleryError`` for anything a build could not use."""
    if not root.is_dir():
        raise GalleryFormatError(f"{root}: not a gallery folder")
    entities = load_entities(root / "entities.yaml")
    known = {entity.id for entity in entities}
    refs_root = root / "refs"
    for per_entity in (refs_root, root / "footage", root / DISMISSED):
        if per_entity.is_dir():
            strays = sorted(
                p.name for p in per_entity.iterdir() if p.is_dir() and p.name not in known
            )
            if strays:
                raise GalleryFormatError(
                    f"{per_entity}: folders for unknown entities {strays}; add them to entities.yaml"
                )
    references: dict[str, tuple[Path, ...]] = {}
    for entity in entities:
        files = tuple(_media_files(refs_root / entity.id))
        if not files:
            raise NoUsableReferenceError(
                f"entity {entity.id!r}: no reference files in {refs_root / entity.id}"
            )
        references[entity.id] = files
    return GalleryFolder(
        root=root,
        entities=tuple(entities),
        references=references,
        negatives=tuple(
            p for p in _media_files(root / "negatives") if not p.name.endswith(FINGERPRINT_SUFFIX)
        ),
        footage={
            entity.id: files
            for entity in entities
            if (files := tuple(_media_files(root / "footage" / entity.id)))
        },
        cohort=tuple(_media_files(root / "cohort")),
        dismissed={
            entity.id: files
            for entity in entities
            if (
                files := tuple(
                    p
                    for p in _media_files(root / DISMISSED / entity.id)
                    if p.name.endswith(FINGERPRINT_SUFFIX)
                )
            )
        },
    )
