"""Score clips against a gallery: per entity, the best match, its threshold and its evidence.

Actors are matched by face identity and characters by visual similarity of whole frames and
their regions, and any entity by perceptual hashes of its own footage (a re-upload); each
entity keeps the frames that support its score, so the person reviewing an alert sees where and
when it matched. Clips are scored in batches: the frames of every clip go through each model in
one pass, which is how a GPU earns its keep.

A clip whose hashes match a clip that reviewers dismissed for an entity is not flagged for that
entity, whatever its scores: it keeps its score and evidence, and says what suppressed it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from monitor.errors import GalleryError
from monitor.likeness.captions import (
    CaptionMeaning,
    caption_pieces,
    find_alias,
    nearest_sentences,
)
from monitor.likeness.cohort.normalise import CohortNormaliser
from monitor.likeness.embedders.base import Box, Embeddings
from monitor.likeness.features import (
    FaceFeatures,
    VisualFeatures,
    extract_faces,
    extract_visual,
)
from monitor.likeness.footage.match import FootageMatch, query_hashes
from monitor.likeness.gallery.built import CaptionGallery, EntityGallery, Gallery
from monitor.likeness.models import Models
from monitor.likeness.settings import LikenessSettings
from monitor.media.frames import Frame

__all__ = ["ClipScore", "EntityScore", "Evidence", "Scorer", "Signal", "check_gallery"]

log = logging.getLogger(__name__)

Signal = Literal["face", "visual", "hash", "caption"]

MAX_EVIDENCE_FRAMES = 3


@dataclass(frozen=True)
class Evidence:
    """Where a signal matched: the frame, the face box or region, and the score against threshold."""

    signal: Signal
    score: float
    threshold: float | None
    frame_time: float | None = None
    frame_index: int | None = None
    box: Box | None = None
    region: str | None = None
    reference: str | None = None
    text: str | None = None
    raw_score: float | None = None
    """A visual match's plain cosine to the reference, before the cohort (``score`` is after)."""
    cohort_nearest: str | None = None
    """The cohort member this view is most like, and its plain cosine to it: what a reviewer
    weighs when asking "is this really our character, or just a character?"."""
    cohort_score: float | None = None


@dataclass(frozen=True)
class EntityScore:
    entity_id: str
    name: str
    kind: str
    franchise: str | None
    owner: str | None
    score: float
    threshold: float
    flagged: bool
    evidence: tuple[Evidence, ...]
    caption_alias: str | None = None
    suppressed_by: str | None = None
    """The dismissed clip (its fingerprint in the gallery folder) this clip is a copy of."""

    @property
    def margin(self) -> float:
        return self.score - self.threshold


@dataclass
class ClipScore:
    """Every entity's score for one clip, best margin first."""

    entities: list[EntityScore]
    gallery_version: str
    models: dict[str, str]
    frames: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def flagged(self) -> list[EntityScore]:
        return [score for score in self.entities if score.flagged]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _ReferenceBank:
    """All references of one signal stacked, so one matrix product scores every entity.

    With a cohort, ``embeddings`` are the references whitened on it and ``raw`` as enrolled.
    """

    embeddings: npt.NDArray[np.float32]
    owners: npt.NDArray[np.int32]
    entries: tuple[EntityGallery, ...]
    raw: npt.NDArray[np.float32]
    normaliser: CohortNormaliser | None = None

    @classmethod
    def of(cls, gallery: Gallery, signal: str) -> _ReferenceBank:
        entries = tuple(e for e in gallery.entities.values() if e.signal == signal)
        if not entries:
            empty = np.zeros((0, 0), np.float32)
            return cls(empty, np.zeros(0, np.int32), (), empty)
        raw = np.concatenate([e.embeddings for e in entries]).astype(np.float32)
        owners = np.concatenate(
            [np.full(len(e.embeddings), i, np.int32) for i, e in enumerate(entries)]
        )
        if signal != "visual" or gallery.cohort is None:
            # Plain cosine: faces, and a gallery assembled without a cohort (a built one
            # always has one when it scores characters; thresholds came from the same rule).
            return cls(raw, owners, entries, raw)
        normaliser = gallery.cohort.normaliser
        return cls(normaliser.transform(raw), owners, entries, raw, normaliser)

    def similarity(
        self, queries: Embeddings
    ) -> tuple[Embeddings, Embeddings, _NearestMember | None]:
        """``(scores, plain cosines, nearest cohort members)`` of every query row against
        every reference."""
        raw = queries @ self.raw.T
        if self.normaliser is None:
            return raw, raw, None
        whitened = self.normaliser.transform(queries)
        against = self.normaliser.against_cohort(whitened)
        nearest = _NearestMember(
            names=tuple(self.normaliser.names[i] for i in against.nearest.tolist()),
            cosine=self.normaliser.nearest_cosine(queries, against),
        )
        return self.normaliser.margins(whitened, self.embeddings, against), raw, nearest


@dataclass(frozen=True)
class _CaptionHints:
    """What a clip's caption says, for the weak caption signal: its text (names are looked
    for in it) and, per entity, its nearest piece by meaning."""

    caption: str | None
    meanings: dict[str, CaptionMeaning]


def _described(gallery: Gallery, models: Models) -> CaptionGallery | None:
    """The gallery's captions by meaning, if this scorer's text model is the one that embedded
    them (else captions are matched by name only, and the log says why)."""
    captions, text = gallery.captions, models.text_embedder
    if captions is None or text is None:
        return None
    if captions.model != text.name:
        log.warning(
            "gallery captions were embedded by %s, this scorer has %s: captions are matched by "
            "name only until the gallery is rebuilt",
            captions.model,
            text.name,
        )
        return None
    return captions


class Scorer:
    """Scores frames against one gallery with one set of models."""

    def __init__(
        self, gallery: Gallery, models: Models, settings: LikenessSettings | None = None
    ) -> None:
        check_gallery(gallery, models)
        self.gallery = gallery
        self.models = models
        self.settings = settings or LikenessSettings()
        self._faces = _ReferenceBank.of(gallery, "face")
        self._visual = _ReferenceBank.of(gallery, "visual")
        self._described = _described(gallery, models)

    def score_frames(self, frames: Sequence[Frame], caption: str | None = None) -> ClipScore:
        return self.score_many([(frames, caption)])[0]

    def score_many(self, clips: Sequence[tuple[Sequence[Frame], str | None]]) -> list[ClipScore]:
        """Score several clips with one batched pass per model over all their frames."""
        frames = [frame for clip_frames, _ in clips for frame in clip_frames]
        clip_of_frame = np.concatenate(
            [np.full(len(clip_frames), i, np.int32) for i, (clip_frames, _) in enumerate(clips)]
            or [np.zeros(0, np.int32)]
        )
        timings: dict[str, float] = {}
        started = time.perf_counter()
        faces = extract_faces(self.models, frames) if self._faces.entries else None
        timings["faces_s"] = time.perf_counter() - started
        started = time.perf_counter()
        visual = (
            extract_visual(self.models, frames, self.settings) if self._visual.entries else None
        )
        timings["visual_s"] = time.perf_counter() - started
        started = time.perf_counter()
        footage, dismissed = self._hash_matches([clip_frames for clip_frames, _ in clips])
        timings["footage_s"] = time.perf_counter() - started
        started = time.perf_counter()
        meanings = self.caption_meanings([caption for _, caption in clips])
        timings["captions_s"] = time.perf_counter() - started
        results = []
        for index, (clip_frames, caption) in enumerate(clips):
            scores = []
            hints = _CaptionHints(caption, meanings[index])
            if faces is not None:
                scores += self._match(self._faces, faces, clip_of_frame == index, frames, hints)
            if visual is not None:
                scores += self._match(self._visual, visual, clip_of_frame == index, frames, hints)
            if footage is not None:
                scores = [self._with_footage(score, footage[index]) for score in scores]
            if dismissed is not None:
                scores = [_unless_dismissed(score, dismissed[index]) for score in scores]
            scores.sort(key=lambda s: s.margin, reverse=True)
            results.append(
                ClipScore(
                    entities=scores,
                    gallery_version=self.gallery.version,
                    models=dict(self.models.versions),
                    frames=len(clip_frames),
                    timings={k: v / max(len(clips), 1) for k, v in timings.items()},
                )
            )
        return results

    def caption_meanings(self, captions: Sequence[str | None]) -> list[dict[str, CaptionMeaning]]:
        """For each clip, each entity's nearest caption piece by meaning (one batch for all
        the clips' pieces); empty where the gallery has no captions to compare with."""
        described, text = self._described, self.models.text_embedder
        pieces = [caption_pieces(caption) for caption in captions]
        if described is None or text is None or not any(pieces):
            return [{} for _ in captions]
        vectors = text.embed([piece for clip in pieces for piece in clip])
        meanings: list[dict[str, CaptionMeaning]] = []
        start = 0
        for clip in pieces:
            rows, start = vectors[start : start + len(clip)], start + len(clip)
            found = {}
            for entity_id, entity in described.entities.items():
                if len(clip) and len(entity.sentences):
                    score, piece, sentence = nearest_sentences(rows, entity.embeddings)
                    found[entity_id] = CaptionMeaning(
                        round(score, 4),
                        entity.threshold.value,
                        clip[piece],
                        entity.sentences[sentence],
                    )
            meanings.append(found)
        return meanings

    def _hash_matches(
        self, clips: Sequence[Sequence[Frame]]
    ) -> tuple[list[list[FootageMatch]] | None, list[list[FootageMatch]] | None]:
        """Known-footage and dismissed-clip matches of each clip, hashing each clip once."""
        share = self.settings.footage_match_share
        indexes = [i if i.clips else None for i in (self.gallery.footage, self.gallery.dismissed)]
        if not any(indexes):
            return None, None
        hashed = query_hashes(clips)
        footage, dismissed = (
            index.match_many(clips, share, hashed=hashed) if index is not None else None
            for index in indexes
        )
        return footage, dismissed

    def _with_footage(self, score: EntityScore, matches: Sequence[FootageMatch]) -> EntityScore:
        """Add a known-footage match to an entity's score; it flags on its own.

        When the hash match is the stronger reason (or the only one), the entity's score and
        threshold become the match share and its gate, and the hash evidence comes first.
        """
        match = next((m for m in matches if m.entity_id == score.entity_id), None)
        if match is None:
            return score
        share = self.settings.footage_match_share
        evidence = _hash_evidence(
            match,
            share,
            "; ".join(
                f"{r.start:.2f}-{r.end:.2f} s = reference {r.reference_start:.2f}-"
                f"{r.reference_end:.2f} s"
                for r in match.ranges
            ),
        )
        if score.flagged and score.margin >= match.query_share - share:
            return replace(score, evidence=(*score.evidence, evidence))
        return replace(
            score,
            score=match.query_share,
            threshold=share,
            flagged=True,
            evidence=(evidence, *score.evidence),
        )

    def _match(
        self,
        bank: _ReferenceBank,
        features: FaceFeatures | VisualFeatures,
        frame_in_clip: npt.NDArray[np.bool_],
        frames: Sequence[Frame],
        hints: _CaptionHints,
    ) -> list[EntityScore]:
        rows = np.flatnonzero(frame_in_clip[features.frames]) if len(features) else np.zeros(0, int)
        similarity, raw, nearest = bank.similarity(features.embeddings[rows])
        signal: Signal = "face" if isinstance(features, FaceFeatures) else "visual"
        found = []
        for i, entry in enumerate(bank.entries):
            mine = bank.owners == i
            matched = _Matched(similarity[:, mine], raw[:, mine], rows, nearest)
            found.append(self._entity_score(entry, signal, matched, features, frames, hints))
        return found

    def _entity_score(
        self,
        entry: EntityGallery,
        signal: Signal,
        matched: _Matched,
        features: FaceFeatures | VisualFeatures,
        frames: Sequence[Frame],
        hints: _CaptionHints,
    ) -> EntityScore:
        threshold = entry.threshold.value
        alias = find_alias(hints.caption, entry.entity.names)
        meaning = hints.meanings.get(entry.entity.id)
        described = meaning if meaning is not None and meaning.matched else None
        similarity = matched.scores
        best = float(similarity.max()) if similarity.size else 0.0
        flagged = best >= threshold or (
            (alias is not None or described is not None)
            and similarity.size > 0
            and best >= threshold - self.settings.caption_margin
        )
        evidence = self._evidence(entry, signal, matched, features, frames)
        if alias is not None:
            evidence.append(Evidence("caption", 1.0, None, text=alias))
        if described is not None:
            evidence.append(
                Evidence(
                    "caption",
                    described.score,
                    described.threshold,
                    region="described",
                    reference=described.sentence,
                    text=described.piece,
                )
            )
        return EntityScore(
            entity_id=entry.entity.id,
            name=entry.entity.name,
            kind=entry.entity.kind,
            franchise=entry.entity.franchise,
            owner=entry.entity.owner,
            score=round(best, 4),
            threshold=threshold,
            flagged=flagged,
            evidence=tuple(evidence),
            caption_alias=alias,
        )

    def _evidence(
        self,
        entry: EntityGallery,
        signal: Signal,
        matched: _Matched,
        features: FaceFeatures | VisualFeatures,
        frames: Sequence[Frame],
    ) -> list[Evidence]:
        """The best-matching face or region of each of the best few frames."""
        similarity, rows, nearest = matched.scores, matched.rows, matched.nearest
        if not similarity.size:
            return []
        row_best = similarity.max(axis=1)
        ref_best = similarity.argmax(axis=1)
        per_frame: dict[int, int] = {}
        for local in np.argsort(-row_best, kind="stable"):
            frame = int(features.frames[rows[local]])
            per_frame.setdefault(frame, int(local))
            if len(per_frame) == MAX_EVIDENCE_FRAMES:
                break
        found = []
        for frame, local in per_frame.items():
            row = int(rows[local])
            reference = int(ref_best[local])
            found.append(
                Evidence(
                    signal=signal,
                    score=round(float(row_best[local]), 4),
                    threshold=entry.threshold.value,
                    frame_time=round(frames[frame].time, 3),
                    frame_index=frames[frame].index,
                    box=features.boxes[row],
                    region=features.labels[row] if isinstance(features, VisualFeatures) else None,
                    reference=entry.references[reference],
                    raw_score=None
                    if nearest is None
                    else round(float(matched.raw[local, reference]), 4),
                    cohort_nearest=None if nearest is None else nearest.names[local],
                    cohort_score=None
                    if nearest is None
                    else round(float(nearest.cosine[local]), 4),
                )
            )
        return found


@dataclass(frozen=True)
class _NearestMember:
    """Per query row: the cohort member it is most like, and its plain cosine to it."""

    names: tuple[str, ...]
    cosine: npt.NDArray[np.float32]


@dataclass(frozen=True)
class _Matched:
    """One entity's scores for a clip's rows (faces or views): normalised, plain, and each
    row's nearest cohort member (None without a cohort)."""

    scores: npt.NDArray[np.float32]
    raw: npt.NDArray[np.float32]
    rows: npt.NDArray[np.int64]
    nearest: _NearestMember | None


def check_gallery(gallery: Gallery, models: Models) -> None:
    """Raise ``GalleryError`` unless ``gallery`` was built with these models: vectors from
    other models do not compare. (Its cohort travels inside it, with the thresholds
    calibrated on it, so the cohort installed here does not matter.)"""
    if gallery.models != models.versions:
        raise GalleryError(
            f"gallery {gallery.version} was built with models {gallery.models}, "
            f"but this scorer has {models.versions}: rebuild the gallery"
        )


def _unless_dismissed(score: EntityScore, matches: Sequence[FootageMatch]) -> EntityScore:
    """Unflag an entity for a copy of a clip that reviewers dismissed for it."""
    match = next((m for m in matches if m.entity_id == score.entity_id), None)
    if match is None:
        return score
    evidence = _hash_evidence(
        match, None, "a copy of a clip dismissed as a false positive for this entity"
    )
    return replace(
        score, flagged=False, suppressed_by=match.reference, evidence=(*score.evidence, evidence)
    )


def _hash_evidence(match: FootageMatch, threshold: float | None, text: str) -> Evidence:
    return Evidence(
        signal="hash",
        score=match.query_share,
        threshold=threshold,
        frame_time=match.ranges[0].start if match.ranges else None,
        region=match.view,
        reference=match.reference,
        text=text,
    )
