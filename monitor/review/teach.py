"""Reviews teach the gallery: a dismissal makes the alert's evidence a negative of its entity and
the clip's fingerprint a clip that must not flag it again; a confirmation keeps the evidence as
a positive case for the evaluation.

Everything lands in the hand-edited gallery folder, where a person can see it and take it out:

    negatives/dismissed/<entity_id>/<alert_id>.jpg       the evidence frame (calibration)
    negatives/dismissed/<entity_id>/<alert_id>.pdq.json  the clip's fingerprint (suppression)
    reviewed/confirmed/<entity_id>/<alert_id>.jpg        a confirmed alert's evidence frame
    reviewed/cases.json                                  those, as a cases manifest for ``eval``

An undo takes an alert's lesson back, and a confirmation after a dismissal (or the reverse)
replaces it. The folder is the source of truth, so a rebuild from it gives the same version on
any host, and the scorers pick the new version up without a restart (they watch the built
gallery). Rebuilds are batched: at most one per interval, only when dismissals changed what a
build reads (``reviewed/`` is not read by a build).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from monitor.evidence.files import evidence_path, fingerprint_path, frame_path
from monitor.likeness.footage.fingerprint import FINGERPRINT_SUFFIX
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.gallery.cache import EmbeddingCache
from monitor.likeness.gallery.folder import DISMISSED
from monitor.likeness.models import Models
from monitor.likeness.settings import LikenessSettings
from monitor.media.settings import DecodeSettings
from monitor.records import Alert, Review

__all__ = ["CONFIRMED", "DISMISSED", "REVIEWED_CASES", "GalleryTeacher", "gallery_folder", "learn"]

log = logging.getLogger(__name__)

CONFIRMED = Path("reviewed") / "confirmed"
REVIEWED_CASES = Path("reviewed") / "cases.json"


def gallery_folder(built: Path | None) -> Path | None:
    """The hand-edited folder a built gallery came from, when it sits beside it."""
    if built is None or not (built.parent / "entities.yaml").is_file():
        return None
    return built.parent


def learn(review: Review, alert: Alert, shared_dir: Path, folder: Path) -> bool:
    """File or withdraw the alert's evidence; True when what a gallery build reads changed."""
    entity, alert_id = alert.entity.id, alert.alert_id
    dismissed = folder / DISMISSED / entity
    frame, kept = dismissed / f"{alert_id}.jpg", dismissed / f"{alert_id}{FINGERPRINT_SUFFIX}"
    confirmed = folder / CONFIRMED / entity / f"{alert_id}.jpg"
    changed = False
    if review.decision != "dismiss":
        changed = _remove(frame) | _remove(kept)
    if review.decision != "confirm" and _remove(confirmed):
        _write_cases(folder)
    evidence = frame_path(shared_dir, alert_id)
    if not evidence.is_file():  # an alert from before the thumbnail could be a pair
        evidence = evidence_path(shared_dir, alert_id)
    if review.decision == "dismiss":
        if not _copy(evidence, frame):
            log.warning("alert %s dismissed without an evidence frame to learn from", alert_id)
        changed |= frame.is_file()
        changed |= _copy(fingerprint_path(shared_dir, alert_id), kept)
    elif review.decision == "confirm" and _copy(evidence, confirmed):
        _write_cases(folder, {alert_id: alert})
    return changed


def _copy(source: Path, target: Path) -> bool:
    """Copy atomically (a build never reads half a file); False when there is no source."""
    if not source.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        source.open("rb") as data,
        tempfile.NamedTemporaryFile(dir=target.parent, prefix=".", delete=False) as staged,
    ):
        shutil.copyfileobj(data, staged)
    os.replace(staged.name, target)
    return True


def _remove(path: Path) -> bool:
    if path.exists():
        path.unlink()
        return True
    return False


def _write_cases(folder: Path, new: dict[str, Alert] | None = None) -> None:
    """Rewrite ``reviewed/cases.json`` from the confirmed frames on disk (kept captions stay)."""
    manifest = folder / REVIEWED_CASES
    try:
        previous = {c["path"]: c for c in json.loads(manifest.read_text())["cases"]}
    except (OSError, ValueError, KeyError, TypeError):
        previous = {}
    cases = []
    for path in sorted((folder / CONFIRMED).glob("*/*.jpg")):
        relative = path.relative_to(manifest.parent).as_posix()
        alert = (new or {}).get(path.stem)
        if alert is not None:
            case = {"path": relative, "expect": [alert.entity.id], "alert_id": alert.alert_id}
            if alert.clip.title:
                case["caption"] = alert.clip.title
            case["clip"] = alert.clip.url
        else:
            case = previous.get(relative, {"path": relative, "expect": [path.parent.name]})
        cases.append(case)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    document = {"about": "alerts confirmed on the review page, as positives", "cases": cases}
    staged = manifest.with_name(f".{manifest.name}.part")
    staged.write_text(json.dumps(document, indent=2) + "\n")
    staged.replace(manifest)


class GalleryTeacher:
    """Rebuilds the gallery from its folder when dismissals have changed it."""

    def __init__(
        self, built: Path | None, likeness: LikenessSettings, decode: DecodeSettings
    ) -> None:
        self.likeness = likeness
        self.decode = decode
        self.built = built
        self.folder = gallery_folder(self.built)
        self.pending = False
        self._models: Models | None = None
        self.cache = EmbeddingCache.default()  # a rebuild embeds only the files added since

    def rebuild(self) -> str | None:
        """Blocking (run it off the event loop): the new version, or None if nothing changed."""
        if self.folder is None or self.built is None:
            return None
        self._models = self._models or Models.load(self.likeness)
        gallery = build_gallery(
            self.folder,
            self._models,
            self.likeness,
            self.decode,
            cache=self.cache,
        )
        try:
            if Gallery.load(self.built).version == gallery.version:
                return None
        except Exception:  # a missing or unreadable build is replaced
            pass
        gallery.save(self.built)
        log.warning("gallery rebuilt after reviews: version %s", gallery.version)
        return gallery.version
