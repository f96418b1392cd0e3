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

Decide compares a new clip with up to 16,000 stored copies (``stories.py``); ``best_copy``
finds the one it copies best with the Hamming distances to all of them computed at once, and
runs the rule itself (``copy_share``, the reference it must agree with) only on the few whose
matched frames could reach the share.
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

__all__ = ["FOOTPRINT_FRAMES", "Hashed", "Stacked", "best_copy", "copy_share", "footprint"]

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


PAIRS_PER_BLOCK = 1 << 16
"""Hash pairs compared in one numpy step: enough to leave no Python loop to speak of, few
enough that each step's arrays stay in the processor's cache (measured: 4x the pairs a step
is 1.5x as slow a pair)."""
COLUMNS_PER_BLOCK = 1 << 13


@dataclass(frozen=True)
class Stacked:
    """Many footprints as one array a side, to compare a clip with all of them at once: row
    ``i`` of ``query`` is of footprint ``query_owner[i]``, -1 for a row of none (kept between
    calls for a footprint that is no candidate now)."""

    query: Hashed
    query_owner: npt.NDArray[np.intp]
    reference: Hashed
    reference_owner: npt.NDArray[np.intp]

    @classmethod
    def of(cls, footprints: Sequence[tuple[Hashed, Hashed]]) -> Stacked:
        return cls(
            *_stacked([each[0] for each in footprints]),
            *_stacked([each[1] for each in footprints]),
        )


def best_copy(
    clip: tuple[Hashed, Hashed],
    candidates: Sequence[tuple[Hashed, Hashed]],
    share: float,
    stacked: Stacked | None = None,
) -> int | None:
    """The index of the candidate ``clip`` copies best, at ``share`` or more (the first of
    equal ones): what ``copy_share`` over every candidate in turn finds. A candidate can only
    pass when enough distinct query frames have a match at all (a chain runs through distinct
    query frames), so the chain search runs only for those; the rest never could. ``stacked``:
    the candidates as ``Stacked.of`` stacks them, or kept stacked by the caller between calls
    (any row order, owners the candidates' indices)."""
    best: tuple[float, int] | None = None
    for index in _possible(clip, candidates, share, stacked).tolist():
        found = copy_share(clip, candidates[index])
        if found >= share and (best is None or found > best[0]):
            best = (found, index)
    return None if best is None else best[1]


def _possible(
    clip: tuple[Hashed, Hashed],
    candidates: Sequence[tuple[Hashed, Hashed]],
    share: float,
    stacked: Stacked | None,
) -> npt.NDArray[np.intp]:
    """Candidates whose share could reach ``share`` one way round or the other, in order."""
    count = len(candidates)
    if share <= 0:  # every candidate passes with any share: there is nothing to leave out
        return np.arange(count)
    if stacked is None:
        stacked = Stacked.of(candidates)
    queries, query_owner = stacked.query, stacked.query_owner
    references, reference_owner = stacked.reference, stacked.reference_owner
    # The clip's query against every candidate's reference: one query, its frames for all.
    rows, columns = _close(clip[0].rows, references.rows)
    forward = _frames_per_owner(reference_owner[columns], clip[0].frames[rows], count)
    forward_frames = np.full(count, len(np.unique(clip[0].frames)))
    # Every candidate's query against the clip's reference: each candidate its own frames.
    rows, _ = _close(queries.rows, clip[1].rows)
    backward = _frames_per_owner(query_owner[rows], queries.frames[rows], count)
    backward_frames = np.zeros(count, np.int64)  # counted only where a frame matched at all
    for index in np.flatnonzero(backward).tolist():
        backward_frames[index] = len(np.unique(candidates[index][0].frames))
    could = _could_pass(forward, forward_frames, share) | _could_pass(
        backward, backward_frames, share
    )
    return np.flatnonzero(could)


def _could_pass(
    matched: npt.NDArray[np.int64], frames: npt.NDArray[np.int64], share: float
) -> npt.NDArray[np.bool_]:
    """``found_share``'s test with the chain's length bounded by the frames matched."""
    return (
        (frames > 0)
        & (matched >= np.minimum(2, frames))
        & (matched / np.maximum(frames, 1) >= share)
    )


def _stacked(sides: list[Hashed]) -> tuple[Hashed, npt.NDArray[np.intp]]:
    """All sides' hashes as one, with the index of the side each row came from."""
    sizes = [len(side.rows) for side in sides]
    owner = np.repeat(np.arange(len(sides)), sizes)
    if not sum(sizes):
        return Hashed(np.zeros(0, np.uint16), np.zeros((0, HASH_BYTES), np.uint8)), owner
    frames = np.concatenate([side.frames for side in sides])
    rows = np.concatenate([side.rows for side in sides])
    return Hashed(frames, rows), owner


def _frames_per_owner(
    owner: npt.NDArray[np.intp], frames: npt.NDArray[np.uint16], count: int
) -> npt.NDArray[np.int64]:
    """How many distinct frames each of ``count`` owners has among ``(owner, frame)``, rows
    of no owner (-1) left out."""
    owner, frames = owner[owner >= 0], frames[owner >= 0]
    distinct = np.unique(owner.astype(np.int64) << 16 | frames.astype(np.int64))
    return np.bincount(distinct >> 16, minlength=count).astype(np.int64)


def _close(
    a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Every ``(i, j)`` with ``a[i]`` and ``b[j]`` within ``MATCH_DISTANCE`` bits. Each hash is
    four 64-bit words; the first two alone must already be within the distance, which leaves
    almost no pair of unrelated hashes (their 128 bits sit about 64 apart, the threshold is
    31), so the other two are counted only for the pairs that are."""
    words_a, words_b = _words(a), _words(b)
    columns = max(1, min(len(b), COLUMNS_PER_BLOCK))
    rows = max(1, PAIRS_PER_BLOCK // columns)
    found: list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]] = []
    for top in range(0, len(a), rows):
        for left in range(0, len(b), columns):
            block_a = words_a[top : top + rows, None, :]
            block_b = words_b[None, left : left + columns, :]
            apart = np.bitwise_count(block_a[..., 0] ^ block_b[..., 0])
            apart += np.bitwise_count(block_a[..., 1] ^ block_b[..., 1])
            near = apart <= MATCH_DISTANCE
            if not near.any():  # as good as always: nonzero alone costs as much as the rest
                continue
            i, j = np.nonzero(near)
            whole = apart[i, j].astype(np.int32)
            for word in (2, 3):
                whole += np.bitwise_count(block_a[i, 0, word] ^ block_b[0, j, word])
            keep = whole <= MATCH_DISTANCE
            found.append((i[keep] + top, j[keep] + left))
    if not found:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


def _words(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """Hashes as four 64-bit words each, no copy where the rows are contiguous already."""
    return np.ascontiguousarray(rows).view(np.uint64)
