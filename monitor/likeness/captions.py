"""Caption matching: the weak signal, by name and by meaning.

Uploaders who know a filter exists avoid the name, so a caption that does name an entity says
little on its own, and one that does not says nothing. It may tip a near-threshold picture
match over the line; it never flags a clip by itself (that is the scorer's rule, not this
module's). By name, matching is on whole words after folding case and accents, and hashtags
match the name written without spaces (``#GoGopher``). By meaning, each sentence of the caption
and its hashtags are embedded with the sentence model and compared with the entity's written
descriptions and names (``Entity.sentences``); the similarity that counts as a description is
calibrated per entity against ordinary captions and the other entities' descriptions
(``gallery.calibrate``). The sentence model is English: a caption in another language is read
as well as its English words and shared word pieces allow, which is little.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_PIECES",
    "CaptionMeaning",
    "caption_pieces",
    "everyday_captions",
    "find_alias",
    "nearest_sentences",
    "normalise",
]

_NON_WORD = re.compile(r"[^0-9a-z]+")
_MIN_COMPACT = 4


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, words separated by single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return _NON_WORD.sub(" ", plain).strip()


def find_alias(caption: str | None, names: Iterable[str]) -> str | None:
    """The first of ``names`` that the caption mentions, or None."""
    if not caption:
        return None
    text = f" {normalise(caption)} "
    tokens = set(text.split())
    for name in names:
        wanted = normalise(name)
        if not wanted:
            continue
        if f" {wanted} " in text:
            return name
        compact = wanted.replace(" ", "")
        if len(compact) >= _MIN_COMPACT and compact in tokens:
            return name
    return None


# Captions by meaning -------------------------------------------------------------------------

MAX_PIECES = 16
"""Pieces of one caption embedded: its sentences in order, then its hashtags as words."""
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+|\s*[\n\r|\u2022]+\s*")
_HASHTAG = re.compile(r"#(\w+)", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|_")
_MIN_LETTERS = 3


def caption_pieces(caption: str | None) -> list[str]:
    """What of a caption is compared by meaning: each sentence (hashtags taken out), then the
    hashtags as words (``#PaleCreature`` is "Pale Creature"), at most ``MAX_PIECES``.

    A sentence model reads one idea best: a long caption whose third sentence describes the
    character would be diluted if embedded whole. Pieces with fewer than three letters (an
    emoji, a number) say nothing and are dropped.
    """
    if not caption:
        return []
    tags = [_CAMEL.sub(" ", tag) for tag in _HASHTAG.findall(caption)]
    pieces = [" ".join(part.split()) for part in _SENTENCE_END.split(_HASHTAG.sub(" ", caption))]
    if tags:
        pieces.append(" ".join(tags))
    kept = [p for p in pieces if sum(ch.isalpha() for ch in p) >= _MIN_LETTERS]
    return list(dict.fromkeys(kept))[:MAX_PIECES]


@functools.cache
def everyday_captions() -> tuple[str, ...]:
    """The bundled ordinary captions that caption thresholds are calibrated against
    (``data/everyday_captions.txt``; evaluation captions are kept apart in ``bench/captions``)."""
    text = (
        resources.files("monitor.likeness")
        .joinpath("data/everyday_captions.txt")
        .read_text(encoding="utf-8")
    )
    lines = (line.strip() for line in text.splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


@dataclass(frozen=True)
class CaptionMeaning:
    """The piece of a caption nearest in meaning to one of an entity's sentences."""

    score: float
    threshold: float
    piece: str
    sentence: str

    @property
    def matched(self) -> bool:
        return self.score >= self.threshold


def nearest_sentences(
    pieces: npt.NDArray[np.float32], sentences: npt.NDArray[np.float32]
) -> tuple[float, int, int]:
    """The best cosine between a caption's pieces and an entity's sentences (unit rows), and
    which piece and which sentence gave it."""
    similarity = pieces @ sentences.T
    piece, sentence = np.unravel_index(int(np.argmax(similarity)), similarity.shape)
    return float(similarity[piece, sentence]), int(piece), int(sentence)
