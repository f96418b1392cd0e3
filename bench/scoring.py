"""Throughput and memory of the engine's stages: decode, faces and visual embeddings.

Run ``python -m bench.scoring`` (``--device cuda`` on a GPU machine; both run when one is
present). Figures are printed, not asserted: speed is checked by reading them side by side,
not by timed tests that flake on a busy machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable

from monitor.config import LikenessSettings
from monitor.likeness.embedders.base import DetectedFace
from monitor.likeness.models import Models
from monitor.media import DecodeLimits, decode_clip, load_media
from monitor.media.frames import RGBImage
from monitor.media.samples import sample

__all__ = ["main"]

BATCHES = (1, 2, 4, 8, 16, 32)


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(run: Callable[[], object], *, repeat: int) -> float:
    """Median seconds of ``repeat`` runs after one warm-up."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _gpu_peak_mib(device: str) -> str:
    if not device.startswith("cuda"):
        return ""
    import torch

    return f"  gpu peak {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"


def bench_decode(repeat: int) -> None:
    print("\n== decode (PyAV, keyframes + 8 evenly spaced, CPU) ==")
    for name in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"):
        path = sample(name)
        frames = decode_clip(path, DecodeLimits())
        seconds = _timed(lambda p=path: decode_clip(p, DecodeLimits()), repeat=repeat)  # type: ignore[misc]
        print(
            f"{name:24s} {len(frames):2d} frames {frames[0].width}x{frames[0].height}  "
            f"{seconds * 1000:7.1f} ms/clip  {1 / seconds:6.1f} clips/s  "
            f"{len(frames) / seconds:7.1f} frames/s  peak rss {_peak_rss_mib():.0f} MiB"
        )


def bench_faces(models: Models, repeat: int) -> None:
    print(f"\n== faces on {models.device}: YuNet detection, FaceNet embedding ==")
    group = load_media(sample("t1.jpg"))[0].image
    faces = models.face_detector.detect(group)
    detect_s = _timed(lambda: models.face_detector.detect(group), repeat=repeat)
    print(f"detect {group.shape[1]}x{group.shape[0]}: {len(faces)} faces, {detect_s * 1000:.1f} ms")
    for batch in BATCHES:
        items: list[tuple[RGBImage, DetectedFace]] = [
            (group, faces[i % len(faces)]) for i in range(batch)
        ]
        seconds = _timed(lambda i=items: models.face_embedder.embed_many(i), repeat=repeat)  # type: ignore[misc]
        print(
            f"embed batch {batch:2d}: {batch / seconds:8.1f} faces/s  "
            f"peak rss {_peak_rss_mib():.0f} MiB{_gpu_peak_mib(models.device)}"
        )


def bench_visual(models: Models, settings: LikenessSettings, repeat: int) -> None:
    from monitor.likeness.regions import views

    print(f"\n== visual on {models.device}: {models.image_embedder.name} ==")
    frames = decode_clip(sample("bigbuckbunny.mp4"), DecodeLimits())
    cuts = views(frames[0].image, grids=settings.region_grids, centre=settings.region_centre)
    print(f"one 1280x720 frame -> {len(cuts)} views (whole + regions)")
    for batch in BATCHES:
        images = [frames[i % len(frames)].image for i in range(batch)]
        seconds = _timed(lambda i=images: models.image_embedder.embed(i), repeat=repeat)  # type: ignore[misc]
        print(
            f"embed batch {batch:2d}: {batch / seconds:8.1f} images/s  "
            f"{batch / seconds / len(cuts):6.2f} frames/s with regions  "
            f"peak rss {_peak_rss_mib():.0f} MiB{_gpu_peak_mib(models.device)}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", action="append", help="cpu, cuda (default: cpu, and cuda if present)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    import torch

    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, python {sys.version.split()[0]}"
    )
    bench_decode(args.repeat)
    for device in devices:
        settings = LikenessSettings(device=device)
        models = Models.load(settings)
        bench_faces(models, args.repeat)
        bench_visual(models, settings, args.repeat)


if __name__ == "__main__":
    main()
