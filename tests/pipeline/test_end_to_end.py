"""The whole monitor, as users run it: a real broker process, the demo platform on 127.0.0.1,
real models, and every role in one worker process (``python -m monitor up``).

The tests run in order against one worker: it finds every positive of the demo once, survives
bad records and broken media, resumes after a restart without alerting twice, and learns from a
dismissal on its review page.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from monitor.config import ROLES
from monitor.demo.catalogue import DemoCatalogue
from monitor.pipeline.broker import EmbeddedBroker, free_port
from monitor.pipeline.harness import Topics, Worker, produce
from monitor.records import Alert, ClipScored, DeadLetter, decode
from tests.pipeline.monitor_run import (
    FIRST_ALERTS_S,
    REVIEW_TOKEN,
    SIGNED_CLIP,
    FakeSlack,
    expected_alerts,
    sighting,
    slack_alert_ids,
    worker_env,
)


@pytest.fixture(scope="module")
def worker(
    broker: EmbeddedBroker,
    demo: DemoCatalogue,
    platform_url: str,
    topics: Topics,
    slack: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Worker]:
    state = tmp_path_factory.mktemp("state")
    web_port = free_port()
    env = worker_env(
        state,
        web_port,
        broker,
        demo,
        platform_url,
        slack,
        LIKENESS_MONITOR_NOTIFY__PUBLIC_BASE_URL=f"http://127.0.0.1:{web_port}",
        LIKENESS_MONITOR_REVIEW__RECALIBRATE_INTERVAL_S="2",
    )
    running = Worker(env, state / "worker.log", roles=",".join(ROLES))
    running.start()
    yield running
    if running.alive():
        running.stop()


def worker_log(worker: Worker) -> str:
    return worker.log.read_text(errors="replace")[-4000:]


def test_every_positive_is_alerted_exactly_once_and_no_negative_ever(
    worker: Worker, topics: Topics, demo: DemoCatalogue
) -> None:
    wanted = expected_alerts(demo)
    assert len(wanted) >= 7
    try:
        topics.wait_for(
            lambda: wanted <= set(topics.alert_keys()), FIRST_ALERTS_S, f"alerts {wanted}"
        )
    except AssertionError:
        raise AssertionError(
            f"missing {wanted - set(topics.alert_keys())}\n{worker_log(worker)}"
        ) from None
    crawls_before = len(topics.of("clips.scored"))
    topics.wait_for(
        lambda: len(topics.of("clips.scored")) >= crawls_before + 2 * len(demo.clips),
        60,
        "two more crawls of the whole demo",
    )
    keys = topics.alert_keys()
    assert set(keys) == wanted, "only positives alert, for the entities they show"
    assert all(count == 1 for count in keys.values()), keys
    alert = decode(Alert, topics.of("alerts")[0])
    assert (
        alert.evidence
        and alert.score >= alert.threshold
        and alert.clip.url.startswith("http://127.0.0.1")
    )
    alerts = [decode(Alert, value) for value in topics.of("alerts")]
    topics.wait_for(lambda: len(FakeSlack.messages) >= len(alerts), 30, "the Slack messages")
    assert slack_alert_ids() == Counter(a.alert_id for a in alerts), "one message per alert"
    image = next(b for b in FakeSlack.messages[0]["blocks"] if b["type"] == "image")["image_url"]
    evidence = httpx.get(image, timeout=10)
    assert evidence.status_code == 200 and evidence.content[:3] == b"\xff\xd8\xff"


def test_a_clip_signed_by_a_generator_alerts_as_ai_generated_in_slack_and_metrics(
    worker: Worker, topics: Topics, demo: DemoCatalogue
) -> None:
    alerts = [decode(Alert, value) for value in topics.of("alerts")]
    [signed] = [a for a in alerts if a.clip.clip_id == SIGNED_CLIP]
    synthetic = signed.synthetic
    assert (synthetic.source, synthetic.value, synthetic.validated) == (
        "c2pa",
        "ai_generated",
        True,
    )
    assert synthetic.generator == "DemoGen 1.0"
    assert {a.synthetic.value for a in alerts if a is not signed} == {"unknown"}, "never a guess"
    said = [
        element["text"]
        for message in FakeSlack.messages
        if signed.alert_id in message["blocks"][-1]["elements"][0]["text"]
        for block in message["blocks"]
        if block["type"] == "context"
        for element in block["elements"]
    ]
    assert any(
        line.startswith("AI-generated (C2PA manifest, validated, generator DemoGen 1.0)")
        for line in said
    ), said
    port = worker.env["LIKENESS_MONITOR_PIPELINE__WEB_PORT"]
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    counted = [
        line
        for line in page.splitlines()
        if line.startswith("likeness_alerts_total{") and 'synthetic="ai_generated"' in line
    ]
    assert len(counted) == 1 and 'entity="big-buck-bunny"' in counted[0], counted
    assert counted[0].endswith(" 1.0"), counted


def test_broken_media_yield_a_scored_record_with_the_reason_and_a_metric(
    worker: Worker, topics: Topics, demo: DemoCatalogue
) -> None:
    broken = {clip.id: clip.failure_reason for clip in demo.clips if clip.broken}
    assert broken == {"gone": "http_404", "glitch": "unreadable"}
    reasons = {}
    for value in topics.of("clips.scored"):
        scored = decode(ClipScored, value)
        if scored.clip.clip_id in broken and scored.failure is not None:
            reasons[scored.clip.clip_id] = scored.failure.reason
    assert reasons == broken
    port = worker.env["LIKENESS_MONITOR_PIPELINE__WEB_PORT"]
    page = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'likeness_media_failures_total{platform="demo",reason="http_404"}' in page
    assert 'likeness_media_failures_total{platform="demo",reason="unreadable"}' in page
    health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["gallery_version"]


def test_a_malformed_record_goes_to_deadletter_and_later_records_still_flow(
    worker: Worker, topics: Topics, demo: DemoCatalogue, broker: EmbeddedBroker, platform_url: str
) -> None:
    garbage = b"\x00this is not a ClipSeen"
    asyncio.run(
        produce(
            broker.bootstrap,
            "clips.discovered",
            (b"demo:bad", garbage),
            sighting(demo, platform_url, "repost-1", "bbb-mirrored"),
        )
    )
    topics.wait_for(
        lambda: "demo:repost-1:big-buck-bunny" in topics.alert_keys(),
        120,
        "the alert for the record after the bad one",
    )
    letters = [decode(DeadLetter, value) for value in topics.of("deadletter")]
    ours = [letter for letter in letters if letter.raw == garbage]
    assert len(ours) == 1
    assert ours[0].source_topic == "clips.discovered" and ours[0].offset is not None
    assert "ClipSeen" in ours[0].reason


def test_a_malformed_review_decision_goes_to_deadletter_from_the_review_role(
    topics: Topics, broker: EmbeddedBroker
) -> None:
    garbage = b'{"alert_id": "not hex", "decision": "maybe"}'
    asyncio.run(produce(broker.bootstrap, "reviews", (b"bad-review", garbage)))

    def letters() -> list[DeadLetter]:
        found = (decode(DeadLetter, value) for value in topics.of("deadletter"))
        return [letter for letter in found if letter.raw == garbage]

    topics.wait_for(lambda: bool(letters()), 60, "the bad decision on deadletter")
    [letter] = letters()
    assert letter.source_topic == "reviews" and "Review" in letter.reason


def test_a_restarted_worker_resumes_from_committed_offsets_without_alerting_twice(
    worker: Worker, topics: Topics, demo: DemoCatalogue, broker: EmbeddedBroker, platform_url: str
) -> None:
    assert worker.stop() == 0, worker_log(worker)
    asyncio.run(
        produce(
            broker.bootstrap,
            "clips.discovered",
            sighting(demo, platform_url, "while-down", "bbb-cropped"),
        )
    )
    worker.start()
    topics.wait_for(
        lambda: "demo:while-down:big-buck-bunny" in topics.alert_keys(),
        FIRST_ALERTS_S,
        "the alert for a clip discovered while the worker was down",
    )
    scored_before = len(topics.of("clips.scored"))
    topics.wait_for(
        lambda: len(topics.of("clips.scored")) >= scored_before + len(demo.clips),
        60,
        "another crawl of the whole demo",
    )
    duplicates = {key: n for key, n in topics.alert_keys().items() if n > 1}
    assert duplicates == {}, duplicates
    assert max(slack_alert_ids().values()) == 1, "no Slack message twice across the restart"


def scored_records(topics: Topics, key: str) -> list[ClipScored]:
    found = (decode(ClipScored, value) for value in topics.of("clips.scored"))
    return [record for record in found if record.clip.key == key]


def test_a_dismissal_on_the_review_page_stops_the_clip_and_its_copies_under_a_new_gallery(
    worker: Worker, topics: Topics, demo: DemoCatalogue, broker: EmbeddedBroker, platform_url: str
) -> None:
    web = f"http://127.0.0.1:{worker.env['LIKENESS_MONITOR_PIPELINE__WEB_PORT']}"
    bearer = {"Authorization": f"Bearer {REVIEW_TOKEN}"}
    alert_id = Alert.id_for("demo:bbb-cropped", "big-buck-bunny")
    before = httpx.get(f"{web}/healthz", timeout=10).json()["gallery_version"]
    with httpx.Client(base_url=web, headers=bearer, timeout=30) as client:
        page = client.get("/review")
        assert page.status_code == 200 and alert_id in page.text, worker_log(worker)
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        done = client.post(
            f"/review/{alert_id}/dismiss",
            data={"csrf": csrf, "reason": "licensed clip"},
            follow_redirects=False,
        )
        assert done.status_code == 303, done.text

    def rescored(key: str) -> list[ClipScored]:
        return [r for r in scored_records(topics, key) if r.gallery_version not in (None, before)]

    topics.wait_for(
        lambda: bool(rescored("demo:bbb-cropped")),
        180,
        "the dismissed clip re-observed and scored under a rebuilt gallery",
    )
    asyncio.run(
        produce(
            broker.bootstrap,
            "clips.discovered",
            sighting(demo, platform_url, "copy-of-cropped", "bbb-cropped"),
        )
    )
    topics.wait_for(
        lambda: bool(rescored("demo:copy-of-cropped")), 120, "the copy scored under it too"
    )
    after = httpx.get(f"{web}/healthz", timeout=10).json()["gallery_version"]
    for key in ("demo:bbb-cropped", "demo:copy-of-cropped"):
        record = rescored(key)[-1]
        assert record.gallery_version == after != before
        [bunny] = [e for e in record.entities if e.entity_id == "big-buck-bunny"]
        assert not bunny.flagged and bunny.suppressed_by is not None, bunny
    keys = topics.alert_keys()
    assert keys["demo:bbb-cropped:big-buck-bunny"] == 1, "no second alert for the clip"
    assert "demo:copy-of-cropped:big-buck-bunny" not in keys, "none for a copy of it either"
