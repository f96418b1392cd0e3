"""The scorer's service: media fetched from a real HTTP server, verdicts cached per gallery
version, and a rebuilt or recalibrated gallery picked up without a restart (hot reload)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from PIL import Image

from monitor.config import DecodeSettings, LikenessSettings, PipelineSettings, Settings
from monitor.evidence.files import fingerprint_path
from monitor.likeness.footage import Fingerprint
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery, Threshold
from monitor.likeness.models import Models
from monitor.likeness.scoring import Scorer
from monitor.media import decode_clip
from monitor.pipeline.scoring_service import ScoringService
from monitor.pipeline.worker_state import StateStore
from monitor.records import Alert, ClipSeen
from tests.media.c2pa_signing import sign_media

DECODE = DecodeSettings(max_frames=4, even_frames=4)


@contextlib.asynccontextmanager
async def serving(files: dict[str, Path]) -> AsyncIterator[str]:
    """An HTTP server on 127.0.0.1 that serves ``files`` by name; its base URL."""

    async def serve_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(files[request.match_info["name"]])

    app = web.Application()
    app.router.add_get("/{name}", serve_file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def media_server(package_file: Callable[[str], Path]) -> AsyncIterator[str]:
    async with serving({"bunny.mp4": package_file("bigbuckbunny.mp4")}) as url:
        yield url


@pytest.fixture
def built(tmp_path: Path, package_file: Callable[[str], Path], models: Models) -> Path:
    root = tmp_path / "gallery"
    (root / "refs" / "bunny").mkdir(parents=True)
    entities = [{"id": "bunny", "name": "Bunny", "kind": "character"}]
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    Image.fromarray(decode_clip(package_file("bigbuckbunny.mp4"))[-1].image).save(
        root / "refs" / "bunny" / "end.png"
    )
    build_gallery(root, models, LikenessSettings(device="cpu"), DECODE).save(root / "built")
    return root / "built"


def service_settings(built: Path, tmp_path: Path, **pipeline: Any) -> Settings:
    """One decode worker, the media server on 127.0.0.1 allowed."""
    return Settings(
        likeness=LikenessSettings(device="cpu"),
        decode=DECODE,
        pipeline=PipelineSettings(
            gallery=built,
            state_dir=tmp_path / "state",
            decode_workers=1,
            fetch_allow=("127.0.0.1",),
            **pipeline,
        ),
    )


async def test_a_recalibrated_gallery_is_picked_up_without_a_restart(
    built: Path, models: Models, media_server: str, tmp_path: Path
) -> None:
    settings = service_settings(built, tmp_path)
    first = Gallery.load(built)
    state = StateStore(tmp_path / "state" / "state.sqlite3")
    service = ScoringService(Scorer(first, models, settings.likeness), state, settings)
    seen = ClipSeen(platform="t", clip_id="1", url="u", media_url=f"{media_server}/bunny.mp4")
    try:
        [before] = await service.score_batch([seen])
        assert before.gallery_version == first.version and before.flagged
        [cached] = await service.score_batch([seen])
        assert cached.gallery_version == first.version and not cached.rescored

        stricter = replace(first.entities["bunny"], threshold=Threshold(0.99, "entities.yaml"))
        replace(first, entities={"bunny": stricter}).save(built)
        [after] = await service.score_batch([seen])
        assert after.gallery_version == Gallery.load(built).version != first.version
        assert not after.flagged, "scored again under the new thresholds, not from the cache"

        (built / "gallery.json").write_text("{ not json")
        [kept] = await service.score_batch([seen])
        assert kept.gallery_version == after.gallery_version
    finally:
        await service.close()
        state.close()


async def test_a_clip_listed_without_its_video_is_scored_from_what_the_resolver_finds(
    built: Path, models: Models, media_server: str, tmp_path: Path
) -> None:
    """A YouTube listing gives only a thumbnail; the resolver command gives the video."""
    resolver = tmp_path / "resolve.py"
    resolver.write_text(f"print('{media_server}/bunny.mp4')\n")
    settings = service_settings(
        built, tmp_path, media_resolver=(sys.executable, str(resolver), "--", "{url}")
    )
    state = StateStore(tmp_path / "state" / "state.sqlite3")
    service = ScoringService(
        Scorer(Gallery.load(built), models, settings.likeness), state, settings
    )
    listed = ClipSeen(platform="youtube", clip_id="v1", url="https://www.youtube.com/watch?v=v1")
    elsewhere = listed.model_copy(update={"platform": "reddit", "clip_id": "r1"})
    try:
        scored, unresolved = await service.score_batch([listed, elsewhere])
        assert scored.failure is None and scored.frames == DECODE.even_frames and scored.flagged
        assert unresolved.failure is not None and unresolved.failure.reason == "no_media_url"
    finally:
        await service.close()
        state.close()


async def test_a_flagged_clip_is_fingerprinted_from_every_frame_and_its_file_then_deleted(
    built: Path, models: Models, media_server: str, tmp_path: Path
) -> None:
    """The sampled frames are enough to score a clip, not to know its copies again: the
    fingerprint kept for the review loop is first of the sampled frames (the verdict does not
    wait), then, in the background, of every frame of the fetched file (bounded by
    ``decode.fingerprint_max_frames``), and the file goes once that is done."""
    settings = service_settings(built, tmp_path, shared_dir=tmp_path / "shared")
    settings = settings.model_copy(
        update={"decode": DECODE.model_copy(update={"fingerprint_max_frames": 40})}
    )
    state = StateStore(tmp_path / "state" / "state.sqlite3")
    service = ScoringService(
        Scorer(Gallery.load(built), models, settings.likeness), state, settings
    )
    seen = ClipSeen(platform="t", clip_id="1", url="u", media_url=f"{media_server}/bunny.mp4")
    try:
        [scored] = await service.score_batch([seen])
        assert scored.flagged and scored.frames == DECODE.even_frames
        alert_id = Alert.id_for(scored.clip.key, "bunny")
        path = fingerprint_path(settings.pipeline.shared_root, alert_id)
        assert len(Fingerprint.load(path).times) <= DECODE.even_frames, "at once: sampled"
        await service.settle()
        kept = Fingerprint.load(path)
        assert DECODE.even_frames < len(kept.times) <= 40, "then: every frame"
        assert kept.about["alert_id"] == alert_id
        assert not list(Path(service._workdir.name).iterdir()), "the fetched file is deleted"
    finally:
        await service.close()
        state.close()


async def test_each_verdict_says_whether_the_clip_is_ai_generated_and_who_says_so(
    built: Path, models: Models, tmp_path: Path, package_file: Callable[[str], Path]
) -> None:
    """The fetched file's C2PA manifest, read in a decode process, the platform's label and
    the caption: the strongest source wins, on fresh and cached verdicts alike."""
    bunny = package_file("bigbuckbunny.mp4")
    signed = sign_media(bunny, tmp_path / "signed.mp4", generator="Sora")
    altered = bytearray(signed.read_bytes())
    at = altered.find(b"mdat") + 4096
    altered[at : at + 64] = bytes(64)
    (tmp_path / "altered.mp4").write_bytes(bytes(altered))
    files = {"signed.mp4": signed, "altered.mp4": tmp_path / "altered.mp4", "plain.mp4": bunny}
    server = serving(files)
    url = await server.__aenter__()
    settings = service_settings(built, tmp_path)
    state = StateStore(tmp_path / "state" / "state.sqlite3")
    service = ScoringService(
        Scorer(Gallery.load(built), models, settings.likeness), state, settings
    )

    def seen(name: str, **fields: Any) -> ClipSeen:
        return ClipSeen(
            platform="youtube", clip_id=name, url="u", media_url=f"{url}/{name}", **fields
        )

    try:
        generated, edited, hinted = await service.score_batch(
            [
                seen("signed.mp4", title="a bunny #veo3"),
                seen("altered.mp4", platform_synthetic=False),
                seen("plain.mp4", caption="made with AI"),
            ]
        )
        assert generated.flagged and generated.failure is None
        synthetic = generated.synthetic
        assert (synthetic.source, synthetic.value, synthetic.validated) == (
            "c2pa",
            "ai_generated",
            True,
        )
        assert synthetic.generator == "Sora 1.0"
        assert synthetic.detail is not None and "caption says ai_generated" in synthetic.detail
        # the platform's "no" outranks a manifest that no longer matches its content
        assert (edited.synthetic.source, edited.synthetic.value) == ("platform", "not_ai_generated")
        assert (
            edited.synthetic.detail is not None
            and "c2pa says ai_generated" in edited.synthetic.detail
        )
        assert (hinted.synthetic.source, hinted.synthetic.value) == ("caption", "ai_generated")

        [again] = await service.score_batch([seen("signed.mp4", platform_synthetic=False)])
        assert not again.rescored and again.synthetic.source == "c2pa"
        assert again.synthetic.validated is True
    finally:
        await service.close()
        state.close()
        await server.__aexit__(None, None, None)
