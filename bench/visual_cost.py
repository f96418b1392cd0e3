"""What the cohort costs: the visual stage before and after, side by side in one run.

Run from the repository root: ``python -m bench.visual_cost [--rounds 5]``.

Before: EfficientNet-Lite0's 1280-d head, plain cosine to the references. After: its
mid-level blocks (the head is not run), whitened on the bundled cohort, and a margin over the
10 nearest of its members. Both score the same frames (Big Buck Bunny, cut into the scorer's
15 views each) against the same twelve references; the two alternate round by round so that
a noisy machine slows both alike. Printed: milliseconds per frame, each round's ratio and
the median ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.cohort.bundled import bundled_pictures
from monitor.likeness.cohort.normalise import CohortNormaliser
from monitor.likeness.embedders.visual import EfficientNetLite0Embedder
from monitor.likeness.regions import views
from monitor.likeness.weights import cached_path
from monitor.media import decode_clip
from monitor.media.frames import RGBImage
from monitor.media.samples import sample

__all__ = ["main"]


class HeadEmbedder(EfficientNetLite0Embedder):
    """The embedder as it was: the 1280-d head, averaged."""

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        net: Any = self._module
        maps: torch.Tensor = net.extract_features(batch)
        return maps.mean(dim=(2, 3))


def _views(frames: list[RGBImage]) -> list[RGBImage]:
    settings = LikenessSettings()
    return [
        v.image
        for frame in frames
        for v in views(frame, grids=settings.region_grids, centre=settings.region_centre)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    weights = cached_path("efficientnet-lite0")
    before, after = (
        HeadEmbedder(weights, device="cpu"),
        EfficientNetLite0Embedder(weights, device="cpu"),
    )
    frames = [f.image for f in decode_clip(sample("bigbuckbunny.mp4"), DecodeSettings().limits)]
    queries = _views(frames)
    references = frames[:6] + [np.ascontiguousarray(f[:, ::-1]) for f in frames[:6]]
    pictures = [p.image for p in bundled_pictures()]
    normaliser = CohortNormaliser(after.embed(pictures), [str(i) for i in range(len(pictures))])
    refs_before = before.embed(references)
    refs_after = normaliser.transform(after.embed(references))

    def run_before() -> npt.NDArray[Any]:
        return np.asarray((before.embed(queries) @ refs_before.T).max(axis=1))

    def run_after() -> npt.NDArray[Any]:
        whitened = normaliser.transform(after.embed(queries))
        return np.asarray(normaliser.margins(whitened, refs_after).max(axis=1))

    run_before(), run_after()  # warm up
    ratios = []
    per_frame = len(frames)
    print(f"{len(frames)} frames, {len(queries)} views, cohort of {len(pictures)}")
    for round_ in range(args.rounds):
        started = time.perf_counter()
        run_before()
        took_before = time.perf_counter() - started
        started = time.perf_counter()
        run_after()
        took_after = time.perf_counter() - started
        ratios.append(took_after / took_before)
        print(
            f"round {round_ + 1}: before {1000 * took_before / per_frame:.1f} ms/frame, "
            f"after {1000 * took_after / per_frame:.1f} ms/frame, ratio {ratios[-1]:.3f}"
        )
    print(f"median ratio after / before: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
