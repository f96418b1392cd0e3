"""The bundled cohort as a gallery's models see it.

The bundled cohort is the same for every gallery, so its embeddings are computed once per
visual model and kept in the project cache, whichever cache (or none) the build was given
for its own files (a thousand pictures through a CNN is a minute of CPU that no gallery
should pay twice). Each picture is embedded whole, as a reference is: a member stands for a
character in general. Nothing else goes into them (no region or decode setting), so nothing
else keys them. A team's own ``cohort/`` files are the build's to embed (``build``).
"""

from __future__ import annotations

import hashlib
import itertools

import numpy as np

from monitor.likeness.cohort.bundled import bundled_pictures, bundled_version
from monitor.likeness.gallery.built import CohortSet
from monitor.likeness.gallery.cache import Arrays, EmbeddingCache
from monitor.likeness.models import Models

__all__ = ["bundled_cohort"]

_CHUNK = 64  # pictures drawn and embedded at a time: 12 MB of pixels, not the whole 240 MB


def bundled_cohort(models: Models) -> CohortSet:
    """The bundled pictures' embeddings, from the project cache or computed into it."""
    bundled = bundled_version()

    def compute() -> Arrays:
        rows, names = [], []
        pictures = iter(bundled_pictures())
        while chunk := list(itertools.islice(pictures, _CHUNK)):
            rows.append(models.image_embedder.embed([picture.image for picture in chunk]))
            names += [picture.name for picture in chunk]
        return {"rows": np.concatenate(rows), "names": np.asarray(names, np.str_)}

    store = EmbeddingCache.default().scoped({"visual": models.image_embedder.name})
    key = hashlib.sha256(bundled.encode()).hexdigest()
    arrays = store.get_or_compute("cohort-bundled", key, compute)
    names = [str(name) for name in arrays["names"].tolist()]
    return CohortSet(np.asarray(arrays["rows"], np.float32), names, bundled)
