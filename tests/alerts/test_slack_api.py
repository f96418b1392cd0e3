"""Slack through the Web API with a bot token: one message per story, edited as copies come in.

Each test runs the notifier against a fake Slack Web API on 127.0.0.1 (``slack_api.py``), so
retries, parking and dead letters are the notifier's own; "restarts" build a new notifier on
the same store file, as a worker does.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from monitor.alerts.deliveries import DeliveryStore
from monitor.alerts.notifier import Notifier, build_sinks
from monitor.alerts.settings import NotifySettings
from monitor.records import Alert, ParkedAlert, Story, decode, encode
from monitor.storage import Database
from tests.alerts.receiver import make_alert
from tests.alerts.slack_api import CHANNEL, TOKEN, FakeSlackApi
from tests.alerts.test_slack import valid_block_kit

SINK = "slack_api"
STORY = Story.id_for("demo:c1", "ghostface")

StoreAt = Callable[[str], Path | Database]


@dataclass
class Harness:
    api: FakeSlackApi
    store_at: StoreAt
    client: httpx.AsyncClient
    parked: list[ParkedAlert] = field(default_factory=list)
    rejected: list[tuple[Alert, str]] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)
    now: list[float] = field(default_factory=lambda: [1_000_000.0])
    notifiers: list[Notifier] = field(default_factory=list)

    def start(self, **overrides: object) -> Notifier:
        """A (re)started notifier with only the Web API sink; the previous one is closed."""
        if self.notifiers:
            self.notifiers[-1].close()
            self.notifiers[-1].store.close()
        settings = NotifySettings.model_validate(
            {
                "console": False,
                "slack_bot_token": TOKEN,
                "slack_channel": CHANNEL,
                "slack_api_url": self.api.url,
                "retry_backoff_s": 0.01,
                "retry_backoff_max_s": 0.05,
                "retry_inline_max_wait_s": 1.0,
                **overrides,
            }
        )

        async def park(parked: ParkedAlert) -> None:
            self.parked.append(decode(ParkedAlert, encode(parked)))

        async def reject(alert: Alert, reason: str) -> None:
            self.rejected.append((alert, reason))

        async def sleep(seconds: float) -> None:
            self.sleeps.append(round(seconds, 3))

        store = DeliveryStore(self.store_at("notify"))
        notifier = Notifier(
            build_sinks(settings, self.client, store),
            store,
            settings,
            park=park,
            reject=reject,
            clock=lambda: self.now[0],
            sleep=sleep,
        )
        self.notifiers.append(notifier)
        return notifier

    def methods(self) -> list[str]:
        return [call.method for call in self.api.calls]

    def message(self) -> dict[str, Any]:
        """The one message in the channel."""
        (message,) = self.api.messages.values()
        return message


@pytest.fixture
async def harness(state_at: StoreAt) -> AsyncIterator[Harness]:
    api = FakeSlackApi()
    await api.start()
    async with httpx.AsyncClient(timeout=5) as client:
        running = Harness(api, state_at, client)
        yield running
        for notifier in running.notifiers:
            notifier.close()
        if running.notifiers:
            running.notifiers[-1].store.close()
    await api.stop()


def copy_of_story(n: int, platforms: dict[str, int], *, platform: str = "demo") -> Alert:
    """Copy ``n`` of one story of Ghostface (1 starts it), on ``platform``."""
    alert = make_alert(f"c{n}", platform=platform, views=1000 * n)
    story = Story(
        story_id=STORY,
        first_clip="demo:c1",
        first_seen=alert.first_seen,
        copies=n,
        copy_number=n,
        platforms=platforms,
        views=sum(1000 * i for i in range(1, n + 1)),
    )
    return alert.model_copy(update={"story": story})


THREE_COPIES = [
    copy_of_story(1, {"demo": 1}),
    copy_of_story(2, {"demo": 2}),
    copy_of_story(3, {"demo": 2, "tiktok": 1}, platform="tiktok"),
]


def story_fields(message: dict[str, Any]) -> dict[str, str]:
    """The message's section fields, ``*Name*\\nvalue`` as ``{name: value}``."""
    fields: dict[str, str] = {}
    for block in message["blocks"]:
        for item in block.get("fields", []):
            name, _, value = item["text"].partition("\n")
            fields[name.strip("*")] = value
    return fields


def latest_link(message: dict[str, Any]) -> str:
    text: str = message["blocks"][1]["text"]["text"]
    return text.split("/watch/")[1].split("|")[0]


async def test_a_story_is_one_message_that_each_copy_updates(harness: Harness) -> None:
    notifier = harness.start()
    for alert in THREE_COPIES:
        await notifier.handle(alert)
    assert harness.methods() == ["chat.postMessage", "chat.update", "chat.update"]
    posted, *updates = harness.api.calls
    assert posted.headers["Authorization"] == f"Bearer {TOKEN}"
    assert posted.body["channel"] == CHANNEL
    ts = next(iter(harness.api.messages))[1]
    assert [(u.body["channel"], u.body["ts"]) for u in updates] == [(CHANNEL, ts)] * 2
    for call in harness.api.calls:
        valid_block_kit(call.body)

    message = harness.message()
    fields = story_fields(message)
    assert fields["Copies"] == "3"
    assert fields["Platforms"] == "demo 2 · tiktok 1"
    assert fields["Views, all copies"] == "6,000"
    assert fields["Signals"] == "visual 0.910/0.800"
    assert latest_link(message) == "c3"
    assert "3 copies of one clip, the latest on tiktok" in message["blocks"][0]["text"]["text"]
    assert [notifier.store.outcome(a.key, SINK) for a in THREE_COPIES] == ["sent"] * 3
    assert harness.parked == [] and harness.rejected == []


async def test_a_restarted_worker_updates_the_message_it_posted_before(harness: Harness) -> None:
    await harness.start().handle(THREE_COPIES[0])
    await harness.start().handle(THREE_COPIES[1])
    assert harness.methods() == ["chat.postMessage", "chat.update"]
    assert story_fields(harness.message())["Copies"] == "2"


async def test_an_older_copy_delivered_late_does_not_roll_the_message_back(
    harness: Harness,
) -> None:
    notifier = harness.start()
    first, second, third = THREE_COPIES
    for alert in (first, third, second):  # the second was parked, say, and comes back last
        await notifier.handle(alert)
    assert harness.methods() == ["chat.postMessage", "chat.update"]
    assert story_fields(harness.message())["Copies"] == "3"
    assert latest_link(harness.message()) == "c3"
    assert notifier.store.outcome(second.key, SINK) == "sent"  # settled, without a call


async def test_copies_of_one_story_delivered_at_once_end_on_the_latest(harness: Harness) -> None:
    """The alerts agent and the retry agent may deliver copies of one story at the same time;
    the story's message is read and written by one of them at a time."""
    notifier = harness.start()
    first, second, third = THREE_COPIES
    await notifier.handle(first)
    await asyncio.gather(notifier.handle(third), notifier.handle(second))
    assert harness.methods() == ["chat.postMessage", "chat.update"]
    assert story_fields(harness.message())["Copies"] == "3"


async def test_a_copy_whose_story_has_no_message_yet_posts_one(harness: Harness) -> None:
    """The first copy parked (Slack down for it), the second delivered: the second posts the
    story's message, and the first, back later, leaves it as it is."""
    notifier = harness.start()
    harness.api.answer(429, Retry_After="120")
    first, second, _ = THREE_COPIES
    await notifier.handle(first)
    (parked,) = harness.parked
    harness.now[0] += 121
    await notifier.handle(second)
    await notifier.redeliver(parked)
    assert harness.methods() == ["chat.postMessage", "chat.postMessage"]
    assert story_fields(harness.message())["Copies"] == "2"
    assert notifier.store.outcome(first.key, SINK) == "sent"


async def test_a_deleted_message_is_posted_anew_and_the_new_one_updated(harness: Harness) -> None:
    notifier = harness.start()
    await notifier.handle(THREE_COPIES[0])
    ((channel, ts),) = harness.api.messages
    harness.api.delete(channel, ts)
    await notifier.handle(THREE_COPIES[1])
    await notifier.handle(THREE_COPIES[2])
    assert harness.methods() == [
        "chat.postMessage",
        "chat.update",  # message_not_found
        "chat.postMessage",
        "chat.update",
    ]
    ((_, new_ts),) = harness.api.messages
    assert new_ts != ts and harness.api.calls[-1].body["ts"] == new_ts
    assert story_fields(harness.message())["Copies"] == "3"
    assert harness.rejected == []


@pytest.mark.parametrize("error", ["cant_update_message", "edit_window_closed"])
async def test_a_message_that_can_no_longer_be_edited_is_posted_anew(
    harness: Harness, error: str
) -> None:
    notifier = harness.start()
    await notifier.handle(THREE_COPIES[0])
    harness.api.fail(error)
    await notifier.handle(THREE_COPIES[1])
    await notifier.handle(THREE_COPIES[2])
    assert harness.methods() == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
        "chat.update",
    ]
    old, new = sorted(harness.api.messages, key=lambda where: float(where[1]))
    assert harness.api.calls[-1].body["ts"] == new[1]
    assert "Copies" not in story_fields(harness.api.messages[old])  # left as the first copy had it
    assert story_fields(harness.api.messages[new])["Copies"] == "3" and harness.rejected == []


async def test_rate_limits_are_retried_after_retry_after_or_parked(harness: Harness) -> None:
    notifier = harness.start()
    harness.api.answer(429, Retry_After="0.5")
    harness.api.fail("ratelimited", Retry_After="0.25")
    await notifier.handle(THREE_COPIES[0])
    assert harness.sleeps == [0.5, 0.25]
    assert harness.methods() == ["chat.postMessage"] * 3 and len(harness.api.messages) == 1

    harness.api.answer(429, Retry_After="120")
    await notifier.handle(THREE_COPIES[1])
    (parked,) = harness.parked
    assert parked.sink == SINK and parked.attempts == 1 and "HTTP 429" in parked.last_error
    harness.now[0] += 121
    await notifier.redeliver(parked)
    assert harness.methods()[-1] == "chat.update"
    assert story_fields(harness.message())["Copies"] == "2"


async def test_slacks_own_failures_are_retried_with_backoff(harness: Harness) -> None:
    harness.api.answer(503)
    harness.api.fail("internal_error")
    await harness.start().handle(THREE_COPIES[0])
    assert harness.sleeps == [0.01, 0.02]
    assert len(harness.api.messages) == 1 and harness.parked == []


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"slack_bot_token": "xoxb-revoked-or-wrong"}, "invalid_auth"),
        ({"slack_channel": "C0NOTMEMBER"}, "channel_not_found"),
    ],
)
async def test_a_refusal_is_not_retried_and_goes_to_deadletter(
    harness: Harness, overrides: dict[str, object], error: str
) -> None:
    notifier = harness.start(**overrides)
    await notifier.handle(THREE_COPIES[0])
    await notifier.handle(THREE_COPIES[0])
    assert harness.methods() == ["chat.postMessage"] and harness.sleeps == []
    ((rejected, reason),) = harness.rejected
    assert rejected == THREE_COPIES[0] and reason == f"{SINK}: chat.postMessage: {error}"
    assert harness.api.messages == {} and harness.parked == []


async def test_a_message_slack_cannot_fetch_the_image_of_is_sent_without_it(
    harness: Harness,
) -> None:
    harness.api.refuse_images = True
    notifier = harness.start(public_base_url="https://monitor.example.org")
    await notifier.handle(THREE_COPIES[0])
    await notifier.handle(THREE_COPIES[1])
    assert harness.methods() == ["chat.postMessage"] * 2 + ["chat.update"] * 2
    assert all(b["type"] != "image" for b in harness.message()["blocks"])
    assert story_fields(harness.message())["Copies"] == "2" and harness.rejected == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("<html>a proxy's page</html>", "the answer is not JSON"),
        ('{"ok": true}', "ok without a channel and ts"),
        ("[1, 2]", "the answer is not an object"),
    ],
)
async def test_an_answer_off_slacks_shape_goes_to_deadletter(
    harness: Harness, body: str, why: str
) -> None:
    harness.api.answer(200, body)
    await harness.start().handle(THREE_COPIES[0])
    ((_, reason),) = harness.rejected
    assert reason == f"{SINK}: chat.postMessage: {why}" and harness.parked == []


async def test_alerts_without_a_story_get_a_message_each(harness: Harness) -> None:
    notifier = harness.start()
    await notifier.handle(make_alert("old1"))
    await notifier.handle(make_alert("old2"))
    assert harness.methods() == ["chat.postMessage"] * 2
    assert sorted(latest_link(m) for m in harness.api.messages.values()) == ["old1", "old2"]
    assert all("Copies" not in story_fields(m) for m in harness.api.messages.values())


async def test_stories_past_the_flood_limit_are_summarised_through_the_api(
    harness: Harness,
) -> None:
    harness.now[0] = 0.0
    notifier = harness.start(flood_max_per_window=1, flood_window_s=10)
    await notifier.handle(make_alert("a"))
    await notifier.handle(make_alert("b"))
    harness.now[0] = 11
    assert await notifier.flush() == 1
    summary = harness.api.calls[-1].body
    assert summary["channel"] == CHANNEL and "1 more clips (2 in all)" in summary["text"]


async def test_the_token_never_appears_in_logs_errors_or_parked_alerts(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"bad gateway; your request had Authorization: Bearer {TOKEN}"
    harness.api.answer(502, echo, times=3)
    notifier = harness.start()
    await notifier.handle(THREE_COPIES[0])
    (parked,) = harness.parked
    harness.api.answer(403, "x" * 128 + echo)  # the error message keeps 200 characters
    harness.now[0] += 60
    await notifier.redeliver(parked)
    await harness.start().handle(THREE_COPIES[1])
    assert harness.methods()[-1] == "chat.postMessage"

    ((_, reason),) = harness.rejected
    assert "[redacted]" in parked.last_error and "[redacted]" in reason
    seen = [caplog.text, parked.last_error, *(reason for _, reason in harness.rejected)]
    seen += [repr(n.sinks) for n in harness.notifiers]
    assert all(TOKEN not in text and TOKEN[:8] not in text for text in seen)


def test_a_bot_token_needs_a_channel_and_the_error_does_not_quote_it() -> None:
    with pytest.raises(ValueError, match="slack_channel") as caught:
        NotifySettings(slack_bot_token=SecretStr(TOKEN))
    assert TOKEN not in "".join(traceback.format_exception(caught.value))
    with pytest.raises(ValueError, match="slack_bot_token"):
        NotifySettings(slack_channel=CHANNEL)
    assert TOKEN not in repr(NotifySettings(slack_bot_token=SecretStr(TOKEN), slack_channel="C1"))


async def test_both_slack_sinks_may_be_configured_and_the_api_one_needs_the_store(
    tmp_path: Path,
) -> None:
    settings = NotifySettings(
        console=False,
        slack_webhook_url=SecretStr("https://hooks.slack.com/services/T/B/x"),
        slack_bot_token=SecretStr(TOKEN),
        slack_channel=CHANNEL,
    )
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match="DeliveryStore"):
            build_sinks(settings, client)
        store = DeliveryStore(tmp_path / "notify.sqlite3")
        sinks = build_sinks(settings, client, store)
        store.close()
    assert [(s.name, s.story_messages) for s in sinks] == [("slack", 3), (SINK, None)]
    assert json.dumps(sinks[1].secrets()) == json.dumps([TOKEN])
