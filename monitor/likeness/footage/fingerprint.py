"""A clip's fingerprint: the PDQ hashes of its frames, kept so that the clip can be known again.

A dismissed alert must not come back, neither for the same upload nor for a re-upload of the
same file under another URL. Scores cannot promise that (a re-encode moves them), hashes can:
the scorer keeps the fingerprint of every flagged clip beside its evidence thumbnail, and a
dismissal files it in the gallery folder (``negatives/dismissed/<entity_id>/``), where the
build turns it into an index of clips that must not flag that entity again.

The file is JSON a person can read: what the clip was, then each hash with its frame time.
It is hashed like reference footage (``hash_reference``: the same views, a hash kept where it
moved), so a query matches it with the same views and the same rule as known footage. Like
reference footage it is made from every frame of the clip (``fingerprint_file``): a copy's frames
are sampled at other times than the flagged clip's were, and on a moving camera the nearest of a
few sampled frames is further from them than a copy's own re-encode. ``fingerprint`` (the
sampled frames only) is what is left when the clip's file cannot be read a second time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.errors import GalleryFormatError
from monitor.likeness.footage.hashes import HASH_BYTES, FrameHashes, hash_reference
from monitor.likeness.footage.match import FootageClip
from monitor.media import DecodeLimits, load_every_frame
from monitor.media.frames import Frame

__all__ = ["FINGERPRINT_SUFFIX", "Fingerprint", "fingerprint", "fingerprint_file"]

FINGERPRINT_SUFFIX = ".pdq.json"
_FORMAT = "likeness-monitor/fingerprint-1"


@dataclass(frozen=True)
class Fingerprint:
    """Hashes of a clip's frames (row ``i`` is of the frame at ``times[hashes.frames[i]]``)."""

    hashes: FrameHashes
    times: tuple[float, ...]
    about: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return self.times[-1] - self.times[0] if self.times else 0.0

    def footage_clip(self, entity_id: str, reference: str) -> FootageClip:
        """This clip as an entry of a ``FootageIndex`` owned by ``entity_id``."""
        period = self.duration / max(len(self.times) - 1, 1)
        return FootageClip(entity_id, reference, round(self.duration + period, 3), len(self.times))

    def with_about(self, **about: str) -> Fingerprint:
        return Fingerprint(self.hashes, self.times, {**self.about, **about})

    def to_json(self) -> str:
        document: dict[str, Any] = {
            "format": _FORMAT,
            "about": self.about,
            "times": [round(t, 3) for t in self.times],
            "hashes": [
                {
                    "frame": int(frame),
                    "view": view,
                    "quality": int(quality),
                    "pdq": row.tobytes().hex(),
                }
                for row, quality, frame, view in zip(
                    self.hashes.hashes,
                    self.hashes.quality,
                    self.hashes.frames,
                    self.hashes.views,
                    strict=True,
                )
            ],
        }
        return json.dumps(document, indent=1) + "\n"

    def save(self, path: Path) -> None:
        """Write atomically: a reader never sees half a fingerprint."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        partial.write_text(self.to_json())
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> Fingerprint:
        """Raises ``GalleryFormatError`` naming the file when it is not a fingerprint."""
        try:
            document = json.loads(path.read_text())
            if document.get("format") != _FORMAT:
                raise ValueError(f"format {document.get('format')!r}, expected {_FORMAT!r}")
            times = tuple(float(t) for t in document["times"])
            rows = document["hashes"]
            hashes = np.asarray(
                [np.frombuffer(bytes.fromhex(row["pdq"]), np.uint8) for row in rows], np.uint8
            ).reshape(-1, HASH_BYTES)
            frames = np.asarray([int(row["frame"]) for row in rows], np.int32)
            if len(frames) and (frames.min() < 0 or frames.max() >= len(times)):
                raise ValueError("a hash names a frame the fingerprint does not have")
            return cls(
                FrameHashes(
                    hashes=hashes,
                    quality=np.asarray([int(row["quality"]) for row in rows], np.uint8),
                    frames=frames,
                    views=tuple(str(row["view"]) for row in rows),
                ),
                times,
                {str(k): str(v) for k, v in document.get("about", {}).items()},
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise GalleryFormatError(f"{path}: not a clip fingerprint: {exc}") from None


def fingerprint(frames: Iterable[Frame]) -> Fingerprint:
    """The fingerprint of these frames (about 8 ms a frame on one core)."""
    hashed = hash_reference(frames)
    return Fingerprint(hashed.hashes, tuple(hashed.times))


def fingerprint_file(path: Path, limits: DecodeLimits) -> Fingerprint:
    """The fingerprint of every frame of the media at ``path``, up to ``limits.max_frames``
    (the errors are ``load_every_frame``'s)."""
    return fingerprint(load_every_frame(path, limits))
