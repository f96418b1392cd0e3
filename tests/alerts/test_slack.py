"""Slack messages: valid Block Kit with what a reviewer needs, posted to an incoming webhook."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from slack_sdk.models.blocks import Block

from monitor.alerts.base import DeliveryContext, FloodSummary, SummaryClip
from monitor.alerts.slack import TREND_POINTS, SlackSink, slack_message, slack_summary, sparkline
from monitor.errors import PermanentDeliveryError, RetryableDeliveryError
from monitor.records import EvidenceRecord, Story, Synthetic, ViewsAt
from tests.alerts.receiver import Receiver, make_alert

CONTEXT = DeliveryContext(public_base_url="https://monitor.example.org")


def valid_block_kit(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Parse every block back with slack-sdk's models and validate it again."""
    blocks = message["blocks"]
    assert isinstance(message["text"], str) and message["text"]
    assert 0 < len(blocks) <= 50
    for raw in blocks:
        parsed = Block.parse(raw)
        assert parsed is not None, raw
        assert parsed.to_dict() == raw  # to_dict() validates; the round trip loses nothing
    return list(blocks)


def test_an_alert_message_is_valid_block_kit_with_entity_owner_score_views_clip_and_evidence() -> (
    None
):
    alert = make_alert("c1", views=24_000)
    blocks = valid_block_kit(slack_message(alert, CONTEXT))
    kinds = [block["type"] for block in blocks]
    assert kinds == ["header", "section", "image", "actions", "context"]
    assert "Ghostface" in blocks[0]["text"]["text"]
    fields = "\n".join(field["text"] for field in blocks[1]["fields"])
    for expected in (
        "Ghostface",
        "Scream",
        "Spyglass Media",
        "demo",
        "0.910 vs threshold 0.800",
        "24,000",
        "/h)",
        "*Signals*\nvisual 0.910/0.800",
    ):
        assert expected in fields, expected
    assert "https://clips.example/watch/c1" in blocks[1]["text"]["text"]
    assert blocks[2]["image_url"] == f"https://monitor.example.org/evidence/{alert.alert_id}.jpg"
    urls = [element["url"] for element in blocks[3]["elements"]]
    assert urls[0] == "https://clips.example/watch/c1"


def test_velocity_is_views_per_hour_since_posting() -> None:
    alert = make_alert("c1", views=24_000)  # posted two hours before it was observed
    fields = "\n".join(f["text"] for f in slack_message(alert, CONTEXT)["blocks"][1]["fields"])
    assert "24,000 (≈ 12,000/h)" in fields


def test_platform_text_cannot_inject_slack_markup_or_links() -> None:
    alert = make_alert("c1", title="<!channel> free <https://evil.example|prize> & more")
    message = slack_message(alert, CONTEXT)
    valid_block_kit(message)
    text = message["blocks"][1]["text"]["text"]
    assert "<!channel>" not in text and "<https://evil.example" not in text
    assert "&lt;!channel&gt;" in text and "&amp;" in text


def test_overlong_titles_are_cut_to_block_kit_limits() -> None:
    alert = make_alert("c1", title="x" * 5000)
    valid_block_kit(slack_message(alert, CONTEXT))


def test_without_evidence_images_the_message_has_no_image_block() -> None:
    context = DeliveryContext(public_base_url="https://monitor.example.org", evidence_images=False)
    kinds = [b["type"] for b in valid_block_kit(slack_message(make_alert("c1"), context))]
    assert "image" not in kinds


def test_a_flood_summary_is_valid_block_kit_with_the_count_and_top_clips() -> None:
    alerts = [make_alert(f"c{i}", views=100 * i) for i in range(3)]
    summary = FloodSummary(
        entity=alerts[0].entity,
        window_start=datetime(2025, 1, 1, 12, 0, tzinfo=UTC),
        window_end=datetime(2025, 1, 1, 12, 10, tzinfo=UTC),
        alerts=13,
        suppressed=3,
        platforms={"demo": 3},
        top=[
            SummaryClip(alert_id=a.alert_id, clip=a.clip, score=a.score, views=a.views)
            for a in alerts
        ],
    )
    blocks = valid_block_kit(slack_summary(summary, CONTEXT))
    assert "3 more clips (13 in all)" in blocks[0]["text"]["text"]
    top = blocks[2]["text"]["text"]
    assert all(f"https://clips.example/watch/c{i}" in top for i in range(3))


async def test_the_sink_posts_the_message_as_json_to_the_webhook(receiver: Receiver) -> None:
    alert = make_alert("c1")
    async with httpx.AsyncClient() as client:
        sink = SlackSink(client, SecretStr(f"{receiver.url}/services/T1/B1/abc"))
        await sink.deliver(alert, CONTEXT)
    (request,) = receiver.delivered("/services/T1/B1/abc")
    assert request.headers["Content-Type"].startswith("application/json")
    assert json.loads(request.body) == slack_message(alert, CONTEXT)


async def test_a_message_refused_for_its_image_is_sent_again_without_it(receiver: Receiver) -> None:
    receiver.answer(400, "invalid_blocks")
    async with httpx.AsyncClient() as client:
        sink = SlackSink(client, SecretStr(f"{receiver.url}/services/T1/B1/abc"))
        await sink.deliver(make_alert("c1"), CONTEXT)
    first, second = (json.loads(r.body) for r in receiver.requests)
    assert "image" in [b["type"] for b in first["blocks"]]
    assert "image" not in [b["type"] for b in second["blocks"]]


@pytest.mark.parametrize(
    ("status", "body", "error", "reason"),
    [
        (429, "rate_limited", RetryableDeliveryError, "rate_limited"),
        (503, "", RetryableDeliveryError, "server_error"),
        (404, "no_service", PermanentDeliveryError, "rejected"),
        (403, "action_prohibited", PermanentDeliveryError, "rejected"),
    ],
)
async def test_receiver_answers_map_to_retryable_or_permanent_errors(
    receiver: Receiver, status: int, body: str, error: type[Exception], reason: str
) -> None:
    receiver.answer(status, body, Retry_After="7")
    async with httpx.AsyncClient() as client:
        sink = SlackSink(client, SecretStr(f"{receiver.url}/services/T1/B1/abc"))
        with pytest.raises(error) as caught:
            await sink.deliver(make_alert("c1"), CONTEXT)
    assert getattr(caught.value, "reason", None) == reason
    if isinstance(caught.value, RetryableDeliveryError):
        assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    "url",
    [
        "https://a> <!channel> <https://b|Official takedown form>",
        "https://a|<!here>",
        "https://a\n<!everyone>",
        "https://a&lt;x>",
    ],
)
def test_a_clip_url_cannot_inject_slack_markup_or_links(url: str) -> None:
    alert = make_alert("c1")
    alert = alert.model_copy(update={"clip": alert.clip.model_copy(update={"url": url})})
    for message in (
        slack_message(alert, CONTEXT),
        slack_summary(
            FloodSummary(
                entity=alert.entity,
                window_start=datetime(2026, 1, 1, tzinfo=UTC),
                window_end=datetime(2026, 1, 1, 0, 10, tzinfo=UTC),
                alerts=12,
                suppressed=2,
                top=[SummaryClip(alert_id=alert.alert_id, clip=alert.clip, score=0.9)],
            ),
            CONTEXT,
        ),
    ):
        valid_block_kit(message)
        mrkdwn = " ".join(
            b["text"]["text"] for b in message["blocks"] if b["type"] == "section" and "text" in b
        )
        # One link only, the clip's, whose target is the whole URL and whose label is ours.
        assert "<!" not in mrkdwn and "<https://b" not in mrkdwn
        links = re.findall(r"<([^<>]*)>", mrkdwn)
        assert len(links) == 1, links
        target, _, label = links[0].partition("|")
        assert "|" not in target and not any(c.isspace() for c in target)
        assert label == "clip c1"


def test_caption_evidence_says_what_the_caption_said_and_what_it_read_like() -> None:
    alert = make_alert("c1")
    alert = alert.model_copy(
        update={
            "evidence": [
                *alert.evidence,
                EvidenceRecord(signal="caption", score=1.0, text="ghostface"),
                EvidenceRecord(
                    signal="caption",
                    score=0.71,
                    threshold=0.42,
                    region="described",
                    text="the masked <!here> killer with the long black robe",
                    reference="a killer in a white screaming mask and a black hooded robe",
                ),
            ]
        }
    )
    blocks = valid_block_kit(slack_message(alert, CONTEXT))
    [names, reads] = next(b for b in blocks if b["type"] == "context")["elements"]
    assert names["text"] == "Caption names it: “ghostface”"
    assert reads["text"] == (
        "Caption “the masked &lt;!here&gt; killer with the long black robe” reads like "
        "“a killer in a white screaming mask and a black hooded robe” (0.71 vs 0.42)"
    )


def test_whether_the_clip_is_ai_generated_and_who_says_so_is_a_context_line() -> None:
    synthetic = Synthetic(
        source="c2pa",
        value="ai_generated",
        validated=True,
        generator="Sora <2.0>",
        detail="C2PA: digitalSourceType trainedAlgorithmicMedia; manifest Valid",
    )
    message = slack_message(make_alert("c1").model_copy(update={"synthetic": synthetic}), CONTEXT)
    blocks = valid_block_kit(message)
    lines = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    [said] = [line for line in lines if line.startswith("AI-generated")]
    assert "C2PA manifest, validated, generator Sora &lt;2.0&gt;" in said
    assert "trainedAlgorithmicMedia" in said
    assert message["text"].endswith("(AI-generated)")
    # nothing says: no line (never a guess), and the fallback text says nothing either
    plain = slack_message(make_alert("c1"), CONTEXT)
    assert not any("AI" in b.get("elements", [{}])[0].get("text", "") for b in plain["blocks"])
    assert "AI-generated" not in plain["text"]


def _history(*views: int, minutes: int = 10) -> list[ViewsAt]:
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    return [
        ViewsAt(at=start + timedelta(minutes=i * minutes), views=v) for i, v in enumerate(views)
    ]


def test_views_over_time_are_a_line_of_bars_from_lowest_to_highest() -> None:
    assert sparkline([]) == "" and sparkline(_history(5)) == "", "no line from one point"
    rising = sparkline(_history(0, 10, 100, 1000, 10_000))
    assert len(rising) == TREND_POINTS
    assert rising[0] == "▁" and rising[-1] == "█"
    assert list(rising) == sorted(rising), "views that only grow never dip"
    assert set(sparkline(_history(7, 7, 7))) == {"▁"}, "flat is flat"


def test_a_story_message_shows_its_copies_platforms_and_views_over_time() -> None:
    alert = make_alert("c3", platform="youtube")
    story = Story(
        story_id="a" * 20,
        first_clip="tiktok:c1",
        first_seen=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
        copies=3,
        copy_number=3,
        platforms={"tiktok": 2, "youtube": 1},
        views=15_000,
        history=_history(1000, 4000, 15_000),
    )
    message = slack_message(alert.model_copy(update={"story": story}), CONTEXT)
    text = json.dumps(valid_block_kit(message), ensure_ascii=False)
    assert "3 copies" in message["text"]
    assert "tiktok 2" in text and "youtube 1" in text and "15,000" in text
    assert "▁" in text and "█" in text and "since 11-30 12:00 UTC" in text
