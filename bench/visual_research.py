"""How well do the bundled visual embedders find a drawn character, and with which settings?

Run from the repository root: ``python -m bench.visual_research [--eval-media DIR]``.

The dev set (``../shared/eval-media``) enrolls the Go gopher from six vector drawings and asks
for it in 59 other pictures (more vector drawings, pencil sketches by hand, an emoji sheet); every
case that does not expect the gopher is a negative (photos of people, film clips, two drawings by
the same artist without a gopher). The product's target is TPR >= 0.90 at FPR <= 0.01; with about
60 negatives that means no false positive at all, so each configuration is reported as the TPR at
the highest threshold that passes no negative.

Compared: the two bundled embedders; how a picture becomes the square input (stretch, letterbox
on white, centre crop); views (regions) of the query and of the references; mean-centring the
embeddings on generic pictures; and a light logistic-regression head trained on augmented
references against generic pictures that are NOT eval cases (package media, other entities'
references). Also measured: images per second on this CPU at batch 1, 8 and 32.

Embeddings are cached under ``--cache`` so that a rerun only recomputes what changed. Thresholds
here are set on the cases themselves: the figures are optimistic and only rank the options.

Found (2026-11-26, 2-core CPU): EfficientNet-Lite0, pictures stretched to 224x224, ImageNet
normalisation, whole references (and their mirror images), and the query as 15 views (whole,
2x2, 3x3, centre) finds 56 of 59 gophers (0.95) above the best negative, the gopher-less
drawing of two whales by the same artist (0.543). Letterboxing gives 0.90, centre crops 0.73,
TensorFlow's (x - 127) / 128 normalisation 0.76, overlapping windows 0.85, MobileNetV2 at
most 0.64. Views of the references ruin it (blank or stylistic crops of the drawings match
crops of anything: cosine 1.0 against a photo), even with flat crops filtered out. Mean-centring
and a logistic head trained against photos and film frames both lose (0.2-0.88): with no
drawing among the generic negatives, they learn "drawing", not "gopher".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import torch

from monitor.assets import ensure
from monitor.likeness.embedders.visual import (
    EfficientNetLite0Embedder,
    MobileNetV2Embedder,
    ResizePolicy,
    TorchImageEmbedder,
)
from monitor.likeness.regions import views
from monitor.likeness.weights import BUNDLED_WEIGHTS
from monitor.media.frames import RGBImage
from monitor.media.samples import sample

__all__ = ["main"]

Array = npt.NDArray[np.float32]
FRAMES_PER_CLIP = 8
CHARACTER = "go-gopher"


@dataclass
class Item:
    """One case or reference: its frames, and per frame the view labels and embeddings."""

    name: str
    frames: list[RGBImage]
    positive: bool = False


def read_frames(path: Path) -> list[RGBImage]:
    if path.suffix.lower() in {".jpg", ".jpeg", ".png"}:
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        return [np.ascontiguousarray(bgr[:, :, ::-1])]
    with av.open(str(path)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    picks = np.linspace(0, len(decoded) - 1, min(FRAMES_PER_CLIP, len(decoded))).round()
    return [decoded[int(i)] for i in picks]


def load_dev_set(root: Path, entity: str) -> tuple[list[Item], list[Item], list[Item]]:
    """(references of ``entity``, cases, other entities' references)."""
    manifest = json.loads((root / "MANIFEST.json").read_text())
    refs = [Item(r["path"], read_frames(root / r["path"])) for r in manifest["refs"]]
    cases = [
        Item(c["path"], read_frames(root / c["path"]), entity in c["expect"])
        for c in manifest["cases"]
    ]
    mine = [r for r in refs if r.name.startswith(f"refs/{entity}/")]
    others = [r for r in refs if not r.name.startswith(f"refs/{entity}/")]
    return mine, cases, others


def generic_pictures(other_refs: Sequence[Item]) -> list[Item]:
    """Pictures that are neither the character nor an eval case: negatives for a trained head."""
    items = []
    for name in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "t1.jpg"):
        items.append(Item(name, read_frames(sample(name))))
    return items + list(other_refs)


def augmentations(image: RGBImage) -> list[RGBImage]:
    """A reference as a character may appear: mirrored, cropped, small on a plain ground."""
    h, w = image.shape[:2]
    out = []
    for im in (image, np.ascontiguousarray(image[:, ::-1])):
        out.append(im)
        ch, cw = int(h * 0.8), int(w * 0.8)
        for y, x in ((0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw)):
            out.append(im[y : y + ch, x : x + cw])
        out.append(im[h // 5 : h - h // 5, w // 5 : w - w // 5])
    return out


# --- embedding, cached ------------------------------------------------------------------------


class Embedded:
    """Per item, per frame: view labels and their embeddings (views cover the full frame too)."""

    def __init__(self, embedder: TorchImageEmbedder, cache: Path, tag: str, overlap: float) -> None:
        self.embedder, self.cache, self.tag, self.overlap = embedder, cache, tag, overlap

    def __call__(self, item: Item, *, augment: bool = False) -> list[tuple[list[str], Array]]:
        key = hashlib.sha1(f"{self.tag}|{self.overlap}|{augment}|{item.name}".encode()).hexdigest()
        path = self.cache / f"{key}.npz"
        if path.is_file():
            stored = np.load(path, allow_pickle=False)
            return [(list(stored[f"l{i}"]), stored[f"e{i}"]) for i in range(int(stored["n"]))]
        out = []
        frames = [a for f in item.frames for a in augmentations(f)] if augment else item.frames
        for frame in frames:
            vs = views(frame, overlap=self.overlap)
            out.append(([v.label for v in vs], self.embedder.embed([v.image for v in vs])))
        arrays: dict[str, npt.NDArray[np.generic]] = {"n": np.array(len(out))}
        for i, (labels, emb) in enumerate(out):
            arrays[f"l{i}"], arrays[f"e{i}"] = np.array(labels), emb
        np.savez(path, **arrays)  # type: ignore[arg-type]
        return out


def rows(per_frame: list[tuple[list[str], Array]], with_views: bool) -> Array:
    if with_views:
        return np.concatenate([e for _, e in per_frame])
    return np.stack([e[labels.index("full")] for labels, e in per_frame])


# --- scoring ---------------------------------------------------------------------------------


def tpr_at_zero_fp(scores: Array, positive: npt.NDArray[np.bool_]) -> tuple[float, float, int]:
    """TPR with the threshold just above the best negative; also ROC AUC and the top negative."""
    neg, pos = scores[~positive], scores[positive]
    tpr = float((pos > neg.max()).mean())
    auc = float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    return tpr, auc, int(np.flatnonzero(~positive)[neg.argmax()])


def group_of(name: str) -> str:
    stem = Path(name).name
    return stem.split("-")[0] if stem.startswith(("vector", "sketch", "emoji")) else "other"


def report(label: str, scores: Array, cases: Sequence[Item], table: list[str]) -> None:
    positive = np.array([c.positive for c in cases])
    tpr, auc, top = tpr_at_zero_fp(scores, positive)
    cut = scores[top]
    groups = {}
    for g in ("vector", "sketch", "emoji"):
        sel = np.array([c.positive and group_of(c.name) == g for c in cases])
        groups[g] = f"{int((scores[sel] > cut).sum())}/{int(sel.sum())}"
    table.append(
        f"| {label} | {tpr:.2f} | {auc:.3f} | {groups['vector']} | {groups['sketch']} | "
        f"{groups['emoji']} | {Path(cases[top].name).name} {cut:.3f} |"
    )


def max_cosine(refs: Array, centre: Array | None) -> Callable[[Array], float]:
    def score(query: Array) -> float:
        r, q = refs, query
        if centre is not None:
            r, q = _renorm(r - centre), _renorm(q - centre)
        return float((q @ r.T).max())

    return score


def _renorm(x: Array) -> Array:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def logistic_head(pos: Array, neg: Array, decay: float = 1e-3) -> Callable[[Array], float]:
    """Class-balanced logistic regression, full batch, L-BFGS; scores are max logits."""
    x = torch.from_numpy(np.concatenate([pos, neg]))
    y = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))])
    weight = torch.where(y > 0, len(neg) / len(pos), 1.0)
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y, weight=weight)
        loss = loss + decay * (w @ w)
        loss.backward()
        return loss

    opt.step(closure)
    wn, bn = w.detach().numpy(), float(b.detach())
    return lambda query: float((query @ wn + bn).max())


# --- the study -------------------------------------------------------------------------------


def build(model: str, resize: ResizePolicy, norm: str) -> TorchImageEmbedder:
    embedder: TorchImageEmbedder
    if model == "efficientnet-lite0":
        embedder = EfficientNetLite0Embedder(ensure(BUNDLED_WEIGHTS[model]), resize=resize)
    else:
        embedder = MobileNetV2Embedder(ensure(BUNDLED_WEIGHTS[model]), resize=resize)
    if norm == "tf":  # TensorFlow's Lite preprocessing: (x - 127) / 128
        embedder._shift = torch.full((1, 3, 1, 1), 127.0)
        embedder._scale = torch.full((1, 3, 1, 1), 1.0 / 128.0)
    return embedder


def study(root: Path, cache: Path, configs: Sequence[tuple[str, ResizePolicy, str, float]]) -> None:
    refs, cases, other_refs = load_dev_set(root, CHARACTER)
    generic = generic_pictures(other_refs)
    print(
        f"{len(refs)} refs, {sum(c.positive for c in cases)} positive and "
        f"{sum(not c.positive for c in cases)} negative cases, {len(generic)} generic items"
    )
    table = [
        "| config | TPR@0FP | AUC | vector | sketch | emoji | top negative |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, resize, norm, overlap in configs:
        tag = f"{model}|{resize}|{norm}|{'white' if resize == 'letterbox' else ''}"
        embed = Embedded(build(model, resize, norm), cache, tag, overlap)
        started = time.perf_counter()
        case_views = [embed(c) for c in cases]
        ref_views = [embed(r) for r in refs]
        aug_views = [embed(r, augment=True) for r in refs]
        generic_views = [embed(g) for g in generic]
        name = f"{model} {resize}{' tf-norm' if norm == 'tf' else ''}"
        name += f" overlap{overlap}" if overlap else ""
        print(f"{name}: embedded in {time.perf_counter() - started:.0f} s")
        generic_mean = np.concatenate([rows(g, True) for g in generic_views]).mean(0)
        for ref_views_on in (False, True):
            ref_rows = np.concatenate([rows(r, ref_views_on) for r in ref_views])
            for centred in (False, True):
                scorer = max_cosine(ref_rows, generic_mean if centred else None)
                for query_views in (False, True):
                    scores = np.array([scorer(rows(c, query_views)) for c in case_views])
                    label = (
                        f"{name}; refs {'+views' if ref_views_on else 'whole'}; "
                        f"query {'15 views' if query_views else 'whole'}"
                        f"{'; centred' if centred else ''}"
                    )
                    report(label, scores, cases, table)
        for head_views in (False, True):
            pos = np.concatenate([rows(a, head_views) for a in aug_views])
            neg = np.concatenate([rows(g, head_views) for g in generic_views])
            head = logistic_head(pos, neg)
            for query_views in (False, True):
                scores = np.array([head(rows(c, query_views)) for c in case_views])
                label = (
                    f"{name}; logistic head ({'views' if head_views else 'whole'} in training); "
                    f"query {'15 views' if query_views else 'whole'}"
                )
                report(label, scores, cases, table)
    print("\n".join(table))


def throughput() -> None:
    """Images per second from 1280x720 RGB frames through ``embed`` (resize included).

    Best of three rounds: the figure a quiet machine gives, not one disturbed by a neighbour.
    """
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8) for _ in range(32)]
    print(f"\nCPU throughput, {torch.get_num_threads()} threads, 720p frames in, embed() calls:")
    for model in ("efficientnet-lite0", "mobilenet-v2"):
        embedder = build(model, "stretch", "imagenet")
        embedder.embed(frames[:2])
        for batch in (1, 4, 8, 32):
            embedder.batch_size = batch
            repeats = max(2, 64 // batch)
            best = 0.0
            for _ in range(3):
                started = time.perf_counter()
                for _ in range(repeats):
                    embedder.embed(frames[:batch])
                best = max(best, repeats * batch / (time.perf_counter() - started))
            print(f"  {model:<20} batch {batch:>2}: {best:6.1f} images/s")


def main() -> None:
    default_root = Path(__file__).resolve().parents[2] / "shared" / "eval-media"
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval-media", type=Path, default=default_root)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/visual-research-cache"))
    parser.add_argument("--quick", action="store_true", help="only EfficientNet-Lite0, stretch")
    parser.add_argument("--only", choices=("study", "speed"), help="run one part only")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    configs: list[tuple[str, ResizePolicy, str, float]] = [
        ("efficientnet-lite0", "stretch", "imagenet", 0.0)
    ]
    if not args.quick:
        configs += [
            ("efficientnet-lite0", "letterbox", "imagenet", 0.0),
            ("efficientnet-lite0", "centre-crop", "imagenet", 0.0),
            ("efficientnet-lite0", "stretch", "tf", 0.0),
            ("efficientnet-lite0", "stretch", "imagenet", 0.5),
            ("mobilenet-v2", "stretch", "imagenet", 0.0),
            ("mobilenet-v2", "letterbox", "imagenet", 0.0),
            ("mobilenet-v2", "centre-crop", "imagenet", 0.0),
        ]
    if args.only != "speed":
        study(args.eval_media, args.cache, configs)
    if args.only != "study":
        throughput()


if __name__ == "__main__":
    main()
