"""Whether two uploads are copies of one clip: the known-footage rule, between two flagged clips.

A viral clip is re-posted hundreds of times across platforms, and each re-post is flagged on
its own; a rights team wants them as one story. Flagged clips carry a footprint, the whole-frame
PDQ hashes of the frames the scorer sampled, and a clip is a copy of another when enough of its
frames match the other's in order: ``footage_match_share`` of them in the longest chain that
runs forward on both sides, within PDQ's own distance. These are the known-footage rule and
its knobs (``match.py``), so stories add no threshold of their own.

Only the whole frame is hashed, so a re-post, a re-encode or a rescale is a copy; a mirrored,
cropped or framed one, or a copy whose sampled frames fall far from the other's on a fast cut,
may start a story of its own: two messages for one clip, never a lost alert.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from monitor.likeness.footage.hashes import HASH_BYTES, MATCH_DISTANCE, MIN_QUALITY, hash_frame
from monitor.likeness.footage.match import longest_forward_chain
from monitor.media.frames import Frame
from monitor.records import FOOTPRINT_MAX

__all__ = ["copy_share", "footprint", "footprint_array", "footprint_hex"]


def footprint(frames: Sequence[Frame]) -> npt.NDArray[np.uint8]:
    """The whole-frame hashes of ``frames`` (rows of 32 bytes, in frame order), leaving out
    frames too flat to mean anything (a fade, a title card), at most ``FOOTPRINT_MAX`` spread
    evenly over the clip."""
    hashed = [hash_frame(frame.image) for frame in frames]
    rows = [row for row, quality in hashed if quality >= MIN_QUALITY]
    if len(rows) > FOOTPRINT_MAX:
        keep = np.linspace(0, len(rows) - 1, FOOTPRINT_MAX).round().astype(int)
        rows = [rows[i] for i in keep]
    return np.stack(rows) if rows else np.zeros((0, HASH_BYTES), np.uint8)


def footprint_hex(hashes: npt.NDArray[np.uint8]) -> list[str]:
    return [bytes(row).hex() for row in hashes]


def footprint_array(hexes: Sequence[str] | bytes) -> npt.NDArray[np.uint8]:
    """Hashes from their hex strings, or from their bytes end to end (as a store keeps them)."""
    raw = bytes.fromhex("".join(hexes)) if not isinstance(hexes, bytes) else hexes
    if len(raw) % HASH_BYTES:
        raise ValueError(f"a footprint is whole {HASH_BYTES}-byte hashes, got {len(raw)} bytes")
    return np.frombuffer(raw, np.uint8).reshape(-1, HASH_BYTES)


def copy_share(clip: npt.NDArray[np.uint8], other: npt.NDArray[np.uint8]) -> float:
    """The share of ``clip``'s frames that match ``other``'s in order (0 when either has none)."""
    if not len(clip) or not len(other):
        return 0.0
    apart = np.bitwise_count(clip[:, None, :] ^ other[None, :, :]).sum(axis=2, dtype=np.int32)
    rows, columns = np.nonzero(apart <= MATCH_DISTANCE)
    chain = longest_forward_chain(list(zip(rows.tolist(), columns.tolist(), strict=True)))
    return len(chain) / len(clip)
