"""Which re-posts of a clip join its story, and which other clips wrongly would.

    python -m bench.stories [--share S]

Decide groups a flagged clip with the story of a clip it copies when ``footage_match_share`` of
its sampled frames match the other's in order, by the known-footage rule, either way round
(``copies.py``). Every
transform of ``bench.footage`` is applied to each of its references; the copy and the original
are decoded as the scorer decodes clips, and the copy joins the original's story when its share
passes. Wrongly grouped: any pair of two different clips (the references and the unrelated
clips, each way) whose share passes. Last, ``best_copy`` (decide's join) must pick, for every
copy and clip against all the clips, what ``copy_share`` one by one picks.
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

from bench.footage import TRANSFORMS, references, unrelated
from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.footage.copies import Hashed, best_copy, copy_share, footprint
from monitor.media import decode_clip
from monitor.media.samples import sample
from monitor.media.transforms import transform_clip

__all__ = ["main"]


def _footprint(path: Path, decode: DecodeSettings) -> tuple[Hashed, Hashed]:
    hashed = footprint(decode_clip(path, decode.limits, even_frames=decode.even_frames))
    return Hashed.of(hashed.query), Hashed.of(hashed.reference)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--share", type=float, default=LikenessSettings().footage_match_share)
    args = parser.parse_args(argv)
    decode = DecodeSettings()
    with tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        refs = references(work)
        originals = {name: _footprint(path, decode) for name, path in refs.items()}
        print(f"story rule: share >= {args.share} of one upload's sampled frames, either way")
        print(f"{'transform':28s} joined  shares")
        joined_all, reposts = 0, []
        for transform, change in TRANSFORMS.items():
            shares = []
            for name, path in refs.items():
                options = dict(change)
                if "pip_into" in options:
                    options["pip_into"] = sample(options["pip_into"])
                copy = transform_clip(path, work / "copy.mp4", **options)
                reposts.append(_footprint(copy, decode))
                shares.append(copy_share(reposts[-1], originals[name]))
            joined = sum(share >= args.share for share in shares)
            joined_all += joined
            print(
                f"{transform:28s} {joined:2d}/{len(refs)}  "
                + " ".join(f"{share:.2f}" for share in shares)
            )
        clips = {**originals, **{p.name: _footprint(p, decode) for p in unrelated()}}
        pairs = list(itertools.permutations(clips, 2))
        wrong = [(a, b) for a, b in pairs if copy_share(clips[a], clips[b]) >= args.share]
        total = len(TRANSFORMS) * len(refs)
        print(f"\ncopies joined: {joined_all}/{total}")
        print(f"different clips grouped: {len(wrong)}/{len(pairs)} ordered pairs {wrong or ''}")
        every = list(clips.values())
        agree = sum(
            best_copy(clip, every, args.share) == _first_best(clip, every, args.share)
            for clip in reposts + every
        )
        print(f"best_copy as copy_share one by one: {agree}/{len(reposts) + len(every)} clips")


def _first_best(
    clip: tuple[Hashed, Hashed], others: list[tuple[Hashed, Hashed]], share: float
) -> int | None:
    """What decide's join took before ``best_copy``: the first of the largest shares."""
    shares = [copy_share(clip, other) for other in others]
    top = max(shares, default=0.0)
    return shares.index(top) if shares and top >= share else None


if __name__ == "__main__":
    main()
