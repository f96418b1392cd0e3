"""The project's scorer against a naive scorer on the same clips, in one run, per device.

    python -m bench.scorer [--clips N] [--devices cpu,cuda] [--batch 8]

Clips: the demo catalogue's playable clips (its ``missing`` and ``corrupt`` uploads cannot be
scored) with their title and caption as the caption, and the eval-media ``.mp4`` cases
(``../shared/eval-media``, sorted by path, no caption). The fixed order alternates the two
sources (demo 1, eval 1, demo 2, eval 2, ..., then the rest of the longer list), so
``--clips N`` takes the first N and a small run still has both kinds. Every clip is decoded
once, up front, as the pipeline decodes it (``DecodeSettings``); both scorers get the same
decoded frames, so decoding is timed on its own and reported as a shared stage, and clips/s
and frames/s are of scoring alone. Both score against the demo gallery.

The naive scorer is the project's own ``Scorer`` with every batch taken away: one clip per
call, and each face crop and each region view of each frame is its own forward pass (the
embedders are wrapped to embed one item per call; ``LikenessSettings.batch_size`` alone would
not do it, as it reaches only the face embedder). It cannot go one *frame* per call: a
clip's scores are the best over its frames, and its known-footage match is over its frames
in order, so scoring frames alone would change the verdicts. Nothing is skipped in either.
Its visual model runs on torch as published (BN folded), whatever runtime the project's scorer
has (ONNX Runtime on a CPU, by default: ``embedders/onnx.py``). Using the same code otherwise
is deliberate: the two then must give the same verdicts, which is checked (the same flagged
entities per clip, every score within 1e-3; any difference is printed and the exit code is 1),
and the ratio measures batching and the runtime.

The project's scorer is ``Scorer.score_many`` with default settings over ``--batch`` clips
per call (8 by default, the pipeline's default batch). The models are loaded once per device
and shared, and one short untimed warm-up runs first, so neither side pays for loading.

Printed per device: clips, frames, wall seconds, clips/s, frames/s, seconds per stage (the
scorer's own ``faces_s``, ``visual_s``, ``footage_s`` and ``captions_s`` summed over clips,
and the shared decode), peak memory (resident memory above its level at the start of each
run, sampled every 50 ms; and the CUDA allocator's peak on a GPU) and the ratio of clips/s,
project over naive; before them the date, CPU, cores, torch version and devices, so the
figures can be pasted with their machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import json
import os
import resource
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.config import DecodeSettings, LikenessSettings, Settings
from monitor.demo.catalogue import DemoCatalogue, build_demo
from monitor.likeness.embedders import build_image_embedder
from monitor.likeness.embedders.base import (
    DetectedFace,
    Embeddings,
    FaceEmbedder,
    ImageEmbedder,
)
from monitor.likeness.gallery.built import Gallery
from monitor.likeness.models import Models
from monitor.likeness.scoring import ClipScore, Scorer
from monitor.media import decode_clip
from monitor.media.frames import Frame, RGBImage
from monitor.pipeline.run import prepare_demo_gallery

__all__ = [
    "Clip",
    "Comparison",
    "Decoded",
    "Run",
    "compare",
    "decode_all",
    "demo_clips",
    "differences",
    "eval_clips",
    "machine",
    "main",
    "mixed",
    "report",
]

EVAL_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "eval-media"
TOLERANCE = 1e-3
SAMPLE_S = 0.05
STAGES = ("faces_s", "visual_s", "footage_s", "captions_s")


@dataclass(frozen=True)
class Clip:
    name: str
    path: Path
    caption: str | None


@dataclass(frozen=True)
class Decoded:
    clip: Clip
    frames: list[Frame]


@dataclass
class Run:
    """One scorer's pass over every clip: its verdicts, time and memory."""

    label: str
    scores: list[ClipScore]
    seconds: float
    peak_rss_mib: float
    peak_gpu_mib: float | None = None

    def stage(self, key: str) -> float:
        return sum(score.timings.get(key, 0.0) for score in self.scores)


@dataclass
class Comparison:
    device: str
    decoded: list[Decoded]
    decode_s: float
    naive: Run
    project: Run
    differences: list[str] = field(default_factory=list)
    runtime: str = "torch"
    """What runs the project's visual model."""


def demo_clips(demo: DemoCatalogue) -> list[Clip]:
    """The demo's playable clips in catalogue order, captioned as the pipeline captions them."""
    return [
        Clip(
            f"demo:{clip.id}",
            demo.media_dir / clip.media,
            " ".join(part for part in (clip.title, clip.caption) if part) or None,
        )
        for clip in demo.clips
        if clip.broken is None
    ]


def eval_clips(root: Path = EVAL_MEDIA) -> list[Clip]:
    """The eval-media video cases, sorted by path; none when the dev set is absent."""
    manifest = root / "MANIFEST.json"
    if not manifest.is_file():
        return []
    cases = json.loads(manifest.read_text())["cases"]
    paths = sorted(str(case["path"]) for case in cases if str(case["path"]).endswith(".mp4"))
    return [
        Clip(f"eval:{Path(p).relative_to('cases').with_suffix('')}", root / p, None) for p in paths
    ]


def mixed(first: Sequence[Clip], second: Sequence[Clip]) -> list[Clip]:
    """Alternate the two lists, then the rest of the longer one."""
    out: list[Clip] = []
    for i in range(max(len(first), len(second))):
        out += [clips[i] for clips in (first, second) if i < len(clips)]
    return out


def decode_all(clips: Sequence[Clip], decode: DecodeSettings) -> tuple[list[Decoded], float]:
    """Every clip decoded as the pipeline decodes it, and the seconds that took."""
    started = time.perf_counter()
    decoded = [
        Decoded(clip, decode_clip(clip.path, decode.limits, even_frames=decode.even_frames))
        for clip in clips
    ]
    return decoded, time.perf_counter() - started


class _OneViewAtATime(ImageEmbedder):
    """An image embedder that runs one forward pass per picture."""

    def __init__(self, inner: ImageEmbedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim

    def embed(self, images: Sequence[RGBImage]) -> Embeddings:
        rows = [self.inner.embed([image]) for image in images]
        return np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)


class _OneFaceAtATime(FaceEmbedder):
    """A face embedder that runs one forward pass per face."""

    def __init__(self, inner: FaceEmbedder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim

    def embed_many(self, items: Sequence[tuple[RGBImage, DetectedFace]]) -> Embeddings:
        rows = [self.inner.embed_many([item]) for item in items]
        return np.concatenate(rows) if rows else np.zeros((0, self.dim), np.float32)


def _naive_models(models: Models, settings: LikenessSettings) -> Models:
    """``models`` one item per forward pass, the visual model on torch."""
    on_torch = models.image_embedder
    if getattr(on_torch, "runtime", "torch") != "torch":
        on_torch = build_image_embedder(
            settings.visual_embedder,
            device=models.device,
            weights=settings.visual_weights,
            runtime="torch",
        )
    return dataclasses.replace(
        models,
        image_embedder=_OneViewAtATime(on_torch),
        face_embedder=_OneFaceAtATime(models.face_embedder),
    )


def _rss_reader() -> Callable[[], int]:
    """Current resident bytes: psutil, else /proc/self/statm, else the process's peak so far."""
    try:
        process = importlib.import_module("psutil").Process()
        return lambda: int(process.memory_info().rss)
    except ImportError:
        pass
    statm = Path("/proc/self/statm")
    if statm.is_file():
        page = os.sysconf("SC_PAGE_SIZE")
        return lambda: int(statm.read_text().split()[1]) * page
    return lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextmanager
def _peak_rss() -> Iterator[Callable[[], float]]:
    """Yields a function giving the peak resident MiB above the level on entry."""
    read = _rss_reader()
    base = read()
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(SAMPLE_S):
            peak[0] = max(peak[0], read())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield lambda: (peak[0] - base) / 2**20
    finally:
        stop.set()
        sampler.join()
        peak[0] = max(peak[0], read())


def _timed(label: str, device: str, score: Callable[[], list[ClipScore]]) -> Run:
    cuda = device.startswith("cuda")
    if cuda:
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with _peak_rss() as peak:
        started = time.perf_counter()
        scores = score()
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    gpu = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
    return Run(label, scores, seconds, peak(), gpu)


def differences(
    names: Sequence[str], naive: Sequence[ClipScore], project: Sequence[ClipScore]
) -> list[str]:
    """Every way the two disagree: flagged entities, or a score more than TOLERANCE apart."""
    found = []
    for name, a, b in zip(names, naive, project, strict=True):
        flagged_a = sorted(s.entity_id for s in a.flagged)
        flagged_b = sorted(s.entity_id for s in b.flagged)
        if flagged_a != flagged_b:
            found.append(f"{name}: flagged naive {flagged_a}, project {flagged_b}")
        scores_b = {s.entity_id: s.score for s in b.entities}
        for s in a.entities:
            other = scores_b.get(s.entity_id)
            if other is None or abs(s.score - other) > TOLERANCE:
                found.append(f"{name}: {s.entity_id} scores naive {s.score}, project {other}")
        extra = set(scores_b) - {s.entity_id for s in a.entities}
        if extra:
            found.append(f"{name}: entities only the project scored {sorted(extra)}")
    return found


def compare(
    gallery: Gallery,
    decoded: Sequence[Decoded],
    decode_s: float,
    device: str,
    *,
    batch: int = 8,
    models: Models | None = None,
    settings: LikenessSettings | None = None,
) -> Comparison:
    """Score ``decoded`` naively and with the project's scorer on ``device``; compare.

    ``settings`` (default ones unless given; a test takes fewer regions) are the project's;
    the naive scorer's are the same with ``batch_size`` 1.
    """
    base = (settings or LikenessSettings()).model_copy(update={"device": device})
    models = models or Models.load(base)
    naive_settings = base.model_copy(update={"batch_size": 1})
    naive = Scorer(gallery, _naive_models(models, base), naive_settings)
    project = Scorer(gallery, models, base)
    warm = decoded[0]
    for scorer in (naive, project):  # first calls pay for lazy setup; neither side should
        scorer.score_frames(warm.frames[:1], warm.clip.caption)
    clips = [(d.frames, d.clip.caption) for d in decoded]
    first = _timed("naive", device, lambda: [naive.score_frames(*clip) for clip in clips])
    second = _timed(
        "project",
        device,
        lambda: [
            s for i in range(0, len(clips), batch) for s in project.score_many(clips[i : i + batch])
        ],
    )
    names = [d.clip.name for d in decoded]
    return Comparison(
        device,
        list(decoded),
        decode_s,
        first,
        second,
        differences(names, first.scores, second.scores),
        getattr(models.image_embedder, "runtime", "torch"),
    )


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else "unknown CPU"


def machine(devices: Sequence[str]) -> list[str]:
    """Date, CPU, cores, torch version and device names: what the figures were measured on."""
    import torch

    gpus = [torch.cuda.get_device_name(d) for d in devices if d.startswith("cuda")]
    return [
        f"date:  {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}",
        f"CPU:   {_cpu_model()}, {os.cpu_count()} cores (torch uses {torch.get_num_threads()})",
        f"torch: {torch.__version__}; devices: {', '.join(devices)}"
        + (f" ({', '.join(gpus)})" if gpus else ""),
    ]


def report(result: Comparison) -> str:
    """The figures of one device, naive and project side by side, and the verdict check."""
    frames = sum(len(d.frames) for d in result.decoded)
    clips = len(result.decoded)
    runs = (result.naive, result.project)
    rows: list[tuple[str, Callable[[Run], str]]] = [
        ("wall s", lambda r: f"{r.seconds:.2f}"),
        ("clips/s", lambda r: f"{clips / r.seconds:.3f}"),
        ("frames/s", lambda r: f"{frames / r.seconds:.2f}"),
        ("decode s (shared)", lambda r: f"{result.decode_s:.2f}"),
        *((f"{key[:-2]} s", lambda r, key=key: f"{r.stage(key):.2f}") for key in STAGES),
        ("peak RSS +MiB", lambda r: f"{r.peak_rss_mib:.0f}"),
    ]
    if result.naive.peak_gpu_mib is not None:
        rows.append(("peak GPU MiB", lambda r: f"{r.peak_gpu_mib or 0.0:.0f}"))
    lines = [
        f"device {result.device}: {clips} clips, {frames} frames; visual model on "
        f"{result.runtime} (the naive scorer's on torch)",
        f"  {'':20}{'naive':>12}{'project':>12}",
        *(f"  {name:20}" + "".join(f"{cell(r):>12}" for r in runs) for name, cell in rows),
        f"  ratio project/naive clips/s: {result.naive.seconds / result.project.seconds:.2f}x",
    ]
    if result.differences:
        lines += ["  VERDICTS DIFFER:", *(f"    {d}" for d in result.differences)]
    else:
        lines.append(f"  verdicts: the same (flagged entities, scores within {TOLERANCE})")
    return "\n".join(lines)


def _devices(text: str | None) -> list[str]:
    if text:
        return [d.strip() for d in text.split(",") if d.strip()]
    import torch

    return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", type=int, default=None, help="the first N clips (default all)")
    parser.add_argument("--devices", default=None, help="e.g. cpu,cuda (default: every present)")
    parser.add_argument(
        "--batch", type=int, default=8, help="clips per score_many call (default 8)"
    )
    args = parser.parse_args(argv)
    settings = Settings()
    demo = build_demo()
    gallery = Gallery.load(prepare_demo_gallery(settings, print))
    clips = mixed(demo_clips(demo), eval_clips())[: args.clips]
    decoded, decode_s = decode_all(clips, settings.decode)
    devices = _devices(args.devices)
    print("\n".join(machine(devices)))
    print(f"clips: {', '.join(c.name for c in clips)}")
    print(f"decode: {decode_s:.2f} s for {len(clips)} clips, once, shared by both scorers")
    failed = False
    for device in devices:
        result = compare(gallery, decoded, decode_s, device, batch=args.batch)
        print(report(result), flush=True)
        failed = failed or bool(result.differences)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
