"""The evidence thumbnail of an alert: the frame that matched best, with the match outlined.

Only the scorer has the decoded frames, and only for the moment it scores, so it saves one
small JPEG per flagged (clip, entity) under ``<shared_dir>/evidence/<alert_id>.jpg`` (the
settings' ``pipeline.shared_dir``, by default the state dir, a volume shared by the roles); the web
server serves it under a signed, expiring URL (``evidence_urls.py``) or to a reviewer. The
alert id is a fixed-length hex digest, checked before it becomes a path, so a request cannot
name any other file.

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

from monitor.likeness.footage.fingerprint import FINGERPRINT_SUFFIX, Fingerprint, fingerprint
from monitor.media.frames import Frame, RGBImage
from monitor.records import Alert, ClipScored, EvidenceRecord

__all__ = [
    "MAX_SIDE",
    "best_evidence",
    "evidence_path",
    "fingerprint_path",
    "is_alert_id",
    "read_evidence",
    "render_evidence",
    "save_clip_evidence",
    "save_evidence",
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
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def save_evidence(
    shared_dir: Path, alert_id: str, frames: Sequence[Frame], evidence: Sequence[EvidenceRecord]
) -> Path | None:
    """Write the thumbnail of the best framed evidence; None when no evidence has a frame."""
    best = best_evidence(evidence)
    if best is None or not frames or best.frame_time is None:
        return None
    at = best.frame_time
    frame = min(frames, key=lambda f: abs(f.time - at))
    path = evidence_path(shared_dir, alert_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    partial.write_bytes(render_evidence(frame.image, best.box))
    partial.replace(path)  # a reader never sees half a file
    return path


def save_clip_evidence(
    shared_dir: Path,
    record: ClipScored,
    frames: Sequence[Frame],
    clip_fingerprint: Fingerprint | None = None,
) -> None:
    """For each entity a scored clip flags: its thumbnail and the clip's fingerprint
    (``clip_fingerprint``, of every frame; else made from the sampled ``frames``).

    A file that cannot be written is logged and skipped: a message without its picture still
    goes out.
    """
    if not record.flagged:
        return
    kept = (clip_fingerprint or fingerprint(frames)).with_about(
        clip=record.clip.key, url=record.clip.url, gallery_version=record.gallery_version or ""
    )
    for entity in record.flagged:
        alert_id = Alert.id_for(record.clip.key, entity.entity_id)
        try:
            save_evidence(shared_dir, alert_id, frames, entity.evidence)
            kept.with_about(alert_id=alert_id, entity=entity.entity_id).save(
                fingerprint_path(shared_dir, alert_id)
            )
        except (OSError, ValueError) as exc:
            log.warning("no evidence files for alert %s: %s", alert_id, exc)
