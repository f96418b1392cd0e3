"""The demo's uploads and its gallery, built from package media so that nothing is committed.

A demo must show the monitor finding what name filters miss: altered re-uploads of known
footage, a face in a group photo, a face in another shot of the same person; and not finding
what it should not: unrelated footage, a stranger's face, a caption that names an entity
over a picture that shows none. It must also show what happens when a platform serves a
broken file. Every clip here is one of those cases, and says what a scorer should find in it
(``expect``), so end-to-end tests can hold the whole pipeline to it.

References come from other moments of the same sources than the clips (the end of Big Buck
Bunny against clips of its start, the first frame of the car-phone call against a later,
mirrored segment); only the group photo is its own reference, cropped to one face, since the
package media hold no second picture of her. The stranger's face of the ``headshot`` clip is
also among the gallery's negatives, as a known benign face would be.

The build is deterministic and cached: the folder's ``VERSION`` names a hash of the recipe
and of the package media, and a folder whose ``VERSION`` matches is used as it is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from PIL import Image

from monitor.assets import cache_dir
from monitor.media.samples import PACKAGE_MEDIA, sample
from monitor.media.transforms import (
    RGB,
    as_rgb,
    pattern_frames,
    read_frames,
    resize,
    still_frames,
    transform_frames,
    write_clip,
)

__all__ = [
    "DEMO_CLIPS",
    "DEMO_ENTITIES",
    "BrokenKind",
    "DemoCatalogue",
    "DemoClip",
    "build_demo",
    "default_demo_root",
]

BrokenKind = Literal["missing", "corrupt"]

_RECIPE = "demo-1"  # bump when the way media are made changes without the tables changing
_FPS = 25
_SECONDS = 2.5
_FRAMES = round(_FPS * _SECONDS)
_CRF = 26


@dataclass(frozen=True, slots=True)
class DemoClip:
    """One upload on the demo platform, with what a scorer should make of it.

    ``expect`` lists the entity ids a correct scorer flags (empty for a negative);
    ``broken`` marks the uploads whose media cannot be scored: ``missing`` (the media URL
    answers 404) and ``corrupt`` (served, but not decodable). Views grow from ``base_views``
    by ``views_per_s`` from the moment the platform starts; ``age_s`` is how long before that
    the clip was posted.
    """

    id: str
    title: str
    caption: str
    author: str
    media: str
    expect: tuple[str, ...] = ()
    broken: BrokenKind | None = None
    base_views: int = 100
    views_per_s: float = 1.0
    age_s: int = 3600

    @property
    def failure_reason(self) -> str | None:
        """The failure reason a scorer should report for this clip, if it is broken."""
        return {"missing": "http_404", "corrupt": "unreadable", None: None}[self.broken]


DEMO_ENTITIES: tuple[dict[str, object], ...] = (
    {
        "id": "big-buck-bunny",
        "name": "Big Buck Bunny",
        "kind": "character",
        "franchise": "Big Buck Bunny",
        "owner": "Blender Foundation",
        "aliases": ["bbb", "buck bunny"],
    },
    {
        "id": "jennifer-aniston",
        "name": "Jennifer Aniston",
        "kind": "actor",
        "franchise": "Friends",
        "owner": "demo",
    },
    {
        "id": "carphone-man",
        "name": "Car-phone man",
        "kind": "actor",
        "owner": "demo",
        "description": "The man on the phone in the 'carphone' test sequence.",
    },
)

_BUNNY = ("big-buck-bunny",)

DEMO_CLIPS: tuple[DemoClip, ...] = (
    DemoClip(
        "bbb-mirrored",
        "he woke up like this",
        "monday energy #mood #funny",
        "@sleepyhollowfan",
        "bbb-mirrored.mp4",
        _BUNNY,
        base_views=1200,
        views_per_s=40.0,
        age_s=1800,
    ),
    DemoClip(
        "bbb-cropped",
        "morning stretch",
        "who else is this today",
        "@dailyvibes",
        "bbb-cropped.mp4",
        _BUNNY,
        base_views=300,
        views_per_s=12.0,
        age_s=5400,
    ),
    DemoClip(
        "bbb-vertical",
        "bbb edit",
        "for the fans #bbb #edit",
        "@edits4u",
        "bbb-vertical.mp4",
        _BUNNY,
        base_views=5000,
        views_per_s=90.0,
        age_s=900,
    ),
    DemoClip(
        "bbb-captioned",
        "wait for it",
        "lol",
        "@memefactory",
        "bbb-captioned.mp4",
        _BUNNY,
        base_views=800,
        views_per_s=25.0,
        age_s=2700,
    ),
    DemoClip(
        "bbb-pip",
        "my commute vs my mood",
        "reaction cam #bikes",
        "@pedalpusher",
        "bbb-pip.mp4",
        _BUNNY,
        base_views=150,
        views_per_s=4.0,
        age_s=7200,
    ),
    DemoClip(
        "carphone-mirrored",
        "on my way to the wedding",
        "car selfie, wish me luck",
        "@groomsman",
        "carphone-mirrored.mp4",
        ("carphone-man",),
        base_views=90,
        views_per_s=2.0,
        age_s=10800,
    ),
    DemoClip(
        "friends-poker",
        "poker night throwback",
        "the gang, 90s forever",
        "@nostalgia",
        "friends-poker.mp4",
        ("jennifer-aniston",),
        base_views=20000,
        views_per_s=150.0,
        age_s=600,
    ),
    DemoClip(
        "bikes",
        "sunday ride",
        "#cycling #outdoors",
        "@pedalpusher",
        "bikes.mp4",
        base_views=60,
        views_per_s=0.5,
    ),
    DemoClip(
        "pattern-loop",
        "satisfying loop",
        "buck bunny fans will get it",
        "@loopmaker",
        "pattern-loop.mp4",
        base_views=400,
        views_per_s=3.0,
        age_s=4000,
    ),
    DemoClip(
        "headshot",
        "new headshot",
        "casting call ready",
        "@aspiring_actor",
        "headshot.mp4",
        base_views=30,
        views_per_s=0.2,
        age_s=14400,
    ),
    DemoClip(
        "gone",
        "you have to see this",
        "before they take it down",
        "@leaks",
        "gone.mp4",
        broken="missing",
        base_views=700,
        views_per_s=8.0,
        age_s=1200,
    ),
    DemoClip(
        "glitch",
        "glitch art",
        "#datamosh",
        "@glitchy",
        "glitch.mp4",
        broken="corrupt",
        base_views=50,
        views_per_s=0.5,
        age_s=3000,
    ),
)


@dataclass(frozen=True, slots=True)
class DemoCatalogue:
    """A built demo folder: ``media/`` (the clips) and ``gallery/`` (a gallery folder)."""

    root: Path
    version: str
    clips: tuple[DemoClip, ...] = DEMO_CLIPS

    @property
    def media_dir(self) -> Path:
        return self.root / "media"

    @property
    def gallery_dir(self) -> Path:
        return self.root / "gallery"

    def clip(self, clip_id: str) -> DemoClip:
        for clip in self.clips:
            if clip.id == clip_id:
                return clip
        raise KeyError(clip_id)

    def media_path(self, name: str) -> Path | None:
        """The file behind a media name the catalogue serves, or None (unknown, or missing on
        purpose). Only names from the catalogue resolve, so no request reaches other files."""
        for clip in self.clips:
            if clip.media == name and clip.broken != "missing":
                path = self.media_dir / clip.media
                return path if path.is_file() else None
        return None


def default_demo_root() -> Path:
    """Where the demo is built unless told otherwise: beside the cached weights."""
    return cache_dir() / "demo"


def build_demo(root: Path | None = None) -> DemoCatalogue:
    """Build the demo media and gallery into ``root`` (or reuse them if already built there).

    The new build is made in a scratch folder inside ``root`` and moved into place before
    ``VERSION`` is written, so an interrupted build is redone, never half used.
    """
    root = Path(root) if root is not None else default_demo_root()
    version = _version()
    catalogue = DemoCatalogue(root=root, version=version)
    stamp = root / "VERSION"
    if _read(stamp) == version and catalogue.media_dir.is_dir() and catalogue.gallery_dir.is_dir():
        return catalogue
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
    try:
        _build_media(scratch / "media")
        _build_gallery(scratch / "gallery")
        stamp.unlink(missing_ok=True)
        for part in ("media", "gallery"):
            shutil.rmtree(root / part, ignore_errors=True)
            (scratch / part).rename(root / part)
        stamp.write_text(version + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return catalogue


def _version() -> str:
    recipe = {
        "recipe": _RECIPE,
        "clips": [asdict(clip) for clip in DEMO_CLIPS],
        "entities": list(DEMO_ENTITIES),
        "media": {name: media.sha256 for name, media in sorted(PACKAGE_MEDIA.items())},
    }
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()
    return f"{_RECIPE}-{digest[:16]}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


# --- media -------------------------------------------------------------------------------


def _segment(path: Path, start_s: float, count: int, *, scale: float = 1.0) -> list[RGB]:
    """``count`` frames of ``path`` from ``start_s`` on, scaled."""
    frames = islice(read_frames(path), round(start_s * _FPS), None)
    return [
        resize(frame, scale=scale) if scale != 1.0 else frame for frame in islice(frames, count)
    ]


def _build_media(out: Path) -> None:
    out.mkdir(parents=True)
    # The bunny wakes and stretches from about 1 s on; the references are taken after 4 s.
    bunny = _segment(sample("bigbuckbunny.mp4"), 1.0, _FRAMES, scale=0.5)
    bikes = _segment(sample("bikes.mp4"), 0.0, 2 * _FRAMES)
    commute, ride = bikes[:_FRAMES], bikes[_FRAMES:]

    def clip(name: str, frames: Iterator[RGB] | Sequence[RGB]) -> Path:
        return write_clip(frames, out / name, _FPS, crf=_CRF)

    clip("bbb-mirrored.mp4", transform_frames(bunny, mirror=True))
    clip("bbb-cropped.mp4", transform_frames(bunny, crop=0.15))
    clip("bbb-vertical.mp4", transform_frames(bunny, scale=0.6, reframe_9x16=True))
    clip("bbb-captioned.mp4", transform_frames(bunny, caption="WAIT FOR IT"))
    clip("bbb-pip.mp4", transform_frames(bunny, host=commute, pip_scale=0.4))
    # carphone is 30000/1001 fps; written at 25 it plays a little slower, which is harmless.
    caller = _segment(sample("carphone_pristine.mp4"), 1.6, _FRAMES)
    clip("carphone-mirrored.mp4", transform_frames(caller, mirror=True, scale=2.0))
    # A gentle zoom: a stronger one would push the leftmost face out of the frame.
    clip(
        "friends-poker.mp4", still_frames(sample("t1.jpg"), count=_FRAMES, zoom=1.06, max_side=960)
    )
    clip("bikes.mp4", ride)
    clip("pattern-loop.mp4", pattern_frames(_FRAMES, 320, 192))
    clip("headshot.mp4", still_frames(_headshot(), count=_FRAMES, zoom=1.1))
    _garble_index(clip("glitch.mp4", pattern_frames(_FRAMES, 320, 192)))


def _headshot() -> RGB:
    """The packaged face crop (a stranger to the gallery) on a plain backdrop, as a profile
    picture looks; a face filling the whole frame is one no detector is trained to find."""
    face = resize(as_rgb(sample("Tom_Hanks_54745.png")), size=(224, 224))
    canvas = np.full((360, 480, 3), (92, 96, 104), np.uint8)
    canvas[68:292, 128:352] = face
    return canvas


def _garble_index(path: Path) -> None:
    """Overwrite the MP4's ``moov`` box (its index) with noise, leaving the file header and
    the media data alone: a file that looks like an MP4 and cannot be read."""
    data = bytearray(path.read_bytes())
    offset = 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        if data[offset + 4 : offset + 8] == b"moov":
            data[offset : offset + size] = np.random.default_rng(7).bytes(size)
            path.write_bytes(bytes(data))
            return
        if size < 8:
            break
        offset += size
    raise RuntimeError(f"{path}: no moov box to garble")


# --- gallery -----------------------------------------------------------------------------


def _build_gallery(out: Path) -> None:
    refs, negatives = out / "refs", out / "negatives"
    for entity in DEMO_ENTITIES:
        (refs / str(entity["id"])).mkdir(parents=True)
    negatives.mkdir(parents=True)
    (out / "entities.yaml").write_text(
        "# The demo gallery, built by `likeness-monitor demo-platform`; edits are overwritten.\n"
        + yaml.safe_dump({"entities": list(DEMO_ENTITIES)}, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )
    bunny = sample("bigbuckbunny.mp4")
    for seconds in (4.2, 5.0):
        frame = _segment(bunny, seconds, 1, scale=0.5)[0]
        _png(frame, refs / "big-buck-bunny" / f"bbb-{seconds:.1f}s.png")
    # Jennifer Aniston is the leftmost of the six in t1.jpg; her face is at (61, 268) 107x129.
    group = as_rgb(sample("t1.jpg"))
    _png(group[190:480, 0:260], refs / "jennifer-aniston" / "t1-leftmost.png")
    _png(_segment(sample("carphone_pristine.mp4"), 0.0, 1)[0], refs / "carphone-man" / "first.png")
    _png(_segment(sample("bikes.mp4"), 8.0, 1)[0], negatives / "bikes-8s.png")
    shutil.copyfile(sample("Tom_Hanks_54745.png"), negatives / "stranger-face.png")


def _png(image: RGB, path: Path) -> None:
    Image.fromarray(np.ascontiguousarray(image)).save(path)
