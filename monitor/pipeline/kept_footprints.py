"""Stored copies' footprints kept in memory for decide's story joins.

A join compares a new clip with up to 16,000 stored copies of an entity's active stories;
reading, parsing and stacking their footprints from the file took longer than comparing them,
so they are kept here, stacked per entity in arrays that grow in place, and read from the file
only once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from monitor.likeness.footage.copies import Hashed, Stacked
from monitor.likeness.footage.hashes import HASH_BYTES
from monitor.storage import Connection

__all__ = ["KeptFootprints"]


class KeptFootprints:
    """Stored copies' footprints kept in memory, stacked per entity (``Stacked``) in arrays
    that grow in place: reading, parsing and stacking the 16,000 a join may compare took
    longer than comparing them. A copy's footprint never changes once stored (its row is
    inserted, never rewritten), and only rows read from the file are kept, so what is kept is
    what the file holds. An entity's arrays are built again from its candidates alone once
    most of what they hold is no candidate any more; the entities least recently joined are
    let go past ``size`` copies in all (about 3 KB each)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[str, _Kept] = OrderedDict()

    def of(self, db: Connection, entity: str, clip_keys: list[str]) -> tuple[_Candidates, Stacked]:
        """The footprints of ``entity``'s copies ``clip_keys``, in that order, and stacked."""
        kept = self._kept.pop(entity, None) or _Kept()
        if len(kept.slots) > 2 * len(clip_keys) + _SLACK:
            kept = kept.only(clip_keys)
        self._kept[entity] = kept
        missing = [key for key in clip_keys if key not in kept.slots]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            read = db.execute(
                "SELECT clip_key, query, reference FROM copies "
                f"WHERE entity=? AND clip_key IN ({','.join('?' * len(chunk))})",
                (entity, *chunk),
            )
            for key, query, reference in read:
                kept.add(key, (Hashed.from_bytes(query), Hashed.from_bytes(reference)))
        while sum(len(k.slots) for k in self._kept.values()) > self.size and len(self._kept) > 1:
            self._kept.popitem(last=False)
        return kept.stacked(clip_keys)


_SLACK = 1024
"""Copies an entity's stacked arrays may hold beyond twice its candidates before they are built
again from the candidates alone: a rebuild copies every kept footprint once, so it comes once
per many copies that left, never every join."""


class _Kept:
    """One entity's footprints, each side's hashes end to end in arrays grown by doubling."""

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}
        self.sides = (_Grown(), _Grown())

    def add(self, key: str, sides: tuple[Hashed, Hashed]) -> None:
        self.slots[key] = len(self.slots)
        for grown, side in zip(self.sides, sides, strict=True):
            grown.add(side, self.slots[key])

    def footprint(self, key: str) -> tuple[Hashed, Hashed]:
        query, reference = (grown.side(self.slots[key]) for grown in self.sides)
        return query, reference

    def only(self, keys: list[str]) -> _Kept:
        """The same, holding ``keys`` alone."""
        kept = _Kept()
        for key in keys:
            if key in self.slots:
                kept.add(key, self.footprint(key))
        return kept

    def stacked(self, keys: list[str]) -> tuple[_Candidates, Stacked]:
        position = np.full(len(self.slots), -1, np.intp)
        position[[self.slots[key] for key in keys]] = np.arange(len(keys))
        query, reference = self.sides
        owned = Stacked(
            query.all(), position[query.owned()], reference.all(), position[reference.owned()]
        )
        return _Candidates(self, keys), owned


class _Candidates(Sequence[tuple[Hashed, Hashed]]):
    """Kept footprints in a join's order, each taken out only when asked for (the few whose
    chain is searched), not all 16,000 each join."""

    def __init__(self, kept: _Kept, keys: list[str]) -> None:
        self._kept, self._keys = kept, keys

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> tuple[Hashed, Hashed]: ...
    @overload
    def __getitem__(self, index: slice) -> list[tuple[Hashed, Hashed]]: ...
    def __getitem__(
        self, index: int | slice
    ) -> tuple[Hashed, Hashed] | list[tuple[Hashed, Hashed]]:
        if isinstance(index, slice):
            return [self._kept.footprint(key) for key in self._keys[index]]
        return self._kept.footprint(self._keys[index])


class _Grown:
    """One side of many footprints, end to end: rows ``starts[s]`` to ``starts[s + 1]`` are
    footprint ``s``'s."""

    def __init__(self) -> None:
        self.frames = np.zeros(0, np.uint16)
        self.rows = np.zeros((0, HASH_BYTES), np.uint8)
        self.owner = np.zeros(0, np.intp)
        self.starts = [0]

    def add(self, side: Hashed, slot: int) -> None:
        start, end = self.starts[-1], self.starts[-1] + len(side.rows)
        if end > len(self.rows):
            room = max(end, 2 * len(self.rows), 1024)
            self.frames = np.resize(self.frames, room)
            self.rows = np.resize(self.rows, (room, HASH_BYTES))
            self.owner = np.resize(self.owner, room)
        self.frames[start:end], self.rows[start:end], self.owner[start:end] = (
            side.frames,
            side.rows,
            slot,
        )
        self.starts.append(end)

    def side(self, slot: int) -> Hashed:
        start, end = self.starts[slot], self.starts[slot + 1]
        return Hashed(self.frames[start:end], self.rows[start:end])

    def all(self) -> Hashed:
        return Hashed(self.frames[: self.starts[-1]], self.rows[: self.starts[-1]])

    def owned(self) -> npt.NDArray[np.intp]:
        return self.owner[: self.starts[-1]]
