"""The generic webhook: the Alert record as JSON, signed with the timestamp."""

from __future__ import annotations

import time

import httpx
from pydantic import SecretStr

from monitor.alerts.base import DeliveryContext
from monitor.alerts.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSink, verify_signature
from monitor.records import Alert, decode
from tests.alerts.receiver import Receiver, Request, make_alert

SECRET = "whsec-test-6f1c"
CONTEXT = DeliveryContext(public_base_url="https://monitor.example.org")


async def delivered(receiver: Receiver, alert: Alert) -> Request:
    async with httpx.AsyncClient() as client:
        sink = WebhookSink(client, SecretStr(f"{receiver.url}/hook"), SecretStr(SECRET))
        await sink.deliver(alert, CONTEXT)
    (request,) = receiver.delivered("/hook")
    return request


async def test_the_body_is_the_alert_record_and_the_signature_verifies(receiver: Receiver) -> None:
    alert = make_alert("c1")
    request = await delivered(receiver, alert)
    assert decode(Alert, request.body) == alert
    assert request.headers["X-Likeness-Event"] == "alert"
    assert request.headers["X-Likeness-Delivery"] == alert.alert_id
    timestamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert abs(int(timestamp) - time.time()) < 5
    assert verify_signature(SECRET, timestamp, request.body, signature)


async def test_a_tampered_body_timestamp_or_key_fails_verification(receiver: Receiver) -> None:
    request = await delivered(receiver, make_alert("c1"))
    timestamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
    body = request.body
    assert not verify_signature(SECRET, timestamp, body.replace(b"0.91", b"0.99"), signature)
    assert not verify_signature(SECRET, str(int(timestamp) + 1), body, signature)
    assert not verify_signature("another-secret", timestamp, body, signature)
    assert not verify_signature(SECRET, "not-a-number", body, signature)


async def test_a_stale_request_fails_verification_even_with_a_valid_signature(
    receiver: Receiver,
) -> None:
    request = await delivered(receiver, make_alert("c1"))
    timestamp, signature = request.headers[TIMESTAMP_HEADER], request.headers[SIGNATURE_HEADER]
    later = int(timestamp) + 301
    assert verify_signature(SECRET, timestamp, request.body, signature, 300, now=later - 2)
    assert not verify_signature(SECRET, timestamp, request.body, signature, 300, now=later)
