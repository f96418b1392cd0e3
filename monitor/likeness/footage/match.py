"""Whether a clip re-uploads a reference clip: enough of its frames match one reference, in order.

One frame matching is not a re-upload (two films can share a black title card, a logo, a sky),
so matching follows vPDQ: for each reference clip, the share of the query's frames that match
it and the share of the reference they cover. Matches must also run forward in time on both
sides (the longest chain of frame pairs whose query and reference times both increase), which
a slowed-down or trimmed copy keeps and a collage of unrelated hits does not.

The gate is the query share (``footage_match_share``); the reference share is reported, and
gated only when ``footage_reference_share`` is set, because most re-uploads are excerpts: a
30-second cut of a two-minute trailer covers a quarter of it and is still a copy.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from monitor.likeness.footage.hashes import HASH_BYTES, FrameHashes, hash_query
from monitor.likeness.footage.index import HashIndex, InvertedLayout
from monitor.media.frames import Frame

__all__ = [
    "FootageClip",
    "FootageIndex",
    "FootageMatch",
    "TimeRange",
    "longest_forward_chain",
    "query_hashes",
]

RANGE_GAP_S = 2.0
"""Matched frames further apart than this (on either side) start a new time range."""


@dataclass(frozen=True)
class FootageClip:
    """One reference clip: whose footage it is, and the file it came from (gallery-relative)."""

    entity_id: str
    reference: str
    duration: float
    frames: int


@dataclass(frozen=True)
class TimeRange:
    """Seconds ``start``..``end`` of the query clip show ``reference_start``..``reference_end``."""

    start: float
    end: float
    reference_start: float
    reference_end: float


@dataclass(frozen=True)
class FootageMatch:
    entity_id: str
    reference: str
    query_share: float
    reference_share: float
    ranges: tuple[TimeRange, ...]
    distance: int
    view: str


@dataclass
class FootageIndex:
    """Every hash of every reference clip; row ``i`` is frame ``frame[i]`` of ``clips[clip[i]]``."""

    clips: list[FootageClip]
    hashes: npt.NDArray[np.uint8]
    quality: npt.NDArray[np.uint8]
    clip: npt.NDArray[np.int32]
    frame: npt.NDArray[np.int32]
    time: npt.NDArray[np.float32]
    layout: InvertedLayout | None = None
    """The inverted file's layout, as saved with the gallery (``inverted_layout``)."""

    @classmethod
    def empty(cls) -> FootageIndex:
        return cls(
            clips=[],
            hashes=np.zeros((0, HASH_BYTES), np.uint8),
            quality=np.zeros(0, np.uint8),
            clip=np.zeros(0, np.int32),
            frame=np.zeros(0, np.int32),
            time=np.zeros(0, np.float32),
        )

    def add_hashes(self, clip: FootageClip, times: Sequence[float], hashes: FrameHashes) -> None:
        """Add hashes made earlier; ``times[f]`` is the time of the clip's frame ``f``."""
        keep = hashes.usable
        number = len(self.clips)
        self.clips.append(clip)
        self.hashes = np.concatenate([self.hashes, hashes.hashes[keep]])
        self.quality = np.concatenate([self.quality, hashes.quality[keep]])
        self.clip = np.concatenate([self.clip, np.full(int(keep.sum()), number, np.int32)])
        self.frame = np.concatenate([self.frame, hashes.frames[keep]])
        times_kept = np.asarray([times[i] for i in hashes.frames[keep]], np.float32)
        self.time = np.concatenate([self.time, times_kept])
        self.layout = None
        self.__dict__.pop("_index", None)

    def __len__(self) -> int:
        return len(self.hashes)

    @cached_property
    def _index(self) -> HashIndex:
        return HashIndex(self.hashes, layout=self.layout)

    def inverted_layout(self) -> InvertedLayout | None:
        """The layout to save with these hashes: None while they are few enough to be
        searched exactly; computing it is most of the cost of building a large index."""
        return self._index.layout

    def match_many(
        self,
        clips: Sequence[Sequence[Frame]],
        min_share: float,
        min_reference_share: float = 0.0,
        *,
        hashed: Sequence[FrameHashes] | None = None,
    ) -> list[list[FootageMatch]]:
        """The references each clip re-uploads, best first; one index search for all clips.

        ``hashed`` is ``query_hashes(clips)`` when the caller already has it (one hashing
        serves several indexes).
        """
        if hashed is None:
            hashed = query_hashes(clips)
        if not hashed or not self.clips:
            return [[] for _ in clips]
        owners = np.concatenate([np.full(len(h), i, np.int32) for i, h in enumerate(hashed)])
        usable = np.concatenate([h.usable for h in hashed])
        everything = np.concatenate([h.hashes for h in hashed])
        query_rows = np.flatnonzero(usable)
        found = self._index.search(everything[query_rows])
        results: list[list[FootageMatch]] = []
        offsets = np.cumsum([0, *(len(h) for h in hashed)])
        for position, (frames, hashes) in enumerate(zip(clips, hashed, strict=True)):
            in_clip = owners[query_rows[found.queries]] == position
            local = query_rows[found.queries[in_clip]] - offsets[position]
            matches = self._clip_matches(
                frames, hashes, local, found.rows[in_clip], found.distances[in_clip]
            )
            results.append(
                sorted(
                    (
                        m
                        for m in matches
                        if m.query_share >= min_share and m.reference_share >= min_reference_share
                    ),
                    key=lambda m: (-m.query_share, -m.reference_share, m.reference),
                )
            )
        return results

    def _clip_matches(
        self,
        frames: Sequence[Frame],
        hashes: FrameHashes,
        local: npt.NDArray[np.int64],
        rows: npt.NDArray[np.int64],
        distances: npt.NDArray[np.int32],
    ) -> list[FootageMatch]:
        usable_frames = len(set(hashes.frames[hashes.usable].tolist()))
        owners = self.clip[rows]
        out = []
        for number in np.unique(owners).tolist():
            mine = owners == number
            # Best (smallest distance) pair per (query frame, reference frame).
            best: dict[tuple[int, int], tuple[int, str, int]] = {}
            for row, ref_row, distance in zip(
                local[mine].tolist(), rows[mine].tolist(), distances[mine].tolist(), strict=True
            ):
                key = (int(hashes.frames[row]), int(self.frame[ref_row]))
                if key not in best or distance < best[key][0]:
                    best[key] = (distance, hashes.views[row], ref_row)
            chain = longest_forward_chain(list(best))
            if len(chain) < min(2, usable_frames):
                continue
            clip = self.clips[number]
            pairs = [(frames[q].time, float(self.time[best[q, r][2]])) for q, r in chain]
            period = clip.duration / max(clip.frames, 1)
            covered = pairs[-1][1] - pairs[0][1] + period
            distance, view, _ = min(best[pair] for pair in chain)
            out.append(
                FootageMatch(
                    entity_id=clip.entity_id,
                    reference=clip.reference,
                    query_share=round(len(chain) / max(usable_frames, 1), 4),
                    reference_share=round(min(1.0, covered / max(clip.duration, 1e-6)), 4),
                    ranges=_ranges(pairs),
                    distance=distance,
                    view=view,
                )
            )
        return out


def query_hashes(clips: Sequence[Sequence[Frame]]) -> list[FrameHashes]:
    """The query-side hashes of each clip, as ``FootageIndex.match_many`` searches them."""
    return [hash_query(frames) for frames in clips]


def longest_forward_chain(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The longest run of (query frame, reference frame) pairs with the query frame strictly
    and the reference frame weakly increasing (a still shot, or a slowed-down copy, maps two
    query frames onto one kept reference hash), in O(n log n): patience sorting on the
    reference frame, with each query frame's pairs taken latest reference first so that no
    two of them can both join a run."""
    ordered = sorted(set(pairs), key=lambda p: (p[0], -p[1]))
    tails: list[int] = []  # tails[k]: reference frame ending the best run of length k + 1
    ends: list[int] = []  # ends[k]: index in ordered of that pair
    before = [-1] * len(ordered)
    for i, (_, r) in enumerate(ordered):
        k = bisect.bisect_right(tails, r)
        if k == len(tails):
            tails.append(r)
            ends.append(i)
        else:
            tails[k], ends[k] = r, i
        before[i] = ends[k - 1] if k else -1
    chain: list[tuple[int, int]] = []
    at = ends[-1] if ends else -1
    while at != -1:
        chain.append(ordered[at])
        at = before[at]
    return chain[::-1]


def _ranges(pairs: list[tuple[float, float]]) -> tuple[TimeRange, ...]:
    out: list[TimeRange] = []
    start = 0
    for i in range(1, len(pairs) + 1):
        if (
            i == len(pairs)
            or pairs[i][0] - pairs[i - 1][0] > RANGE_GAP_S
            or pairs[i][1] - pairs[i - 1][1] > RANGE_GAP_S
        ):
            first, last = pairs[start], pairs[i - 1]
            out.append(
                TimeRange(
                    round(first[0], 3), round(last[0], 3), round(first[1], 3), round(last[1], 3)
                )
            )
            start = i
    return tuple(out)
