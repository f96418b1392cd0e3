"""Decide's story book: a flagged clip joins the story of the clip it copies (per entity),
once, whatever replays and restarts; the story counts copies by platform and keeps its total
views over time within a bounded history."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from monitor import metrics
from monitor.likeness.footage.copies import Hashed, Stacked, best_copy
from monitor.pipeline import kept_footprints
from monitor.pipeline import stories as book_module
from monitor.pipeline.roles import _publish_stories
from monitor.pipeline.stories import Copy, StoryBook
from monitor.records import STORY_HISTORY_MAX, Footprint, FrameHash, Story
from monitor.storage import Database
from tests.likeness.footage.test_copies import looped

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
rng = np.random.default_rng(11)
VIRAL = rng.integers(0, 256, (9, 32), dtype=np.uint8)
OTHER = rng.integers(0, 256, (9, 32), dtype=np.uint8)


def printed(hashes: np.ndarray) -> Footprint:
    """A footprint of one hash per frame, the same on both sides."""
    listed = [FrameHash(frame=i, pdq=bytes(row).hex()) for i, row in enumerate(hashes)]
    return Footprint(frames=len(hashes), query=listed, reference=listed)


def reencoded(hashes: np.ndarray, bits: int = 6) -> Footprint:
    """The hashes with a few bits flipped in each, as a re-encode moves them."""
    moved = hashes.copy()
    for row in moved:
        for bit in rng.choice(256, bits, replace=False):
            row[bit // 8] ^= 1 << (bit % 8)
    return printed(moved)


StoreAt = Callable[[str], Path | Database]


def book(where: Path | Database, window_s: float = 86_400.0) -> StoryBook:
    return StoryBook(where, match_share=0.3, window_s=window_s)


def copy(
    clip: str,
    hashes: Footprint | None,
    *,
    platform: str = "tiktok",
    entity: str = "ghostface",
    at: datetime = T0,
    views: int | None = 100,
) -> Copy:
    return Copy(
        clip_key=f"{platform}:{clip}",
        entity=entity,
        franchise="Scream",
        kind="character",
        platform=platform,
        footprint=hashes,
        seen_at=at,
        views=views,
    )


def test_copies_of_one_clip_on_two_platforms_are_one_story(state_at: StoreAt) -> None:
    stories = book(state_at("stories"))
    first = stories.join(copy("a", printed(VIRAL), views=1000))
    assert first.copies == 1 and first.starts and first.first_clip == "tiktok:a"
    second = stories.join(copy("b", reencoded(VIRAL), platform="youtube", views=500))
    third = stories.join(copy("c", reencoded(VIRAL), at=T0 + timedelta(minutes=5), views=20))
    assert second.story_id == third.story_id == first.story_id
    assert (second.copy_number, third.copy_number) == (2, 3)
    assert not third.starts
    assert third.copies == 3
    assert third.platforms == {"tiktok": 2, "youtube": 1}
    assert third.views == 1520
    assert third.first_seen == T0


def test_another_clip_or_another_entity_is_another_story(state_at: StoreAt) -> None:
    stories = book(state_at("stories"))
    viral = stories.join(copy("a", printed(VIRAL)))
    other = stories.join(copy("b", printed(OTHER)))
    same_clip_other_entity = stories.join(copy("a", printed(VIRAL), entity="billy"))
    nothing_to_match = stories.join(copy("c", None))
    ids = {viral.story_id, other.story_id, same_clip_other_entity.story_id}
    assert len(ids | {nothing_to_match.story_id}) == 4
    assert all(s.copies == 1 for s in (other, same_clip_other_entity, nothing_to_match))


def test_a_replayed_verdict_finds_the_story_it_joined_even_after_a_restart(
    state_at: StoreAt,
) -> None:
    stories = book(state_at("stories"))
    stories.join(copy("a", printed(VIRAL)))
    joined = stories.join(copy("b", reencoded(VIRAL), platform="youtube"))
    stories.close()
    reopened = book(state_at("stories"))
    again = reopened.join(copy("b", reencoded(VIRAL), platform="youtube"))
    assert (again.story_id, again.copy_number, again.copies) == (joined.story_id, 2, 2)


def test_a_copy_of_a_story_quiet_for_longer_than_the_window_starts_a_new_one(
    state_at: StoreAt,
) -> None:
    stories = book(state_at("stories"), window_s=3600)
    old = stories.join(copy("a", printed(VIRAL)))
    late = stories.join(copy("b", reencoded(VIRAL), at=T0 + timedelta(hours=2)))
    assert late.story_id != old.story_id and late.starts


def test_views_over_time_follow_newer_counts_and_ignore_older_ones(state_at: StoreAt) -> None:
    stories = book(state_at("stories"))
    story = stories.join(copy("a", printed(VIRAL), views=100))
    stories.join(copy("b", reencoded(VIRAL), platform="youtube", at=T0 + timedelta(minutes=1)))
    stories.observe("tiktok:a", T0 + timedelta(minutes=10), 900)
    stories.observe("tiktok:a", T0 + timedelta(minutes=5), 400)  # older, processed late
    now = stories.story(story.story_id)
    assert now is not None
    assert [(p.at - T0, p.views) for p in now.history] == [
        (timedelta(0), 100),
        (timedelta(minutes=1), 200),
        (timedelta(minutes=10), 1000),
    ]
    assert now.views == 1000
    assert stories.story("0" * 20) is None


def test_a_long_history_is_thinned_keeping_its_first_and_last_points(state_at: StoreAt) -> None:
    stories = book(state_at("stories"), window_s=30 * 86_400.0)
    story = stories.join(copy("a", printed(VIRAL), views=0))
    for minute in range(1, 3 * STORY_HISTORY_MAX):
        stories.observe("tiktok:a", T0 + timedelta(minutes=minute), minute * 10)
    kept = stories.story(story.story_id)
    assert kept is not None
    assert len(kept.history) == STORY_HISTORY_MAX
    assert kept.history[0].at == T0
    assert kept.history[-1].views == (3 * STORY_HISTORY_MAX - 1) * 10
    gaps = np.diff([p.at.timestamp() for p in kept.history])
    assert gaps.max() <= 4 * gaps.min(), "points spread over the whole story, not bunched"


def test_the_spread_counts_stories_and_ranks_them_by_views(state_at: StoreAt) -> None:
    stories = book(state_at("stories"), window_s=1e9)
    stories.join(copy("a", printed(VIRAL), views=10))
    stories.join(copy("b", reencoded(VIRAL), platform="youtube", views=20))
    stories.join(copy("c", printed(OTHER), views=1000))
    (spread,) = stories.spread(top=5)
    assert (spread.entity, spread.franchise, spread.kind) == ("ghostface", "Scream", "character")
    assert spread.stories == 2
    assert spread.top == ((1, 1000), (2, 30))


def test_story_ids_are_stable_and_of_the_records_format() -> None:
    assert Story.id_for("tiktok:a", "ghostface") == Story.id_for("tiktok:a", "ghostface")
    assert len(Story.id_for("tiktok:a", "ghostface")) == 20


def _gauges() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for gauge in (metrics.STORIES, metrics.STORY_COPIES, metrics.STORY_VIEWS)
        for family in gauge.collect()
        for sample in family.samples
    }


def test_gauges_read_again_for_changed_entities_alone_are_those_read_for_all(
    state_at: StoreAt,
) -> None:
    stories = book(state_at("stories"), window_s=1e9)
    assert stories.take_changed() is None, "the first read after a start is of every entity"
    _publish_stories(stories)  # as decide does then (gauges another test left are zeroed)
    steps: list[Callable[[], object]] = [
        lambda: stories.join(copy("a", printed(VIRAL), views=10)),
        lambda: stories.join(copy("a", printed(VIRAL), entity="billy", views=10)),
        lambda: stories.join(copy("b", reencoded(VIRAL), platform="youtube", views=20)),
        lambda: stories.observe("tiktok:a", T0 + timedelta(minutes=3), 50),  # both entities
        lambda: stories.join(copy("c", printed(OTHER), entity="billy", views=1000)),
        lambda: stories.observe("youtube:b", T0 + timedelta(minutes=4), 5),
    ]
    changed = [{"ghostface"}, {"billy"}, {"ghostface"}, {"ghostface", "billy"}, {"billy"}]
    for step, entities in zip(steps, [*changed, {"ghostface"}], strict=True):
        step()
        assert stories.take_changed() == entities
        _publish_stories(stories, entities)
        some = _gauges()
        _publish_stories(stories)
        assert _gauges() == some
        assert stories.spread(entities=entities) == [
            each for each in stories.spread() if each.entity in entities
        ]


@pytest.mark.parametrize("size", [8, 10_000], ids=["entities let go", "all kept"])
def test_footprints_kept_stacked_between_joins_are_those_the_file_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """Stories leave the candidates (by time, or past the most recent few), the kept arrays
    are built again and other entities' let go: each join still finds what ``copy_share`` over
    the file's footprints finds."""
    monkeypatch.setattr(book_module, "CANDIDATES_MAX", 6)
    monkeypatch.setattr(kept_footprints, "_SLACK", 0)
    stories = book(tmp_path / "stories.sqlite3", window_s=600)
    sources = [rng.integers(0, 256, (9, 32), dtype=np.uint8) for _ in range(8)]
    checked: list[int | None] = []

    def compared(
        clip: tuple[Hashed, Hashed], candidates: Any, share: float, stacked: Stacked
    ) -> int | None:
        # A connection of its own: the book's is inside its join's transaction.
        with closing(sqlite3.connect(tmp_path / "stories.sqlite3")) as db:
            held = dict(
                (key, (Hashed.from_bytes(query), Hashed.from_bytes(reference)))
                for key, query, reference in db.execute(
                    "SELECT clip_key, query, reference FROM copies WHERE entity=?", (entity,)
                )
            )
        listed = [held[key] for key in candidates._keys]
        for (query, reference), (kept_query, kept_reference) in zip(
            listed, candidates, strict=True
        ):
            for held_side, kept_side in ((query, kept_query), (reference, kept_reference)):
                assert np.array_equal(held_side.frames, kept_side.frames)
                assert np.array_equal(held_side.rows, kept_side.rows)
        found = best_copy(clip, candidates, share, stacked)
        assert found == looped(clip, listed, share)
        checked.append(found)
        return found

    monkeypatch.setattr(book_module, "best_copy", compared)
    rebuilt: list[list[str]] = []
    only = kept_footprints._Kept.only

    def counted(kept: kept_footprints._Kept, keys: list[str]) -> kept_footprints._Kept:
        rebuilt.append(keys)
        return only(kept, keys)

    monkeypatch.setattr(kept_footprints._Kept, "only", counted)
    stories._footprints.size = size
    entities_kept = []
    for step in range(150):
        entity = ["ghostface", "billy", "stu"][int(rng.integers(0, 3))]
        hashes = sources[int(rng.integers(0, len(sources)))]
        start = int(rng.integers(0, 5))
        stories.join(
            copy(
                f"c{step}",
                reencoded(hashes[start:]),
                entity=entity,
                at=T0 + timedelta(minutes=step),
            )
        )
        entities_kept.append(len(stories._footprints._kept))
    assert len(checked) == 150 and 0 < sum(found is not None for found in checked) < 150
    assert rebuilt
    assert (min(entities_kept[50:]) < 3) == (size < 100), "entities let go only past the size"
