"""Known-footage figures on fast-moving and cut-heavy references: copies found per transform.

    python -m bench.footage [--share S]

References (one index, as a gallery holding several entities' footage): bikes.mp4 (a moving
handheld camera), a Sintel and a Tears of Steel clip of ../shared/eval-media, and a montage
cutting between two other Blender clips every half second. Each is hashed as ``gallery
build`` hashes footage (every frame, ``hash_reference``); build time and hashes kept per hour
are printed per reference. Every transform below is applied to every reference, the copy is
decoded as the scorer decodes clips, and it is found when its best match is its own
reference. False matches: a copy matched to another reference, and any match at all for the
unrelated clips (Big Buck Bunny, car phone, the demo's clips, the eval-media Blender clips no
reference uses). Per query frame: the hashing cost (every view, the search for insets,
caption bars and a centred picture) and the distance to the nearest reference hash, from
which the match rule is derived (README, "Known footage").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.footage.hashes import (
    FrameHashes,
    HashedFootage,
    hash_query,
    hash_reference,
)
from monitor.likeness.footage.index import HashIndex
from monitor.likeness.footage.match import FootageClip, FootageIndex
from monitor.media import DecodeLimits, Frame, decode_clip, decode_every_frame
from monitor.media.samples import sample
from monitor.media.transforms import RGB, read_frames, transform_clip, write_clip

__all__ = ["TRANSFORMS", "main", "references"]

EVAL_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "eval-media"
REFERENCE_LIMITS = DecodeLimits(max_frames=10**7, max_duration_s=1e6, timeout_s=3600.0)
CAPTION = "the best scene ever, watch till the end"
TRANSFORMS: dict[str, dict[str, Any]] = {
    "re-encode 300 kb/s": {"bitrate": 300_000},
    "crop 10 %": {"crop": 0.1},
    "mirror": {"mirror": True},
    "mirror + hue shift": {"mirror": True, "hue": 40.0},
    "9:16 letterbox": {"letterbox_9x16": True},
    "9:16 crop-to-fill": {"fill_9x16": 1.0},
    "picture-in-picture": {"pip_into": "bigbuckbunny.mp4", "pip_scale": 0.5},
    "speed 0.5x": {"speed": 0.5},
    "speed 0.8x": {"speed": 0.8},
    "speed 1.25x": {"speed": 1.25},
    "speed 2x": {"speed": 2.0},
    "caption bar": {"caption": CAPTION},
    "caption bar, 50 % opaque": {"caption": CAPTION, "caption_opacity": 0.5},
    "mirror + crop-to-fill": {"mirror": True, "fill_9x16": 1.0},
}


def references(work: Path) -> dict[str, Path]:
    """Name -> file of each reference (the montage is written into ``work``)."""
    out = {"bikes (handheld)": sample("bikes.mp4")}
    sintel = EVAL_MEDIA / "cases" / "sintel"
    steel = EVAL_MEDIA / "cases" / "not-protected"
    if EVAL_MEDIA.is_dir():
        out["Sintel 2.5-5 s"] = sintel / "2.5-5.0s.mp4"
        out["Tears of Steel 0-5 s"] = steel / "tears-of-steel-0-5s.mp4"
        out["montage (0.5 s cuts)"] = write_clip(
            _montage([steel / "tears-of-steel-5-10s.mp4", sintel / "5.0-7.5s.mp4"], 12),
            work / "montage.mp4",
            24,
        )
    return out


def unrelated() -> list[Path]:
    paths = [sample("bigbuckbunny.mp4"), sample("carphone_pristine.mp4")]
    if EVAL_MEDIA.is_dir():
        paths.append(EVAL_MEDIA / "cases" / "sintel" / "7.5-10.0s.mp4")
    return paths


def _montage(sources: list[Path], cut: int) -> Iterator[RGB]:
    """Alternate ``cut`` frames of each source until the shortest runs out, at one size."""
    clips = [list(read_frames(path)) for path in sources]
    height, width = clips[0][0].shape[:2]
    for start in range(0, min(len(c) for c in clips), cut):
        for clip in clips:
            for image in clip[start : start + cut]:
                yield image[:height, :width]


@dataclass
class Tally:
    """Query-side figures across every query."""

    seconds: float = 0.0
    frames: int = 0
    hashes: int = 0
    nearest: list[int] = field(default_factory=list)
    """Per copy frame: bits to the nearest hash of its own reference (any view pair)."""
    unrelated_nearest: list[int] = field(default_factory=list)

    def hash(self, frames: list[Frame]) -> FrameHashes:
        started = time.perf_counter()
        hashed = hash_query(frames)
        self.seconds += time.perf_counter() - started
        self.frames += len(frames)
        self.hashes += len(hashed)
        return hashed


def nearest_per_frame(hashed: FrameHashes, stored: np.ndarray) -> list[int]:
    """For each query frame with a usable hash: bits to the nearest of ``stored``."""
    if not len(stored):
        return []
    distances = np.bitwise_count(hashed.hashes[:, None, :] ^ stored[None, :, :]).sum(axis=2)
    best: dict[int, int] = {}
    for row, frame in enumerate(hashed.frames.tolist()):
        if hashed.usable[row]:
            best[frame] = min(best.get(frame, 256), int(distances[row].min()))
    return list(best.values())


def hash_footage(name: str, path: Path, note: str = "") -> HashedFootage:
    """``path`` hashed as ``gallery build`` hashes footage, with a line of its figures."""
    started = time.perf_counter()
    hashed = hash_reference(decode_every_frame(path, REFERENCE_LIMITS))
    took = time.perf_counter() - started
    seconds, kept = hashed.duration, len(hashed.hashes)
    print(
        f"{name:24s} {seconds:7.1f} {hashed.frames:7d} {kept:12d} "
        f"{kept * 3600 / seconds:9.0f} {took:8.2f} {took * 3600 / seconds:7.0f}{note}"
    )
    return hashed


def build_index(refs: dict[str, Path]) -> tuple[FootageIndex, dict[str, np.ndarray]]:
    index = FootageIndex.empty()
    stored: dict[str, np.ndarray] = {}
    print("reference                 seconds  frames  hashes kept  per hour   build s  s/hour")
    for name, path in refs.items():
        hashed = hash_footage(name, path)
        clip = FootageClip(name, name, round(hashed.duration, 3), hashed.frames)
        index.add_hashes(clip, hashed.times, hashed.hashes)
        stored[name] = hashed.hashes.hashes
    # Slow animation, for its cost only: Big Buck Bunny serves below as an unrelated clip.
    hash_footage("Big Buck Bunny (slow)", sample("bigbuckbunny.mp4"), "   (not indexed)")
    return index, stored


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=LikenessSettings().footage_match_share)
    args = parser.parse_args(argv)
    limits = DecodeSettings()
    tally = Tally()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        refs = references(work)
        index, stored = build_index(refs)
        print(f"\nmatch rule: query share >= {args.share}, at most 31 bits (PDQ's radius)")
        print(f"{'transform':28s} found  wrong  mean share  shares")
        found_all = copies_all = wrong_all = 0
        for transform, change in TRANSFORMS.items():
            found = wrong = 0
            shares: list[float] = []
            for name, path in refs.items():
                options = dict(change)
                if "pip_into" in options:
                    options["pip_into"] = sample(options["pip_into"])
                copy = transform_clip(path, work / "copy.mp4", **options)
                frames = decode_clip(copy, limits.limits, even_frames=limits.even_frames)
                hashed = tally.hash(frames)
                tally.nearest += nearest_per_frame(hashed, stored[name])
                [matches] = index.match_many([frames], args.share, hashed=[hashed])
                share = max((m.query_share for m in matches if m.reference == name), default=0.0)
                shares.append(share)
                found += bool(matches) and matches[0].reference == name
                wrong += any(m.reference != name for m in matches)
            found_all += found
            copies_all += len(refs)
            wrong_all += wrong
            print(
                f"{transform:28s} {found:2d}/{len(refs)}  {wrong:5d}  {np.mean(shares):10.2f}  "
                + " ".join(f"{s:.2f}" for s in shares)
            )
        false = 0
        negatives = unrelated()
        everything = np.concatenate(list(stored.values()))
        for path in negatives:
            frames = decode_clip(path, limits.limits, even_frames=limits.even_frames)
            hashed = tally.hash(frames)
            tally.unrelated_nearest += nearest_per_frame(hashed, everything)
            [matches] = index.match_many([frames], args.share, hashed=[hashed])
            false += bool(matches)
    print(
        f"\ncopies found: {found_all} of {copies_all} ({found_all / copies_all:.1%}); "
        f"matched to the wrong reference: {wrong_all}; "
        f"false matches: {false} of {len(negatives)} unrelated clips"
    )
    near = np.asarray(tally.nearest)
    far = np.asarray(tally.unrelated_nearest)
    print(
        "bits from a copy frame to its reference's nearest hash: "
        + ", ".join(f"p{q} {np.percentile(near, q):.0f}" for q in (50, 75, 90))
        + f"; within 31: {np.mean(near <= 31):.1%}"
    )
    print(
        f"bits from an unrelated frame to the nearest reference hash: min {far.min()}, "
        f"p1 {np.percentile(far, 1):.0f}, p50 {np.percentile(far, 50):.0f}"
    )
    ms = 1000 * tally.seconds / max(tally.frames, 1)
    print(
        f"query hashing: {ms:.1f} ms and {tally.hashes / max(tally.frames, 1):.1f} hashes "
        f"per query frame ({tally.frames} frames); index: {len(index)} hashes"
    )
    _lookup_figure(index)


def _lookup_figure(index: FootageIndex) -> None:
    """Searching a clip's worth of hashes against this (small) index: see bench.footage_index
    for an index of 10 000 films."""
    rng = np.random.default_rng(0)
    queries = index.hashes[rng.integers(0, len(index), 48)]
    search = HashIndex(index.hashes)
    started = time.perf_counter()
    for _ in range(20):
        search.search(queries)
    print(f"search: {20 / (time.perf_counter() - started):.0f} clips/s (48 hashes each)")


if __name__ == "__main__":
    main()
