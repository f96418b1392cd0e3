"""Wire records: round-trip as JSON with a schema version; anything else is a clear RecordError."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime

import pytest

from monitor.errors import RecordError
from monitor.records import (
    CAPTION_MAX,
    DEADLETTER_RAW_MAX,
    ID_MAX,
    NAME_MAX,
    NOTE_MAX,
    RECORD_MAX_BYTES,
    SCHEMA_VERSION,
    TITLE_MAX,
    Alert,
    AlertEntity,
    ClipRef,
    ClipScored,
    ClipSeen,
    DeadLetter,
    EvidenceRecord,
    Failure,
    Review,
    ScoredEntity,
    Story,
    as_utc,
    decode,
    encode,
    truncated,
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


def _seen_json(**fields: object) -> bytes:
    base: dict[str, object] = {"schema": 1, "platform": "p", "clip_id": "x", "url": "u"}
    return json.dumps({**base, **fields}).encode()


def test_free_text_is_cut_to_its_limit_with_a_marker_where_records_are_made_and_read() -> None:
    made = ClipSeen(platform="p", clip_id="x", url="u", title="t" * 700_000, author="a" * 5000)
    read = decode(ClipSeen, _seen_json(title="t" * 700_000, caption="c" * 100_000))
    for title in (made.title, read.title):
        assert title is not None and len(title) == TITLE_MAX
        assert title.endswith("…[truncated from 700000 chars]") and title.startswith("ttt")
    assert read.caption is not None and len(read.caption) == CAPTION_MAX
    assert made.author is not None and len(made.author) == NAME_MAX
    assert truncated("short", 10) == "short"
    failure = Failure(reason="x", message="m" * 10_000)
    assert len(failure.message) == NOTE_MAX


@pytest.mark.parametrize(
    ("field", "value"),
    [("clip_id", "c" * (ID_MAX + 1)), ("platform", "p" * (ID_MAX + 1)), ("url", "u" * 9000)],
)
def test_identifiers_and_urls_beyond_their_limit_are_refused(field: str, value: str) -> None:
    with pytest.raises(RecordError, match=field):
        decode(ClipSeen, _seen_json(**{field: value}))


NAIVE = "2026-11-26T10:00:00"


@pytest.mark.parametrize(
    ("kind", "raw", "where"),
    [
        (ClipSeen, _seen_json(observed_at=NAIVE), "observed_at"),
        (ClipSeen, _seen_json(posted_at=NAIVE), "posted_at"),
        (
            Review,
            json.dumps({"alert_id": "0" * 20, "decision": "confirm", "reviewer": "r", "at": NAIVE}),
            "at",
        ),
        (
            Alert,
            json.dumps(
                {
                    "alert_id": "a",
                    "entity": {"id": "e", "name": "E", "kind": "actor"},
                    "clip": {"platform": "p", "clip_id": "x", "url": "u"},
                    "score": 1.0,
                    "threshold": 0.5,
                    "first_seen": NAIVE,
                    "observed_at": "2026-11-26T10:00:00Z",
                }
            ),
            "first_seen",
        ),
    ],
)
def test_a_datetime_without_a_time_zone_is_refused_at_validation(
    kind: type[ClipSeen | Review | Alert], raw: str | bytes, where: str
) -> None:
    with pytest.raises(RecordError, match=f"{where}: Input should have timezone info"):
        decode(kind, raw)
    assert as_utc(datetime(2026, 11, 26)).tzinfo is UTC


def test_a_dead_letter_of_a_huge_record_keeps_a_prefix_its_length_and_sha256() -> None:
    raw = os.urandom(3 * 1024 * 1024)
    encoded = encode(DeadLetter.of(raw, "x" * 10_000, "reviews", 0, 7))
    assert len(encoded) <= RECORD_MAX_BYTES
    letter = decode(DeadLetter, encoded)
    assert letter.truncated and letter.raw == raw[:DEADLETTER_RAW_MAX]
    assert letter.raw_length == len(raw)
    assert letter.raw_sha256 == hashlib.sha256(raw).hexdigest()
    small = DeadLetter.of(b"abc", "r", "t", 0, 1)
    assert not small.truncated and small.raw_length == 3


def _entity(n: int, flagged: bool, evidence: int) -> ScoredEntity:
    return ScoredEntity(
        entity_id=f"e{n}",
        name=f"Entity {n}",
        kind="character",
        score=0.9 if flagged else 0.1,
        threshold=0.5,
        flagged=flagged,
        evidence=[
            EvidenceRecord(signal="caption", score=i / evidence, text="w" * NOTE_MAX)
            for i in range(evidence)
        ],
    )


def test_a_verdict_too_large_for_the_broker_sheds_evidence_and_says_so() -> None:
    entities = [_entity(0, True, 500), *(_entity(n, False, 20) for n in range(1, 30))]
    scored = ClipScored(clip=ClipRef.of(SEEN), observation=SEEN, entities=entities)
    assert len(scored.model_dump_json()) > RECORD_MAX_BYTES
    encoded = encode(scored)
    assert len(encoded) <= RECORD_MAX_BYTES
    fitted = decode(ClipScored, encoded)
    assert fitted.trimmed is not None and "kept 1 of 1080 evidence items" in fitted.trimmed
    [flagged] = fitted.flagged
    assert flagged.evidence, "the flagged entity keeps its strongest evidence"
    assert flagged.evidence[0].score == max(e.score for e in entities[0].evidence)
    assert decode(ClipScored, encode(fitted)) == fitted, "a fitted verdict stays as it is"
    assert decode(ClipScored, encode(SEEN_SCORED)).trimmed is None


SEEN_SCORED = ClipScored(clip=ClipRef.of(SEEN), observation=SEEN)


def test_any_other_record_too_large_to_send_is_a_record_error() -> None:
    alert = Alert(
        alert_id="a",
        entity=AlertEntity(id="e", name="E", kind="actor"),
        clip=ClipRef.of(SEEN),
        score=1.0,
        threshold=0.5,
        evidence=_entity(0, True, 600).evidence,
        first_seen=SEEN.observed_at,
        observed_at=SEEN.observed_at,
    )
    with pytest.raises(RecordError, match="over the 900000-byte limit"):
        encode(alert)


def _scored_with_footprint(footprint: dict[str, object]) -> bytes:
    clip = {"platform": "demo", "clip_id": "c1", "url": "http://127.0.0.1/watch/c1"}
    record = json.loads(encode(ClipScored(clip=ClipRef(**clip), observation=SEEN)))
    return json.dumps({**record, "footprint": footprint}).encode()


@pytest.mark.parametrize(
    ("footprint", "reason"),
    [
        ({"frames": 1, "query": [{"frame": 0, "pdq": "zz" * 32}]}, "pdq"),
        ({"frames": 1, "query": [{"frame": -1, "pdq": "ab" * 32}]}, "frame"),
        ({"frames": 1, "query": [{"frame": 0, "pdq": "ab" * 32}] * 513}, "query"),
    ],
    ids=["not hex", "a negative frame", "more hashes than a footprint holds"],
)
def test_a_malformed_footprint_is_a_record_error(footprint: dict[str, object], reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        decode(ClipScored, _scored_with_footprint(footprint))


def test_a_story_must_have_a_copy_and_an_id_of_its_format() -> None:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    good = {"story_id": "0" * 20, "first_clip": "demo:c1", "first_seen": now, "copies": 1}
    assert Story(**good).starts  # type: ignore[arg-type]
    for bad in ({"copies": 0}, {"story_id": "not-an-id"}, {"copy_number": 0}):
        with pytest.raises(ValueError):
            Story(**{**good, **bad})  # type: ignore[arg-type]
