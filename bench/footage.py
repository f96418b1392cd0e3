"""Known-footage figures: copies found per transform, false matches, and lookups per second.

    python -m bench.footage [--index-clips 10000]

The reference is Big Buck Bunny hashed at the gallery's footage rate; each query is a copy
altered one way, decoded as the scorer decodes clips. False matches are counted over unrelated
clips (bikes, car phone, and the Sintel / Tears of Steel clips of ../shared/eval-media when
present). Lookups per second: whole query clips searched against an index of synthetic hashes
standing for ``--index-clips`` reference clips. Hash cost: the query side's hashing (every
view of every frame, and the search for insets and caption bands), per frame.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from monitor.config import LikenessSettings
from monitor.likeness.footage.hashes import HASH_BYTES, hash_frames
from monitor.likeness.footage.index import HashIndex
from monitor.likeness.footage.match import FootageClip, FootageIndex
from monitor.media import DecodeLimits, Frame, decode_clip
from monitor.media.samples import sample
from monitor.media.transforms import transform_clip

__all__ = ["main"]

EVAL_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "eval-media"
QUERY = DecodeLimits(max_frames=16)
TRANSFORMS: dict[str, dict[str, Any]] = {
    "re-encode (crf 38)": {"crf": 38},
    "crop 10 %": {"crop": 0.1},
    "mirror": {"mirror": True},
    "9:16 reframe": {"reframe_9x16": True},
    "picture-in-picture": {"pip_into": "bikes.mp4", "pip_scale": 0.5},
    "speed 0.8x": {"speed": 0.8},
    "caption bar": {"caption": "the best scene ever, watch till the end"},
}


def reference_index(settings: LikenessSettings) -> FootageIndex:
    path = sample("bigbuckbunny.mp4")
    frames = decode_clip(
        path, DecodeLimits(max_frames=200), even_frames=math.ceil(5.3 * settings.footage_fps)
    )
    index = FootageIndex.empty()
    index.add(
        FootageClip("bunny", "bigbuckbunny.mp4", 5.3, len(frames)),
        frames,
        hash_frames(frames, "reference"),
    )
    return index


def unrelated() -> list[Path]:
    paths = [sample("bikes.mp4"), sample("carphone_pristine.mp4")]
    if EVAL_MEDIA.is_dir():
        paths += sorted(EVAL_MEDIA.glob("cases/sintel/*.mp4")) + sorted(
            EVAL_MEDIA.glob("cases/not-protected/*.mp4")
        )
    return paths


def lookups_per_second(index_clips: int, hashes_per_clip: int = 40, queries: int = 20) -> float:
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (index_clips * hashes_per_clip, HASH_BYTES), dtype=np.uint8)
    index = HashIndex(stored)
    batch = rng.integers(0, 256, (queries * hashes_per_clip, HASH_BYTES), dtype=np.uint8)
    batch[::4] = stored[rng.integers(0, len(stored), len(batch[::4]))]  # some true hits
    index.search(batch[:hashes_per_clip])
    started = time.perf_counter()
    index.search(batch)
    return queries / (time.perf_counter() - started)


class HashCost:
    """Time spent hashing query frames, and the hashes made."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.frames = 0
        self.hashes = 0

    def measure(self, frames: list[Frame]) -> None:
        started = time.perf_counter()
        hashed = hash_frames(frames, "query")
        self.seconds += time.perf_counter() - started
        self.frames += len(frames)
        self.hashes += len(hashed)

    def __str__(self) -> str:
        ms = 1000 * self.seconds / max(self.frames, 1)
        return f"{ms:.1f} ms and {self.hashes / max(self.frames, 1):.1f} hashes per query frame"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-clips", type=int, default=10_000)
    args = parser.parse_args(argv)
    settings = LikenessSettings()
    index = reference_index(settings)
    share = settings.footage_match_share
    print(f"reference: Big Buck Bunny, {len(index)} hashes; match share >= {share}")
    cost = HashCost()
    with tempfile.TemporaryDirectory() as work:
        for name, change in TRANSFORMS.items():
            options = dict(change)
            if "pip_into" in options:
                options["pip_into"] = sample(options["pip_into"])
            copy = transform_clip(sample("bigbuckbunny.mp4"), Path(work) / "copy.mp4", **options)
            frames = decode_clip(copy, QUERY)
            cost.measure(frames)
            [matches] = index.match_many([frames], share)
            best = max((m.query_share for m in matches), default=0.0)
            view = f"  via {matches[0].view}" if matches else ""
            print(f"{name:22s} found {'yes' if matches else 'no ':3s}  share {best:.2f}{view}")
    false = 0
    negatives = unrelated()
    for path in negatives:
        frames = decode_clip(path, QUERY)
        cost.measure(frames)
        [matches] = index.match_many([frames], share)
        false += bool(matches)
    print(f"false matches: {false} of {len(negatives)} unrelated clips")
    print(f"hashing: {cost} (all queries above)")
    rate = lookups_per_second(args.index_clips)
    print(
        f"lookups: {rate:.1f} clips/s (40 hashes each) against {args.index_clips} reference clips "
        f"({args.index_clips * 40} hashes)"
    )


if __name__ == "__main__":
    main()
