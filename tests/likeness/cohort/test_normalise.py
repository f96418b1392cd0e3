"""A visual score says "more like this entity than like characters in general"."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from monitor.errors import CohortError
from monitor.likeness.cohort.normalise import CohortNormaliser

DIM = 32
RNG = np.random.default_rng(7)


def unit(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    return np.asarray((rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32))


def cartoon(specific: npt.NDArray[np.float64], spread: float = 0.05) -> npt.NDArray[np.float32]:
    """What every cartoon shares (a strong common direction) plus what makes this one itself."""
    common = np.zeros(DIM)
    common[0] = 3.0
    return unit(common + specific + RNG.normal(0, spread, DIM))


def direction(i: int) -> npt.NDArray[np.float64]:
    out = np.zeros(DIM)
    out[i] = 1.0
    return out


MEMBERS = np.stack([cartoon(direction(2 + i % 20) * RNG.uniform(0.5, 1.5)) for i in range(200)])


@pytest.fixture(scope="module")
def normaliser() -> CohortNormaliser:
    return CohortNormaliser(MEMBERS, [f"m{i}" for i in range(len(MEMBERS))])


def test_a_look_alike_that_plain_cosine_confuses_scores_below_the_character(
    normaliser: CohortNormaliser,
) -> None:
    references = np.stack([cartoon(direction(30)) for _ in range(3)])
    drawing = cartoon(direction(30))[None]  # another drawing of the character
    look_alike = cartoon(direction(5))[None]  # a cartoon like many in the cohort
    plain = float((look_alike @ references.T).max())
    assert plain > 0.85  # the raw cosine cannot tell them apart...
    refs = normaliser.transform(references)
    own = normaliser.margins(normaliser.transform(drawing), refs).max()
    other = normaliser.margins(normaliser.transform(look_alike), refs).max()
    assert own > 0.3 > other  # ...the margin over the cohort can


def test_each_view_names_the_cohort_member_it_is_most_like(normaliser: CohortNormaliser) -> None:
    member = 17
    query = normaliser.transform(MEMBERS[member : member + 1])
    found = normaliser.against_cohort(query)
    assert normaliser.names[int(found.nearest[0])] == "m17"
    plain = normaliser.nearest_cosine(MEMBERS[member : member + 1], found)
    assert plain[0] == pytest.approx(float(MEMBERS[member] @ MEMBERS[member]), abs=1e-5)


def test_whitened_rows_are_unit_length_and_empty_input_is_fine(
    normaliser: CohortNormaliser,
) -> None:
    rows = normaliser.transform(unit(RNG.normal(0, 1, (5, DIM))))
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert normaliser.transform(np.zeros((0, DIM), np.float32)).shape == (0, DIM)
    assert normaliser.against_cohort(rows[:0]).baseline.shape == (0,)


def test_a_cohort_too_small_or_without_a_name_per_member_is_refused() -> None:
    with pytest.raises(CohortError, match="at least"):
        CohortNormaliser(unit(RNG.normal(0, 1, (5, DIM))), [str(i) for i in range(5)])
    with pytest.raises(CohortError, match="names"):
        CohortNormaliser(unit(RNG.normal(0, 1, (50, DIM))), ["one"])
