"""The scorer's work for one batch of observations: fetch, decode, infer, and say what happened.

The event loop never blocks: media are fetched concurrently with httpx (bounded in bytes and
time), decoded in a process pool (PyAV holds the GIL for parts of a decode), and scored by one
inference thread per device, so the model sees one batch of frames from every clip at once.
Every clip yields a ``ClipScored``: with scores, or with the reason it could not be scored.
A clip already scored with this gallery and these models is not scored again; its cached
verdict is re-sent with the new observation, which is all the decide role needs for spread.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import httpx

from monitor.alerts.evidence import save_clip_evidence
from monitor.config import Settings
from monitor.errors import MediaError, MonitorError
from monitor.likeness.gallery.store import Gallery
from monitor.likeness.scoring import ClipScore, Scorer
from monitor.media import DecodeLimits, load_media
from monitor.media.fetch import fetch_media
from monitor.media.frames import Frame
from monitor.media.resolve import CommandResolver, ListedMedia, MediaResolver
from monitor.media.safety import AddressGuard, guarded_client
from monitor.pipeline import metrics
from monitor.pipeline.state import StateStore
from monitor.records import (
    ClipRef,
    ClipScored,
    ClipSeen,
    EvidenceRecord,
    Failure,
    ScoredEntity,
    decode,
    encode,
)

__all__ = ["ScoringService", "to_record"]

log = logging.getLogger(__name__)


TRANSIENT_FAILURES = frozenset(
    {"timeout", "network", "http_5xx", "http_other", "internal", "scoring_error", "resolve_failed"}
)
"""Failures worth another try at the next observation; others are cached like a score."""


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group; the worker shuts the pool down in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _load(path: Path, limits: DecodeLimits, even_frames: int) -> list[Frame]:
    return load_media(path, limits, even_frames=even_frames)


def to_record(seen: ClipSeen, result: ClipScore) -> ClipScored:
    entities = [
        ScoredEntity(
            entity_id=s.entity_id,
            name=s.name,
            kind=s.kind,  # type: ignore[arg-type]
            franchise=s.franchise,
            owner=s.owner,
            score=s.score,
            threshold=s.threshold,
            flagged=s.flagged,
            evidence=[
                EvidenceRecord(
                    signal=e.signal,
                    score=e.score,
                    threshold=e.threshold,
                    frame_time=e.frame_time,
                    box=e.box.as_list() if e.box else None,
                    region=e.region,
                    reference=e.reference,
                    text=e.text,
                )
                for e in s.evidence
            ],
            suppressed_by=s.suppressed_by,
        )
        for s in result.entities
    ]
    return ClipScored(
        clip=ClipRef.of(seen),
        observation=seen,
        entities=entities,
        gallery_version=result.gallery_version,
        models=result.models,
        frames=result.frames,
        timings={k: round(v, 4) for k, v in result.timings.items()},
    )


def _failed(seen: ClipSeen, scorer: Scorer, reason: str, message: str) -> ClipScored:
    return ClipScored(
        clip=ClipRef.of(seen),
        observation=seen,
        gallery_version=scorer.gallery.version,
        models=dict(scorer.models.versions),
        failure=Failure(reason=reason, message=message[:500]),
    )


class ScoringService:
    def __init__(self, scorer: Scorer, state: StateStore, settings: Settings) -> None:
        self.scorer = scorer
        self.state = state
        self.settings = settings
        self.device = scorer.models.device
        self._limits = settings.decode.limits
        self._inference: Executor = ThreadPoolExecutor(1, thread_name_prefix=f"infer-{self.device}")
        self._decoders: Executor = ProcessPoolExecutor(
            settings.pipeline.decode_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_interrupts,
        )
        self._fetch_slots = asyncio.Semaphore(settings.pipeline.fetch_concurrency)
        self._workdir = tempfile.TemporaryDirectory(prefix="likeness-fetch-")
        timeout = httpx.Timeout(settings.pipeline.fetch_timeout_s, connect=5.0)
        # Media URLs come from strangers: no private, loopback or metadata addresses, unless
        # the operator allowed them (the demo platform on 127.0.0.1, say).
        self._guard = AddressGuard(settings.pipeline.fetch_allow)
        self._client = guarded_client(self._guard, timeout=timeout, follow_redirects=True)
        self._gallery_stamp = self._stamp()
        pipeline = settings.pipeline
        self._resolver: MediaResolver = (
            CommandResolver(
                pipeline.media_resolver,
                pipeline.media_resolver_platforms,
                timeout_s=pipeline.media_resolver_timeout_s,
            )
            if pipeline.media_resolver
            else ListedMedia()
        )

    def _stamp(self) -> tuple[int, int] | None:
        """When the built gallery last changed (``gallery save`` replaces it atomically)."""
        built = self.settings.pipeline.gallery
        try:
            info = (built / "gallery.json").stat() if built is not None else None
        except OSError:
            return None
        return None if info is None else (info.st_mtime_ns, info.st_ino)

    def reload_gallery_if_changed(self) -> bool:
        """Hot reload: pick up a rebuilt or recalibrated gallery without a restart.

        Called before each batch; a gallery that fails to load, or was built with other
        models, is logged and the current one kept.
        """
        stamp = self._stamp()
        if stamp is None or stamp == self._gallery_stamp or self.settings.pipeline.gallery is None:
            return False
        self._gallery_stamp = stamp
        try:
            gallery = Gallery.load(self.settings.pipeline.gallery)
            scorer = Scorer(gallery, self.scorer.models, self.settings.likeness)
        except MonitorError as exc:
            log.error(
                "gallery changed but cannot be used; keeping %s: %s",
                self.scorer.gallery.version,
                exc,
            )
            return False
        if gallery.version == self.scorer.gallery.version:
            return False
        log.warning("gallery %s replaces %s", gallery.version, self.scorer.gallery.version)
        self.scorer = scorer
        return True

    async def close(self) -> None:
        await self._client.aclose()
        self._inference.shutdown(wait=True)
        self._decoders.shutdown(wait=True, cancel_futures=True)
        self._workdir.cleanup()

    async def score_batch(self, batch: Sequence[ClipSeen]) -> list[ClipScored]:
        """One ``ClipScored`` per observation, in order."""
        self.reload_gallery_if_changed()
        started = time.perf_counter()
        out: dict[int, ClipScored] = {}
        fresh: list[int] = []
        for i, seen in enumerate(batch):
            cached = self.state.cached_score(
                seen.key, self.scorer.gallery.version, self.scorer.models.versions
            )
            if cached is None:
                fresh.append(i)
                continue
            record = decode(ClipScored, cached)
            out[i] = record.model_copy(update={"observation": seen, "rescored": False})
            metrics.CLIPS_SCORED.labels(seen.platform, "cached").inc()
        loaded = await asyncio.gather(*(self._fetch_and_decode(batch[i]) for i in fresh))
        ready = [
            (i, frames) for i, frames in zip(fresh, loaded, strict=True) if isinstance(frames, list)
        ]
        for i, failure in zip(fresh, loaded, strict=True):
            if isinstance(failure, Failure):
                out[i] = _failed(batch[i], self.scorer, failure.reason, failure.message)
                self._remember(out[i])
                metrics.MEDIA_FAILURES.labels(batch[i].platform, failure.reason).inc()
                metrics.CLIPS_SCORED.labels(batch[i].platform, "failed").inc()
        if ready:
            metrics.BATCH_SIZE.labels(self.device).observe(len(ready))
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._inference,
                    self.scorer.score_many,
                    [(frames, batch[i].text or None) for i, frames in ready],
                )
            except Exception as exc:  # a model failure must not take the partition down
                log.exception("scoring failed for a batch of %d clips", len(ready))
                results = None
                for i, _ in ready:
                    out[i] = _failed(batch[i], self.scorer, "scoring_error", repr(exc))
                    metrics.CLIPS_SCORED.labels(batch[i].platform, "failed").inc()
            for (i, frames), result in zip(ready, results or [], strict=False):
                record = to_record(batch[i], result)
                await self._save_evidence(record, frames)  # before the verdict is cached
                self.state.save_score(
                    batch[i].key,
                    record.gallery_version or "",
                    record.models,
                    encode(record).decode(),
                )
                out[i] = record
                metrics.CLIPS_SCORED.labels(batch[i].platform, "scored").inc()
        elapsed = time.perf_counter() - started
        if fresh:
            metrics.SCORING_SECONDS.labels(self.device).observe(elapsed / len(fresh))
        return [out[i] for i in range(len(batch))]

    async def _save_evidence(self, record: ClipScored, frames: list[Frame]) -> None:
        """Per flagged entity, a thumbnail for the alert's message (served at /evidence/) and
        the clip's fingerprint, for the review loop should the alert be dismissed."""
        if record.flagged:
            await asyncio.get_running_loop().run_in_executor(
                None, save_clip_evidence, self.settings.pipeline.shared_root, record, frames
            )

    def _remember(self, record: ClipScored) -> None:
        if record.failure is None or record.failure.reason not in TRANSIENT_FAILURES:
            self.state.save_score(
                record.clip.key,
                record.gallery_version or "",
                record.models,
                encode(record).decode(),
            )

    async def _fetch_and_decode(self, seen: ClipSeen) -> list[Frame] | Failure:
        try:
            async with self._fetch_slots:
                media_url = await self._resolver.resolve(seen)
                if not media_url:
                    return Failure(
                        reason="no_media_url", message="the observation has no media URL"
                    )
                path = await fetch_media(
                    self._client,
                    media_url,
                    Path(self._workdir.name),
                    max_bytes=self.settings.pipeline.fetch_max_bytes,
                    total_timeout=self.settings.pipeline.fetch_timeout_s,
                    validate_url=self._guard,
                )
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    self._decoders, _load, path, self._limits, self.settings.decode.even_frames
                )
            finally:
                path.unlink(missing_ok=True)
        except MediaError as exc:
            return Failure(reason=exc.reason, message=str(exc))
        except Exception as exc:  # a broken decoder process, say: report, don't crash
            log.exception("media of %s failed unexpectedly", seen.key)
            return Failure(reason="internal", message=repr(exc))
