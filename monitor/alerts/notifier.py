"""The delivery engine: every alert to every sink once, none lost, floods summarised.

The notify role hands each alert from the ``alerts`` topic to ``Notifier.handle`` and acks the
event only when that returns, which is after one of these, per sink:

- delivered (2xx), then recorded in the ``DeliveryStore``: a replayed alert is not sent again;
- retried in place a few times with exponential backoff, or after the receiver's own
  ``Retry-After`` (429 and 5xx), while the wait is short;
- parked: kept in the store's outbox, then written to the ``alerts.retry`` topic with its
  attempt count and next-attempt time and acknowledged by the broker, for
  ``Notifier.redeliver`` (an agent on that topic) to try again later. A receiver that is down
  thus holds up nothing and loses nothing; while it is known to be down, new alerts for it are
  parked at once instead of each waiting out retries. A broker that lost its topics (the
  embedded one, restarted) gets the outbox's copies back (``Notifier.resume``). Only the
  latest parking of an alert is acted on: an older copy (a replay) is skipped by its park id;
- refused (another 4xx), or parked for longer than ``retry_give_up_after_s``: sent to the
  dead-letter topic, where it stays for a person to look at;
- suppressed by flood control: past ``flood_max_per_window`` alerts of one entity within a
  window, the rest go into one summary per sink, sent by ``Notifier.flush`` once the window
  has closed, with their count and the most viewed clips. Only alerts that start a story
  (``Alert.story``; or have none) count and are held back: a copy of a viral clip is part of
  a story already told, which a sink updates or groups, not news that floods a channel;
- grouped: a copy of a story past a sink's ``story_messages`` (the Slack incoming webhook's
  first few) gets no delivery of its own; it is counted in the story, which the next copies
  to get a message, and the Slack Web API sink's edited message, show.

A crash between a 2xx and its record repeats that one message; that is the only duplicate
possible, and webhook receivers can drop it by ``X-Likeness-Delivery``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

import httpx

from monitor import metrics
from monitor.alerts.base import DeliveryContext, FloodSummary, Sink, SummaryClip
from monitor.alerts.console import ConsoleSink
from monitor.alerts.deliveries import DeliveryStore
from monitor.alerts.secrets import SecretFilter
from monitor.alerts.settings import NotifySettings
from monitor.alerts.slack import SlackSink
from monitor.alerts.slack_api import SlackApiSink
from monitor.alerts.webhook import WebhookSink
from monitor.errors import PermanentDeliveryError, RecordError, RetryableDeliveryError
from monitor.evidence.urls import EvidenceUrls
from monitor.records import Alert, ParkedAlert, decode, encode
from monitor.retry import RetryPolicy

__all__ = ["Notifier", "build_sinks"]

log = logging.getLogger(__name__)

TOP_CLIPS = 5

Park = Callable[[ParkedAlert], Awaitable[None]]
Reject = Callable[[Alert, str], Awaitable[None]]


def build_sinks(
    settings: NotifySettings, client: httpx.AsyncClient, store: DeliveryStore | None = None
) -> list[Sink]:
    """The sinks the settings configure, in delivery order. ``store``: the notifier's, where
    the Slack Web API sink keeps each story's message (needed when a bot token is set)."""
    sinks: list[Sink] = [ConsoleSink()] if settings.console else []
    if settings.slack_webhook_url is not None:
        sinks.append(
            SlackSink(
                client, settings.slack_webhook_url, story_messages=settings.slack_story_messages
            )
        )
    if settings.slack_bot_token is not None and settings.slack_channel:
        if store is None:
            raise ValueError("the Slack Web API sink keeps its messages in the DeliveryStore")
        sinks.append(
            SlackApiSink(
                client,
                settings.slack_bot_token,
                settings.slack_channel,
                store,
                api_url=settings.slack_api_url,
            )
        )
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        sinks.append(WebhookSink(client, settings.webhook_url, settings.webhook_secret))
    return sinks


def _at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def _readable(raw: bytes) -> ParkedAlert | None:
    """A parked alert from the outbox; None, logged, for one that no longer reads (written by
    a version with another schema): it stays there, and the alert is tried afresh."""
    try:
        return decode(ParkedAlert, raw)
    except RecordError as exc:
        log.error("a parked alert in the outbox cannot be read: %s", exc)
        return None


def _grouped(sink: Sink, alert: Alert) -> bool:
    """Whether ``alert`` is a copy of a story past the copies ``sink`` delivers one by one."""
    story, limit = alert.story, sink.story_messages
    return story is not None and limit is not None and story.copy_number > limit


def _labels(sink: Sink, alert: Alert) -> tuple[str, str, str, str, str]:
    entity = alert.entity
    return (sink.name, entity.id, entity.franchise or "", alert.clip.platform, entity.kind)


class Notifier:
    """Delivers alerts to ``sinks``; ``park`` and ``reject`` put an alert on the retry and
    dead-letter topics and return once the broker has it."""

    def __init__(
        self,
        sinks: Sequence[Sink],
        store: DeliveryStore,
        settings: NotifySettings,
        *,
        park: Park,
        reject: Reject,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        evidence: EvidenceUrls | None = None,
    ) -> None:
        self._evidence = evidence  # signs the evidence image URLs that sinks link to
        names = [sink.name for sink in sinks]
        if len(set(names)) != len(names):
            raise ValueError(f"sink names must be unique, got {names}")
        self.sinks: Mapping[str, Sink] = {sink.name: sink for sink in sinks}
        self.store = store
        self.settings = settings
        self._park, self._reject = park, reject
        self._clock, self._sleep = clock, sleep
        # The project's one backoff, without jitter: one receiver is retried at a time (new
        # alerts for a receiver known to be down are parked at once), so exact waits suffice.
        self._backoff = RetryPolicy(
            backoff_s=settings.retry_backoff_s,
            max_backoff_s=settings.retry_backoff_max_s,
            spread=0.0,
        )
        self._down_until: dict[str, float] = {}
        self._secrets = SecretFilter(secret for sink in sinks for secret in sink.secrets())
        self._secrets.install()

    def close(self) -> None:
        self._secrets.uninstall()

    # --- alerts ---------------------------------------------------------------------------

    async def handle(self, alert: Alert) -> None:
        """Deliver, park, reject or suppress ``alert`` for every sink not yet settled."""
        store = self.store
        unsettled = [
            s
            for s in self.sinks.values()
            if await store.run(store.outcome, alert.key, s.name) is None
        ]
        if not unsettled:
            # A repeat (a replay, or decide's re-send to a new broker): not counted again for
            # flood control, whose window may have been forgotten since.
            return
        now = self._clock()
        flooded = await self._flooded(alert, now)
        for sink in unsettled:
            held = await self._held(alert.key, sink.name)
            if held is not None:  # parked before (a replay): its retry copy may be missing
                await self._park(held)
                continue
            outcome = "suppressed" if flooded else "grouped" if _grouped(sink, alert) else None
            if outcome is not None:
                await store.run(store.settle, alert.key, sink.name, outcome, _at(now))
                metrics.NOTIFICATIONS.labels(*_labels(sink, alert), outcome).inc()
                continue
            await self._try(
                sink,
                alert,
                attempts=0,
                first_failed=None,
                tries=self.settings.retry_inline_attempts,
            )

    async def redeliver(self, parked: ParkedAlert) -> None:
        """Try a parked alert again when it is due; park it again, or give up, if it fails."""
        if await self._superseded(parked):
            return
        sink = self.sinks.get(parked.sink)
        if sink is None:
            await self._reject(parked.alert, f"{parked.sink}: sink no longer configured")
            at = _at(self._clock())
            await self.store.run(self.store.settle, parked.alert.key, parked.sink, "failed", at)
            return
        first_failed = parked.first_failed_at.timestamp()
        if self._clock() - first_failed > self.settings.retry_give_up_after_s:
            await self._fail(
                sink, parked.alert, f"gave up after {parked.attempts} attempts: {parked.last_error}"
            )
            return
        wait = parked.next_attempt_at.timestamp() - self._clock()
        if wait > 0:
            await self._sleep(wait)
            if await self._superseded(parked):
                return
        await self._try(
            sink, parked.alert, attempts=parked.attempts, first_failed=first_failed, tries=1
        )

    async def resume(self, cluster_id: str) -> int:
        """Put the outbox's parked alerts back on the retry topic if the broker is not the one
        that had them (``cluster_id`` differs: the embedded broker restarted empty); returns
        how many. They are tried again when due, as if never lost."""
        store = self.store
        if await store.run(store.followed_broker) == cluster_id:
            return 0
        put_back = 0
        for raw in await store.run(store.all_held):
            parked = _readable(raw)
            if parked is not None:
                await self._park(parked)
                put_back += 1
        await store.run(store.follow_broker, cluster_id)  # after: a crash midway puts all back
        if put_back:
            log.warning("%d parked alerts put back on the retry topic of a new broker", put_back)
        return put_back

    async def _flooded(self, alert: Alert, now: float) -> bool:
        """Whether flood control holds ``alert`` back; only alerts that start a story count."""
        if alert.story is not None and not alert.story.starts:
            return False
        _, rank = await self.store.run(self.store.admit, alert, self._window(now))
        return rank > self.settings.flood_max_per_window

    async def _held(self, alert_key: str, sink: str) -> ParkedAlert | None:
        held = await self.store.run(self.store.held, alert_key, sink)
        return None if held is None else _readable(held[1])

    async def _superseded(self, parked: ParkedAlert) -> bool:
        """Whether this copy is not to be acted on: the alert was settled meanwhile, or parked
        again since (an older copy, replayed)."""
        store = self.store
        if await store.run(store.outcome, parked.alert.key, parked.sink) is not None:
            return True
        held = await store.run(store.held, parked.alert.key, parked.sink)
        return held is not None and held[0] != parked.park_id

    async def _try(
        self, sink: Sink, alert: Alert, *, attempts: int, first_failed: float | None, tries: int
    ) -> None:
        down_until = self._down_until.get(sink.name, 0.0)
        if self._clock() < down_until:
            await self._park_alert(
                sink, alert, attempts, first_failed, down_until, "receiver down at last try"
            )
            return
        for attempt in range(1, tries + 1):
            attempts += 1
            try:
                await sink.deliver(alert, self._context(attempts))
            except RetryableDeliveryError as exc:
                metrics.NOTIFY_ATTEMPT_FAILURES.labels(sink.name, exc.reason).inc()
                now = self._clock()
                first_failed = now if first_failed is None else first_failed
                delay = self._delay(attempts, exc.retry_after)
                if attempt < tries and delay <= self.settings.retry_inline_max_wait_s:
                    log.info("%s; retrying alert %s in %.1f s", exc, alert.alert_id, delay)
                    await self._sleep(delay)
                    continue
                self._down_until[sink.name] = now + delay
                await self._park_alert(sink, alert, attempts, first_failed, now + delay, str(exc))
                return
            except PermanentDeliveryError as exc:
                metrics.NOTIFY_ATTEMPT_FAILURES.labels(sink.name, exc.reason).inc()
                await self._fail(sink, alert, str(exc))
                return
            except Exception as exc:  # a sink bug must not stop the partition; keep the alert
                log.exception("%s failed on alert %s", sink.name, alert.alert_id)
                metrics.NOTIFY_ATTEMPT_FAILURES.labels(sink.name, "error").inc()
                await self._fail(sink, alert, f"{sink.name}: {type(exc).__name__}")
                return
            self._down_until.pop(sink.name, None)
            at = _at(self._clock())
            await self.store.run(self.store.settle, alert.key, sink.name, "sent", at)
            metrics.NOTIFICATIONS.labels(*_labels(sink, alert), "sent").inc()
            return

    async def _park_alert(
        self,
        sink: Sink,
        alert: Alert,
        attempts: int,
        first_failed: float | None,
        due: float,
        error: str,
    ) -> None:
        now = self._clock()
        parked = ParkedAlert(
            alert=alert,
            sink=sink.name,
            attempts=attempts,
            first_failed_at=_at(now if first_failed is None else first_failed),
            next_attempt_at=_at(due),
            last_error=error,
        )
        await self.store.run(self.store.hold, alert.key, sink.name, parked.park_id, encode(parked))
        await self._park(parked)
        metrics.NOTIFICATIONS.labels(*_labels(sink, alert), "parked").inc()
        log.warning(
            "alert %s parked for %s after %d attempts, next in %.0f s: %s",
            alert.alert_id,
            sink.name,
            attempts,
            max(due - now, 0.0),
            error,
        )

    async def _fail(self, sink: Sink, alert: Alert, reason: str) -> None:
        await self._reject(alert, reason)
        at = _at(self._clock())
        await self.store.run(self.store.settle, alert.key, sink.name, "failed", at)
        metrics.NOTIFICATIONS.labels(*_labels(sink, alert), "failed").inc()
        log.warning("alert %s not delivered to %s: %s", alert.alert_id, sink.name, reason)

    # --- flood summaries ------------------------------------------------------------------

    async def flush(self) -> int:
        """Send the summaries of closed windows that are due; returns how many were sent."""
        if not self.sinks:
            return 0
        now = self._clock()
        sent = 0
        store = self.store
        for window in await store.run(store.closed_windows, before=self._window(now)):
            if window.alerts <= self.settings.flood_max_per_window:
                await store.run(store.forget_window, window.entity, window.window)
                continue
            alerts = await store.run(store.window_alerts, window.entity, window.window)
            summary = self._summary(alerts, window.window)
            pending = False
            for sink in self.sinks.values():
                if await store.run(store.summary_outcome, window.entity, window.window, sink.name):
                    continue
                outcome = await self._send_summary(sink, summary, now)
                if outcome is None:
                    pending = True
                    continue
                await store.run(
                    store.settle_summary, window.entity, window.window, sink.name, outcome, _at(now)
                )
                sent += outcome == "sent"
            if not pending:
                await store.run(store.forget_window, window.entity, window.window)
        return sent

    async def _send_summary(self, sink: Sink, summary: FloodSummary, now: float) -> str | None:
        """``sent`` or ``failed``, or None when it should be tried again at the next flush."""
        entity = summary.entity
        labels = (sink.name, entity.id, entity.franchise or "", entity.kind)
        if now < self._down_until.get(sink.name, 0.0):
            return None
        try:
            await sink.deliver_summary(summary, self._context(1))
        except RetryableDeliveryError as exc:
            metrics.NOTIFY_ATTEMPT_FAILURES.labels(sink.name, exc.reason).inc()
            self._down_until[sink.name] = now + self._delay(1, exc.retry_after)
            log.warning("summary %s for %s deferred: %s", summary.summary_id, sink.name, exc)
            return None
        except Exception as exc:
            reason = exc.reason if isinstance(exc, PermanentDeliveryError) else "error"
            metrics.NOTIFY_ATTEMPT_FAILURES.labels(sink.name, reason).inc()
            metrics.NOTIFY_SUMMARIES.labels(*labels, "failed").inc()
            log.warning("summary %s not delivered to %s: %s", summary.summary_id, sink.name, exc)
            return "failed"
        self._down_until.pop(sink.name, None)
        metrics.NOTIFY_SUMMARIES.labels(*labels, "sent").inc()
        return "sent"

    def _summary(self, alerts: Sequence[Alert], window: int) -> FloodSummary:
        held = list(alerts[self.settings.flood_max_per_window :])
        top = sorted(held, key=lambda a: a.views or 0, reverse=True)[:TOP_CLIPS]
        start = window * self.settings.flood_window_s
        return FloodSummary(
            entity=alerts[0].entity,
            window_start=_at(start),
            window_end=_at(start + self.settings.flood_window_s),
            alerts=len(alerts),
            suppressed=len(held),
            platforms=dict(Counter(a.clip.platform for a in held)),
            top=[
                SummaryClip(alert_id=a.alert_id, clip=a.clip, score=a.score, views=a.views)
                for a in top
            ],
        )

    # --- helpers --------------------------------------------------------------------------

    def _window(self, now: float) -> int:
        return int(now // self.settings.flood_window_s)

    def _delay(self, attempts: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after  # the receiver said when; sooner would only be refused again
        return self._backoff.backoff(attempts)

    def _context(self, attempt: int) -> DeliveryContext:
        return DeliveryContext(
            public_base_url=self.settings.public_base_url,
            attempt=attempt,
            evidence_images=self.settings.evidence_images,
            evidence=self._evidence,
        )
