"""The records that flow between roles on Kafka topics: one schema each, JSON, versioned.

Every record carries ``schema`` (an integer). A consumer that cannot parse or validate a
record raises ``RecordError``; the pipeline sends the raw bytes to ``deadletter`` with the
reason and where they came from, and the partition keeps moving. Fields are added with
defaults so that an older consumer still reads a newer record of the same schema version.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import RecordError

__all__ = [
    "SCHEMA_VERSION",
    "Alert",
    "AlertEntity",
    "ClipRef",
    "ClipScored",
    "ClipSeen",
    "DeadLetter",
    "EvidenceRecord",
    "Failure",
    "Review",
    "ScoredEntity",
    "decode",
    "encode",
    "utcnow",
]

SCHEMA_VERSION = 1

Record = TypeVar("Record", bound="_Record")


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")


class ClipSeen(_Record):
    """One observation of a clip on a platform, with its counts at ``observed_at``.

    The same clip is observed again and again while it spreads; key ``platform:clip_id``.
    """

    platform: str = Field(min_length=1)
    clip_id: str = Field(min_length=1)
    url: str
    media_url: str | None = None
    title: str | None = None
    caption: str | None = None
    author: str | None = None
    posted_at: datetime | None = None
    observed_at: datetime = Field(default_factory=utcnow)
    views: int | None = Field(default=None, ge=0)
    likes: int | None = Field(default=None, ge=0)
    shares: int | None = Field(default=None, ge=0)
    comments: int | None = Field(default=None, ge=0)

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.clip_id}"

    @property
    def text(self) -> str:
        """Title and caption together: what the weak caption signal reads."""
        return " ".join(part for part in (self.title, self.caption) if part)


class ClipRef(BaseModel):
    """The clip an alert or score is about, without its counts."""

    model_config = ConfigDict(frozen=True)

    platform: str
    clip_id: str
    url: str
    media_url: str | None = None
    title: str | None = None
    author: str | None = None

    @classmethod
    def of(cls, seen: ClipSeen) -> ClipRef:
        return cls(
            platform=seen.platform,
            clip_id=seen.clip_id,
            url=seen.url,
            media_url=seen.media_url,
            title=seen.title,
            author=seen.author,
        )

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.clip_id}"


class EvidenceRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    signal: Literal["face", "visual", "hash", "caption"]
    score: float
    threshold: float | None = None
    frame_time: float | None = None
    box: list[int] | None = None
    region: str | None = None
    reference: str | None = None
    text: str | None = None


class ScoredEntity(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity_id: str
    name: str
    kind: Literal["actor", "character"]
    franchise: str | None = None
    owner: str | None = None
    score: float
    threshold: float
    flagged: bool
    evidence: list[EvidenceRecord] = Field(default_factory=list)
    suppressed_by: str | None = None
    """Set when the clip copies one dismissed for this entity: then it is not flagged."""


class Failure(BaseModel):
    """Why a clip could not be scored: a bounded ``reason`` (a metric label) and a message."""

    model_config = ConfigDict(frozen=True)

    reason: str
    message: str


class ClipScored(_Record):
    """The scorer's verdict on one observation of a clip, or why there is none."""

    clip: ClipRef
    observation: ClipSeen
    entities: list[ScoredEntity] = Field(default_factory=list)
    gallery_version: str | None = None
    models: dict[str, str] = Field(default_factory=dict)
    frames: int = 0
    timings: dict[str, float] = Field(default_factory=dict)
    failure: Failure | None = None
    rescored: bool = False
    scored_at: datetime = Field(default_factory=utcnow)

    @property
    def flagged(self) -> list[ScoredEntity]:
        return [entity for entity in self.entities if entity.flagged]


class AlertEntity(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: Literal["actor", "character"]
    franchise: str | None = None
    owner: str | None = None


class Alert(_Record):
    """A protected entity found in a clip: one per (clip, entity); key ``platform:clip:entity``."""

    alert_id: str
    entity: AlertEntity
    clip: ClipRef
    score: float
    threshold: float
    evidence: list[EvidenceRecord] = Field(default_factory=list)
    gallery_version: str | None = None
    first_seen: datetime
    observed_at: datetime
    views: int | None = None
    shares: int | None = None
    posted_at: datetime | None = None
    alerted_at: datetime = Field(default_factory=utcnow)

    @staticmethod
    def id_for(clip_key: str, entity_id: str) -> str:
        return hashlib.sha256(f"{clip_key}|{entity_id}".encode()).hexdigest()[:20]

    @property
    def key(self) -> str:
        return f"{self.clip.key}:{self.entity.id}"


class Review(_Record):
    """A reviewer's decision on an alert; key ``alert_id``, so an alert's decisions stay in order.

    ``undo`` takes the alert back to new; the latest decision by ``at`` is the alert's state.
    """

    alert_id: str = Field(pattern=r"^[0-9a-f]{20}$")
    decision: Literal["confirm", "dismiss", "undo"]
    reason: str | None = Field(default=None, max_length=2000)
    reviewer: str = Field(min_length=1, max_length=200)
    at: datetime = Field(default_factory=utcnow)


class DeadLetter(_Record):
    """A record that could not be processed, with the reason and where it came from."""

    reason: str
    source_topic: str
    partition: int | None = None
    offset: int | None = None
    raw_base64: str
    failed_at: datetime = Field(default_factory=utcnow)

    @classmethod
    def of(
        cls, raw: bytes, reason: str, topic: str, partition: int | None, offset: int | None
    ) -> DeadLetter:
        return cls(
            reason=reason[:2000],
            source_topic=topic,
            partition=partition,
            offset=offset,
            raw_base64=base64.b64encode(raw).decode(),
        )

    @property
    def raw(self) -> bytes:
        return base64.b64decode(self.raw_base64)


def encode(record: _Record) -> bytes:
    return record.model_dump_json(by_alias=True).encode()


def decode(kind: type[Record], raw: bytes | str | dict[str, Any] | None) -> Record:
    """Parse and validate one record; raises ``RecordError`` with a reason fit for a dead letter."""
    if raw is None:
        raise RecordError(f"{kind.__name__}: empty record")
    try:
        record = (
            kind.model_validate(raw) if isinstance(raw, dict) else kind.model_validate_json(raw)
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "record"
        raise RecordError(f"{kind.__name__}: {where}: {first['msg']}") from None
    if record.schema_version > SCHEMA_VERSION:
        raise RecordError(
            f"{kind.__name__}: schema {record.schema_version} is newer than {SCHEMA_VERSION}"
        )
    return record
