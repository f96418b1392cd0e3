"""The crawl state, the same in a SQLite file and in PostgreSQL: a page's clips and the feed's
cursor move together, the day's quota adds up, a pause is replaced by the newest, and watched
clips come back when due, the longest overdue first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.sources.crawl_state import CrawlState, FeedState, Observation
from monitor.storage import Database

StoreAt = Callable[[str], Path | Database]
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def watched(key: str, due: datetime | None, views: int = 10) -> Observation:
    return Observation(key, key.split(":")[1], T0, views, 1.5, due, T0, False)


def test_a_page_commits_its_clips_and_the_feed_cursor_together_and_survives_a_restart(
    state_at: StoreAt,
) -> None:
    state = CrawlState(state_at("crawl"))
    state.commit("yt", "popular", FeedState(cursor="p3", since=T0), [watched("yt:1", None)])
    state.commit("yt", "popular", FeedState(cursor="p6", etag='"e1"'), [watched("yt:1", None, 90)])
    state.mark_flagged("yt:1")
    state.mark_flagged("yt:1")
    state.close()

    state = CrawlState(state_at("crawl"))
    assert state.feed("yt", "popular") == FeedState(cursor="p6", etag='"e1"')
    assert state.feed("yt", "other") == FeedState()
    assert state.observations(["yt:1", "yt:2"])["yt:1"].views == 90
    assert state.emitted("yt") == 1 and state.flagged_clips() == ["yt:1"]
    state.close()


def test_quota_adds_up_per_day_and_a_newer_pause_replaces_the_older(state_at: StoreAt) -> None:
    state = CrawlState(state_at("crawl"))
    assert state.spend("yt", "2026-12-01", 100) == 100
    assert state.spend("yt", "2026-12-01", 5) == 105
    assert state.quota_used("yt", "2026-12-02") == 0
    state.pause("yt", T0, "quota")
    state.pause("yt", T0 + timedelta(hours=1), "rate limited")
    assert state.paused_until("yt") == (T0 + timedelta(hours=1), "rate limited")
    assert state.paused_until("tiktok") is None
    state.close()


def test_watched_clips_come_back_when_due_the_longest_overdue_first(state_at: StoreAt) -> None:
    state = CrawlState(state_at("crawl"))
    marks = [
        watched("yt:late", T0 - timedelta(minutes=5)),
        watched("yt:later", T0 - timedelta(minutes=50)),
        watched("yt:future", T0 + timedelta(minutes=5)),
        watched("yt:cooled", None),
    ]
    state.commit("yt", None, None, marks)
    assert [o.clip_key for o in state.due("yt", T0, limit=10)] == ["yt:later", "yt:late"]
    assert [o.clip_key for o in state.due("yt", T0, limit=1)] == ["yt:later"]
    assert state.due("tiktok", T0, limit=10) == []
    state.close()


def test_offsets_are_kept_per_broker_and_a_new_broker_starts_them_over(state_at: StoreAt) -> None:
    state = CrawlState(state_at("crawl"))
    assert state.follow_broker("cluster-a")
    state.remember_offset("alerts", 0, 7)
    state.remember_offset("alerts", 0, 9)
    assert not state.follow_broker("cluster-a")
    assert state.read_offsets() == {("alerts", 0): 9}
    assert state.follow_broker("cluster-b")
    assert state.read_offsets() == {}
    state.close()


def test_one_replica_holds_a_sources_lease_until_it_expires(state_at: StoreAt) -> None:
    one, two = CrawlState(state_at("crawl")), CrawlState(state_at("crawl"))
    assert one.hold_lease("youtube", "pod-a", now=100.0, ttl_s=30)
    assert not two.hold_lease("youtube", "pod-b", now=110.0, ttl_s=30), "pod-a holds it"
    assert two.hold_lease("tiktok", "pod-b", now=110.0, ttl_s=30), "a lease per source"
    assert one.hold_lease("youtube", "pod-a", now=125.0, ttl_s=30), "renewed by its holder"
    assert not two.hold_lease("youtube", "pod-b", now=150.0, ttl_s=30), "renewed: until 155"
    assert one.lease_holder("youtube", now=150.0) == "pod-a"
    assert two.hold_lease("youtube", "pod-b", now=156.0, ttl_s=30), "expired: the standby's"
    assert not one.hold_lease("youtube", "pod-a", now=157.0, ttl_s=30)
    assert one.lease_holder("youtube", now=200.0) is None
    one.close()
    two.close()
