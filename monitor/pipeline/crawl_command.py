"""``likeness-monitor crawl``: one platform crawled by hand, what it finds printed.

The same crawler and state the ``crawl`` role uses, so a dry run shows exactly what the next
pass of a running worker would send (``--dry-run`` commits nothing: the worker's cursors and
dedup stay as they were). Without ``--dry-run`` each batch goes to ``clips.discovered`` on the
configured broker and is committed once the broker acknowledged it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from monitor.config import Settings
from monitor.errors import BrokerError, SourceError
from monitor.records import ClipSeen, encode
from monitor.sources.crawl_state import CrawlState
from monitor.sources.crawler import Crawler, Emit
from monitor.sources.registry import PLATFORMS, build_crawlers

__all__ = ["crawl_command"]

TOPIC = "clips.discovered"


async def crawl_command(
    settings: Settings,
    source: str,
    *,
    once: bool,
    dry_run: bool,
    say: Callable[[str], None] = print,
    note: Callable[[str], None] = print,
) -> None:
    if source not in PLATFORMS:
        raise SourceError(f"unknown source {source!r}; known: {', '.join(PLATFORMS)}")
    state = CrawlState(settings.pipeline.store("crawl"))
    try:
        crawlers = build_crawlers(
            settings.sources, settings.pipeline.gallery, state, names=[source], dry_run=dry_run
        )
        if not crawlers:
            raise SourceError(
                f"{source} is not configured: set its credentials "
                f"(LIKENESS_MONITOR_SOURCES__{source.upper()}__...)"
            )
        crawler = crawlers[0]

        async def show(batch: Sequence[ClipSeen]) -> None:
            for seen in batch:
                say(encode(seen).decode())

        if dry_run:
            await _passes(crawler, show, once, note)
            return
        async with _Producer(settings) as send:

            async def emit(batch: Sequence[ClipSeen]) -> None:
                await send(batch)
                await show(batch)

            await _passes(crawler, emit, once, note)
    finally:
        state.close()


async def _passes(crawler: Crawler, emit: Emit, once: bool, note: Callable[[str], None]) -> None:
    while True:
        try:
            report = await crawler.run(emit)
        except SourceError as exc:
            note(f"{crawler.name}: {exc}")
            report = crawler.report
        paused = (
            f", paused until {report.paused_until:%Y-%m-%d %H:%M} UTC"
            if report.paused_until
            else ""
        )
        note(
            f"{crawler.name}: {report.emitted} clips from {report.pages} pages, "
            f"{report.requests} requests{paused}"
        )
        if once:
            return
        await asyncio.sleep(crawler.interval_s)


class _Producer:
    """An aiokafka producer for ``clips.discovered`` that waits for every acknowledgement."""

    def __init__(self, settings: Settings) -> None:
        url = settings.pipeline.broker_url
        if url.strip().lower() == "embedded":
            raise BrokerError(
                "crawl sends to a running broker: set LIKENESS_MONITOR_PIPELINE__BROKER_URL, "
                "or use --dry-run (`up` crawls configured platforms itself)"
            )
        self.settings = settings
        self.url = url

    async def __aenter__(self) -> Callable[[Sequence[ClipSeen]], Awaitable[None]]:
        from aiokafka import AIOKafkaProducer

        from monitor.pipeline.broker import bootstrap_servers, ensure_topics

        bootstrap = bootstrap_servers(self.url)
        await ensure_topics(bootstrap, {TOPIC: self.settings.pipeline.partitions})
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await self._producer.start()

        async def send(batch: Sequence[ClipSeen]) -> None:
            for seen in batch:
                await self._producer.send_and_wait(TOPIC, encode(seen), key=seen.key.encode())

        return send

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()
