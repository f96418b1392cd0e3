"""The evidence thumbnail of an alert: the frame that matched best, with the match outlined.

Only the scorer has the decoded frames, and only for the moment it scores, so it saves one
small JPEG per flagged (clip, entity) under ``<shared_dir>/evidence/<alert_id>.jpg`` (the
settings' ``pipeline.shared_dir``, by default the state dir, a volume shared by the roles); the web
server serves it under a signed, expiring URL (``evidence_urls.py``) or to a reviewer. The
alert id is a fixed-length hex digest, checked before it becomes a path, so a request cannot
name any other file.

Where the gallery's folder is at hand, the thumbnail shows the match beside the reference it
matched (the face or region, cropped, next to the reference picture), so a reviewer judges the
likeness at a glance; the frame alone is kept as ``<alert_id>.frame.jpg``, which is what a
review files into the gallery (a negative must not contain the entity's own reference).

Beside it goes the clip's fingerprint (``<alert_id>.pdq.json``, the PDQ hashes of its frames),
which a dismissal files in the gallery so that neither the clip nor a copy flags again.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from monitor.errors import MediaError
from monitor.likeness.footage.fingerprint import FINGERPRINT_SUFFIX, Fingerprint, fingerprint
from monitor.media import DecodeLimits, load_media
from monitor.media.frames import Frame, RGBImage
from monitor.records import Alert, ClipScored, EvidenceRecord

__all__ = [
    "MAX_SIDE",
    "best_evidence",
    "evidence_path",
    "fingerprint_path",
    "frame_path",
    "is_alert_id",
    "read_evidence",
    "render_evidence",
    "render_pair",
    "save_clip_evidence",
    "save_evidence",
    "save_fingerprints",
]

MAX_SIDE = 480
_ALERT_ID = re.compile(r"[0-9a-f]{20}")
_OUTLINE = (255, 40, 40)

log = logging.getLogger(__name__)


def is_alert_id(value: str) -> bool:
    """What ``Alert.id_for`` makes: 20 lowercase hex digits, nothing else."""
    return _ALERT_ID.fullmatch(value) is not None


def evidence_path(shared_dir: Path, alert_id: str) -> Path:
    if not is_alert_id(alert_id):
        raise ValueError("not an alert id")
    return shared_dir / "evidence" / f"{alert_id}.jpg"


def frame_path(shared_dir: Path, alert_id: str) -> Path:
    """The matched frame alone (the thumbnail may pair it with the reference)."""
    return evidence_path(shared_dir, alert_id).with_suffix(".frame.jpg")


def fingerprint_path(shared_dir: Path, alert_id: str) -> Path:
    return evidence_path(shared_dir, alert_id).with_suffix(FINGERPRINT_SUFFIX)


def read_evidence(shared_dir: Path, alert_id: str) -> bytes | None:
    """The thumbnail's bytes, or None for an unknown or malformed id."""
    if not is_alert_id(alert_id):
        return None
    try:
        return evidence_path(shared_dir, alert_id).read_bytes()
    except FileNotFoundError:
        return None


def best_evidence(evidence: Sequence[EvidenceRecord]) -> EvidenceRecord | None:
    """The strongest evidence that points into a frame (a caption points at none)."""
    framed = [e for e in evidence if e.frame_time is not None and e.signal != "caption"]
    return max(framed, key=lambda e: e.score, default=None)


def render_evidence(image: RGBImage, box: Sequence[int] | None, max_side: int = MAX_SIDE) -> bytes:
    """A JPEG of ``image`` no larger than ``max_side``, with ``box`` (x, y, w, h) outlined."""
    return _jpeg(_outlined(image, box, max_side))


def render_pair(
    image: RGBImage, box: Sequence[int] | None, reference: RGBImage, max_side: int = MAX_SIDE
) -> bytes:
    """A JPEG of the match (the boxed face or region with some of its surroundings, else the
    whole frame) beside the reference picture, each labelled, neither side over ``max_side``."""
    match = _outlined(*_around(image, box), max_side)
    picture = Image.fromarray(reference)
    picture.thumbnail((max_side, match.height), Image.Resampling.BILINEAR)
    gap, strip = 6, 16
    canvas = Image.new(
        "RGB",
        (match.width + gap + picture.width, max(match.height, picture.height) + strip),
        "white",
    )
    canvas.paste(match, (0, strip))
    canvas.paste(picture, (match.width + gap, strip))
    draw = ImageDraw.Draw(canvas)
    draw.text((2, 2), "match", fill=(0, 0, 0))
    draw.text((match.width + gap + 2, 2), "reference", fill=(0, 0, 0))
    return _jpeg(canvas)


def _around(image: RGBImage, box: Sequence[int] | None) -> tuple[RGBImage, list[int] | None]:
    """The part of ``image`` around ``box`` (half the box's size again on each side) and the
    box within it; the whole image when the box is most of it or there is none."""
    height, width = image.shape[:2]
    if box is None or len(box) != 4 or box[2] * box[3] > width * height / 4:
        return image, list(box) if box is not None else None
    x, y, w, h = box
    left, top = max(0, x - w // 2), max(0, y - h // 2)
    right, bottom = min(width, x + w + w // 2), min(height, y + h + h // 2)
    return image[top:bottom, left:right], [x - left, y - top, w, h]


def _outlined(image: RGBImage, box: Sequence[int] | None, max_side: int) -> Image.Image:
    picture = Image.fromarray(image)
    width, height = picture.size
    scale = min(1.0, max_side / max(width, height))
    if scale < 1.0:
        picture = picture.resize(
            (max(1, round(width * scale)), max(1, round(height * scale))), Image.Resampling.BILINEAR
        )
    if box is not None and len(box) == 4 and (box[2], box[3]) != (width, height):
        x, y, w, h = (round(v * scale) for v in box)
        line = max(2, round(max(picture.size) / 160))
        ImageDraw.Draw(picture).rectangle(
            (x, y, x + max(w - 1, 1), y + max(h - 1, 1)), outline=_OUTLINE, width=line
        )
    return picture


def _jpeg(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def reference_picture(gallery_root: Path, reference: str) -> RGBImage | None:
    """The first picture of a gallery reference (an image, or a clip's first frame); None when
    it is not a file inside ``gallery_root`` or cannot be read."""
    root = gallery_root.resolve()
    path = (root / reference).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    try:
        return load_media(path, DecodeLimits(max_frames=1), even_frames=1)[0].image
    except (MediaError, IndexError) as exc:
        log.info("reference %s not shown beside the evidence: %s", reference, exc)
        return None


def save_evidence(
    shared_dir: Path,
    alert_id: str,
    frames: Sequence[Frame],
    evidence: Sequence[EvidenceRecord],
    gallery_root: Path | None = None,
) -> Path | None:
    """Write the thumbnail of the best framed evidence (beside its reference picture when
    ``gallery_root`` holds it) and the frame alone; None when no evidence has a frame."""
    best = best_evidence(evidence)
    if best is None or not frames or best.frame_time is None:
        return None
    at = best.frame_time
    frame = min(frames, key=lambda f: abs(f.time - at))
    alone = render_evidence(frame.image, best.box)
    reference = (
        reference_picture(gallery_root, best.reference)
        if gallery_root is not None and best.reference and best.signal in ("face", "visual")
        else None
    )
    shown = alone if reference is None else render_pair(frame.image, best.box, reference)
    path = evidence_path(shared_dir, alert_id)
    _write(frame_path(shared_dir, alert_id), alone)
    _write(path, shown)
    return path


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(path)  # a reader never sees half a file


def save_clip_evidence(
    shared_dir: Path,
    record: ClipScored,
    frames: Sequence[Frame],
    clip_fingerprint: Fingerprint | None = None,
    gallery_root: Path | None = None,
) -> None:
    """For each entity a scored clip flags: its thumbnail (beside the matched reference when
    ``gallery_root``, the gallery's folder, is given) and the clip's fingerprint
    (``clip_fingerprint``, of every frame; else made from the sampled ``frames``).

    A file that cannot be written is logged and skipped: a message without its picture still
    goes out.
    """
    if not record.flagged:
        return
    for entity in record.flagged:
        alert_id = Alert.id_for(record.clip.key, entity.entity_id)
        try:
            save_evidence(shared_dir, alert_id, frames, entity.evidence, gallery_root)
        except (OSError, ValueError) as exc:
            log.warning("no evidence thumbnail for alert %s: %s", alert_id, exc)
    save_fingerprints(shared_dir, record, clip_fingerprint or fingerprint(frames))


def save_fingerprints(shared_dir: Path, record: ClipScored, kept: Fingerprint) -> None:
    """The clip's fingerprint beside each of its alerts' thumbnails (replacing one made
    earlier); a file that cannot be written is logged and skipped."""
    kept = kept.with_about(
        clip=record.clip.key, url=record.clip.url, gallery_version=record.gallery_version or ""
    )
    for entity in record.flagged:
        alert_id = Alert.id_for(record.clip.key, entity.entity_id)
        try:
            kept.with_about(alert_id=alert_id, entity=entity.entity_id).save(
                fingerprint_path(shared_dir, alert_id)
            )
        except (OSError, ValueError) as exc:
            log.warning("no fingerprint for alert %s: %s", alert_id, exc)
