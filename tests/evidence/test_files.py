"""Evidence thumbnails: the best framed evidence, outlined, small, served only by alert id."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from aiohttp import web
from PIL import Image

from monitor.config import PipelineSettings, Settings
from monitor.evidence.files import (
    best_evidence,
    evidence_path,
    frame_path,
    read_evidence,
    save_evidence,
)
from monitor.evidence.urls import EvidenceUrls
from monitor.media import load_media
from monitor.media.frames import Frame
from monitor.pipeline.roles import create_pipeline
from monitor.records import Alert, EvidenceRecord

ALERT_ID = Alert.id_for("demo:c1", "ghostface")


@pytest.fixture(scope="module")
def photo(package_file: Callable[[str], Path]) -> Frame:
    (frame,) = load_media(package_file("t1.jpg"))
    return frame


def test_the_best_framed_evidence_is_chosen_and_a_caption_never_is() -> None:
    evidence = [
        EvidenceRecord(signal="caption", score=0.99, text="ghostface"),
        EvidenceRecord(signal="visual", score=0.7, frame_time=0.0),
        EvidenceRecord(signal="face", score=0.8, frame_time=2.0, box=[1, 2, 3, 4]),
    ]
    best = best_evidence(evidence)
    assert best is not None and best.signal == "face"
    assert best_evidence(evidence[:1]) is None


def test_the_thumbnail_is_a_jpeg_at_most_480_px_with_the_box_outlined(
    photo: Frame, tmp_path: Path
) -> None:
    h, w = photo.height, photo.width
    box = [w // 4, h // 4, w // 2, h // 2]
    frames = [Frame(np.zeros_like(photo.image), time=0.0), Frame(photo.image, time=2.0)]
    evidence = [EvidenceRecord(signal="face", score=0.9, frame_time=2.0, box=box)]
    path = save_evidence(tmp_path, ALERT_ID, frames, evidence)
    assert path == evidence_path(tmp_path, ALERT_ID) and path.read_bytes()[:3] == b"\xff\xd8\xff"
    thumb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    assert max(thumb.shape[:2]) == min(480, max(h, w))
    scale = thumb.shape[1] / w
    edge = thumb[round((h // 4 + h // 4) * scale), round(w // 4 * scale) + 1]
    assert edge[0] > 180 and edge[1] < 90 and edge[2] < 90  # red outline on the box's left side
    assert thumb.mean() > 20  # the photo, not the black frame at t=0


def gallery_with_reference(root: Path, colour: tuple[int, int, int]) -> Path:
    (root / "refs" / "ghostface").mkdir(parents=True)
    Image.new("RGB", (300, 400), colour).save(root / "refs" / "ghostface" / "mask.png")
    return root


def test_the_match_is_shown_beside_the_reference_it_matched_and_the_frame_kept_alone(
    photo: Frame, tmp_path: Path
) -> None:
    """The thumbnail pairs the boxed face (with some surroundings) and the reference picture;
    the frame alone is what a review files into the gallery."""
    root = gallery_with_reference(tmp_path / "gallery", (0, 200, 0))
    h, w = photo.height, photo.width
    box = [w // 3, h // 3, w // 6, h // 6]
    evidence = [
        EvidenceRecord(
            signal="face", score=0.9, frame_time=0.0, box=box, reference="refs/ghostface/mask.png"
        )
    ]
    path = save_evidence(tmp_path, ALERT_ID, [Frame(photo.image, time=0.0)], evidence, root)
    assert path is not None
    pair = np.asarray(Image.open(path).convert("RGB")).astype(int)
    alone = Image.open(frame_path(tmp_path, ALERT_ID))
    assert max(alone.size) == min(480, max(h, w)), "the frame alone, as without a gallery"
    right = pair[20:, -20:]
    assert right[..., 1].mean() > 150 and right[..., 0].mean() < 60, "the green reference"
    assert pair.shape[1] < alone.size[0] + 300, "the match is cropped around its box"


@pytest.mark.parametrize(
    "reference",
    ["../outside.png", "refs/ghostface/missing.png", "refs/ghostface/broken.png", None],
)
def test_without_a_readable_reference_inside_the_gallery_the_frame_is_shown_alone(
    photo: Frame, tmp_path: Path, reference: str | None
) -> None:
    root = gallery_with_reference(tmp_path / "gallery", (0, 200, 0))
    (root / "refs" / "ghostface" / "broken.png").write_bytes(b"not a picture")
    Image.new("RGB", (50, 50), "blue").save(tmp_path / "outside.png")
    evidence = [EvidenceRecord(signal="face", score=0.9, frame_time=0.0, reference=reference)]
    path = save_evidence(tmp_path, ALERT_ID, [Frame(photo.image, time=0.0)], evidence, root)
    assert path is not None
    assert path.read_bytes() == frame_path(tmp_path, ALERT_ID).read_bytes()


def test_no_thumbnail_without_framed_evidence(photo: Frame, tmp_path: Path) -> None:
    caption = [EvidenceRecord(signal="caption", score=0.9, text="x")]
    assert save_evidence(tmp_path, ALERT_ID, [photo], caption) is None


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "ABCDEF0123456789ABCD", "abc", "0" * 21, "0" * 19 + "g", ""]
)
def test_only_alert_ids_name_evidence_files(tmp_path: Path, bad: str) -> None:
    assert read_evidence(tmp_path, bad) is None
    with pytest.raises(ValueError):
        evidence_path(tmp_path, bad)


@pytest.fixture
async def monitor_web(tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(pipeline=PipelineSettings(state_dir=tmp_path))
    pipeline = create_pipeline(settings, "kafka://127.0.0.1:9", roles=())
    runner = web.AppRunner(pipeline.app.web.web_app)  # type: ignore[attr-defined]  # aiohttp driver
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()
    pipeline.state.close()


async def test_the_web_server_serves_evidence_by_alert_id_and_nothing_else(
    monitor_web: str, photo: Frame, tmp_path: Path
) -> None:
    save_evidence(
        tmp_path, ALERT_ID, [photo], [EvidenceRecord(signal="visual", score=1, frame_time=0)]
    )
    (tmp_path / "secret.jpg").write_bytes(b"not for you")
    urls = EvidenceUrls.for_dir(tmp_path)  # the key the worker made beside the thumbnails
    async with httpx.AsyncClient(base_url=monitor_web) as client:
        found = await client.get(urls.path(ALERT_ID))
        assert found.status_code == 200 and found.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(found.content)).format == "JPEG"
        assert (await client.get(urls.path("0" * 20))).status_code == 404
        for probe in (
            "/evidence/..%2Fsecret.jpg",
            "/evidence/%2E%2E%2Fsecret.jpg",
            "/evidence/secret.jpg",
        ):
            response = await client.get(probe)
            assert response.status_code in (403, 404), probe
            assert response.content != b"not for you", probe
