"""A topic read whole by one worker: every partition, outside any consumer group, resumed from
offsets kept in the worker's own store.

Faust agents share the app's consumer group, which splits a topic's partitions among the
workers: right for work (each clip scored once), wrong for a view every worker needs whole. The
review page must show every alert and decision in each replica; a crawler must know every
flagged clip, whichever worker's decide role flagged it. Such a view reads its topics with a
feed instead: all partitions (new ones are picked up as they appear), each record handed to
``handle`` in order per partition, and the position kept in the same SQLite store as the view,
so a restart resumes there. A record read twice (a crash between applying and remembering)
must change nothing: the views are written to be idempotent.

Positions are only good on the broker they were read on. The store remembers its cluster id,
checked when the feed starts and every ``PARTITION_CHECK_S``: on another broker (the embedded
one restarted, empty, maybe at the same address) the feed reads every topic from the start.

A record that ``handle`` fails on is handed to ``reject`` (the review role dead-letters it) and
the feed moves on: one bad record must not stop the view, nor the worker, on every restart.
Only broker trouble (``poison.py``) stops the read, which starts again where it was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from monitor.errors import RecordError
from monitor.pipeline.broker import cluster_id
from monitor.pipeline.poison import broker_trouble, describe
from monitor.storage import FeedOffsets

__all__ = ["TopicFeed"]

log = logging.getLogger(__name__)

Handle = Callable[[ConsumerRecord[bytes, bytes]], Awaitable[None]]
Reject = Callable[[ConsumerRecord[bytes, bytes], str], Awaitable[None]]

PARTITION_CHECK_S = 30.0
"""How often to look for partitions added to the topics since the last look."""


class TopicFeed:
    """Hands every record of ``topics`` to ``handle``, in order per partition, from where the
    store says this host stopped."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        store: FeedOffsets,
        handle: Handle,
        reject: Reject | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = tuple(topics)
        self.store = store
        self.handle = handle
        self.reject = reject
        self.retry_s = 5.0
        self.ready = asyncio.Event()
        """Set once every partition is assigned and positioned (tests wait for it)."""

    async def run_forever(self) -> None:
        """``run``, started again ``retry_s`` after the broker goes away (a restart, a network
        cut). It takes no arguments: Faust's ``app.task`` passes the app to one that does."""
        retry_s = self.retry_s
        while True:
            try:
                await self.run()
            except (KafkaError, OSError) as exc:
                log.warning(
                    "feed of %s stopped: %s; reading again in %g s",
                    ", ".join(self.topics),
                    exc,
                    retry_s,
                )
                await asyncio.sleep(retry_s)

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            metadata_max_age_ms=int(PARTITION_CHECK_S * 1000),
        )
        await consumer.start()
        try:
            assigned: set[TopicPartition] = set()
            checked = 0.0
            while True:
                if time.monotonic() - checked > PARTITION_CHECK_S or not assigned:
                    if time.monotonic() - checked > PARTITION_CHECK_S and await self._new_broker():
                        assigned = set()  # positioned again, from the start of every partition
                    assigned = await self._assign(consumer, assigned)
                    checked = time.monotonic()
                batches = await consumer.getmany(timeout_ms=500, max_records=200)
                for partition, records in batches.items():
                    for record in records:
                        await self._handle(record)
                    await self.store.run(
                        self.store.remember_offset,
                        partition.topic,
                        partition.partition,
                        records[-1].offset + 1,
                    )
        finally:
            await consumer.stop()

    async def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        """``handle`` one record; a failure of the record's own making goes to ``reject``."""
        try:
            await self.handle(record)
        except Exception as exc:
            if broker_trouble(exc):
                raise
            where = f"{record.topic}[{record.partition}]@{record.offset}"
            log.exception("feed: %s could not be handled; moving on", where)
            if self.reject is not None:
                reason = str(exc) if isinstance(exc, RecordError) else describe("feed", exc)
                await self.reject(record, reason)

    async def _new_broker(self) -> bool:
        """Whether the broker is not the one the stored positions belong to; if so they are
        forgotten."""
        cluster = await cluster_id(self.bootstrap)
        if not await self.store.run(self.store.follow_broker, cluster):
            return False
        log.info("feed of %s: broker %s is new here; reading from the start", self.topics, cluster)
        return True

    async def _assign(
        self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]
    ) -> set[TopicPartition]:
        """Assign every partition of the topics, each from where this host stopped reading."""
        try:
            await consumer.topics()  # fresh metadata, so new partitions show
        except KafkaError as exc:
            log.warning("feed of %s: no metadata yet: %s", ", ".join(self.topics), exc)
        wanted = {
            TopicPartition(topic, number)
            for topic in self.topics
            for number in consumer.partitions_for_topic(topic) or ()
        }
        if not wanted:
            await asyncio.sleep(0.5)  # the topics do not exist yet
            return assigned
        if wanted != assigned:
            consumer.assign(sorted(wanted))  # positions start over: set every one again
            offsets = await self.store.run(self.store.read_offsets)
            for partition in sorted(wanted):
                at = offsets.get((partition.topic, partition.partition))
                if at is None:
                    await consumer.seek_to_beginning(partition)
                else:
                    consumer.seek(partition, at)
        self.ready.set()
        return wanted
