"""Lay out the dev evaluation from ``../shared/eval-media`` as a gallery folder and a manifest.

Enrolment: each entity from its ``refs/`` (photos of each actor, drawings of the gopher, frames
of one Sintel scene). Test: every other photo, drawing and later scene in ``cases/``. The
gallery's ``negatives/`` (calibration only) are benign packaged media (Big Buck Bunny, bikes,
a stranger's face on a car phone, an aligned photo of an unprotected actor) plus every other
file of ``cases/not-protected`` per person, in sorted order; the rest of the not-protected files
stay test negatives. The look-alike drawings (``cases/lookalikes``) are never calibrated on:
they are test negatives only, the question being whether the engine tells a character from
cartoons it has never seen. So no case is both calibrated on and tested, but the unprotected
people seen in calibration do appear again in the test, in other photos: the figures are a
dev estimate, not a held-out one.

    python -m bench.devset --out var/devset
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import yaml

from monitor.media.samples import sample

__all__ = ["build_devset", "main"]

EVAL_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "eval-media"
TEST_ONLY = "cases/lookalikes/"
"""Cases that never go to calibration, whatever their owner."""
PACKAGE_NEGATIVES = (
    "bigbuckbunny.mp4",
    "bikes.mp4",
    "carphone_pristine.mp4",
    "Tom_Hanks_54745.png",
)
ALIASES = {
    "go-gopher": ["gopher", "golang mascot"],
    "sintel": ["sintel movie"],
    "leonardo-dicaprio": ["leo dicaprio"],
}


CAPTION_CASES = Path(__file__).parent / "captions" / "eval.json"
DESCRIPTIONS: dict[str, list[str]] = {
    entity_id: list(entity["descriptions"])
    for entity_id, entity in json.loads(CAPTION_CASES.read_text(encoding="utf-8"))[
        "entities"
    ].items()
}
"""What a rights team would write about each dev entity (``descriptions:`` in entities.yaml);
the caption cases beside them are the caption evaluation, never calibration."""


def _person(path: str) -> str:
    """Whose photo, or which drawing set: ``katy-perry-26`` -> ``katy-perry``."""
    stem = Path(path).stem
    person = re.sub(r"-[0-9]+(-[0-9]+s)?$", "", stem)
    return person if person != stem else "-".join(stem.split("-")[:2])


def build_devset(media: Path, out: Path) -> tuple[Path, Path]:
    """Write ``out/gallery`` and ``out/cases.json``; returns both paths."""
    manifest = json.loads((media / "MANIFEST.json").read_text())
    gallery = out / "gallery"
    shutil.rmtree(gallery, ignore_errors=True)
    (gallery / "negatives").mkdir(parents=True)
    entities = [
        {
            "id": e["id"],
            "name": e["name"],
            "kind": e["kind"],
            "franchise": e.get("franchise"),
            "owner": "dev set",
            "aliases": ALIASES.get(e["id"], []),
            "descriptions": DESCRIPTIONS.get(e["id"], []),
        }
        for e in manifest["entities"]
    ]
    (gallery / "entities.yaml").write_text(yaml.safe_dump({"entities": entities}, sort_keys=False))
    for ref in manifest["refs"]:
        target = gallery / "refs" / ref["entity"] / Path(ref["path"]).name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(media / ref["path"], target)
    for name in PACKAGE_NEGATIVES:
        shutil.copyfile(sample(name), gallery / "negatives" / name)
    by_person: dict[str, list[str]] = defaultdict(list)
    for case in manifest["cases"]:
        if not case["expect"] and not case["path"].startswith(TEST_ONLY):
            by_person[_person(case["path"])].append(case["path"])
    calibration = {path for paths in by_person.values() for path in sorted(paths)[::2]}
    for path in sorted(calibration):
        shutil.copyfile(media / path, gallery / "negatives" / Path(path).name)
    cases = [
        {"path": str((media / c["path"]).resolve()), "expect": c["expect"]}
        for c in manifest["cases"]
        if c["path"] not in calibration
    ]
    cases_file = out / "cases.json"
    cases_file.write_text(json.dumps({"cases": cases}, indent=1) + "\n")
    return gallery, cases_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=Path, default=EVAL_MEDIA)
    parser.add_argument("--out", type=Path, default=Path("var/devset"))
    args = parser.parse_args()
    gallery, cases = build_devset(args.media, args.out)
    print(f"gallery folder: {gallery}\ncases: {cases}")


if __name__ == "__main__":
    main()
