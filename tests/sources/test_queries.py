"""Queries from the gallery, rendered in each platform's search syntax."""

from __future__ import annotations

from monitor.likeness.gallery.entities import Entity
from monitor.sources.queries import hashtag, key_words, queries_for
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


DESCRIBED = VECNA.model_copy(
    update={
        "descriptions": (
            "A tall pale creature whose head opens like a flower, in an 80s small town",
            "The monster from the upside down, with long claws and no face",
        )
    }
)


def test_each_description_becomes_a_query_of_its_key_words_after_every_name_query() -> None:
    other = VECNA.model_copy(update={"id": "eleven", "name": "Eleven", "aliases": ()})
    queries = queries_for([DESCRIBED, other])
    assert [q.key for q in queries] == [
        "entity:vecna",
        "entity:eleven",
        "entity:vecna:described:1",
        "entity:vecna:described:2",
    ]
    assert queries[2].words == ("tall", "pale", "creature", "head")
    assert queries[3].words == ("monster", "upside", "down", "long")
    assert queries[2].terms == () and queries[2].hashtags == ()
    assert [q.key for q in queries_for([DESCRIBED, other], limit=2)] == [
        "entity:vecna",
        "entity:eleven",
    ], "a quota keeps every entity's names before any description"


def test_key_words_skip_function_words_digits_and_repeats_in_any_script() -> None:
    assert key_words("The blue, blue gopher with the big 2 teeth") == (
        "blue",
        "gopher",
        "big",
        "teeth",
    )
    russian = "\u0431\u043b\u0435\u0434\u043d\u043e\u0435 \u0447\u0443\u0434\u043e\u0432\u0438\u0449\u0435"
    assert key_words(russian.upper()) == tuple(russian.split()), "Cyrillic words, folded"
    assert key_words("a an the of 42") == ()


def test_a_description_query_asks_every_platform_for_all_its_words() -> None:
    query = queries_for([DESCRIBED])[1]
    assert YouTubePlatform.render(query) == "tall pale creature head"
    assert RedditPlatform.render(query) == "tall pale creature head"
    assert XPlatform.render(query) == "(tall pale creature head) has:videos -is:retweet"
    condition = TikTokPlatform.condition(query)
    assert condition == {
        "and": [
            {"field_name": "keyword", "operation": "EQ", "field_values": [word]}
            for word in ("tall", "pale", "creature", "head")
        ]
    }
