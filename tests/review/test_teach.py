"""A dismissal teaches the gallery: the alert's evidence joins the negatives, the rebuilt
gallery has a new version whose threshold keeps the same clip from flagging again, and an
undo takes the lesson back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from PIL import Image

from monitor.alerts.evidence import save_evidence
from monitor.config import DecodeSettings, LikenessSettings, PipelineSettings, Settings
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.store import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import Scorer
from monitor.media import decode_clip, load_media
from monitor.pipeline.scoring_service import to_record
from monitor.records import Alert, AlertEntity, ClipRef, ClipSeen, Review, utcnow
from monitor.review.teach import DISMISSED, GalleryTeacher, learn
from tests.media.clips import transform_clip

DECODE = DecodeSettings(max_frames=4, even_frames=4)


@pytest.fixture
def settings(tmp_path: Path, package_file: Callable[[str], Path], models: Models) -> Settings:
    folder = tmp_path / "gallery"
    (folder / "refs" / "bunny").mkdir(parents=True)
    (folder / "negatives").mkdir()
    entities = [{"id": "bunny", "name": "Bunny", "kind": "character"}]
    (folder / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    Image.fromarray(decode_clip(package_file("bigbuckbunny.mp4"))[-1].image).save(
        folder / "refs" / "bunny" / "end.png"
    )
    Image.fromarray(decode_clip(package_file("bikes.mp4"))[0].image).save(
        folder / "negatives" / "bikes.png"
    )
    built = folder / "built"
    build_gallery(folder, models, LikenessSettings(device="cpu"), DECODE).save(built)
    return Settings(
        likeness=LikenessSettings(device="cpu"),
        decode=DECODE,
        pipeline=PipelineSettings(gallery=built, state_dir=tmp_path / "state"),
    )


def test_a_dismissed_alert_becomes_a_negative_and_the_rebuilt_gallery_stops_flagging_it(
    settings: Settings, models: Models, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    assert settings.pipeline.gallery is not None
    first = Gallery.load(settings.pipeline.gallery)
    clip = transform_clip(
        package_file("bigbuckbunny.mp4"), tmp_path / "c.mp4", mirror=True, max_seconds=2
    )
    frames = load_media(clip, settings.decode.limits, even_frames=4)
    seen = ClipSeen(platform="t", clip_id="1", url="http://127.0.0.1/1")
    scored = to_record(seen, Scorer(first, models, settings.likeness).score_frames(frames))
    [flagged] = scored.flagged
    alert = Alert(
        alert_id=Alert.id_for(seen.key, "bunny"),
        entity=AlertEntity(id="bunny", name="Bunny", kind="character"),
        clip=ClipRef.of(seen),
        score=flagged.score,
        threshold=flagged.threshold,
        evidence=flagged.evidence,
        first_seen=utcnow(),
        observed_at=utcnow(),
    )
    assert save_evidence(settings.pipeline.state_dir, alert.alert_id, frames, flagged.evidence)

    dismissal = Review(alert_id=alert.alert_id, decision="dismiss", reviewer="ops")
    folder = settings.pipeline.gallery.parent
    assert learn(dismissal, alert, settings.pipeline.state_dir, folder)
    assert (folder / DISMISSED / "bunny" / f"{alert.alert_id}.jpg").is_file()

    teacher = GalleryTeacher(settings)
    taught_version = teacher.rebuild()
    taught = Gallery.load(settings.pipeline.gallery)
    assert taught_version == taught.version != first.version
    assert taught.entities["bunny"].threshold.value > first.entities["bunny"].threshold.value
    again = Scorer(taught, models, settings.likeness).score_frames(frames)
    assert again.flagged == [], "the same clip no longer flags under the taught gallery"

    undo = Review(alert_id=alert.alert_id, decision="undo", reviewer="ops")
    assert learn(undo, alert, settings.pipeline.state_dir, folder)
    assert teacher.rebuild() == first.version
    assert teacher.rebuild() is None, "nothing changed: no rebuild is published"
