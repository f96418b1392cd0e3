"""The records that flow between roles on Kafka topics: one schema each, JSON, versioned.

Every record carries ``schema`` (an integer). A consumer that cannot parse or validate a
record raises ``RecordError``; the pipeline sends the raw bytes to ``deadletter`` with the
reason and where they came from, and the partition keeps moving. Fields are added with
defaults so that an older consumer still reads a newer record of the same schema version.

Records come from strangers (titles, captions) and from other hosts, so every text field has a
limit, checked wherever a record is made or read: free text (titles, captions, names, notes) is
cut to its limit with a marker that says so, since a clip with a 700 KB title is still a clip to
score; identifiers and URLs beyond theirs are refused, since a cut one names something else.
Every datetime must carry its time zone: a naive one cannot be compared with an aware one, and
would fail far from here, in a role, after the record was accepted. No encoded record exceeds
``RECORD_MAX_BYTES`` (under the producer's and the broker's limits): a ``ClipScored`` sheds
evidence to fit, and says so; a dead letter keeps a bounded prefix of the raw bytes with their
length and digest.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import RecordError

__all__ = [
    "CAPTION_MAX",
    "DEADLETTER_RAW_MAX",
    "FOOTPRINT_MAX",
    "ID_MAX",
    "NAME_MAX",
    "NOTE_MAX",
    "RECORD_MAX_BYTES",
    "SCHEMA_VERSION",
    "STORY_HISTORY_MAX",
    "SYNTHETIC_DETAIL_MAX",
    "TITLE_MAX",
    "URL_MAX",
    "Alert",
    "AlertEntity",
    "ClipRef",
    "ClipScored",
    "ClipSeen",
    "DeadLetter",
    "EvidenceRecord",
    "Failure",
    "Footprint",
    "FrameHash",
    "Ident",
    "Note",
    "ParkedAlert",
    "Review",
    "ScoredEntity",
    "Story",
    "Synthetic",
    "ViewsAt",
    "as_utc",
    "decode",
    "encode",
    "truncated",
    "utcnow",
]

SCHEMA_VERSION = 1

Record = TypeVar("Record", bound="_Record")

RECORD_MAX_BYTES = 900_000
"""The most bytes an encoded record may take: under the Faust producer's 1,000,000-byte
request limit (and the broker's 1 MiB), with room for the key and the batch around it."""
DEADLETTER_RAW_MAX = 512 * 1024
"""The most raw bytes a dead letter carries (base64 makes them 4/3 as long); a longer record
keeps this prefix, and its full length and sha256."""

ID_MAX = 512
"""Identifiers (platform, clip and entity ids, versions, reasons): refused beyond."""
URL_MAX = 8192
"""URLs: refused beyond (browsers and platforms stop well before)."""
TITLE_MAX = 1000
"""Titles: cut beyond (YouTube allows 100 characters, Reddit 300)."""
CAPTION_MAX = 5000
"""Captions and descriptions: cut beyond (YouTube's description limit)."""
NAME_MAX = 300
"""Authors, entity names, franchises, owners, regions: cut beyond."""
NOTE_MAX = 2000
"""Messages, reasons and evidence text: cut beyond."""
SYNTHETIC_DETAIL_MAX = 500
"""What a provenance verdict says about itself (``Synthetic.detail``): cut beyond."""
FOOTPRINT_MAX = 512
"""PDQ hashes each side of a ``Footprint`` carries, at most."""
STORY_HISTORY_MAX = 96
"""Points of a story's views over time an alert carries, at most (the newest)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(when: datetime) -> datetime:
    """A platform's time as an aware one: a time given without a zone is taken as UTC, which is
    what the platforms mean; records refuse naive times."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def truncated(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in a marker with its real length,
    so that a reader sees it was cut and a cut text never passes for the whole."""
    if len(text) <= limit:
        return text
    marker = f"…[truncated from {len(text)} chars]"
    return text[: max(limit - len(marker), 0)] + marker


def _cut(limit: int) -> AfterValidator:
    cut: Callable[[str], str] = lambda text: truncated(text, limit)  # noqa: E731
    return AfterValidator(cut)


Ident = Annotated[str, Field(max_length=ID_MAX)]
Url = Annotated[str, Field(max_length=URL_MAX)]
Title = Annotated[str, _cut(TITLE_MAX)]
Caption = Annotated[str, _cut(CAPTION_MAX)]
Name = Annotated[str, _cut(NAME_MAX)]
Note = Annotated[str, _cut(NOTE_MAX)]


class _Record(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    schema_version: int = Field(default=SCHEMA_VERSION, alias="schema")


class Synthetic(BaseModel):
    """Whether a clip is AI-generated, and who says so: never a guess.

    ``source`` is where the verdict comes from: the media's own C2PA manifest (``c2pa``), the
    platform's label (``platform``: YouTube's ``status.containsSyntheticMedia``), or generator
    hashtags and phrases in the caption (``caption``, the weakest). ``not_ai_generated`` only
    when a source states it (a C2PA capture source type, a platform label of false); nothing
    said is ``unknown``. ``validated`` is whether a C2PA manifest validated (``None`` for the
    other sources); ``generator`` the manifest's claim generator. ``monitor/media/provenance.py``
    reads the sources and says which one wins.
    """

    model_config = ConfigDict(frozen=True)

    source: Literal["c2pa", "platform", "caption", "unknown"] = "unknown"
    value: Literal["ai_generated", "not_ai_generated", "unknown"] = "unknown"
    detail: Annotated[str, _cut(SYNTHETIC_DETAIL_MAX)] | None = None
    generator: Name | None = None
    validated: bool | None = None


PdqHex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
StoryId = Annotated[str, Field(pattern=r"^[0-9a-f]{20}$")]


class FrameHash(BaseModel):
    """One view's PDQ hash (hex) of the ``frame``-th sampled frame of a clip."""

    model_config = ConfigDict(frozen=True)

    frame: int = Field(ge=0, le=65_535)
    pdq: PdqHex


class Footprint(BaseModel):
    """A flagged clip's sampled frames hashed as the known-footage rule hashes a query clip
    (``query``: its views, mirrored too) and a reference clip (``reference``: whole, cropped, a
    phone's band), so that decide can tell whether two uploads are copies either way round
    (``monitor/likeness/footage/copies.py``); ``frames`` is how many frames were hashed."""

    model_config = ConfigDict(frozen=True)

    frames: int = Field(default=0, ge=0, le=65_535)
    query: list[FrameHash] = Field(default_factory=list, max_length=FOOTPRINT_MAX)
    reference: list[FrameHash] = Field(default_factory=list, max_length=FOOTPRINT_MAX)


class ViewsAt(BaseModel):
    """A story's views, all its copies together, at one time."""

    model_config = ConfigDict(frozen=True)

    at: AwareDatetime
    views: int = Field(ge=0)


class Story(BaseModel):
    """The viral clip an alert's clip is a copy of, as decide knew it when it sent the alert.

    Copies are found by their frames' PDQ hashes, with the known-footage rule
    (``monitor/pipeline/stories.py``); a story is one entity's: a clip that shows two entities
    is in a story of each. ``copies`` counts the clips in the story so far, ``copy`` is this
    alert's clip's place among them (1: it started the story); ``history`` is the story's total
    views over time, newest last.
    """

    model_config = ConfigDict(frozen=True)

    story_id: StoryId
    first_clip: Ident
    first_seen: AwareDatetime
    copies: int = Field(ge=1)
    copy_number: int = Field(default=1, ge=1)
    platforms: dict[Ident, int] = Field(default_factory=dict, max_length=64)
    views: int | None = Field(default=None, ge=0)
    history: list[ViewsAt] = Field(default_factory=list, max_length=STORY_HISTORY_MAX)

    @staticmethod
    def id_for(first_clip: str, entity_id: str) -> str:
        return hashlib.sha256(f"story|{first_clip}|{entity_id}".encode()).hexdigest()[:20]

    @property
    def starts(self) -> bool:
        """Whether this alert's clip started the story."""
        return self.copy_number == 1


class ClipSeen(_Record):
    """One observation of a clip on a platform, with its counts at ``observed_at``.

    The same clip is observed again and again while it spreads; key ``platform:clip_id``.
    """

    platform: Ident = Field(min_length=1)
    clip_id: Ident = Field(min_length=1)
    url: Url
    media_url: Url | None = None
    title: Title | None = None
    caption: Caption | None = None
    author: Name | None = None
    posted_at: AwareDatetime | None = None
    observed_at: AwareDatetime = Field(default_factory=utcnow)
    views: int | None = Field(default=None, ge=0)
    likes: int | None = Field(default=None, ge=0)
    shares: int | None = Field(default=None, ge=0)
    comments: int | None = Field(default=None, ge=0)
    platform_synthetic: bool | None = None
    """The platform's own label: True when its API says the clip is AI-generated or altered
    (YouTube's ``status.containsSyntheticMedia``), False when it says it is not, None when it
    says nothing (most platforms, and YouTube when the uploader did not answer)."""

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

    platform: Ident
    clip_id: Ident
    url: Url
    media_url: Url | None = None
    title: Title | None = None
    author: Name | None = None

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
    box: list[int] | None = Field(default=None, max_length=8)
    region: Name | None = None
    reference: Note | None = None
    text: Note | None = None
    raw_score: float | None = None
    """A visual match's plain cosine; ``score`` is its margin over the cohort."""
    cohort_nearest: Note | None = None
    """The cohort member the matching view is most like (``cohort_score``: its plain cosine)."""
    cohort_score: float | None = None


class ScoredEntity(BaseModel):
    model_config = ConfigDict(frozen=True)

    entity_id: Ident
    name: Name
    kind: Literal["actor", "character"]
    franchise: Name | None = None
    owner: Name | None = None
    score: float
    threshold: float
    flagged: bool
    evidence: list[EvidenceRecord] = Field(default_factory=list)
    suppressed_by: Ident | None = None
    """Set when the clip copies one dismissed for this entity: then it is not flagged."""


class Failure(BaseModel):
    """Why a clip could not be scored: a bounded ``reason`` (a metric label) and a message."""

    model_config = ConfigDict(frozen=True)

    reason: Ident
    message: Note


class ClipScored(_Record):
    """The scorer's verdict on one observation of a clip, or why there is none."""

    clip: ClipRef
    observation: ClipSeen
    entities: list[ScoredEntity] = Field(default_factory=list)
    gallery_version: Ident | None = None
    models: dict[Ident, Ident] = Field(default_factory=dict)
    frames: int = 0
    timings: dict[Ident, float] = Field(default_factory=dict)
    failure: Failure | None = None
    rescored: bool = False
    scored_at: AwareDatetime = Field(default_factory=utcnow)
    trimmed: Note | None = None
    """Set when evidence was dropped so that the record fits ``RECORD_MAX_BYTES``."""
    synthetic: Synthetic = Field(default_factory=Synthetic)
    """Whether the clip is AI-generated (``unknown`` in records written before it existed)."""
    footprint: Footprint | None = None
    """A flagged clip's frames hashed, for decide to know its copies by (``Story``); None when
    nothing was flagged."""

    @property
    def flagged(self) -> list[ScoredEntity]:
        return [entity for entity in self.entities if entity.flagged]

    def fitted(self, max_bytes: int) -> ClipScored:
        """This verdict within ``max_bytes`` once encoded, shedding what matters least first:
        the evidence of entities not flagged, then all but each flagged entity's strongest
        piece, then all evidence, then the entities not flagged. Raises ``RecordError`` when
        even that is too large (no gallery is that big)."""
        total = sum(len(entity.evidence) for entity in self.entities)

        def strongest(entity: ScoredEntity) -> list[EvidenceRecord]:
            return sorted(entity.evidence, key=lambda e: e.score, reverse=True)[:1]

        steps: list[Callable[[ScoredEntity], ScoredEntity | None]] = [
            lambda e: e if e.flagged else e.model_copy(update={"evidence": []}),
            lambda e: e.model_copy(update={"evidence": strongest(e)}),
            lambda e: e.model_copy(update={"evidence": []}),
            lambda e: e if e.flagged else None,
        ]
        entities = list(self.entities)
        for step in steps:
            entities = [kept for kept in map(step, entities) if kept is not None]
            evidence = sum(len(entity.evidence) for entity in entities)
            note = (
                f"trimmed to fit {max_bytes} bytes: kept {evidence} of {total} evidence items"
                f" and {len(entities)} of {len(self.entities)} entities"
            )
            fitted = self.model_copy(update={"entities": entities, "trimmed": note})
            if len(_dump(fitted)) <= max_bytes:
                return fitted
        raise RecordError(f"ClipScored: over {max_bytes} bytes even without evidence")


class AlertEntity(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: Ident
    name: Name
    kind: Literal["actor", "character"]
    franchise: Name | None = None
    owner: Name | None = None


class Alert(_Record):
    """A protected entity found in a clip: one per (clip, entity); key ``platform:clip:entity``."""

    alert_id: Ident
    entity: AlertEntity
    clip: ClipRef
    score: float
    threshold: float
    evidence: list[EvidenceRecord] = Field(default_factory=list)
    gallery_version: Ident | None = None
    first_seen: AwareDatetime
    observed_at: AwareDatetime
    views: int | None = None
    shares: int | None = None
    posted_at: AwareDatetime | None = None
    alerted_at: AwareDatetime = Field(default_factory=utcnow)
    synthetic: Synthetic = Field(default_factory=Synthetic)
    """The clip's ``ClipScored.synthetic`` (``unknown`` in alerts written before it existed)."""
    story: Story | None = None
    """The viral clip this one is a copy of (None in alerts written before stories existed)."""

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
    at: AwareDatetime = Field(default_factory=utcnow)


class DeadLetter(_Record):
    """A record that could not be processed, with the reason and where it came from.

    ``raw`` holds at most ``DEADLETTER_RAW_MAX`` bytes, so that a letter about a huge record
    can itself be sent; ``raw_length`` and ``raw_sha256`` are those of the whole record.
    """

    reason: Note
    source_topic: Ident
    partition: int | None = None
    offset: int | None = None
    raw_base64: str = Field(max_length=4 * -(-DEADLETTER_RAW_MAX // 3))
    raw_length: int | None = Field(default=None, ge=0)
    raw_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    failed_at: AwareDatetime = Field(default_factory=utcnow)

    @classmethod
    def of(
        cls, raw: bytes, reason: str, topic: str, partition: int | None, offset: int | None
    ) -> DeadLetter:
        return cls(
            reason=reason,
            source_topic=topic,
            partition=partition,
            offset=offset,
            raw_base64=base64.b64encode(raw[:DEADLETTER_RAW_MAX]).decode(),
            raw_length=len(raw),
            raw_sha256=hashlib.sha256(raw).hexdigest(),
        )

    @property
    def raw(self) -> bytes:
        """The raw bytes kept: the whole record unless ``truncated``."""
        return base64.b64decode(self.raw_base64)

    @property
    def truncated(self) -> bool:
        return self.raw_length is not None and self.raw_length > len(self.raw)


class ParkedAlert(_Record):
    """An alert waiting on ``alerts.retry`` for one sink; key ``platform:clip:entity:sink``.

    Read back from a topic and from notify's outbox, so bounded and zoned like the others: the
    sink and park id are identifiers, refused beyond ``ID_MAX``; the last error is a receiver's
    words, cut to ``NOTE_MAX`` with a marker; a time without a zone is refused, since
    ``redeliver`` would take it for the host's local time.
    """

    alert: Alert
    sink: Ident = Field(min_length=1)
    attempts: int = Field(ge=0)
    first_failed_at: AwareDatetime
    next_attempt_at: AwareDatetime
    last_error: Note = ""
    park_id: Ident = Field(default_factory=lambda: uuid.uuid4().hex)
    """Names this parking: the outbox keeps the latest, and an older copy is not acted on."""

    @property
    def key(self) -> str:
        return f"{self.alert.key}:{self.sink}"


def _dump(record: _Record) -> bytes:
    return record.model_dump_json(by_alias=True).encode()


def encode(record: _Record) -> bytes:
    """The record as JSON, never over ``RECORD_MAX_BYTES``: a ``ClipScored`` is trimmed to fit
    (``fitted``); any other record that large is a ``RecordError``, not a failed send."""
    raw = _dump(record)
    if len(raw) <= RECORD_MAX_BYTES:
        return raw
    if isinstance(record, ClipScored):
        return _dump(record.fitted(RECORD_MAX_BYTES))
    raise RecordError(
        f"{type(record).__name__}: {len(raw)} bytes, over the {RECORD_MAX_BYTES}-byte limit"
    )


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
