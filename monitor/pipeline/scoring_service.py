"""The scorer's work for one batch of observations: fetch, decode, infer, and say what happened.

The event loop never blocks: media are fetched concurrently with httpx (bounded in bytes and
time), decoded in a process pool (PyAV holds the GIL for parts of a decode; ``DecodePool``
rebuilds it when a process dies), and scored by one inference thread per device, so the model
sees one batch of frames from every clip at once. Every clip yields a ``ClipScored``: with
scores, or with the reason it could not be scored. A clip already scored with this gallery and
these models is not scored again; its cached verdict is re-sent with the new observation, which
is all the decide role needs for spread.

The work is in two steps, ``prepare`` (cache, fetch, decode: per clip, as slow as its server)
and ``score_prepared`` (one forward pass for the clips that are ready), so that the worker
(``score_flow.py``) scores each clip as soon as its media are in, and a slow server holds only
its own clip; ``score_batch`` does both for a batch in hand (the tests' way in).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from monitor import metrics
from monitor.config import Settings
from monitor.errors import MediaError, MonitorError
from monitor.evidence.files import save_clip_evidence, save_fingerprints
from monitor.likeness.footage.copies import footprint
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.scoring import ClipScore, Scorer
from monitor.media.fetch import fetch_media
from monitor.media.frames import Frame
from monitor.media.provenance import measure_c2pa, strongest, verdict_for
from monitor.media.resolve import CommandResolver, ListedMedia, MediaResolver
from monitor.media.safety import AddressGuard, guarded_client
from monitor.pipeline.decode_pool import DecodePool
from monitor.pipeline.scorer_health import ScorerHealth
from monitor.pipeline.worker_state import StateStore
from monitor.records import (
    ClipRef,
    ClipScored,
    ClipSeen,
    EvidenceRecord,
    Failure,
    ScoredEntity,
    Synthetic,
    decode,
    encode,
)
from monitor.review.teach import gallery_folder

__all__ = ["Prepared", "ScoringService", "to_record"]

log = logging.getLogger(__name__)


DENSE_BACKLOG = 16
"""Flagged clips whose every-frame fingerprint may wait (with their files) at once."""

TRANSIENT_FAILURES = frozenset(
    {"timeout", "network", "http_5xx", "http_other", "internal", "scoring_error", "resolve_failed"}
)
"""Failures worth another try at the next observation; others are cached like a score
(``decoder_crashed`` among them: a clip that kills a decoder alone would kill one again)."""


@dataclass
class Prepared:
    """One observation after ``prepare``: its verdict already (cached, or why its media could
    not be had), or its frames, waiting for the model."""

    seen: ClipSeen
    record: ClipScored | None = None
    frames: list[Frame] | None = None
    started: float = field(default_factory=time.perf_counter)
    cached: bool = False
    gate: asyncio.Semaphore | None = None
    """The slot its frames hold until they are scored (``prepare``'s ``frames_gate``)."""
    media: Path | None = None
    """The fetched file, kept until scored: a flagged clip's fingerprint reads every frame."""
    provenance: Synthetic | None = None
    """What the fetched file's C2PA manifest says (``DecodePool.provenance``)."""

    def release(self) -> None:
        """Give back the frames' slot and delete the fetched file (once scored): another clip
        may be decoded."""
        if self.gate is not None:
            self.gate.release()
            self.gate = None
        if self.media is not None:
            self.media.unlink(missing_ok=True)
            self.media = None


def to_record(seen: ClipSeen, result: ClipScore, media: Synthetic | None = None) -> ClipScored:
    """The verdict on ``seen``, its ``synthetic`` from the media's C2PA verdict (``media``),
    the platform's label and the caption (``verdict_for``)."""
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
                    raw_score=e.raw_score,
                    cohort_nearest=e.cohort_nearest,
                    cohort_score=e.cohort_score,
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
        synthetic=verdict_for(seen, media),
    )


def _failed(seen: ClipSeen, scorer: Scorer, reason: str, message: str) -> ClipScored:
    return ClipScored(
        clip=ClipRef.of(seen),
        observation=seen,
        gallery_version=scorer.gallery.version,
        models=dict(scorer.models.versions),
        failure=Failure(reason=reason, message=message[:500]),
        synthetic=verdict_for(seen),
    )


class ScoringService:
    def __init__(self, scorer: Scorer, state: StateStore, settings: Settings) -> None:
        self.scorer = scorer
        self.state = state
        self.settings = settings
        self.device = scorer.models.device
        self._limits = settings.decode.limits
        self._inference: Executor = ThreadPoolExecutor(1, thread_name_prefix=f"infer-{self.device}")
        self.health = ScorerHealth()
        self.decoders = DecodePool(settings.pipeline.decode_workers, on_death=self._pool_died)
        self._fetch_slots = asyncio.Semaphore(settings.pipeline.fetch_concurrency)
        self._workdir = tempfile.TemporaryDirectory(prefix="likeness-fetch-")
        self._dense: set[asyncio.Task[None]] = set()
        self._dense_slot = asyncio.Semaphore(1)
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

    def _pool_died(self) -> None:
        self.health.pool_died()
        metrics.DECODER_RESTARTS.labels(self.device).inc()

    async def close(self) -> None:
        for task in self._dense:
            task.cancel()
        await asyncio.gather(*self._dense, return_exceptions=True)
        await self._client.aclose()
        self._inference.shutdown(wait=True)
        self.decoders.shutdown()
        self._workdir.cleanup()

    async def score_batch(self, batch: Sequence[ClipSeen]) -> list[ClipScored]:
        """One ``ClipScored`` per observation, in order: every clip fetched and decoded, then
        scored together."""
        self.reload_gallery_if_changed()
        prepared = await asyncio.gather(*(self.prepare(seen) for seen in batch))
        try:
            return await self.score_prepared(prepared)
        finally:
            for each in prepared:
                each.release()

    async def prepare(
        self, seen: ClipSeen, *, frames_gate: asyncio.Semaphore | None = None
    ) -> Prepared:
        """The cached verdict of ``seen``'s clip, or its frames, or why it has none.

        With ``frames_gate``, a slot is taken before decoding and held by the frames until
        ``Prepared.release``: decoded frames (up to ~100 MB a clip) waiting for the model are
        bounded, however fast clips arrive and however slow the model is."""
        started = time.perf_counter()
        state = self.state
        cached = await state.run(
            state.cached_score, seen.key, self.scorer.gallery.version, self.scorer.models.versions
        )
        if cached is not None:
            record = decode(ClipScored, cached)
            metrics.CLIPS_SCORED.labels(seen.platform, "cached").inc()
            # the media's verdict is the cached one's; the label and caption are this observation's
            synthetic = strongest([record.synthetic, verdict_for(seen)])
            update = {"observation": seen, "rescored": False, "synthetic": synthetic}
            return Prepared(seen, record.model_copy(update=update), cached=True)
        loaded = await self._fetch_and_decode(seen, frames_gate)
        if isinstance(loaded, tuple):
            frames, media, provenance = loaded
            return Prepared(
                seen, None, frames, started, gate=frames_gate, media=media, provenance=provenance
            )
        record = _failed(seen, self.scorer, loaded.reason, loaded.message)
        await self.state.run(self._remember, record)
        self.health.failed(loaded.reason)
        metrics.MEDIA_FAILURES.labels(seen.platform, loaded.reason).inc()
        metrics.CLIPS_SCORED.labels(seen.platform, "failed").inc()
        return Prepared(seen, record, None, started)

    async def score_prepared(self, prepared: Sequence[Prepared]) -> list[ClipScored]:
        """One ``ClipScored`` per prepared observation, in order; those with frames are
        scored in one pass of each model."""
        self.reload_gallery_if_changed()
        out: dict[int, ClipScored] = {
            i: p.record for i, p in enumerate(prepared) if p.record is not None
        }
        ready = [(i, p, p.frames) for i, p in enumerate(prepared) if p.frames is not None]
        if ready:
            metrics.BATCH_SIZE.labels(self.device).observe(len(ready))
            try:
                results = await asyncio.get_running_loop().run_in_executor(
                    self._inference,
                    self.scorer.score_many,
                    [(frames, p.seen.text or None) for _, p, frames in ready],
                )
            except Exception as exc:  # a model failure must not take the partition down
                log.exception("scoring failed for a batch of %d clips", len(ready))
                results = None
                for i, p, _ in ready:
                    out[i] = _failed(p.seen, self.scorer, "scoring_error", repr(exc))
                    self.health.failed("scoring_error")
                    metrics.CLIPS_SCORED.labels(p.seen.platform, "failed").inc()
            for (i, p, frames), result in zip(ready, results or [], strict=False):
                seen = p.seen
                record = await self._with_footprint(to_record(seen, result, p.provenance), frames)
                await self._save_evidence(record, frames)  # before the verdict is cached
                if record.flagged and p.media is not None:
                    self._fingerprint_later(record, p.media)
                    p.media = None  # the background fingerprint deletes it
                await self.state.run(
                    self.state.save_score,
                    seen.key,
                    record.gallery_version or "",
                    record.models,
                    encode(record).decode(),
                )
                out[i] = record
                self.health.succeeded()
                metrics.CLIPS_SCORED.labels(seen.platform, "scored").inc()
        fresh = [p for p in prepared if not p.cached]
        if fresh:
            earliest = min(p.started for p in fresh)
            elapsed = time.perf_counter() - earliest
            metrics.SCORING_SECONDS.labels(self.device).observe(elapsed / len(fresh))
        return [out[i] for i in range(len(prepared))]

    async def _with_footprint(self, record: ClipScored, frames: list[Frame]) -> ClipScored:
        """A flagged clip's record with its frames' hashes, for decide to know its copies by."""
        if not record.flagged:
            return record
        hashed = await asyncio.get_running_loop().run_in_executor(None, footprint, frames)
        return record.model_copy(update={"footprint": hashed})

    async def _save_evidence(self, record: ClipScored, frames: list[Frame]) -> None:
        """Per flagged entity, a thumbnail for the alert's message (served at /evidence/) and
        the clip's fingerprint from its sampled frames, for the review loop should the alert
        be dismissed (``_fingerprint_later`` replaces it with one of every frame)."""
        if record.flagged:
            await asyncio.get_running_loop().run_in_executor(
                None,
                save_clip_evidence,
                self.settings.pipeline.shared_root,
                record,
                frames,
                None,
                gallery_folder(self.settings.pipeline.gallery),
            )

    def _fingerprint_later(self, record: ClipScored, media: Path) -> None:
        """Hash every frame of a flagged clip's file in the background and replace its
        fingerprint, then delete the file.

        Not before the verdict: reading every frame costs seconds a clip, and a wave of
        flagged clips would hold every verdict behind it. One at a time, so at most one decode
        process is taken from new clips; past ``DENSE_BACKLOG`` waiting, a clip keeps its
        sampled fingerprint (logged), so a wave cannot pile up files."""
        if len(self._dense) >= DENSE_BACKLOG:
            log.warning("fingerprint of %s from its sampled frames only: backlog", record.clip.key)
            media.unlink(missing_ok=True)
            return
        task = asyncio.create_task(self._fingerprint(record, media))
        self._dense.add(task)
        task.add_done_callback(self._dense.discard)

    async def _fingerprint(self, record: ClipScored, media: Path) -> None:
        try:
            async with self._dense_slot:
                kept = await self.decoders.fingerprint(
                    media, self.settings.decode.fingerprint_limits
                )
            await asyncio.get_running_loop().run_in_executor(
                None, save_fingerprints, self.settings.pipeline.shared_root, record, kept
            )
        except Exception as exc:  # the sampled fingerprint stays
            log.warning("fingerprint of %s from its sampled frames only: %s", record.clip.key, exc)
        finally:
            media.unlink(missing_ok=True)

    async def settle(self) -> None:
        """Wait for the background fingerprints (tests, and an orderly stop)."""
        while self._dense:
            await asyncio.gather(*self._dense, return_exceptions=True)

    def _remember(self, record: ClipScored) -> None:
        if record.failure is None or record.failure.reason not in TRANSIENT_FAILURES:
            self.state.save_score(
                record.clip.key,
                record.gallery_version or "",
                record.models,
                encode(record).decode(),
            )

    async def _provenance(self, path: Path) -> Synthetic:
        """The media's C2PA verdict; a reader that fails (its process died twice, say) is a
        c2pa verdict of unknown that says so, and costs the clip nothing else."""
        try:
            # Most files carry no manifest: known from their headers, without the pool.
            measured = await asyncio.to_thread(measure_c2pa, path)
            if measured is not None:
                return measured
            return await self.decoders.provenance(path)
        except Exception as exc:
            log.warning("the C2PA manifest of %s could not be read: %s", path, exc)
            return Synthetic(source="c2pa", detail=f"C2PA manifest not read: {exc}")

    async def _fetch_and_decode(
        self, seen: ClipSeen, gate: asyncio.Semaphore | None = None
    ) -> tuple[list[Frame], Path, Synthetic] | Failure:
        """The frames, the fetched file (the caller deletes it) and what its C2PA manifest
        says, or why there are none."""
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
                provenance = await self._provenance(path)
                if gate is not None:
                    await gate.acquire()
                try:
                    frames = await self.decoders.decode(
                        path, self._limits, self.settings.decode.even_frames
                    )
                except BaseException:
                    if gate is not None:
                        gate.release()  # no frames hold it
                    raise
            except BaseException:
                path.unlink(missing_ok=True)
                raise
            return frames, path, provenance
        except MediaError as exc:
            return Failure(reason=exc.reason, message=str(exc))
        except Exception as exc:  # whatever else: report, don't crash
            log.exception("media of %s failed unexpectedly", seen.key)
            return Failure(reason="internal", message=repr(exc))
