"""The ``synthetic`` verdict on the wire: it round-trips, is bounded, and records written before
it existed still decode (as ``unknown``, under the same schema version)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from monitor.records import (
    SCHEMA_VERSION,
    SYNTHETIC_DETAIL_MAX,
    Alert,
    AlertEntity,
    ClipRef,
    ClipScored,
    ClipSeen,
    Synthetic,
    decode,
    encode,
)

WHEN = datetime(2026, 12, 1, tzinfo=UTC)
SEEN = ClipSeen(
    platform="youtube",
    clip_id="v1",
    url="https://www.youtube.com/watch?v=v1",
    title="a clip",
    observed_at=WHEN,
    platform_synthetic=True,
)
AI = Synthetic(
    source="c2pa",
    value="ai_generated",
    detail="digitalSourceType trainedAlgorithmicMedia; manifest valid",
    generator="TestGen 1.0",
    validated=True,
)


def _alert(synthetic: Synthetic) -> Alert:
    return Alert(
        alert_id=Alert.id_for(SEEN.key, "gopher"),
        entity=AlertEntity(id="gopher", name="Gopher", kind="character"),
        clip=ClipRef.of(SEEN),
        score=0.9,
        threshold=0.5,
        first_seen=WHEN,
        observed_at=WHEN,
        synthetic=synthetic,
    )


def test_synthetic_round_trips_on_clip_scored_alert_and_the_platform_label_on_clip_seen() -> None:
    scored = ClipScored(clip=ClipRef.of(SEEN), observation=SEEN, synthetic=AI)
    again = decode(ClipScored, encode(scored))
    assert again.synthetic == AI
    assert again.observation.platform_synthetic is True
    alert = _alert(AI)
    raw = encode(alert)
    assert json.loads(raw)["synthetic"]["value"] == "ai_generated"
    assert json.loads(raw)["schema"] == SCHEMA_VERSION
    assert decode(Alert, raw) == alert


def test_records_without_the_field_decode_as_unknown() -> None:
    scored = json.loads(encode(ClipScored(clip=ClipRef.of(SEEN), observation=SEEN)))
    alert = json.loads(encode(_alert(AI)))
    for raw in (scored, alert, scored["observation"]):
        raw.pop("synthetic", None)
        raw.pop("platform_synthetic", None)
    assert decode(ClipScored, json.dumps(scored)).synthetic == Synthetic()
    assert decode(ClipScored, json.dumps(scored)).observation.platform_synthetic is None
    old = decode(Alert, json.dumps(alert))
    assert (old.synthetic.source, old.synthetic.value) == ("unknown", "unknown")


def test_the_detail_is_cut_and_unknown_values_are_refused() -> None:
    long = Synthetic(source="caption", value="ai_generated", detail="#sora " * 1000)
    assert long.detail is not None and len(long.detail) <= SYNTHETIC_DETAIL_MAX
    assert "truncated" in long.detail
    with pytest.raises(ValidationError):
        Synthetic.model_validate({"source": "c2pa", "value": "probably"})
    with pytest.raises(ValidationError):
        Synthetic.model_validate({"source": "a guess", "value": "unknown"})
