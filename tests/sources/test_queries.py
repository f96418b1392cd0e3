"""Queries from the gallery, rendered in each platform's search syntax."""

from __future__ import annotations

from monitor.likeness.gallery.entities import Entity
from monitor.sources.queries import hashtag, queries_for
from monitor.sources.reddit import RedditPlatform
from monitor.sources.tiktok import TikTokPlatform
from monitor.sources.x import XPlatform
from monitor.sources.youtube import YouTubePlatform

VECNA = Entity(
    id="vecna",
    name="Vecna",
    kind="character",
    franchise="Stranger Things",
    aliases=("Henry Creel", "vecna", "One"),
)


def test_an_entity_becomes_its_names_and_the_hashtags_people_write() -> None:
    (query,) = queries_for([VECNA])
    assert query.key == "entity:vecna"
    assert query.terms == ("Vecna", "Henry Creel", "One")
    assert query.hashtags == ("Vecna", "HenryCreel", "One", "StrangerThings")
    assert hashtag("spider-man: no way home") == "SpiderManNoWayHome"


def test_the_limit_keeps_the_first_entities() -> None:
    other = VECNA.model_copy(update={"id": "eleven", "name": "Eleven", "aliases": ()})
    assert [q.key for q in queries_for([VECNA, other], limit=1)] == ["entity:vecna"]


def test_each_platform_renders_the_query_in_its_own_syntax() -> None:
    (query,) = queries_for([VECNA])
    assert YouTubePlatform.render(query).startswith('"Vecna"|"Henry Creel"|"One"|#Vecna')
    assert RedditPlatform.render(query).startswith('"Vecna" OR "Henry Creel"')
    x = XPlatform.render(query)
    assert x.endswith(" has:videos -is:retweet") and len(x) <= 512
    tiktok = TikTokPlatform.condition(query)
    assert {c["field_name"] for c in tiktok["or"]} == {"keyword", "hashtag_name"}


def test_an_x_query_over_512_characters_drops_terms_rather_than_failing() -> None:
    long = VECNA.model_copy(update={"aliases": tuple(f"alias number {i}" for i in range(60))})
    (query,) = queries_for([long])
    assert len(XPlatform.render(query)) <= 512
