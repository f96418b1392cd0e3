"""Webhook URLs and the signing key never show in logs, metrics, errors or settings."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from pydantic import SecretStr

from monitor import metrics
from monitor.alerts.deliveries import DeliveryStore
from monitor.alerts.notifier import Notifier, build_sinks
from monitor.config import NotifySettings
from monitor.records import Alert, ParkedAlert
from tests.alerts.receiver import Receiver, make_alert

SLACK_TOKEN = "T0SECRET/B0SECRET/xoxSlackToken123"
HOOK_TOKEN = "hook-path-token-987"
SIGNING_KEY = "signing-key-very-secret-42"


async def test_secrets_are_not_in_logs_metrics_or_errors(
    receiver: Receiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # whatever an earlier CLI test set it to
    settings = NotifySettings(
        slack_webhook_url=SecretStr(f"{receiver.url}/services/{SLACK_TOKEN}"),
        webhook_url=SecretStr(f"{receiver.url}/{HOOK_TOKEN}"),
        webhook_secret=SecretStr(SIGNING_KEY),
        retry_backoff_s=0.001,
        retry_inline_attempts=2,
    )
    parked: list[ParkedAlert] = []
    rejected: list[str] = []

    async def park(item: ParkedAlert) -> None:
        parked.append(item)

    async def reject(alert: Alert, reason: str) -> None:
        rejected.append(reason)

    # A receiver that echoes the path it was called on in its error page.
    receiver.answer(503, times=2)  # slack: retried, then parked
    receiver.answer(404, f"no route /{HOOK_TOKEN}")  # webhook: refused
    async with httpx.AsyncClient() as client:
        notifier = Notifier(
            build_sinks(settings, client),
            DeliveryStore(tmp_path / "notify.sqlite3"),
            settings,
            park=park,
            reject=reject,
        )
        try:
            await notifier.handle(make_alert("c1"))
            await notifier.handle(make_alert("c2"))
            await notifier.redeliver(
                parked[0].model_copy(update={"next_attempt_at": parked[0].first_failed_at})
            )
        finally:
            notifier.close()
            notifier.store.close()

    assert len(receiver.requests) >= 4 and len(parked) >= 1 and len(rejected) == 1
    assert "HTTP Request: POST" in caplog.text  # httpx did log the requests...
    assert "[redacted]" in caplog.text  # ...with the URL blanked
    exposed = {
        "logs": caplog.text,
        "parked": " ".join(p.last_error for p in parked),
        "rejected": " ".join(rejected),
        "metrics": generate_latest(metrics.registry).decode(),
        "settings": f"{settings!r} {settings}",
    }
    assert "likeness_notifications_total" in exposed["metrics"]
    for where, text in exposed.items():
        for secret in (SLACK_TOKEN, "xoxSlackToken123", HOOK_TOKEN, SIGNING_KEY):
            assert secret not in text, f"{secret} in {where}"
