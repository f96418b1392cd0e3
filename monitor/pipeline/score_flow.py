"""Observations in, verdicts out as soon as each clip's media are in: a slow server holds only
its own clip.

Scoring a batch only when every clip of it is fetched let one server that drips a byte every
few seconds hold the whole batch for the full fetch timeout, and the batches behind it too.
Here each observation is prepared (cache, fetch, decode) on its own as soon as it arrives; a
collector takes whatever is ready, up to ``batch_size``, and scores it in one pass while the
next clips come in (so batches form by themselves while the model is busy). A clip whose fetch
is not done simply joins a later batch.

At least once: ``deliver`` is called with the observation's tags (the worker's events) only
after its ``ClipScored`` exists, and the worker acknowledges an event only once that record is
sent, so a crash loses nothing; events are acknowledged out of order, and the consumer commits
only up to the oldest one not yet acknowledged. Observations of a clip that is already being
fetched wait for its verdict (then cached) instead of fetching it again; several of them
waiting are merged into the latest, which carries all their tags.

``max_in_flight`` bounds the clips being prepared or waiting: ``submit`` waits for a slot, which
holds back the consumer rather than memory; at most two batches' worth of decoded clips wait
for the model (a decode waits for one to be scored), as when batches were scored whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from monitor.pipeline.scoring_service import Prepared, ScoringService
from monitor.records import ClipScored, ClipSeen

__all__ = ["ScoreFlow"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class _CountingGate(asyncio.Semaphore):
    """A semaphore that says how many of its slots are taken."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.held = 0

    async def acquire(self) -> Literal[True]:
        await super().acquire()
        self.held += 1
        return True

    def release(self) -> None:
        self.held -= 1
        super().release()


@dataclass(eq=False)
class _Item(Generic[T]):
    seen: ClipSeen
    tags: list[T]
    done: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False
    prepared: Prepared | None = None
    error: BaseException | None = None


class ScoreFlow(Generic[T]):
    """``deliver(tags, record)`` sends a verdict; ``reject(tags, error)`` dead-letters an
    observation that the scorer failed on for reasons of its own. Whatever either raises
    stops the flow: the next ``submit`` raises it."""

    def __init__(
        self,
        service: ScoringService,
        deliver: Callable[[Sequence[T], ClipScored], Awaitable[None]],
        reject: Callable[[Sequence[T], BaseException], Awaitable[None]],
        *,
        batch_size: int,
        max_in_flight: int,
    ) -> None:
        self._service = service
        self._deliver = deliver
        self._reject = reject
        self._batch_size = batch_size
        self._max_in_flight = max_in_flight
        self._slots = asyncio.Semaphore(max_in_flight)
        self._decoded = _CountingGate(2 * batch_size)
        self._ready: asyncio.Queue[_Item[T]] = asyncio.Queue()
        self._latest: dict[str, _Item[T]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._collector: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def submit(self, tag: T, seen: ClipSeen) -> None:
        """Hand over one observation; returns at once while fewer than ``max_in_flight``
        clips are in flight."""
        self._check()
        latest = self._latest.get(seen.key)
        if latest is not None and not latest.started:
            # Already waiting behind a fetch of this clip: the newer observation replaces it.
            latest.seen = seen
            latest.tags.append(tag)
            return
        await self._slots.acquire()
        self._check()
        if self._collector is None:
            self._collector = asyncio.create_task(self._collect(), name="score-flow-collect")
        item: _Item[T] = _Item(seen, [tag])
        self._latest[seen.key] = item
        self._pending += 1
        self._idle.clear()
        task = asyncio.create_task(self._prepare(item, latest), name=f"prepare {seen.key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def frames_held(self) -> int:
        """Decoded clips whose frames wait for the model or are being scored."""
        return self._decoded.held

    async def drained(self) -> None:
        """Wait until every observation handed over has been delivered or rejected."""
        await self._idle.wait()
        self._check()

    async def close(self) -> None:
        """Stop: what is in flight is dropped unacknowledged (it is read again later)."""
        for task in [*self._tasks, *([self._collector] if self._collector else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._collector is not None:
            await asyncio.gather(self._collector, return_exceptions=True)

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _prepare(self, item: _Item[T], before: _Item[T] | None) -> None:
        if before is not None:
            await before.done.wait()  # its verdict is cached by then: no second fetch
        item.started = True
        try:
            item.prepared = await self._service.prepare(item.seen, frames_gate=self._decoded)
        except Exception as exc:  # a bad cached record, say: this observation's own fault
            log.exception("preparing %s failed", item.seen.key)
            item.error = exc
        self._ready.put_nowait(item)

    async def _collect(self) -> None:
        try:
            while True:
                group = [await self._ready.get()]
                while len(group) < self._batch_size and not self._ready.empty():
                    group.append(self._ready.get_nowait())
                try:
                    await self._finish(group)
                finally:
                    for item in group:
                        if item.prepared is not None:
                            item.prepared.release()
                            item.prepared = None  # its frames go with its slot
                for item in group:
                    self._done(item)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("the score flow stopped")
            self._failure = exc
            for _ in range(self._max_in_flight):  # wake every submit waiting for a slot
                self._slots.release()
            self._idle.set()

    def _done(self, item: _Item[T]) -> None:
        item.done.set()
        if self._latest.get(item.seen.key) is item:
            del self._latest[item.seen.key]
        self._slots.release()
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def _finish(self, group: Sequence[_Item[T]]) -> None:
        """Score what is ready in one pass and deliver each verdict; a group that fails as a
        whole is scored again one clip at a time, so that a clip that breaks the scorer
        costs only itself."""
        for item in group:
            if item.error is not None:
                await self._reject(item.tags, item.error)
        good = [item for item in group if item.prepared is not None]
        if not good:
            return
        try:
            records = await self._service.score_prepared(
                [item.prepared for item in good if item.prepared is not None]
            )
        except Exception as exc:
            if len(good) == 1:
                log.exception("scoring %s failed", good[0].seen.key)
                await self._reject(good[0].tags, exc)
                return
            log.exception("a batch of %d clips failed; scoring each alone", len(good))
            for item in good:
                await self._finish([item])
            return
        for item, record in zip(good, records, strict=True):
            await self._deliver(item.tags, record)
