"""What a gallery build computed for each file, kept so that the next build computes only what
changed.

A rights team adds a reference, the review loop files a dismissal: either way a rebuild from
scratch would run every reference, negative and footage file through the models again, which
for a real gallery takes minutes on a CPU and would make the review loop's lesson wait. The
results depend only on the file's bytes, what was done with it (enrolled as an actor or a
character, embedded as a negative, hashed as footage) and the models and settings, so they are
kept under a key made of exactly those; a build with the cache gives the same gallery, and the
same version, as one without it.

Entries are ``.npz`` files under the project cache folder (``LIKENESS_MONITOR_CACHE``); a
missing, unreadable or stale entry is computed again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from monitor.assets import cache_dir
from monitor.likeness.settings import LikenessSettings
from monitor.media.settings import DecodeSettings

__all__ = ["Arrays", "CacheStats", "EmbeddingCache"]

log = logging.getLogger(__name__)

Arrays = dict[str, npt.NDArray[np.generic]]


@dataclass
class CacheStats:
    """Files taken from the cache, and files computed, over every build that used it."""

    hits: int = 0
    misses: int = 0


class EmbeddingCache:
    """Per-file build results for one set of models and settings, in ``root``."""

    def __init__(self, root: Path, stats: CacheStats | None = None) -> None:
        self.root = root
        self.stats = stats or CacheStats()

    @classmethod
    def default(cls) -> EmbeddingCache:
        return cls(cache_dir() / "gallery-files")

    def scoped(
        self,
        models: Mapping[str, str],
        settings: LikenessSettings | None = None,
        decode: DecodeSettings | None = None,
    ) -> EmbeddingCache:
        """The part of the cache for these models and settings (``device`` aside); settings
        left out are ones the cached arrays do not depend on, or that the models' names
        already carry (a 16-bit visual precision)."""
        digest = hashlib.sha256(json.dumps(dict(models), sort_keys=True).encode())
        if settings is not None:
            digest.update(
                settings.model_dump_json(
                    exclude={"device", "batch_size", "visual_runtime", "visual_precision"}
                ).encode()
            )
        if decode is not None:
            digest.update(decode.model_dump_json().encode())
        return EmbeddingCache(self.root / digest.hexdigest()[:24], self.stats)

    def get_or_compute(
        self, purpose: str, file_digest: str, compute: Callable[[], Arrays]
    ) -> Arrays:
        """``compute()``'s arrays for the file whose sha256 is ``file_digest``, used for
        ``purpose``, from the cache if there."""
        key = hashlib.sha256(f"{purpose}\0{file_digest}".encode()).hexdigest()
        entry = self.root / key[:2] / f"{key}.npz"
        if entry.is_file():
            try:
                with np.load(entry, allow_pickle=False) as stored:
                    arrays: Arrays = {name: stored[name] for name in stored.files}
                self.stats.hits += 1
                return arrays
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                log.warning("ignoring unreadable cache entry %s: %s", entry, exc)
        self.stats.misses += 1
        arrays = compute()
        self._store(entry, arrays)
        return arrays

    def _store(self, entry: Path, arrays: Arrays) -> None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=entry.parent, suffix=".npz", delete=False) as out:
                np.savez(out, **arrays)  # type: ignore[arg-type]
            os.replace(out.name, entry)
        except OSError as exc:  # a read-only cache slows builds down, nothing more
            log.warning("cannot write gallery cache entry %s: %s", entry, exc)
