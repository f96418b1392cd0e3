"""What a sink is: somewhere an alert goes (Slack, a webhook), small and replaceable.

A sink does one delivery attempt and says how it went by what it raises: a
``RetryableDeliveryError`` (429, 5xx, unreachable) or a ``PermanentDeliveryError`` (any other
4xx). Retrying, parking, deduplication and flood control belong to the notifier, so a new sink
is a message format and one HTTP call, and every sink gets the same guarantees.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from monitor.evidence.urls import EvidenceUrls
from monitor.records import Alert, AlertEntity, ClipRef

__all__ = ["DeliveryContext", "FloodSummary", "Sink", "SummaryClip"]


@dataclass(frozen=True)
class DeliveryContext:
    """What a sink needs besides the alert: where receivers reach this monitor, which try,
    and the key that signs evidence URLs (the server refuses unsigned ones)."""

    public_base_url: str
    attempt: int = 1
    evidence_images: bool = True
    evidence: EvidenceUrls | None = None

    def evidence_url(self, alert_id: str) -> str:
        if self.evidence is not None:
            return self.evidence.url(self.public_base_url, alert_id)
        return f"{self.public_base_url.rstrip('/')}/evidence/{alert_id}.jpg"


class SummaryClip(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str
    clip: ClipRef
    score: float
    views: int | None = None


class FloodSummary(BaseModel):
    """The one message that replaces an entity's alerts past the limit of a window.

    ``alerts`` counts every alert of the entity in the window; ``suppressed`` those that got no
    message of their own; ``top`` the most viewed of the suppressed, most viewed first.
    """

    model_config = ConfigDict(frozen=True)

    entity: AlertEntity
    window_start: datetime
    window_end: datetime
    alerts: int
    suppressed: int
    platforms: dict[str, int] = Field(default_factory=dict)
    top: list[SummaryClip] = Field(default_factory=list)

    @property
    def summary_id(self) -> str:
        return f"{self.entity.id}@{int(self.window_start.timestamp())}"


class Sink(ABC):
    """One destination of alerts. ``name`` is short and stable: it is a metric label and part
    of the deduplication key, so renaming a sink would deliver its alerts again.

    ``story_messages``: how many copies of one story (``Alert.story``) get a delivery of their
    own; the notifier settles the later ones as ``grouped``, without a call. None: every copy
    (a webhook's machines get every alert, grouped by the ``story`` field it carries; a sink
    that edits one message per story is handed every copy too).
    """

    name: str
    story_messages: int | None = None

    @abstractmethod
    async def deliver(self, alert: Alert, context: DeliveryContext) -> None:
        """Deliver one alert, once; raise a ``DeliveryError`` when the receiver did not take it."""

    @abstractmethod
    async def deliver_summary(self, summary: FloodSummary, context: DeliveryContext) -> None:
        """Deliver a flood-control summary; errors as for ``deliver``."""

    def secrets(self) -> list[str]:
        """Values (URLs, keys) that must never appear in a log line."""
        return []
