"""A gallery folder with a fault is refused with the file and entity named, and nothing is written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import DecodeSettings, LikenessSettings
from monitor.errors import GalleryFormatError, NoUsableReferenceError, ReferenceMediaError
from monitor.likeness.gallery.build import build_gallery
from monitor.likeness.gallery.folder import read_folder
from monitor.likeness.models import Models

SETTINGS = LikenessSettings(device="cpu")
DECODE = DecodeSettings(max_frames=2, even_frames=2)


def folder(tmp_path: Path, refs: dict[str, list[tuple[str, bytes]]], kind: str = "actor") -> Path:
    root = tmp_path / "g"
    entities = [{"id": entity_id, "name": entity_id, "kind": kind} for entity_id in refs]
    root.mkdir()
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    for entity_id, files in refs.items():
        (root / "refs" / entity_id).mkdir(parents=True)
        for name, data in files:
            (root / "refs" / entity_id / name).write_bytes(data)
    return root


def test_an_actor_whose_references_show_no_face_is_refused(
    tmp_path: Path, models: Models, package_file: Callable[[str], Path]
) -> None:
    bikes = package_file("bikes.mp4").read_bytes()
    root = folder(tmp_path, {"nobody": [("bikes.mp4", bikes)]})
    with pytest.raises(NoUsableReferenceError, match=r"'nobody'.*detectable face.*bikes\.mp4"):
        build_gallery(root, models, SETTINGS, DECODE)


def test_an_unreadable_reference_names_the_file_and_the_entity(
    tmp_path: Path, models: Models
) -> None:
    root = folder(
        tmp_path, {"toon": [("broken.jpg", b"\xff\xd8\xff this is not a jpeg")]}, "character"
    )
    with pytest.raises(ReferenceMediaError, match=r"'toon'.*broken\.jpg"):
        build_gallery(root, models, SETTINGS, DECODE)


def test_an_entity_without_references_is_refused_before_any_model_runs(tmp_path: Path) -> None:
    root = folder(tmp_path, {"ghost": []})
    with pytest.raises(NoUsableReferenceError, match="'ghost': no reference files"):
        build_gallery(root, None, SETTINGS, DECODE)  # type: ignore[arg-type]


def test_reference_folders_of_unknown_entities_are_refused(tmp_path: Path) -> None:
    root = folder(tmp_path, {"known": [("a.png", b"x")]})
    (root / "refs" / "typo-entity").mkdir()
    with pytest.raises(GalleryFormatError, match="typo-entity"):
        build_gallery(root, None, SETTINGS, DECODE)  # type: ignore[arg-type]


def test_dismissals_filed_for_unknown_entities_are_refused(tmp_path: Path) -> None:
    root = folder(tmp_path, {"known": [("a.png", b"x")]})
    (root / "negatives" / "dismissed" / "gone-entity").mkdir(parents=True)
    with pytest.raises(GalleryFormatError, match="gone-entity"):
        build_gallery(root, None, SETTINGS, DECODE)  # type: ignore[arg-type]


def test_a_fingerprint_that_is_not_one_is_named_and_nothing_is_built(tmp_path: Path) -> None:
    root = folder(tmp_path, {"known": [("a.png", b"x")]})
    filed = root / "negatives" / "dismissed" / "known"
    filed.mkdir(parents=True)
    (filed / "0123456789abcdef0123.pdq.json").write_text("{}")
    listed = read_folder(root)
    assert listed.negatives == () and list(listed.dismissed) == ["known"]
    with pytest.raises(GalleryFormatError, match=r"0123456789abcdef0123\.pdq\.json"):
        build_gallery(root, None, SETTINGS, DECODE)  # type: ignore[arg-type]


def test_the_cli_reports_a_bad_gallery_in_one_line_and_writes_nothing(
    tmp_path: Path, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = folder(tmp_path, {"toon": [("broken.png", b"not a png")]}, "character")
    monkeypatch.setenv("LIKENESS_MONITOR_LIKENESS__DEVICE", "cpu")
    result = CliRunner().invoke(app, ["gallery", "build", str(root)])
    assert result.exit_code != 0
    assert isinstance(result.exception, ReferenceMediaError)
    assert not (root / "built").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
