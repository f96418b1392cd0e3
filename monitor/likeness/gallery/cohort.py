"""The bundled cohort as a gallery's models see it.

The bundled cohort is the same for every gallery, so its embeddings are computed once per
models and settings and kept in the project cache, whichever cache (or none) the build was
given for its own files (a thousand pictures through a CNN is a minute of CPU that no gallery
should pay twice). Each picture is embedded whole, as a reference is: a member stands for a
character in general. A team's own ``cohort/`` files are the build's to embed (``build``).
"""

from __future__ import annotations

import hashlib

import numpy as np

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.cohort.bundled import bundled_pictures, bundled_version
from monitor.likeness.features import extract_visual
from monitor.likeness.gallery.cache import Arrays, EmbeddingCache
from monitor.likeness.gallery.store import CohortSet
from monitor.likeness.models import Models
from monitor.media.frames import Frame

__all__ = ["bundled_cohort"]


def bundled_cohort(models: Models, settings: LikenessSettings, decode: DecodeSettings) -> CohortSet:
    """The bundled pictures' embeddings, from the project cache or computed into it."""
    bundled = bundled_version()

    def compute() -> Arrays:
        pictures = list(bundled_pictures())
        frames = [Frame(picture.image) for picture in pictures]
        rows = extract_visual(models, frames, settings, regions=False).embeddings
        return {"rows": rows, "names": np.asarray([p.name for p in pictures], np.str_)}

    store = EmbeddingCache.default().scoped(models.versions, settings, decode)
    key = hashlib.sha256(bundled.encode()).hexdigest()
    arrays = store.get_or_compute("cohort-bundled", key, compute)
    names = [str(name) for name in arrays["names"].tolist()]
    return CohortSet(np.asarray(arrays["rows"], np.float32), names, bundled)
