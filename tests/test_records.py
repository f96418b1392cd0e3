"""Wire records: round-trip as JSON with a schema version; anything else is a clear RecordError."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from monitor.errors import RecordError
from monitor.records import (
    SCHEMA_VERSION,
    Alert,
    AlertEntity,
    ClipRef,
    ClipScored,
    ClipSeen,
    DeadLetter,
    decode,
    encode,
)

SEEN = ClipSeen(
    platform="demo",
    clip_id="c1",
    url="http://127.0.0.1/watch/c1",
    media_url="http://127.0.0.1/media/c1.mp4",
    title="a rabbit",
    caption="#bbb",
    views=10,
    observed_at=datetime(2026, 11, 26, tzinfo=UTC),
)


def test_records_round_trip_with_their_schema_version() -> None:
    raw = encode(SEEN)
    assert json.loads(raw)["schema"] == SCHEMA_VERSION
    assert decode(ClipSeen, raw) == SEEN
    scored = ClipScored(clip=ClipRef.of(SEEN), observation=SEEN, gallery_version="v1")
    assert decode(ClipScored, encode(scored)) == scored


def test_keys_identify_the_clip_and_the_clip_entity_pair() -> None:
    assert SEEN.key == "demo:c1"
    alert = Alert(
        alert_id=Alert.id_for(SEEN.key, "bunny"),
        entity=AlertEntity(id="bunny", name="Bunny", kind="character"),
        clip=ClipRef.of(SEEN),
        score=0.9,
        threshold=0.6,
        first_seen=SEEN.observed_at,
        observed_at=SEEN.observed_at,
    )
    assert alert.key == "demo:c1:bunny"
    assert alert.alert_id == Alert.id_for("demo:c1", "bunny") != Alert.id_for("demo:c1", "other")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "Invalid JSON"),
        (b'{"schema": 1, "clip_id": "x", "url": "u"}', "platform: Field required"),
        (b'{"schema": 1, "platform": "p", "clip_id": "x", "url": "u", "views": -3}', "views"),
        (b'{"schema": 99, "platform": "p", "clip_id": "x", "url": "u"}', "schema 99 is newer"),
        (None, "empty record"),
    ],
)
def test_a_bad_record_is_a_record_error_with_the_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        decode(ClipSeen, raw)


def test_a_dead_letter_keeps_the_raw_bytes_and_where_they_came_from() -> None:
    letter = DeadLetter.of(b"\xff\x00garbage", "ClipSeen: bad", "clips.discovered", 2, 41)
    again = decode(DeadLetter, encode(letter))
    assert again.raw == b"\xff\x00garbage"
    assert (again.source_topic, again.partition, again.offset) == ("clips.discovered", 2, 41)
