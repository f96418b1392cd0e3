"""Alerts to Slack through the Web API with a bot token: one message per story, kept up to date.

A viral clip re-posted hundreds of times is one story (``Alert.story``), and decide sends its
alerts in order, keyed by the story. An incoming webhook can only post, so each copy would be
a message of its own; with a bot token (scope ``chat:write``) this sink posts the story's first
alert with ``chat.postMessage`` and edits that message with ``chat.update`` as each later copy
comes in: copies, platforms, views of all copies, the latest copy's link and signals.

Which message a story has, and how many copies it shows, is kept in the notifier's
``DeliveryStore``, so a restarted worker updates the message instead of posting a second one.
A copy whose story the message already shows as far or further (an older copy redelivered
late, a parked one) is settled without a call: the message never goes back. A message that
can no longer be edited (deleted, or past the workspace's edit window) is replaced by a new
one, which later copies update. An alert without a story (written before stories) is a
message of its own, as with the webhook.

The Web API answers HTTP 200 for most refusals, with ``{"ok": false, "error": "..."}``; they
map onto the delivery error tree as the webhook's statuses do: rate limits and Slack's own
failures are retried by the notifier, anything else (a bad token, an unknown channel) is
refused and goes to the dead letters, named by Slack's error code. The token is a secret: it
travels only in the ``Authorization`` header and is never logged (``secrets()``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from monitor.alerts.base import DeliveryContext, FloodSummary, Sink
from monitor.alerts.deliveries import DeliveryStore, StoryPost
from monitor.alerts.secrets import REDACTED, post
from monitor.alerts.slack import slack_message, slack_summary
from monitor.errors import (
    DeliveryError,
    PermanentDeliveryError,
    RetryableDeliveryError,
    SlackApiError,
)
from monitor.records import Alert, Story
from monitor.retry import parse_retry_after

__all__ = ["GONE", "RETRYABLE", "SlackApiSink"]

log = logging.getLogger(__name__)

RETRYABLE = {
    "ratelimited": "rate_limited",
    "internal_error": "server_error",
    "fatal_error": "server_error",
    "service_unavailable": "server_error",
    "request_timeout": "server_error",
}
"""Slack's ``ok: false`` errors worth another try, with the metric reason of each."""

GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
"""``chat.update`` errors that mean the story's message cannot be edited: post a new one."""

_ERROR_MAX = 80


def _error_code(answer: dict[str, Any]) -> str:
    """Slack's error code, bounded and printable: it goes into a log line and a dead letter."""
    raw = answer.get("error")
    code = raw if isinstance(raw, str) and raw else "unknown_error"
    return "".join(c if c.isprintable() else "?" for c in code[:_ERROR_MAX])


def _without(text: str, token: str) -> str:
    """``text`` with ``token`` blanked, and a start of it too where ``text`` ends in one: the
    error message keeps only the first 200 characters of the answer, which may cut it."""
    text = text.replace(token, REDACTED)
    for length in range(len(token) - 1, 7, -1):
        if text.endswith(token[:length]):
            return text[:-length] + REDACTED
    return text


class SlackApiSink(Sink):
    """Posts each story once to ``channel`` and edits that message as copies come in."""

    name = "slack_api"

    def __init__(
        self,
        client: httpx.AsyncClient,
        token: SecretStr,
        channel: str,
        store: DeliveryStore,
        *,
        api_url: str = "https://slack.com/api",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._token = token
        self._channel = channel
        self._store = store
        self._api = api_url.rstrip("/")
        self._clock = clock
        # One delivery of a story at a time: the retry agent may redeliver a parked copy while
        # the alerts agent delivers a newer one, and each reads then writes the story's post.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def secrets(self) -> list[str]:
        return [self._token.get_secret_value()]

    async def deliver(self, alert: Alert, context: DeliveryContext) -> None:
        if alert.story is None:
            await self._send("chat.postMessage", alert, context, {"channel": self._channel})
            return
        lock = self._locks.setdefault(alert.story.story_id, asyncio.Lock())
        async with lock:
            await self._deliver_copy(alert, alert.story, context)

    async def deliver_summary(self, summary: FloodSummary, context: DeliveryContext) -> None:
        await self._call(
            "chat.postMessage", {"channel": self._channel, **slack_summary(summary, context)}
        )

    async def _deliver_copy(self, alert: Alert, story: Story, context: DeliveryContext) -> None:
        shown = await self._store.run(self._store.story_post, story.story_id, self.name)
        if shown is None:
            await self._post_story(alert, story, context)
            return
        if story.copies <= shown.copies:
            log.info(
                "alert %s: the message of story %s shows %d copies already, not %d",
                alert.alert_id,
                story.story_id,
                shown.copies,
                story.copies,
            )
            return
        where = {"channel": shown.channel, "ts": shown.ts}
        try:
            await self._send("chat.update", alert, context, where)
        except SlackApiError as exc:
            if exc.error not in GONE:
                raise
            log.warning(
                "the message of story %s cannot be edited (%s); posting it anew",
                story.story_id,
                exc.error,
            )
            await self._post_story(alert, story, context)
            return
        await self._keep(story, StoryPost(shown.channel, shown.ts, story.copies))

    async def _post_story(self, alert: Alert, story: Story, context: DeliveryContext) -> None:
        answer = await self._send("chat.postMessage", alert, context, {"channel": self._channel})
        await self._keep(story, StoryPost(str(answer["channel"]), str(answer["ts"]), story.copies))

    async def _keep(self, story: Story, post: StoryPost) -> None:
        store = self._store
        await store.run(store.keep_story_post, story.story_id, self.name, post, self._clock())

    async def _send(
        self, method: str, alert: Alert, context: DeliveryContext, where: dict[str, str]
    ) -> dict[str, Any]:
        """Call ``method`` with the alert's message; without its image when Slack could not
        fetch it (``invalid_blocks``), as the webhook sink does."""
        try:
            return await self._call(method, {**where, **slack_message(alert, context)})
        except SlackApiError as exc:
            if not (context.evidence_images and exc.error == "invalid_blocks"):
                raise
            log.warning("slack refused alert %s with its image; sending it without", alert.alert_id)
            return await self._call(method, {**where, **slack_message(alert, context, image=False)})

    async def _call(self, method: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One Web API call; its answer when ``ok``, else the matching ``DeliveryError``.

        HTTP 429 and 5xx come back from ``post`` as retryable, other statuses as refused.
        """
        try:
            response = await post(
                self._client,
                self.name,
                SecretStr(f"{self._api}/{method}"),
                json.dumps(payload, ensure_ascii=False).encode(),
                {
                    "Content-Type": "application/json; charset=utf-8",
                    "Authorization": f"Bearer {self._token.get_secret_value()}",
                },
            )
        except (RetryableDeliveryError, PermanentDeliveryError) as exc:
            raise self._redacted(exc) from None
        answer = self._answer(method, response)
        if answer.get("ok") is True:
            return answer
        error = _error_code(answer)
        if error in RETRYABLE:
            raise RetryableDeliveryError(
                self.name,
                f"{method}: {error}",
                reason=RETRYABLE[error],
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        raise SlackApiError(self.name, method, error)

    def _redacted(self, exc: DeliveryError) -> DeliveryError:
        """``exc`` without the token: an error page may echo the request's headers, and the
        message goes into log lines, a parked alert and a dead letter."""
        text = str(exc)
        message = _without(text, self._token.get_secret_value())
        if message == text:
            return exc
        message = message.removeprefix(f"{self.name}: ")
        if isinstance(exc, RetryableDeliveryError):
            return RetryableDeliveryError(
                self.name, message, reason=exc.reason, retry_after=exc.retry_after
            )
        return PermanentDeliveryError(self.name, message)

    def _answer(self, method: str, response: httpx.Response) -> dict[str, Any]:
        """The JSON object Slack answered. Anything else is refused, not retried: it came with
        a 2xx, so the message may well have been posted (a retry could post it twice), and an
        answer off Slack's documented shape (a proxy's page, a wrong ``slack_api_url``) does
        not mend itself; the dead letter keeps the alert for a person to look at."""
        try:
            answer = response.json()
        except ValueError:
            raise PermanentDeliveryError(self.name, f"{method}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise PermanentDeliveryError(self.name, f"{method}: the answer is not an object")
        if answer.get("ok") is True and not (
            isinstance(answer.get("ts"), str) and isinstance(answer.get("channel"), str)
        ):
            raise PermanentDeliveryError(self.name, f"{method}: ok without a channel and ts")
        return answer
