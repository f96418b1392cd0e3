"""Which reference frames lie within PDQ's match distance of a batch of query hashes.

Exact search (faiss ``IndexBinaryFlat``: SIMD popcount over every stored hash) up to
``FLAT_LIMIT`` stored hashes, an inverted file above it. A gallery of a team's own footage (a
few films, hashed at every frame that moved: ``bench.footage`` prints the count per hour)
stays under the limit and is searched exactly. A catalogue of thousands of films is not: its
hashes number in the hundreds of millions, and a flat search's cost grows with every one of
them. ``bench.footage_index`` measured the candidates on the 2-core dev machine, with
synthetic hashes shaped like dense footage and queries 0 to 31 bits from a stored hash
(README, "Known footage"): the inverted file (``IndexBinaryIVF``, ``NPROBE`` lists
probed) finds the true match of nearly every query at a small,
near-constant cost per hash; multi-index hashing exact at radius 31 (16 tables of 16 bits,
one flip) scans so many candidates that it is slower than the flat search and stores an id per
table per hash; the flat search is exact but linear.

Building the inverted file costs a comparison of every stored hash with every list centre
(minutes at tens of millions of hashes), and a scorer loads the gallery at every start and
every rebuild. So its layout (which hashes are the centres, and each hash's list) is computed
once, when the gallery is built, and saved beside the hashes as two plain arrays; loading puts
each hash straight into its list. Plain arrays rather than faiss's own serialisation: a
gallery is handed between teams, and loading it runs no parser that trusts its input.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np
import numpy.typing as npt

from monitor.likeness.footage.hashes import HASH_BYTES, MATCH_DISTANCE

__all__ = ["FLAT_LIMIT", "HashIndex", "HashMatches", "InvertedLayout"]

FLAT_LIMIT = 2_000_000
"""Stored hashes searched exactly; above this an inverted file (its layout saved with the gallery)."""
NPROBE = 64
"""Lists searched per query hash."""


@dataclass(frozen=True)
class HashMatches:
    """Pair ``i``: query row ``queries[i]`` is ``distances[i]`` bits from stored row ``rows[i]``."""

    queries: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    distances: npt.NDArray[np.int32]


@dataclass(frozen=True)
class InvertedLayout:
    """An inverted file's layout over ``n`` stored hashes: row numbers of the hashes that are
    the list centres, and for each stored hash the list it belongs to."""

    centres: npt.NDArray[np.int64]
    lists: npt.NDArray[np.int64]

    @classmethod
    def sampled(cls, stored: npt.NDArray[np.uint8], nprobe: int = NPROBE) -> InvertedLayout:
        """Centres a random sample of ``stored``; each hash in the list of its nearest centre.

        A query hash is compared with every centre, then with every hash in its ``nprobe``
        nearest lists: about ``lists + nprobe * n / lists`` comparisons, least when there
        are ``sqrt(nprobe * n)`` lists. Centres drawn from the hashes themselves find the
        same share of true matches as k-means centres (0.947 and 0.948 at a million hashes,
        ``nprobe`` 64) and cost nothing to train.
        """
        count = 1 << max(4, round(np.log2(np.sqrt(nprobe * max(len(stored), 1)))))
        count = min(count, len(stored))
        centres = np.sort(np.random.default_rng(0).choice(len(stored), count, replace=False))
        flat = faiss.IndexBinaryFlat(HASH_BYTES * 8)
        flat.add(np.ascontiguousarray(stored[centres]))
        _, nearest = flat.search(stored, 1)
        return cls(centres.astype(np.int64), np.asarray(nearest, np.int64).ravel())

    def check(self, stored: int) -> None:
        """Raises ``ValueError`` unless this is a layout over ``stored`` hashes."""
        centres, lists = self.centres, self.lists
        if centres.ndim != 1 or lists.shape != (stored,) or not len(centres):
            raise ValueError(f"inverted layout of {lists.shape} lists for {stored} hashes")
        if centres.min() < 0 or centres.max() >= stored or lists.min() < 0:
            raise ValueError("inverted layout names a hash that is not stored")
        if lists.max() >= len(centres):
            raise ValueError("inverted layout names a list that has no centre")


class HashIndex:
    """Stored 256-bit hashes, searched for every hash of a batch in one call.

    ``layout`` is the inverted file's, when there is one: given (as saved with a gallery), it
    is used instead of assigning every hash again; else it is computed, and kept here.
    """

    def __init__(
        self,
        hashes: npt.NDArray[np.uint8],
        *,
        flat_limit: int | None = None,
        layout: InvertedLayout | None = None,
    ) -> None:
        if hashes.ndim != 2 or hashes.shape[1] != HASH_BYTES:
            raise ValueError(f"expected (n, {HASH_BYTES}) uint8 hashes, got {hashes.shape}")
        stored = np.ascontiguousarray(hashes, np.uint8)
        self._index: faiss.IndexBinary
        self.layout: InvertedLayout | None = None
        if len(stored) > (FLAT_LIMIT if flat_limit is None else flat_limit):
            self.layout = layout or InvertedLayout.sampled(stored)
            self._index = self.inverted(stored, layout=self.layout)
        else:
            self._index = faiss.IndexBinaryFlat(HASH_BYTES * 8)
            if len(stored):
                self._index.add(stored)

    @staticmethod
    def inverted(
        stored: npt.NDArray[np.uint8],
        nprobe: int = NPROBE,
        *,
        layout: InvertedLayout | None = None,
    ) -> faiss.IndexBinaryIVF:
        """An inverted file over ``stored`` with ``layout`` (``InvertedLayout.sampled``'s when
        not given); raises ``ValueError`` when the layout is not one over ``stored``."""
        stored = np.ascontiguousarray(stored, np.uint8)
        layout = layout or InvertedLayout.sampled(stored, nprobe)
        layout.check(len(stored))
        centres = faiss.IndexBinaryFlat(HASH_BYTES * 8)
        centres.add(np.ascontiguousarray(stored[layout.centres]))
        index = faiss.IndexBinaryIVF(centres, HASH_BYTES * 8, len(layout.centres))
        index.is_trained = True
        index.own_fields = True
        centres.this.disown()  # type: ignore[attr-defined]  # the inverted file frees it
        ids = np.arange(len(stored), dtype=np.int64)
        lists = np.ascontiguousarray(layout.lists, np.int64)
        index.add_core(  # type: ignore[attr-defined]  # not in faiss's stubs
            len(stored), faiss.swig_ptr(stored), faiss.swig_ptr(ids), faiss.swig_ptr(lists)
        )
        index.nprobe = nprobe
        return index

    @property
    def exact(self) -> bool:
        return isinstance(self._index, faiss.IndexBinaryFlat)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def search(
        self, queries: npt.NDArray[np.uint8], max_distance: int = MATCH_DISTANCE
    ) -> HashMatches:
        """Every (query, stored) pair at most ``max_distance`` bits apart."""
        if not len(queries) or not len(self):
            empty = np.zeros(0, np.int64)
            return HashMatches(empty, empty, np.zeros(0, np.int32))
        # faiss's radius is exclusive.
        limits, distances, rows = self._index.range_search(
            np.ascontiguousarray(queries, np.uint8), max_distance + 1
        )
        counts: npt.NDArray[np.int64] = np.diff(np.asarray(limits, np.int64)).astype(np.int64)
        return HashMatches(
            queries=np.repeat(np.arange(len(queries), dtype=np.int64), counts),
            rows=np.asarray(rows, np.int64),
            distances=np.asarray(distances, np.int32),
        )
