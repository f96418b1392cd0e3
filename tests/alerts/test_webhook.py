"""The generic webhook: the Alert record as JSON, signed with the timestamp."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
from pydantic import SecretStr

from monitor.alerts.base import DeliveryContext
from monitor.alerts.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSink,
    sign,
    verify_signature,
)
from monitor.records import Alert, Synthetic, decode
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


# --- known answer ------------------------------------------------------------------------------
# The documented format (monitor/alerts/webhook.py, the README):
#     X-Likeness-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>
# as a fixed vector, so that a change of format (separator, order, digest, encoding, prefix)
# fails here rather than at every receiver. The answer was computed outside the project:
#     printf '%s' '1767225600.{"schema":1,"alert_id":"0123456789abcdef0123","score":0.91}' \
#       | openssl dgst -sha256 -hmac whsec-test-6f1c
VECTOR_TIMESTAMP = "1767225600"
VECTOR_BODY = b'{"schema":1,"alert_id":"0123456789abcdef0123","score":0.91}'
VECTOR_SIGNATURE = "sha256=d242698ebdd84a908f41dec41b7303fc97f2cdc76de309e6ff94a3bc0d9927de"


def test_the_signature_of_a_known_body_is_the_known_answer() -> None:
    by_hand = hmac.new(b"whsec-test-6f1c", b"1767225600." + VECTOR_BODY, hashlib.sha256)
    assert f"sha256={by_hand.hexdigest()}" == VECTOR_SIGNATURE
    assert sign(SECRET, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    assert sign(SECRET.encode(), VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


async def test_the_sink_signs_the_bytes_it_sends_with_the_whole_seconds_it_sends(
    receiver: Receiver,
) -> None:
    async with httpx.AsyncClient() as client:
        sink = WebhookSink(
            client,
            SecretStr(f"{receiver.url}/hook"),
            SecretStr(SECRET),
            clock=lambda: 1767225600.75,
        )
        await sink.deliver(make_alert("c1"), CONTEXT)
    (request,) = receiver.delivered("/hook")
    assert request.headers["X-Likeness-Timestamp"] == "1767225600"
    by_hand = hmac.new(b"whsec-test-6f1c", b"1767225600." + request.body, hashlib.sha256)
    assert request.headers["X-Likeness-Signature"] == f"sha256={by_hand.hexdigest()}"


async def test_the_body_carries_whether_the_clip_is_ai_generated(receiver: Receiver) -> None:
    synthetic = Synthetic(source="platform", value="ai_generated", detail="YouTube label")
    request = await delivered(
        receiver, make_alert("c1").model_copy(update={"synthetic": synthetic})
    )
    assert json.loads(request.body)["synthetic"] == {
        "source": "platform",
        "value": "ai_generated",
        "detail": "YouTube label",
        "generator": None,
        "validated": None,
    }
