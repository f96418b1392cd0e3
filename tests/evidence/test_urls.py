"""Evidence images only under signed, expiring URLs or to reviewers (issue 11, found 9): an
alert id anyone can compute no longer tells anyone whether a clip was flagged, and Slack,
which fetches the image without credentials, still gets it."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from pydantic import SecretStr

from monitor.alerts.base import DeliveryContext
from monitor.alerts.slack import slack_message
from monitor.config import NotifySettings, PipelineSettings, ReviewSettings, Settings
from monitor.evidence.files import save_evidence
from monitor.evidence.urls import EvidenceUrls, may_see_evidence, shared_key
from monitor.media import load_media
from monitor.pipeline.roles import create_pipeline
from monitor.records import Alert, EvidenceRecord
from monitor.review.access import Access
from tests.alerts.receiver import make_alert

ALERT = make_alert("c1")
TOKEN = "reviewer-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _query(path: str) -> dict[str, str]:
    return dict(part.split("=") for part in path.split("?")[1].split("&"))


def test_a_signature_holds_for_its_id_until_it_expires() -> None:
    clock = Clock()
    urls = EvidenceUrls(b"k" * 32, ttl_s=3600, clock=clock)
    query = _query(urls.path(ALERT.alert_id))
    assert urls.verify(ALERT.alert_id, query["exp"], query["sig"])
    other = Alert.id_for("demo:c2", "ghostface")
    assert not urls.verify(other, query["exp"], query["sig"])  # not another alert's
    assert not urls.verify(ALERT.alert_id, str(int(query["exp"]) + 1), query["sig"])
    assert not urls.verify(ALERT.alert_id, query["exp"], query["sig"][:-1] + "0")
    assert not urls.verify(ALERT.alert_id, None, None)
    assert not EvidenceUrls(b"x" * 32, clock=clock).verify(
        ALERT.alert_id, query["exp"], query["sig"]
    )
    clock.now += 3601
    assert not urls.verify(ALERT.alert_id, query["exp"], query["sig"])


def test_evidence_is_seen_under_a_fresh_signed_url_or_by_a_reviewer_and_by_no_one_else() -> None:
    # The one rule both the worker's /evidence route and the review page's app follow.
    clock = Clock()
    urls = EvidenceUrls(b"k" * 32, ttl_s=3600, clock=clock)
    reviewers = Access(ReviewSettings(token=SecretStr(TOKEN)))
    signed = _query(urls.path(ALERT.alert_id))
    bearer = f"Bearer {TOKEN}"

    def may_see(query: dict[str, str], authorization: str | None = None) -> bool:
        return may_see_evidence(urls, reviewers, ALERT.alert_id, query, authorization)

    assert may_see(signed), "a valid signature, no credentials: Slack, a page's <img>"
    assert not may_see({}), "neither a signature nor credentials"
    assert not may_see({**signed, "sig": signed["sig"][:-1] + "0"}), "a tampered signature"
    assert not may_see({**signed, "exp": str(int(signed["exp"]) + 1)}), "a stretched expiry"
    assert not may_see({}, "Bearer not-the-token"), "credentials that name no reviewer"
    assert may_see({}, bearer), "a reviewer needs no signature"

    clock.now += 3601
    assert not may_see(signed), "an expired signature"
    assert may_see(signed, bearer), "a reviewer, even under an expired link"


def test_the_shared_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    first = shared_key(tmp_path)
    assert shared_key(tmp_path) == first and len(first) == 32
    key_file = next((tmp_path / "evidence").iterdir())
    assert key_file.stat().st_mode & 0o077 == 0
    assert [p.name for p in (tmp_path / "evidence").iterdir()] == [".url-key"]


@pytest.fixture
async def monitor_web(
    tmp_path: Path, package_file: Callable[[str], Path]
) -> AsyncIterator[tuple[str, Settings]]:
    settings = Settings(
        pipeline=PipelineSettings(state_dir=tmp_path),
        notify=NotifySettings(public_base_url="http://placeholder"),
        review=ReviewSettings(token=SecretStr(TOKEN)),
    )
    pipeline = create_pipeline(settings, "kafka://127.0.0.1:9", roles=())
    frames = load_media(package_file("t1.jpg"))
    save_evidence(
        tmp_path, ALERT.alert_id, frames, [EvidenceRecord(signal="visual", score=1, frame_time=0)]
    )
    runner = web.AppRunner(pipeline.app.web.web_app)  # type: ignore[attr-defined]  # aiohttp driver
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", settings
    await runner.cleanup()
    pipeline.state.close()


async def test_evidence_needs_a_signed_url_or_a_reviewer_and_slack_gets_a_signed_one(
    monitor_web: tuple[str, Settings], tmp_path: Path
) -> None:
    base, _ = monitor_web
    async with httpx.AsyncClient(base_url=base) as client:
        # The plain, predictable URL says nothing: the same answer for a flagged clip and
        # for one never seen.
        flagged = await client.get(f"/evidence/{ALERT.alert_id}.jpg")
        unknown = await client.get(f"/evidence/{'0' * 20}.jpg")
        assert flagged.status_code == unknown.status_code == 403
        assert flagged.content == unknown.content

        # What Slack gets in the message: signed with the worker's key, fetched without
        # credentials.
        context = DeliveryContext(public_base_url=base, evidence=EvidenceUrls.for_dir(tmp_path))
        message = slack_message(ALERT, context)
        image_url = next(b["image_url"] for b in message["blocks"] if b["type"] == "image")
        assert "?exp=" in image_url and "&sig=" in image_url
        fetched = await client.get(image_url)
        assert fetched.status_code == 200 and fetched.content[:2] == b"\xff\xd8"

        # A reviewer's credentials do without a signature; wrong ones do not.
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (
            await client.get(f"/evidence/{ALERT.alert_id}.jpg", headers=bearer)
        ).status_code == 200
        wrong = {"Authorization": "Basic " + base64.b64encode(b"x:y").decode()}
        assert (
            await client.get(f"/evidence/{ALERT.alert_id}.jpg", headers=wrong)
        ).status_code == 403

        # Another key's signature (a guess, an old deployment's) is refused.
        forged = EvidenceUrls(b"f" * 32).path(ALERT.alert_id)
        assert (await client.get(forged)).status_code == 403


def test_a_configured_secret_signs_the_same_in_every_role(tmp_path: Path) -> None:
    one = EvidenceUrls.for_dir(tmp_path / "a", "shared-secret")
    two = EvidenceUrls.for_dir(tmp_path / "b", "shared-secret")
    exp, sig = (p.split("=")[1] for p in one.path(ALERT.alert_id).split("?")[1].split("&"))
    assert two.verify(ALERT.alert_id, exp, sig)
    assert not (tmp_path / "a").exists()  # no key file when the secret is configured
