"""Reviews teach the gallery. A dismissal files the alert's evidence frame as a negative of its
entity and the clip's fingerprint as a clip that must not flag it again; the rebuilt gallery
has a new version under which neither the clip nor a copy of it flags, while other clips of
the entity still do. A confirmation keeps the evidence as a positive case for ``eval``. An undo
takes either lesson back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from PIL import Image

from monitor.config import DecodeSettings, LikenessSettings, PipelineSettings, Settings
from monitor.evidence.files import evidence_path, frame_path, save_clip_evidence
from monitor.likeness.evaluation import load_cases
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import Scorer
from monitor.media import decode_clip, load_media
from monitor.media.frames import Frame
from monitor.pipeline.scoring_service import to_record
from monitor.records import Alert, AlertEntity, ClipRef, ClipSeen, Review, utcnow
from monitor.review.teach import (
    CONFIRMED,
    DISMISSED,
    REVIEWED_CASES,
    GalleryTeacher,
    gallery_folder,
    learn,
)
from tests.media.clips import transform_clip

DECODE = DecodeSettings(max_frames=4, even_frames=4)
FIXED_THRESHOLD = 0.6


def make_settings(
    tmp_path: Path, package_file: Callable[[str], Path], models: Models, threshold: float | None
) -> Settings:
    """A gallery of one character, the bunny, enrolled from the film's last frame."""
    folder = tmp_path / "gallery"
    (folder / "refs" / "bunny").mkdir(parents=True)
    (folder / "negatives").mkdir()
    entity: dict[str, object] = {"id": "bunny", "name": "Bunny", "kind": "character"}
    if threshold is not None:
        entity["threshold"] = threshold
    (folder / "entities.yaml").write_text(yaml.safe_dump({"entities": [entity]}))
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


@pytest.fixture
def settings(tmp_path: Path, package_file: Callable[[str], Path], models: Models) -> Settings:
    return make_settings(tmp_path, package_file, models, threshold=None)


@pytest.fixture
def fixed_settings(tmp_path: Path, package_file: Callable[[str], Path], models: Models) -> Settings:
    """The same gallery with its threshold set by hand: calibration cannot move it."""
    return make_settings(tmp_path, package_file, models, threshold=FIXED_THRESHOLD)


def mirrored_opening(package_file: Callable[[str], Path], dst: Path, **change: object) -> Path:
    return transform_clip(
        package_file("bigbuckbunny.mp4"),
        dst,
        mirror=True,
        max_seconds=2,
        **change,  # type: ignore[arg-type]
    )


def frames_of(path: Path, settings: Settings) -> list[Frame]:
    return load_media(path, settings.decode.limits, even_frames=settings.decode.even_frames)


def alerted(settings: Settings, models: Models, clip_id: str, frames: list[Frame]) -> Alert:
    """Score the clip as the scorer role does (evidence files included) and make its alert."""
    assert settings.pipeline.gallery is not None
    gallery = Gallery.load(settings.pipeline.gallery)
    seen = ClipSeen(
        platform="t", clip_id=clip_id, url=f"http://127.0.0.1/{clip_id}", title="so cute"
    )
    scored = to_record(seen, Scorer(gallery, models, settings.likeness).score_frames(frames))
    [flagged] = scored.flagged
    save_clip_evidence(
        settings.pipeline.state_dir,
        scored,
        frames,
        gallery_root=gallery_folder(settings.pipeline.gallery),
    )
    return Alert(
        alert_id=Alert.id_for(seen.key, "bunny"),
        entity=AlertEntity(id="bunny", name="Bunny", kind="character"),
        clip=ClipRef.of(seen),
        score=flagged.score,
        threshold=flagged.threshold,
        evidence=flagged.evidence,
        first_seen=utcnow(),
        observed_at=utcnow(),
    )


def review(alert: Alert, decision: str) -> Review:
    return Review(alert_id=alert.alert_id, decision=decision, reviewer="ops")  # type: ignore[arg-type]


def test_a_dismissed_alert_becomes_a_negative_and_the_rebuilt_gallery_stops_flagging_it(
    settings: Settings, models: Models, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    assert settings.pipeline.gallery is not None
    first = Gallery.load(settings.pipeline.gallery)
    frames = frames_of(mirrored_opening(package_file, tmp_path / "c.mp4"), settings)
    alert = alerted(settings, models, "1", frames)

    folder = settings.pipeline.gallery.parent
    assert learn(review(alert, "dismiss"), alert, settings.pipeline.state_dir, folder)
    filed = folder / DISMISSED / "bunny"
    assert {p.name for p in filed.iterdir()} == {
        f"{alert.alert_id}.jpg",
        f"{alert.alert_id}.pdq.json",
    }
    shown = evidence_path(settings.pipeline.state_dir, alert.alert_id).read_bytes()
    assert (
        (filed / f"{alert.alert_id}.jpg").read_bytes()
        == frame_path(settings.pipeline.state_dir, alert.alert_id).read_bytes()
        != shown
    ), "the frame alone is filed, not the thumbnail beside its reference"

    teacher = GalleryTeacher(settings.pipeline.gallery, settings.likeness, settings.decode)
    taught_version = teacher.rebuild()
    taught = Gallery.load(settings.pipeline.gallery)
    assert taught_version == taught.version != first.version
    assert taught.entities["bunny"].threshold.value > first.entities["bunny"].threshold.value
    assert Scorer(taught, models, settings.likeness).score_frames(frames).flagged == [], (
        "the same clip no longer flags under the taught gallery"
    )

    assert learn(review(alert, "undo"), alert, settings.pipeline.state_dir, folder)
    assert list(filed.iterdir()) == []
    assert teacher.rebuild() == first.version
    assert teacher.rebuild() is None, "nothing changed: no rebuild is published"


def test_a_copy_of_a_dismissed_clip_is_not_flagged_even_where_the_threshold_cannot_move(
    fixed_settings: Settings, models: Models, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    settings = fixed_settings
    assert settings.pipeline.gallery is not None
    frames = frames_of(mirrored_opening(package_file, tmp_path / "c.mp4"), settings)
    alert = alerted(settings, models, "1", frames)
    folder = settings.pipeline.gallery.parent
    assert learn(review(alert, "dismiss"), alert, settings.pipeline.state_dir, folder)
    teacher = GalleryTeacher(settings.pipeline.gallery, settings.likeness, settings.decode)
    assert teacher.rebuild() is not None

    taught = Gallery.load(settings.pipeline.gallery)
    assert taught.entities["bunny"].threshold.value == FIXED_THRESHOLD
    scorer = Scorer(taught, models, settings.likeness)
    reupload = frames_of(mirrored_opening(package_file, tmp_path / "r.mp4", crf=36), settings)
    for clip in (frames, reupload):
        [bunny] = scorer.score_frames(clip).entities
        assert bunny.score >= FIXED_THRESHOLD and not bunny.flagged
        assert bunny.suppressed_by == f"negatives/dismissed/bunny/{alert.alert_id}.pdq.json"
        assert bunny.evidence[-1].signal == "hash" and "dismissed" in (
            bunny.evidence[-1].text or ""
        )

    the_end = load_media(folder / "refs" / "bunny" / "end.png", settings.decode.limits)
    [other] = scorer.score_frames(the_end).entities
    assert other.flagged and other.suppressed_by is None, "other clips of the bunny still flag"


def test_a_confirmation_is_kept_as_a_positive_case_for_the_evaluation(
    settings: Settings, models: Models, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    assert settings.pipeline.gallery is not None
    frames = frames_of(mirrored_opening(package_file, tmp_path / "c.mp4"), settings)
    alert = alerted(settings, models, "1", frames)
    folder, state = settings.pipeline.gallery.parent, settings.pipeline.state_dir

    assert not learn(review(alert, "confirm"), alert, state, folder), "no rebuild for a positive"
    kept = folder / CONFIRMED / "bunny" / f"{alert.alert_id}.jpg"
    assert kept.is_file()
    [case] = load_cases(folder / REVIEWED_CASES)
    assert case.path == kept.resolve() and case.expect == {"bunny"} and case.caption == "so cute"

    assert learn(review(alert, "dismiss"), alert, state, folder), "changing one's mind"
    assert not kept.exists() and load_cases(folder / REVIEWED_CASES) == []
    assert (folder / DISMISSED / "bunny" / f"{alert.alert_id}.jpg").is_file()

    assert learn(review(alert, "confirm"), alert, state, folder)
    assert not (folder / DISMISSED / "bunny").exists() or not any(
        (folder / DISMISSED / "bunny").iterdir()
    )
    assert (
        json.loads((folder / REVIEWED_CASES).read_text())["cases"][0]["alert_id"] == alert.alert_id
    )
