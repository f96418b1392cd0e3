"""Whether two uploads are copies of one clip: the known-footage rule, between two flagged clips.

A viral clip is re-posted hundreds of times across platforms, and each re-post is flagged on
its own; a rights team wants them as one story. A flagged clip carries a footprint: its sampled
frames hashed as the known-footage rule hashes a query (every view, mirrored too: a picture
band, an inset, the picture under a caption bar) and a reference (whole, cropped, a phone's
band). A clip copies another when ``footage_match_share`` of its frames match the other's
reference hashes in order (the longest chain that runs forward on both sides, within PDQ's own
distance, at least two frames): the known-footage rule and its knobs (``match.py``), so stories
add no threshold of their own. It is tried both ways round, since the first upload seen may be
the cropped one and a later one the original.

Both sides are a few sampled frames, not every frame as reference footage is, so a copy whose
frames fall far from the other's on a fast cut may start a story of its own: two messages for
one clip, never a lost alert (``python -m bench.stories`` measures it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from monitor.likeness.footage.hashes import (
    HASH_BYTES,
    MATCH_DISTANCE,
    FrameHashes,
    hash_query,
    hash_reference,
)
from monitor.likeness.footage.match import longest_forward_chain
from monitor.media.frames import Frame
from monitor.records import FOOTPRINT_MAX, Footprint, FrameHash

__all__ = ["FOOTPRINT_FRAMES", "Hashed", "copy_share", "footprint"]

FOOTPRINT_FRAMES = 16
"""Frames hashed for a footprint, at most, spread evenly over those the scorer sampled."""


@dataclass(frozen=True)
class Hashed:
    """One side of a footprint as arrays: row ``i`` of ``rows`` is of frame ``frames[i]``."""

    frames: npt.NDArray[np.uint16]
    rows: npt.NDArray[np.uint8]

    @classmethod
    def of(cls, hashes: Sequence[FrameHash]) -> Hashed:
        frames = np.asarray([h.frame for h in hashes], np.uint16)
        raw = bytes.fromhex("".join(h.pdq for h in hashes))
        return cls(frames, np.frombuffer(raw, np.uint8).reshape(-1, HASH_BYTES))

    def to_bytes(self) -> bytes:
        """Frames then hashes, end to end, as a store keeps them."""
        return len(self.frames).to_bytes(4, "little") + self.frames.tobytes() + self.rows.tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Hashed:
        count = int.from_bytes(raw[:4], "little")
        if len(raw) != 4 + count * (2 + HASH_BYTES):
            raise ValueError(f"a footprint of {count} hashes cannot take {len(raw)} bytes")
        frames = np.frombuffer(raw, np.uint16, count, 4)
        rows = np.frombuffer(raw, np.uint8, offset=4 + 2 * count).reshape(-1, HASH_BYTES)
        return cls(frames, rows)


def footprint(frames: Sequence[Frame]) -> Footprint:
    """``frames`` (at most ``FOOTPRINT_FRAMES`` of them, spread evenly) hashed both ways,
    leaving out hashes too flat to mean anything (a fade, a title card)."""
    if len(frames) > FOOTPRINT_FRAMES:
        keep = np.linspace(0, len(frames) - 1, FOOTPRINT_FRAMES).round().astype(int)
        frames = [frames[i] for i in keep]
    return Footprint(
        frames=len(frames),
        query=_listed(hash_query(frames)),
        reference=_listed(hash_reference(frames).hashes),
    )


def _listed(hashes: FrameHashes) -> list[FrameHash]:
    usable = np.flatnonzero(hashes.usable)[:FOOTPRINT_MAX]
    return [
        FrameHash(frame=int(hashes.frames[i]), pdq=bytes(hashes.hashes[i]).hex()) for i in usable
    ]


def copy_share(clip: tuple[Hashed, Hashed], other: tuple[Hashed, Hashed]) -> float:
    """How much one of two uploads, each ``(query, reference)``, is made of the other: the
    larger of the two shares (``found_share`` each way round)."""
    return max(found_share(clip[0], other[1]), found_share(other[0], clip[1]))


def found_share(query: Hashed, reference: Hashed) -> float:
    """The share of ``query``'s frames matching ``reference``'s in order (0 without a chain
    of at least two frames, or one when the query has a single frame)."""
    frames = len(set(query.frames.tolist()))
    if not frames or not len(reference.rows):
        return 0.0
    apart = np.bitwise_count(query.rows[:, None, :] ^ reference.rows[None, :, :])
    rows, columns = np.nonzero(apart.sum(axis=2, dtype=np.int32) <= MATCH_DISTANCE)
    pairs = set(zip(query.frames[rows].tolist(), reference.frames[columns].tolist(), strict=True))
    chain = longest_forward_chain(list(pairs))
    if len(chain) < min(2, frames):
        return 0.0
    return len(chain) / frames
