"""Alerts as JSON to any HTTPS endpoint, signed so the receiver knows they came from here.

The body is the ``Alert`` record exactly as on the ``alerts`` topic (or a ``FloodSummary``),
and each request carries::

    X-Likeness-Event: alert | summary
    X-Likeness-Delivery: <alert_id, or entity@window for a summary>   (an idempotency key)
    X-Likeness-Timestamp: <unix seconds>
    X-Likeness-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>

A receiver recomputes the HMAC over the raw body bytes (before any JSON parsing) with
``verify_signature``, or the same five lines in its own language, and rejects a timestamp
older than a few minutes so a captured request cannot be replayed later. Signing the
timestamp with the body is what makes that check meaningful. Deliveries are at least once:
a receiver that must never act twice keeps the ``X-Likeness-Delivery`` keys it has seen.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from monitor.alerts.base import DeliveryContext, FloodSummary, Sink
from monitor.alerts.secrets import post, url_secrets
from monitor.records import Alert, encode

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookSink", "sign", "verify_signature"]

SIGNATURE_HEADER = "X-Likeness-Signature"
TIMESTAMP_HEADER = "X-Likeness-Timestamp"


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Likeness-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(_key(secret), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance_s: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """True when ``signature`` is this body's and the timestamp is within ``tolerance_s``.

    ``timestamp`` and ``signature`` are the raw header values, ``body`` the raw request bytes.
    """
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature.strip())


class WebhookSink(Sink):
    """Posts signed JSON to one URL."""

    name = "webhook"

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: SecretStr,
        secret: SecretStr,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._url = url
        self._secret = secret
        self._clock = clock

    def secrets(self) -> list[str]:
        return [*url_secrets(self._url), self._secret.get_secret_value()]

    async def deliver(self, alert: Alert, context: DeliveryContext) -> None:
        await self._post(encode(alert), "alert", alert.alert_id)

    async def deliver_summary(self, summary: FloodSummary, context: DeliveryContext) -> None:
        await self._post(summary.model_dump_json().encode(), "summary", summary.summary_id)

    async def _post(self, body: bytes, event: str, delivery: str) -> None:
        timestamp = str(int(self._clock()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "likeness-monitor",
            "X-Likeness-Event": event,
            "X-Likeness-Delivery": delivery,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret.get_secret_value(), timestamp, body),
        }
        await post(self._client, self.name, self._url, body, headers)
