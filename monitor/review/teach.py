"""Dismissals teach the gallery: a dismissed alert's evidence becomes a negative, and the
gallery is rebuilt and recalibrated so that the same mistake scores under the new threshold.

The evidence thumbnail of a dismissed alert is copied into the gallery folder, under
``negatives/dismissed/<entity_id>/<alert_id>.jpg``, where a person can see it and take it out;
an undo or a later confirmation removes it again. The folder is the source of truth, so a
rebuild from it gives the same version on any host, and the scorers pick the new version up
without a restart (they watch the built gallery). Rebuilds are batched: at most one per
interval, only when dismissals changed the folder.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from monitor.alerts.evidence import evidence_path
from monitor.config import Settings
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.store import Gallery
from monitor.likeness.models import Models
from monitor.records import Alert, Review

__all__ = ["DISMISSED", "GalleryTeacher", "gallery_folder", "learn"]

log = logging.getLogger(__name__)

DISMISSED = Path("negatives") / "dismissed"


def gallery_folder(built: Path | None) -> Path | None:
    """The hand-edited folder a built gallery came from, when it sits beside it."""
    if built is None or not (built.parent / "entities.yaml").is_file():
        return None
    return built.parent


def learn(review: Review, alert: Alert, state_dir: Path, folder: Path) -> bool:
    """Add or remove the alert's evidence among the negatives; True when the folder changed."""
    target = folder / DISMISSED / alert.entity.id / f"{alert.alert_id}.jpg"
    if review.decision != "dismiss":
        if target.exists():
            target.unlink()
            return True
        return False
    source = evidence_path(state_dir, alert.alert_id)
    if not source.is_file():
        log.warning("alert %s dismissed without an evidence frame to learn from", alert.alert_id)
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".", delete=False) as staged:
        shutil.copyfileobj(source.open("rb"), staged)
    os.replace(staged.name, target)
    return True


class GalleryTeacher:
    """Rebuilds the gallery from its folder when dismissals have changed it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.built = settings.pipeline.gallery
        self.folder = gallery_folder(self.built)
        self.pending = False
        self._models: Models | None = None

    def rebuild(self) -> str | None:
        """Blocking (run it off the event loop): the new version, or None if nothing changed."""
        if self.folder is None or self.built is None:
            return None
        self._models = self._models or Models.load(self.settings.likeness)
        gallery = build_gallery(
            self.folder, self._models, self.settings.likeness, self.settings.decode
        )
        try:
            if Gallery.load(self.built).version == gallery.version:
                return None
        except Exception:  # a missing or unreadable build is replaced
            pass
        gallery.save(self.built)
        log.warning("gallery rebuilt after reviews: version %s", gallery.version)
        return gallery.version
