"""Small galleries are searched exactly; past ``FLAT_LIMIT`` an inverted file answers, never
with a pair further apart than the radius, and finds nearly every true match; rebuilt from
its saved layout it answers as it did, and a layout that does not fit is refused."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from monitor.likeness.footage.hashes import HASH_BYTES, MATCH_DISTANCE
from monitor.likeness.footage.index import FLAT_LIMIT, HashIndex, InvertedLayout


def walks(count: int, seed: int = 0) -> np.ndarray:
    """Shots of 48 hashes, each 9 to 40 bits from the one before, as dense footage keeps."""
    rng = np.random.default_rng(seed)
    shots = -(-count // 48)
    flips = rng.random((shots, 48, 256)) < rng.integers(9, 41, (shots, 48, 1)) / 256
    flips[:, 0] = rng.random((shots, 256)) < 0.5
    bits = np.bitwise_xor.accumulate(flips.astype(np.uint8), axis=1).reshape(-1, 256)[:count]
    return np.packbits(bits, axis=1)


def nudged(stored: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    sources = rng.integers(0, len(stored), count)
    flip = np.argsort(rng.random((count, 256)), axis=1) < rng.integers(0, 32, (count, 1))
    bits = np.unpackbits(stored[sources], axis=1) ^ flip.astype(np.uint8)
    return np.packbits(bits, axis=1), sources


def pairs(index: HashIndex, queries: np.ndarray) -> set[tuple[int, int]]:
    found = index.search(queries)
    assert (found.distances <= MATCH_DISTANCE).all()
    return set(zip(found.queries.tolist(), found.rows.tolist(), strict=True))


def test_a_gallery_up_to_the_limit_is_searched_exactly_and_a_larger_one_is_not() -> None:
    stored = walks(5_000)
    assert HashIndex(stored).exact and len(stored) < FLAT_LIMIT
    assert HashIndex(stored, flat_limit=len(stored)).exact
    assert not HashIndex(stored, flat_limit=len(stored) - 1).exact


def test_an_inverted_file_finds_nearly_every_true_match_and_nothing_false() -> None:
    stored = walks(100_000)
    queries, sources = nudged(stored, 400)
    exact = pairs(HashIndex(stored), queries)
    inverted = HashIndex(stored, flat_limit=10_000)
    assert not inverted.exact and len(inverted) == len(stored)
    approximate = pairs(inverted, queries)
    assert approximate <= exact
    assert all((i, int(s)) in exact for i, s in enumerate(sources))
    found = np.mean([(i, int(s)) in approximate for i, s in enumerate(sources)])
    assert found >= 0.9


def test_an_empty_index_and_an_empty_batch_find_nothing() -> None:
    empty = HashIndex(np.zeros((0, HASH_BYTES), np.uint8))
    assert empty.search(walks(3)).rows.size == 0
    assert HashIndex(walks(10)).search(np.zeros((0, HASH_BYTES), np.uint8)).rows.size == 0


def test_an_inverted_file_rebuilt_from_its_saved_layout_answers_as_the_first() -> None:
    """The layout is what a gallery saves: loading it skips assigning every hash again."""
    stored = walks(20_000)
    first = HashIndex(stored, flat_limit=1_000)
    assert first.layout is not None and len(first.layout.lists) == len(stored)
    saved = InvertedLayout(first.layout.centres.copy(), first.layout.lists.copy())
    again = HashIndex(stored, flat_limit=1_000, layout=saved)
    queries, _ = nudged(stored, 300)
    assert pairs(again, queries) == pairs(first, queries)
    assert HashIndex(stored).layout is None, "an exact index has no layout to save"


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda c, lists: (c, lists[:-1]), id="a list short"),
        pytest.param(lambda c, lists: (c, lists + len(c)), id="a list without a centre"),
        pytest.param(lambda c, lists: (c + 10**9, lists), id="a centre not stored"),
        pytest.param(lambda c, lists: (c[:0], lists), id="no centres"),
    ],
)
def test_a_layout_that_does_not_fit_the_hashes_is_refused(
    damage: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> None:
    stored = walks(5_000)
    layout = HashIndex(stored, flat_limit=100).layout
    assert layout is not None
    with pytest.raises(ValueError, match="inverted layout"):
        HashIndex(
            stored, flat_limit=100, layout=InvertedLayout(*damage(layout.centres, layout.lists))
        )
