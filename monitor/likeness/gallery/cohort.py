"""The cohort as a gallery's models see it: the bundled pictures and the team's ``cohort/``.

The bundled cohort is the same for every gallery, so its embeddings are computed once per
models and settings and kept in the project cache, whichever cache (or none) the build was given
for its own files (a thousand pictures through a CNN is a minute of CPU that no
gallery should pay twice). Each bundled picture is embedded whole, as a reference is: a
member stands for a character in general.

The team's files go through the build's own per-file path, and are embedded whole and in
every region, as a query is: a team files a look-alike because it keeps being flagged, and
a query's best view is often a crop (the look-alike's head, say), which must find that
look-alike's own crop in the cohort rather than only the whole picture. Evidence names the
file whichever of its views was nearest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from monitor.config import DecodeSettings, LikenessSettings
from monitor.errors import CohortError, MediaError
from monitor.likeness.cohort.bundled import bundled_pictures, bundled_version
from monitor.likeness.embedders.base import Embeddings
from monitor.likeness.features import extract_visual
from monitor.likeness.gallery.cache import Arrays, EmbeddingCache
from monitor.likeness.gallery.store import CohortSet
from monitor.likeness.models import Models
from monitor.media import load_media
from monitor.media.frames import Frame

__all__ = ["embed_cohort"]

TeamFile = Callable[[Path, Callable[[], Arrays]], Arrays]
"""Runs one of the team's cohort files through the build's cache: (path, compute) -> arrays."""


def embed_cohort(
    models: Models,
    settings: LikenessSettings,
    decode: DecodeSettings,
    team_files: list[tuple[str, Path]],
    team_cached: TeamFile,
) -> CohortSet:
    """The bundled cohort plus the team's files (``(name, path)``), embedded whole."""
    bundled = bundled_version()
    store = EmbeddingCache.default().scoped(models.versions, settings, decode)

    def compute_bundled() -> Arrays:
        names, frames = [], []
        for picture in bundled_pictures():
            names.append(picture.name)
            frames.append(Frame(picture.image))
        rows = extract_visual(models, frames, settings, regions=False).embeddings
        return {"rows": rows, "names": np.asarray(names, np.str_)}

    key = hashlib.sha256(bundled.encode()).hexdigest()
    arrays = store.get_or_compute("cohort-bundled", key, compute_bundled)
    rows: list[Embeddings] = [np.asarray(arrays["rows"], np.float32)]
    names: list[str] = [str(name) for name in arrays["names"].tolist()]
    for name, path in team_files:

        def compute(path: Path = path) -> Arrays:
            try:
                frames = load_media(path, decode.limits, even_frames=decode.even_frames)
            except MediaError as exc:
                raise CohortError(f"cohort file {path}: {exc}") from None
            return {"rows": extract_visual(models, frames, settings).embeddings}

        embedded = np.asarray(team_cached(path, compute)["rows"], np.float32)
        rows.append(embedded)
        names.extend([name] * len(embedded))
    return CohortSet(np.concatenate(rows).astype(np.float32), names, bundled)
