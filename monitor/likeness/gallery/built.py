"""A built gallery on disk: embeddings in safetensors, everything else in one JSON file.

safetensors rather than pickle because a gallery is handed between teams and machines, and
loading it must never run code. The pair is written to a temporary folder and renamed into
place, so a crash or a bad reference mid-build never leaves a half-built gallery behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file, save_file

from monitor.errors import GalleryNotBuiltError
from monitor.likeness.cohort.normalise import CohortNormaliser
from monitor.likeness.embedders.base import Embeddings
from monitor.likeness.footage.index import InvertedLayout
from monitor.likeness.footage.match import FootageClip, FootageIndex
from monitor.likeness.gallery.entities import Entity

__all__ = [
    "CaptionGallery",
    "CohortSet",
    "DescribedEntity",
    "EntityGallery",
    "Gallery",
    "NegativeSet",
    "Threshold",
]

FORMAT = 2
"""2: visual scores are margins over a cohort, whose embeddings the gallery carries."""
EMBEDDINGS_FILE = "embeddings.safetensors"
INDEX_FILE = "gallery.json"

_FOOTAGE_ARRAYS = ("hashes", "quality", "clip", "frame", "time")

ThresholdSource = Literal["calibrated", "entities.yaml", "default"]


@dataclass(frozen=True)
class Threshold:
    value: float
    source: ThresholdSource
    negatives: int = 0
    max_negative: float | None = None


@dataclass
class EntityGallery:
    """One entity's reference embeddings for its signal: faces for actors, visuals otherwise."""

    entity: Entity
    embeddings: Embeddings
    references: list[str]
    threshold: Threshold

    @property
    def signal(self) -> Literal["face", "visual"]:
        return "face" if self.entity.kind == "actor" else "visual"


@dataclass
class NegativeSet:
    """Embeddings of negative media; row ``i`` belongs to negative file ``items[i]``."""

    embeddings: Embeddings
    items: npt.NDArray[np.int32]


@dataclass
class CohortSet:
    """The cohort's visual embeddings as this gallery's models saw them, and what they are.

    ``bundled`` names the bundled pictures (see ``cohort.bundled``); a gallery built with
    other ones must be rebuilt, not scored against a cohort its thresholds never saw.
    """

    embeddings: Embeddings
    names: list[str]
    bundled: str

    @cached_property
    def normaliser(self) -> CohortNormaliser:
        return CohortNormaliser(self.embeddings, self.names)


@dataclass
class DescribedEntity:
    """An entity's sentences (descriptions, then names) as the text model embedded them, and
    the similarity from which a caption's piece is taken to describe it."""

    sentences: tuple[str, ...]
    embeddings: Embeddings
    threshold: Threshold


@dataclass
class CaptionGallery:
    """Captions by meaning: every entity's sentences and the everyday captions its threshold
    was calibrated against, all embedded by the text model ``model``."""

    model: str
    entities: dict[str, DescribedEntity]
    everyday: Embeddings


@dataclass
class Gallery:
    """Reference embeddings, thresholds and the versions that produced them.

    ``content`` hashes what went in (the folder, the models, the settings); ``version`` adds
    the thresholds, so it changes whenever scoring could change, and only then.
    """

    content: str
    models: dict[str, str]
    settings: dict[str, Any]
    entities: dict[str, EntityGallery]
    negative_files: list[str]
    negatives: dict[str, NegativeSet] = field(default_factory=dict)
    target_fpr: float = 0.01
    footage: FootageIndex = field(default_factory=FootageIndex.empty)
    dismissed: FootageIndex = field(default_factory=FootageIndex.empty)
    """Fingerprints of clips dismissed for an entity: a match keeps that entity from flagging."""
    cohort: CohortSet | None = None
    """What visual scores are measured against; None when no entity is scored visually."""
    captions: CaptionGallery | None = None
    """Captions by meaning; None when the gallery was built without the text model."""

    @property
    def version(self) -> str:
        digest = hashlib.sha256(self.content.encode())
        for entity_id, entry in sorted(self.entities.items()):
            digest.update(f"{entity_id}={entry.threshold.value:.6f};".encode())
        if self.captions is not None:
            for entity_id, described in sorted(self.captions.entities.items()):
                digest.update(f"{entity_id}~{described.threshold.value:.6f};".encode())
        return digest.hexdigest()[:16]

    def save(self, out: Path) -> None:
        """Write atomically: the previous build stays intact until the new one is complete."""
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
        try:
            tensors: dict[str, np.ndarray] = {}
            for entity_id, entry in self.entities.items():
                tensors[f"entity/{entity_id}"] = np.ascontiguousarray(entry.embeddings)
            for signal, negatives in self.negatives.items():
                tensors[f"negatives/{signal}"] = np.ascontiguousarray(negatives.embeddings)
                tensors[f"negatives/{signal}/items"] = np.ascontiguousarray(negatives.items)
            if self.cohort is not None:
                tensors["cohort/visual"] = np.ascontiguousarray(self.cohort.embeddings)
            if self.captions is not None:
                tensors["captions/everyday"] = np.ascontiguousarray(self.captions.everyday)
                for entity_id, described in self.captions.entities.items():
                    tensors[f"captions/entity/{entity_id}"] = np.ascontiguousarray(
                        described.embeddings
                    )
            for prefix, index in (("footage", self.footage), ("dismissed", self.dismissed)):
                for name in _FOOTAGE_ARRAYS:
                    tensors[f"{prefix}/{name}"] = np.ascontiguousarray(getattr(index, name))
                layout = index.inverted_layout()
                if layout is not None:
                    tensors[f"{prefix}/ivf_centres"] = layout.centres
                    tensors[f"{prefix}/ivf_lists"] = layout.lists
            save_file(tensors, str(staging / EMBEDDINGS_FILE), metadata={"version": self.version})
            (staging / INDEX_FILE).write_text(json.dumps(self._index(), indent=2) + "\n")
            previous = out.with_name(f".{out.name}.previous")
            if out.exists():
                os.replace(out, previous)
            os.replace(staging, out)
            shutil.rmtree(previous, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _index(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": self.version,
            "content": self.content,
            "models": self.models,
            "settings": self.settings,
            "target_fpr": self.target_fpr,
            "negative_files": self.negative_files,
            "footage": [asdict(clip) for clip in self.footage.clips],
            "dismissed": [asdict(clip) for clip in self.dismissed.clips],
            "cohort": None
            if self.cohort is None
            else {"bundled": self.cohort.bundled, "names": self.cohort.names},
            "captions": None
            if self.captions is None
            else {
                "model": self.captions.model,
                "entities": {
                    entity_id: {
                        "sentences": list(described.sentences),
                        "threshold": asdict(described.threshold),
                    }
                    for entity_id, described in self.captions.entities.items()
                },
            },
            "entities": [
                {
                    "entity": entry.entity.model_dump(mode="json"),
                    "references": entry.references,
                    "threshold": {
                        "value": entry.threshold.value,
                        "source": entry.threshold.source,
                        "negatives": entry.threshold.negatives,
                        "max_negative": entry.threshold.max_negative,
                    },
                }
                for entry in self.entities.values()
            ],
        }

    @classmethod
    def load(cls, built: Path) -> Gallery:
        index_path, tensors_path = built / INDEX_FILE, built / EMBEDDINGS_FILE
        if not index_path.is_file() or not tensors_path.is_file():
            raise GalleryNotBuiltError(
                f"{built}: no built gallery here (run `likeness-monitor gallery build`)"
            )
        try:
            index = json.loads(index_path.read_text())
            tensors = load_file(str(tensors_path))
        except (OSError, ValueError) as exc:
            raise GalleryNotBuiltError(f"{built}: unreadable built gallery: {exc}") from None
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            found = index.get("format") if isinstance(index, dict) else None
            raise GalleryNotBuiltError(f"{built}: gallery format {found} unsupported")
        try:
            return cls._from(built, index, tensors)
        except (KeyError, TypeError, ValueError) as exc:  # a hand-edited or damaged index
            raise GalleryNotBuiltError(
                f"{built}: malformed {INDEX_FILE} ({type(exc).__name__}: {exc}): rebuild it"
            ) from None

    @classmethod
    def _from(cls, built: Path, index: dict[str, Any], tensors: dict[str, np.ndarray]) -> Gallery:
        entities: dict[str, EntityGallery] = {}
        for raw in index["entities"]:
            entity = Entity.model_validate(raw["entity"])
            key = f"entity/{entity.id}"
            if key not in tensors:
                raise GalleryNotBuiltError(f"{built}: embeddings of {entity.id!r} are missing")
            entities[entity.id] = EntityGallery(
                entity=entity,
                embeddings=tensors[key].astype(np.float32, copy=False),
                references=list(raw["references"]),
                threshold=Threshold(**raw["threshold"]),
            )
        negatives = {
            key.split("/")[1]: NegativeSet(
                embeddings=tensors[key].astype(np.float32, copy=False),
                items=tensors[f"{key}/items"].astype(np.int32, copy=False),
            )
            for key in tensors
            if key.startswith("negatives/") and key.count("/") == 1
        }
        cohort = None
        if index.get("cohort") is not None:
            if "cohort/visual" not in tensors:
                raise GalleryNotBuiltError(f"{built}: the cohort's embeddings are missing")
            cohort = CohortSet(
                embeddings=tensors["cohort/visual"].astype(np.float32, copy=False),
                names=list(index["cohort"]["names"]),
                bundled=str(index["cohort"]["bundled"]),
            )
        return cls(
            content=index["content"],
            models=index["models"],
            settings=index["settings"],
            entities=entities,
            negative_files=list(index["negative_files"]),
            negatives=negatives,
            target_fpr=float(index["target_fpr"]),
            footage=_footage_index(index, tensors, "footage"),
            dismissed=_footage_index(index, tensors, "dismissed"),
            cohort=cohort,
            captions=_captions(index.get("captions"), tensors),
        )


def _captions(raw: Any, tensors: dict[str, np.ndarray]) -> CaptionGallery | None:
    if raw is None:
        return None
    entities = {}
    for entity_id, described in raw["entities"].items():
        embeddings = tensors[f"captions/entity/{entity_id}"].astype(np.float32, copy=False)
        sentences = tuple(str(s) for s in described["sentences"])
        if embeddings.shape[0] != len(sentences):
            raise ValueError(
                f"captions of {entity_id!r}: {len(sentences)} sentences, "
                f"{embeddings.shape[0]} vectors"
            )
        entities[str(entity_id)] = DescribedEntity(
            sentences, embeddings, Threshold(**described["threshold"])
        )
    return CaptionGallery(
        model=str(raw["model"]),
        entities=entities,
        everyday=tensors["captions/everyday"].astype(np.float32, copy=False),
    )


def _footage_index(
    index: dict[str, Any], tensors: dict[str, np.ndarray], prefix: str
) -> FootageIndex:
    if f"{prefix}/hashes" not in tensors:
        return FootageIndex.empty()
    layout = None
    if f"{prefix}/ivf_lists" in tensors:
        layout = InvertedLayout(tensors[f"{prefix}/ivf_centres"], tensors[f"{prefix}/ivf_lists"])
        layout.check(len(tensors[f"{prefix}/hashes"]))
    return FootageIndex(
        [FootageClip(**clip) for clip in index.get(prefix, [])],
        **{name: tensors[f"{prefix}/{name}"] for name in _FOOTAGE_ARRAYS},
        layout=layout,
    )
