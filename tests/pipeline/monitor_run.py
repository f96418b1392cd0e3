"""What the whole-monitor tests share: the environment of a worker with every role, the
demo's expected alerts, a Slack webhook on 127.0.0.1 that counts messages, and a sighting of a
new clip with a demo clip's media. Their fixtures (a broker, the demo, its platform, topics,
Slack) are in ``conftest.py``."""

from __future__ import annotations

import json
import os
from collections import Counter
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

from monitor.config import DecodeSettings
from monitor.demo.catalogue import DemoCatalogue
from monitor.pipeline.broker import EmbeddedBroker
from monitor.records import ClipSeen, encode

__all__ = [
    "DECODE",
    "FIRST_ALERTS_S",
    "REVIEW_TOKEN",
    "SIGNED_CLIP",
    "FakeSlack",
    "expected_alerts",
    "sighting",
    "slack_alert_ids",
    "worker_env",
]

DECODE = DecodeSettings(max_frames=4, even_frames=4)
FIRST_ALERTS_S = 240.0
REVIEW_TOKEN = "e2e-review-token"
SIGNED_CLIP = "bbb-cropped"
"""The demo clip whose file carries a C2PA manifest saying a generator made it."""


def worker_env(
    state_dir: Path,
    web_port: int,
    broker: EmbeddedBroker,
    demo: DemoCatalogue,
    platform_url: str,
    slack: str,
    **more: str,
) -> dict[str, str]:
    """The environment of ``likeness-monitor up`` on the test's broker, demo and Slack, with
    short timeouts and small batches; ``more`` adds to it or overrides it."""
    return {
        **os.environ,
        "LIKENESS_MONITOR_NOTIFY__SLACK_WEBHOOK_URL": slack,
        "PYTHONUNBUFFERED": "1",
        "LIKENESS_MONITOR_PIPELINE__BROKER_URL": broker.url,
        "LIKENESS_MONITOR_PIPELINE__DEMO_PLATFORM_URL": platform_url,
        "LIKENESS_MONITOR_PIPELINE__GALLERY": str(demo.gallery_dir / "built"),
        "LIKENESS_MONITOR_PIPELINE__STATE_DIR": str(state_dir),
        "LIKENESS_MONITOR_PIPELINE__WEB_PORT": str(web_port),
        "LIKENESS_MONITOR_PIPELINE__PARTITIONS": "2",
        "LIKENESS_MONITOR_PIPELINE__BROKER_SESSION_TIMEOUT_S": "3",
        "LIKENESS_MONITOR_PIPELINE__BROKER_HEARTBEAT_INTERVAL_S": "0.3",
        "LIKENESS_MONITOR_PIPELINE__CRAWL_INTERVAL_S": "3",
        "LIKENESS_MONITOR_PIPELINE__BATCH_WITHIN_S": "0.5",
        "LIKENESS_MONITOR_PIPELINE__DECODE_WORKERS": "1",
        "LIKENESS_MONITOR_REVIEW__TOKEN": REVIEW_TOKEN,
        "LIKENESS_MONITOR_LIKENESS__DEVICE": "cpu",
        "LIKENESS_MONITOR_DECODE__MAX_FRAMES": str(DECODE.max_frames),
        "LIKENESS_MONITOR_DECODE__EVEN_FRAMES": str(DECODE.even_frames),
        **more,
    }


class FakeSlack(BaseHTTPRequestHandler):
    """Slack's incoming webhook on 127.0.0.1: records each message, answers ``ok``."""

    messages: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FakeSlack.messages.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def slack_alert_ids() -> Counter[str]:
    """Alert ids of the Slack messages received (the context block names the alert)."""
    found: Counter[str] = Counter()
    for message in FakeSlack.messages:
        context = message["blocks"][-1]["elements"][0]["text"]
        found[context.split("`")[1]] += 1
    return found


def expected_alerts(demo: DemoCatalogue) -> set[str]:
    return {f"demo:{clip.id}:{entity}" for clip in demo.clips for entity in clip.expect}


def sighting(
    demo: DemoCatalogue, platform_url: str, clip_id: str, like: str
) -> tuple[bytes, bytes]:
    """A new clip id whose media is that of the demo clip ``like``."""
    media = demo.clip(like).media
    seen = ClipSeen(
        platform="demo",
        clip_id=clip_id,
        url=f"{platform_url}/watch/{like}",
        media_url=f"{platform_url}/media/{media}",
        title="reposted",
        views=5,
    )
    return seen.key.encode(), encode(seen)
