"""The likeness engine: frames in, per-entity scores with evidence out.

A library with no knowledge of Kafka, Faust or HTTP, so the pipeline, the benchmark and the
evaluation all call the same code. The usual path::

    models = Models.load()
    gallery = Gallery.load(Path("my-gallery/built"))
    scorer = Scorer(gallery, models)
    result = scorer.score_frames(load_media(Path("clip.mp4")), caption="...")
"""

from __future__ import annotations

from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.gallery.calibrate import calibrate
from monitor.likeness.gallery.entities import Entity
from monitor.likeness.models import Models, prepare_weights
from monitor.likeness.scoring import ClipScore, EntityScore, Evidence, Scorer

__all__ = [
    "ClipScore",
    "Entity",
    "EntityScore",
    "Evidence",
    "Gallery",
    "Models",
    "Scorer",
    "build_gallery",
    "calibrate",
    "prepare_weights",
]
