"""The decode processes, rebuilt when one dies, and which clip killed it.

A decode process can die under a clip (the kernel's OOM killer, a crash in a codec). Python's
``ProcessPoolExecutor`` then fails every pending decode with ``BrokenProcessPool`` and refuses
all later ones: without a rebuild, one death stops scoring for good. So a broken pool is
replaced at once, and each clip that was in it when it broke is decoded once more, alone in
the new pool (no other decode runs meanwhile). A clip that kills the pool while alone is the
one at fault: it fails with ``DecoderCrashError`` (reason ``decoder_crashed``, a verdict that
is cached like any other, so it is not retried at every observation). The innocent ones that
shared the pool with it are decoded normally on their second try.

The pool also hashes every frame of a flagged clip for its fingerprint (``fingerprint``): that
decodes the clip once more, in full, and a codec that crashes on it must not take the worker.
And it reads each clip's C2PA manifest (``provenance``): native code fed by strangers, bounded
by ``read_c2pa`` and kept out of the worker's process like a decode.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import ParamSpec, TypeVar

from monitor.errors import DecoderCrashError
from monitor.likeness.footage import Fingerprint, fingerprint_file
from monitor.media import DecodeLimits, load_media
from monitor.media.frames import Frame
from monitor.media.provenance import read_c2pa
from monitor.records import Synthetic

__all__ = ["DecodePool"]

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


PARENT_CHECK_S = 1.0
"""How often a decode process checks that the worker that started it is still there."""


def _start_child() -> None:
    # Ctrl-C reaches the whole process group; the worker shuts the pool down in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker killed outright (SIGKILL, the OOM killer) shuts nothing down: without this, its
    # decode processes, each holding a decoder's memory, would live on as orphans. (Not
    # PR_SET_PDEATHSIG: that fires when the *thread* that spawned the process ends.)
    parent = os.getppid()
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)
    os._exit(0)


def _load(path: Path, limits: DecodeLimits, even_frames: int) -> list[Frame]:
    return load_media(path, limits, even_frames=even_frames)


class DecodePool:
    """``workers`` spawned decode processes; ``decode`` survives their deaths.

    ``on_death`` is called once per broken pool (for metrics and health).
    """

    def __init__(self, workers: int, *, on_death: Callable[[], None] | None = None) -> None:
        self._workers = workers
        self._on_death = on_death
        self._pool = self._new()
        self.generation = 0
        """How many times the pool was rebuilt."""
        # Decodes share the pool; a second try runs alone: it takes ``_solo`` and waits
        # until the shared ones are done, and new ones wait for it.
        self._solo = asyncio.Lock()
        self._running = 0
        self._drained = asyncio.Event()
        self._drained.set()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_child,
        )

    async def decode(self, path: Path, limits: DecodeLimits, even_frames: int) -> list[Frame]:
        """The frames of ``path``; ``DecoderCrashError`` when decoding it kills the process."""
        return await self._guarded(path, _load, path, limits, even_frames)

    async def fingerprint(self, path: Path, limits: DecodeLimits) -> Fingerprint:
        """The fingerprint of every frame of ``path`` (``fingerprint_file``), with the errors
        of ``decode``."""
        return await self._guarded(path, fingerprint_file, path, limits)

    async def provenance(self, path: Path) -> Synthetic:
        """What ``path``'s C2PA manifest says (``read_c2pa``), with the errors of ``decode``."""
        return await self._guarded(path, read_c2pa, path)

    async def _guarded(
        self, path: Path, work: Callable[P, R], *args: P.args, **kwargs: P.kwargs
    ) -> R:
        async with self._solo:
            self._running += 1
            self._drained.clear()
        generation = self.generation
        try:
            return await self._run(work, *args, **kwargs)
        except BrokenProcessPool:
            self._rebuild(generation)
        finally:
            self._running -= 1
            if self._running == 0:
                self._drained.set()
        log.warning("a decode process died under %s or beside it; decoding it again alone", path)
        async with self._solo:
            await self._drained.wait()
            generation = self.generation
            try:
                return await self._run(work, *args, **kwargs)
            except BrokenProcessPool:
                self._rebuild(generation)
        raise DecoderCrashError("the decode process died decoding this media (twice, alone)")

    async def _run(self, work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            future = self._pool.submit(work, *args, **kwargs)
        except OSError as exc:
            # Python 3.11: a pool breaking while this submits (its new process pickling a
            # pipe the dying pool has closed) raises "handle is closed", not BrokenProcessPool.
            raise BrokenProcessPool(
                f"the decode pool broke as a decode was submitted: {exc}"
            ) from exc
        return await asyncio.wrap_future(future)

    def _rebuild(self, generation: int) -> None:
        """Replace the pool that broke, once, however many decodes saw it break."""
        if generation != self.generation:
            return
        broken, self._pool = self._pool, self._new()
        self.generation += 1
        # Python 3.11 leaves the broken pool's other processes running, and one blocked on
        # sending back a large result (nobody reads the pipe any more) never exits: the
        # interpreter then hangs at exit joining it. Kill them (3.12 does it itself).
        stragglers = list((getattr(broken, "_processes", None) or {}).values())
        broken.shutdown(wait=False, cancel_futures=True)
        for process in stragglers:
            if process.is_alive():
                process.kill()
        log.error("the decode pool broke (a process died); rebuilt it (%d so far)", self.generation)
        if self._on_death is not None:
            self._on_death()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
