"""Turn a gallery folder into embeddings and calibrated thresholds.

Actors enrol by face: the largest face of each reference picture (a reference photo is of the
actor; anyone beside them is not). Characters enrol by the whole picture and its mirror image,
since re-uploads are often flipped to dodge matching. Negatives go through exactly the path a
query takes (every face, every region), so calibration sees what scoring will see. An entity's
own footage (``footage/<entity_id>/``) is hashed with PDQ at every frame that moved into one
index, for re-uploads of the work itself; the fingerprints of clips dismissed by reviewers go into
another, for clips that must not flag an entity again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from monitor.errors import CohortError, MediaError, NoUsableReferenceError, ReferenceMediaError
from monitor.likeness.captions import everyday_captions
from monitor.likeness.embedders.base import Embeddings
from monitor.likeness.features import extract_faces, extract_visual
from monitor.likeness.footage.fingerprint import Fingerprint
from monitor.likeness.footage.hashes import (
    REFERENCE_HASHING,
    FrameHashes,
    HashedFootage,
    hash_reference,
)
from monitor.likeness.footage.match import FootageClip, FootageIndex
from monitor.likeness.gallery.built import (
    CaptionGallery,
    CohortSet,
    DescribedEntity,
    EntityGallery,
    Gallery,
    NegativeSet,
    Threshold,
)
from monitor.likeness.gallery.cache import Arrays, EmbeddingCache
from monitor.likeness.gallery.calibrate import calibrate
from monitor.likeness.gallery.cohort import bundled_cohort
from monitor.likeness.gallery.entities import Entity
from monitor.likeness.gallery.folder import GalleryFolder, read_folder
from monitor.likeness.models import Models
from monitor.likeness.settings import LikenessSettings
from monitor.media import load_every_frame, load_media
from monitor.media.frames import Frame
from monitor.media.settings import DecodeSettings

__all__ = ["Progress", "build_gallery", "describe_entities"]

Progress = Callable[[str], None]
"""Called once per media file processed, with its path relative to the gallery folder."""


def _frames(path: Path, decode: DecodeSettings) -> list[Frame]:
    return load_media(path, decode.limits, even_frames=decode.even_frames)


def _mirrored(frames: list[Frame]) -> list[Frame]:
    return [
        Frame(np.ascontiguousarray(f.image[:, ::-1]), f.time, f.index, f.keyframe) for f in frames
    ]


class _Files:
    """Runs each file of the folder through the models once, or takes it from the cache."""

    def __init__(
        self,
        folder: GalleryFolder,
        models: Models,
        settings: LikenessSettings,
        decode: DecodeSettings,
        cache: EmbeddingCache | None,
    ) -> None:
        self.folder, self.models, self.settings, self.decode = folder, models, settings, decode
        self.cache = cache.scoped(models.versions, settings, decode) if cache else None

    def cohort_file(self, path: Path) -> Embeddings:
        """One of the team's cohort files, whole and in every region, as a query is: a
        query's best view of a filed look-alike is often a crop of it (its head, say), which
        must find that crop in the cohort, not only the whole picture."""

        def compute() -> Arrays:
            try:
                frames = _frames(path, self.decode)
            except MediaError as exc:
                raise CohortError(f"cohort file {path}: {exc}") from None
            return {"rows": extract_visual(self.models, frames, self.settings).embeddings}

        return np.asarray(self._arrays("cohort-regions", path, compute)["rows"], np.float32)

    def _arrays(self, purpose: str, path: Path, compute: Callable[[], Arrays]) -> Arrays:
        if self.cache is None:
            return compute()
        return self.cache.get_or_compute(purpose, self.folder.file_digests[path], compute)

    def enrolled(self, entity: Entity, path: Path) -> Embeddings:
        """An actor's largest face per frame, or a character's whole frames and mirrors."""

        def compute() -> Arrays:
            frames = _frames(path, self.decode)
            if entity.kind != "actor":
                visual = extract_visual(
                    self.models, frames + _mirrored(frames), self.settings, regions=False
                )
                return {"rows": visual.embeddings}
            faces = extract_faces(self.models, frames)
            largest = []
            for position in sorted(set(faces.frames.tolist())):
                rows_of_frame = np.flatnonzero(faces.frames == position)
                areas = [faces.boxes[i].width * faces.boxes[i].height for i in rows_of_frame]
                largest.append(int(rows_of_frame[int(np.argmax(areas))]))
            return {"rows": faces.embeddings[np.asarray(largest, np.int64)]}

        return np.asarray(self._arrays(f"enrol-{entity.kind}", path, compute)["rows"], np.float32)

    def negative(self, path: Path) -> dict[str, Embeddings]:
        """Every face and every region, as a query would be embedded."""

        def compute() -> Arrays:
            frames = _frames(path, self.decode)
            return {
                "face": extract_faces(self.models, frames).embeddings,
                "visual": extract_visual(self.models, frames, self.settings).embeddings,
            }

        arrays = self._arrays("negative", path, compute)
        return {signal: np.asarray(arrays[signal], np.float32) for signal in ("face", "visual")}

    def footage(self, path: Path) -> HashedFootage:
        """The kept hashes of every frame of a reference clip."""

        def compute() -> Arrays:
            hashed = hash_reference(_footage_frames(path, self.settings, self.decode))
            return {
                "hashes": hashed.hashes.hashes,
                "quality": hashed.hashes.quality,
                "frames": hashed.hashes.frames,
                "views": np.asarray(hashed.hashes.views, np.str_),
                "times": np.asarray(hashed.times, np.float64),
                "length": np.asarray([hashed.duration, hashed.frames], np.float64),
            }

        arrays = self._arrays(f"reference-footage:{REFERENCE_HASHING}", path, compute)
        duration, frames = arrays["length"].tolist()
        return HashedFootage(
            hashes=FrameHashes(
                hashes=np.asarray(arrays["hashes"], np.uint8),
                quality=np.asarray(arrays["quality"], np.uint8),
                frames=np.asarray(arrays["frames"], np.int32),
                views=tuple(str(view) for view in arrays["views"].tolist()),
            ),
            times=[float(t) for t in arrays["times"].tolist()],
            duration=float(duration),
            frames=int(frames),
        )


def _enrol(
    entity: Entity, folder: GalleryFolder, files: _Files, progress: Progress
) -> tuple[Embeddings, list[str]]:
    rows: list[Embeddings] = []
    names: list[str] = []
    for path in folder.references[entity.id]:
        name = path.relative_to(folder.root).as_posix()
        try:
            embedded = files.enrolled(entity, path)
        except MediaError as exc:
            raise ReferenceMediaError(f"entity {entity.id!r}: reference {path}: {exc}") from None
        if len(embedded):
            rows.append(embedded)
            names.extend([name] * len(embedded))
        progress(name)
    if not rows:
        what = "a detectable face" if entity.kind == "actor" else "a usable picture"
        files_named = ", ".join(str(p) for p in folder.references[entity.id])
        raise NoUsableReferenceError(
            f"entity {entity.id!r}: no reference has {what} ({files_named})"
        )
    return np.concatenate(rows).astype(np.float32), names


def _negatives(folder: GalleryFolder, files: _Files, progress: Progress) -> dict[str, NegativeSet]:
    found: dict[str, list[tuple[Embeddings, int]]] = {"face": [], "visual": []}
    for item, path in enumerate(folder.negatives):
        name = path.relative_to(folder.root).as_posix()
        try:
            embedded = files.negative(path)
        except MediaError as exc:
            raise ReferenceMediaError(f"negative {path}: {exc}") from None
        for signal, rows in embedded.items():
            found[signal].append((rows, item))
        progress(name)
    return {
        signal: NegativeSet(
            embeddings=np.concatenate([rows for rows, _ in pairs]).astype(np.float32),
            items=np.concatenate(
                [np.full(len(rows), item, np.int32) for rows, item in pairs]
            ).astype(np.int32),
        )
        for signal, pairs in found.items()
        if pairs
    }


def _footage(folder: GalleryFolder, files: _Files, progress: Progress) -> FootageIndex:
    """Hash every frame of each reference clip (bounded) into one index."""
    index = FootageIndex.empty()
    for entity_id, paths in folder.footage.items():
        for path in paths:
            name = path.relative_to(folder.root).as_posix()
            try:
                hashed = files.footage(path)
            except MediaError as exc:
                raise ReferenceMediaError(f"entity {entity_id!r}: footage {path}: {exc}") from None
            clip = FootageClip(entity_id, name, round(hashed.duration, 3), hashed.frames)
            index.add_hashes(clip, hashed.times, hashed.hashes)
            progress(name)
    return index


def _cohort(folder: GalleryFolder, files: _Files, progress: Progress) -> CohortSet:
    """The bundled cohort plus the folder's ``cohort/`` files, each row named by its file."""
    bundled = bundled_cohort(files.models)
    rows, names = [bundled.embeddings], list(bundled.names)
    for path in folder.cohort:
        name = path.relative_to(folder.root).as_posix()
        embedded = files.cohort_file(path)
        rows.append(embedded)
        names.extend([name] * len(embedded))
        progress(name)
    return CohortSet(np.concatenate(rows).astype(np.float32), names, bundled.bundled)


def _dismissed(folder: GalleryFolder) -> FootageIndex:
    """The fingerprints of dismissed clips, one index entry per clip, owned by its entity."""
    index = FootageIndex.empty()
    for entity_id, paths in folder.dismissed.items():
        for path in paths:
            kept = Fingerprint.load(path)
            clip = kept.footage_clip(entity_id, path.relative_to(folder.root).as_posix())
            index.add_hashes(clip, kept.times, kept.hashes)
    return index


_FOOTAGE_MAX_BYTES = 1 << 40
"""A film's file is the team's own and may be tens of GB: its length is what is bounded."""


def _footage_frames(
    path: Path, settings: LikenessSettings, decode: DecodeSettings
) -> Iterator[Frame]:
    """Every frame, streamed, under the ``footage_*`` bounds instead of an upload's."""
    limits = replace(
        decode.limits,
        max_bytes=_FOOTAGE_MAX_BYTES,
        max_frames=settings.footage_max_frames,
        max_duration_s=settings.footage_max_seconds,
        timeout_s=settings.footage_timeout_s,
    )
    return load_every_frame(path, limits)


def _content_hash(
    folder: GalleryFolder,
    models: Models,
    settings: LikenessSettings,
    decode: DecodeSettings,
    cohort: CohortSet | None,
    captions: CaptionGallery | None,
) -> str:
    digest = hashlib.sha256(folder.content_digest().encode())
    digest.update(f"cohort={cohort.bundled if cohort else None}".encode())
    if captions is not None:
        digest.update(f"text={captions.model};".encode())
        digest.update("\n".join(everyday_captions()).encode())
    digest.update(json.dumps(models.versions, sort_keys=True).encode())
    digest.update(settings.model_dump_json(exclude={"device", "batch_size"}).encode())
    digest.update(REFERENCE_HASHING.encode())
    digest.update(decode.model_dump_json().encode())
    return digest.hexdigest()


def build_gallery(
    root: Path,
    models: Models,
    settings: LikenessSettings,
    decode: DecodeSettings,
    *,
    progress: Progress | None = None,
    cache: EmbeddingCache | None = None,
) -> Gallery:
    """Embed every reference and negative of the folder at ``root`` and calibrate thresholds.

    With a ``cache``, files already run through these models with these settings are taken
    from it (the result is the same). Raises a ``GalleryError`` naming the file and entity at
    fault; nothing is written here.
    """
    folder = read_folder(root)
    dismissed = _dismissed(folder)  # cheap, and a bad file is refused before any model runs
    report = progress or (lambda _name: None)
    files = _Files(folder, models, settings, decode, cache)
    entities: dict[str, EntityGallery] = {}
    for entity in folder.entities:
        embeddings, names = _enrol(entity, folder, files, report)
        entities[entity.id] = EntityGallery(entity, embeddings, names, Threshold(0.0, "default"))
    visual = any(entry.signal == "visual" for entry in entities.values())
    cohort = _cohort(folder, files, report) if visual else None
    captions = describe_entities(folder.entities, models)
    gallery = Gallery(
        content=_content_hash(folder, models, settings, decode, cohort, captions),
        models=models.versions,
        settings=settings.model_dump(mode="json", exclude={"device", "batch_size"}),
        entities=entities,
        negative_files=[p.relative_to(folder.root).as_posix() for p in folder.negatives],
        negatives=_negatives(folder, files, report),
        footage=_footage(folder, files, report),
        dismissed=dismissed,
        cohort=cohort,
        captions=captions,
    )
    return calibrate(gallery, settings.target_fpr)


def describe_entities(entities: Sequence[Entity], models: Models) -> CaptionGallery | None:
    """Every entity's sentences and the everyday captions, embedded by the text model (a
    second or two for a gallery: sentences are cheap); None without a text model."""
    text = models.text_embedder
    if text is None:
        return None
    described = {
        entity.id: DescribedEntity(
            entity.sentences, text.embed(entity.sentences), Threshold(0.0, "default")
        )
        for entity in entities
    }
    return CaptionGallery(text.name, described, text.embed(everyday_captions()))


def media_count(root: Path) -> int:
    """How many files a build of ``root`` will process: the length of its progress bar."""
    folder = read_folder(root)
    media = (
        *folder.references.values(),
        *folder.footage.values(),
        folder.negatives,
        folder.cohort,
    )
    return sum(len(group) for group in media)
