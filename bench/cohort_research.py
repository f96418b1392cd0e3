"""Characters told apart from look-alikes: which visual score, side by side, on the dev set.

Run from the repository root: ``python -m bench.cohort_research [--eval-media DIR]``.

The dev set enrols the Go gopher (6 drawings) and Sintel (3 frames) and asks for them in its
cases; every case that does not show the entity is a negative, 40 cartoon look-alikes among
them. Each method scores a case as its best view (15 per frame, as the scorer cuts them) of its
best frame. Reported per entity: AP over the test cases; TPR at FPR <= 0.01 on the test
negatives (with ~100 of them: above the highest one, an optimistic figure that only ranks
methods); and TPR / FPR at a threshold calibrated the product's way (just above the best of
the calibration negatives that ``bench.devset`` puts in the gallery: packaged media and half of
``not-protected``; never a look-alike).

Compared, all with EfficientNet-Lite0 and the bundled cohort (``monitor.likeness.cohort``):
raw cosine of the 1280-d head (the engine before); top-2 mean instead of max over references;
AS-norm (top-50 cohort statistics of query and reference); a per-entity logistic probe of the
references against the cohort; a hue-saturation histogram intersection as a separate colour
term; whitening on the cohort; whitening plus a margin over the query's 10 nearest cohort
members; and the same on mid-level features (blocks 11 and 14, pooled and concatenated).
Also two ideas of ours: cohort members as their own calibration negatives (measured and
rejected), and the visual floor derived from a split of the cohort (kept: 0.10).

Embeddings are cached under ``--cache`` so that a rerun recomputes nothing.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from bench.devset import TEST_ONLY, _person
from monitor.config import DecodeSettings, LikenessSettings
from monitor.likeness.cohort.bundled import bundled_pictures
from monitor.likeness.cohort.normalise import COHORT_TOP_K, CohortNormaliser
from monitor.likeness.embedders.visual import (
    MID_BLOCKS,
    EfficientNetLite0Embedder,
    prepare_batch,
)
from monitor.likeness.regions import views
from monitor.likeness.weights import cached_path
from monitor.media import load_media
from monitor.media.frames import RGBImage

__all__ = ["main"]

Array = npt.NDArray[np.float32]
Scores = npt.NDArray[Any]
EVAL_MEDIA = Path(__file__).resolve().parents[2] / "shared" / "eval-media"
CHARACTERS = ("go-gopher", "sintel")
FEATURES = ("head", "mid", "hist")


def hue_saturation(image: RGBImage) -> Array:
    """An 18x4 hue-saturation histogram of the picture's coloured pixels (white ground out)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    coloured = ~((hsv[..., 1] < 40) & (hsv[..., 2] > 200))
    hist = cv2.calcHist([hsv], [0, 1], coloured.astype(np.uint8), [18, 4], [0, 180, 40, 256])
    flat = hist.flatten().astype(np.float32)
    return flat / max(float(flat.sum()), 1.0)


class Extractor:
    """The bundled embedder's head and mid-level features, and colour, in one pass."""

    def __init__(self) -> None:
        self.embedder = EfficientNetLite0Embedder(cached_path("efficientnet-lite0"), device="cpu")
        self._module: Any = self.embedder._module

    def __call__(self, images: list[RGBImage]) -> dict[str, Array]:
        out: dict[str, list[Array]] = {name: [] for name in FEATURES}
        for start in range(0, len(images), 16):
            chunk = images[start : start + 16]
            pixels = prepare_batch(chunk, 224, "stretch")
            with torch.inference_mode():
                batch = torch.from_numpy(pixels).permute(0, 3, 1, 2).float()
                batch = (batch - self.embedder._shift) * self.embedder._scale
                out["mid"].append(F.normalize(self.embedder._features(batch), dim=1).numpy())
                head = self._module.extract_features(batch).mean(dim=(2, 3))
                out["head"].append(F.normalize(head, dim=1).numpy())
            out["hist"].append(np.stack([hue_saturation(image) for image in chunk]))
        return {name: np.concatenate(rows).astype(np.float32) for name, rows in out.items()}


def extract(
    media: Path, cache: Path
) -> tuple[dict[str, Array], list[dict[str, Any]], dict[str, Any]]:
    """Per view features of every reference and case, and of the bundled cohort."""
    cache.mkdir(parents=True, exist_ok=True)
    items_file, meta_file, cohort_file = (
        cache / "items.npz",
        cache / "items.json",
        cache / "cohort.npz",
    )
    extractor = Extractor()
    if not cohort_file.is_file():
        pictures = list(bundled_pictures())
        cohort = extractor([p.image for p in pictures])
        np.savez(cohort_file, names=np.asarray([p.name for p in pictures]), **cohort)  # type: ignore[arg-type]
    if not items_file.is_file():
        manifest = json.loads((media / "MANIFEST.json").read_text())
        settings, decode = LikenessSettings(), DecodeSettings()
        rows: dict[str, list[Array]] = defaultdict(list)
        meta = []
        for kind, entries in (("ref", manifest["refs"]), ("case", manifest["cases"])):
            for entry in entries:
                frames = load_media(media / entry["path"], decode.limits, even_frames=8)
                images: list[RGBImage] = []
                for frame in frames:
                    if kind == "ref":
                        images += [frame.image, np.ascontiguousarray(frame.image[:, ::-1])]
                    else:
                        cuts = views(frame.image, grids=settings.region_grids, centre=True)
                        images += [np.ascontiguousarray(v.image) for v in cuts]
                for name, found in extractor(images).items():
                    rows[name].append(found)
                meta.append({"kind": kind, "n": len(images), **entry})
        np.savez(items_file, **{k: np.concatenate(v) for k, v in rows.items()})  # type: ignore[arg-type]
        meta_file.write_text(json.dumps(meta))
    loaded = np.load(cohort_file)
    return (
        dict(np.load(items_file)),
        json.loads(meta_file.read_text()),
        {k: loaded[k] for k in loaded.files},
    )


class DevSet:
    """Rows of every case's views, the references, and the calibration split of devset."""

    def __init__(self, items: dict[str, Array], meta: list[dict[str, Any]]) -> None:
        self.items, self.meta = items, meta
        bounds = np.cumsum([0] + [m["n"] for m in meta])
        self.rows = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(meta))]
        self.cases = [i for i, m in enumerate(meta) if m["kind"] == "case"]
        self.case_rows = np.concatenate([self.rows[i] for i in self.cases])
        self.owner = np.concatenate([np.full(meta[i]["n"], j) for j, i in enumerate(self.cases)])
        by_person: dict[str, list[str]] = defaultdict(list)
        for m in meta:
            if m["kind"] == "case" and not m["expect"] and not m["path"].startswith(TEST_ONLY):
                by_person[_person(m["path"])].append(m["path"])
        calibration = {p for paths in by_person.values() for p in sorted(paths)[::2]}
        self.calibration = np.asarray([meta[i]["path"] in calibration for i in self.cases])
        self.lookalike = np.asarray([meta[i]["path"].startswith(TEST_ONLY) for i in self.cases])

    def queries(self, feature: str) -> Array:
        return np.asarray(self.items[feature][self.case_rows])

    def references(self, feature: str, entity: str) -> Array:
        return np.concatenate(
            [
                self.items[feature][self.rows[i]]
                for i, m in enumerate(self.meta)
                if m["kind"] == "ref" and m["entity"] == entity
            ]
        )

    def per_case(self, view_scores: Scores) -> Array:
        out = np.full(len(self.cases), -np.inf, np.float32)
        np.maximum.at(out, self.owner, view_scores)
        return out

    def expects(self, entity: str) -> npt.NDArray[np.bool_]:
        return np.asarray([entity in self.meta[i]["expect"] for i in self.cases])


def average_precision(scores: Array, labels: npt.NDArray[np.bool_]) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = labels[order]
    precision = np.cumsum(hits) / (np.arange(len(hits)) + 1)
    return float((precision * hits).sum() / max(int(hits.sum()), 1))


Method = Callable[[DevSet, str], Scores]
"""Per view scores of every case's views against one entity."""


def _topk_stats(similarity: Array, k: int) -> tuple[Array, Array]:
    best = np.partition(similarity, -k, axis=1)[:, -k:]
    return best.mean(axis=1), best.std(axis=1) + 1e-6


def methods(cohort: dict[str, Any]) -> dict[str, Method]:
    """Every variant measured, by name."""
    normalisers = {f: CohortNormaliser(cohort[f], list(cohort["names"])) for f in ("head", "mid")}

    def raw(feature: str) -> Method:
        return lambda d, e: (d.queries(feature) @ d.references(feature, e).T).max(axis=1)

    def top2(d: DevSet, e: str) -> Scores:
        sim = d.queries("head") @ d.references("head", e).T
        return np.asarray(np.sort(sim, axis=1)[:, -2:].mean(axis=1))

    def as_norm(feature: str) -> Method:
        def score(d: DevSet, e: str) -> Scores:
            refs, queries = d.references(feature, e), d.queries(feature)
            sim = queries @ refs.T
            best, arg = sim.max(axis=1), sim.argmax(axis=1)
            mq, sq = _topk_stats(queries @ cohort[feature].T, 50)
            mr, sr = _topk_stats(refs @ cohort[feature].T, 50)
            return np.asarray(0.5 * ((best - mq) / sq + (best - mr[arg]) / sr[arg]))

        return score

    def probe(d: DevSet, e: str) -> Scores:
        refs, negatives = d.references("head", e), cohort["head"]
        x = np.concatenate([refs, negatives])
        y = np.concatenate([np.ones(len(refs)), np.zeros(len(negatives))])
        weight = np.where(y == 1, 0.5 / len(refs), 0.5 / len(negatives))
        w, b = np.zeros(x.shape[1]), 0.0
        for _ in range(500):
            p = 1 / (1 + np.exp(-(x @ w + b)))
            grad = weight * (p - y)
            w -= 5.0 * (x.T @ grad + 1e-3 * w)
            b -= 5.0 * grad.sum()
        return (d.queries("head") @ w + b).astype(np.float32)

    def colour(base: Method, weight: float) -> Method:
        def score(d: DevSet, e: str) -> Scores:
            hq, hr = d.queries("hist"), d.references("hist", e)
            overlap = np.stack([np.minimum(hq, r).sum(axis=1) for r in hr], axis=1).max(axis=1)
            return np.asarray(base(d, e) + weight * overlap)

        return score

    def whitened(feature: str, margin: bool) -> Method:
        normaliser = normalisers[feature]

        def score(d: DevSet, e: str) -> Scores:
            queries = normaliser.transform(d.queries(feature))
            refs = normaliser.transform(d.references(feature, e))
            if margin:
                return np.asarray(normaliser.margins(queries, refs).max(axis=1))
            return np.asarray((queries @ refs.T).max(axis=1))

        return score

    chosen = whitened("mid", True)
    return {
        "raw cosine, head (before)": raw("head"),
        "top-2 mean of references, head": top2,
        "AS-norm top-50, head": as_norm("head"),
        "logistic probe vs cohort, head": probe,
        "raw + 0.5 colour, head": colour(raw("head"), 0.5),
        "whitened on cohort, head": whitened("head", False),
        "whitened + cohort margin, head": whitened("head", True),
        "raw cosine, mid (blocks 11+14)": raw("mid"),
        "AS-norm top-50, mid": as_norm("mid"),
        "whitened on cohort, mid": whitened("mid", False),
        "whitened + cohort margin, mid (kept)": chosen,
        "kept + 0.5 colour": colour(chosen, 0.5),
    }


def evaluate(devset: DevSet, method: Method) -> dict[str, dict[str, float]]:
    out = {}
    for entity in CHARACTERS:
        scores = devset.per_case(method(devset, entity))
        positive, calibration = devset.expects(entity), devset.calibration
        test, labels = scores[~calibration], positive[~calibration]
        highest_negative = float(test[~labels].max())
        threshold = float(scores[calibration].max()) + 1e-6
        out[entity] = {
            "ap": average_precision(test, labels),
            "tpr_at_fpr_0.01": float((test[labels] > highest_negative).mean()),
            "calibrated_tpr": float((test[labels] >= threshold).mean()),
            "calibrated_fpr": float((test[~labels] >= threshold).mean()),
            "lookalikes_flagged": int((scores[devset.lookalike] >= threshold).sum()),
        }
    return out


def rejected_ideas(devset: DevSet, cohort: dict[str, Any]) -> None:
    normaliser = CohortNormaliser(cohort["mid"], list(cohort["names"]))
    members = normaliser.cohort
    similarity = members @ members.T
    np.fill_diagonal(similarity, -np.inf)
    baseline = np.partition(similarity, -COHORT_TOP_K, axis=1)[:, -COHORT_TOP_K:].mean(axis=1)
    for entity in CHARACTERS:
        refs = normaliser.transform(devset.references("mid", entity))
        own = (members @ refs.T).max(axis=1) - baseline
        threshold = float(np.sort(own)[::-1][int(0.01 * len(own))])
        scores = devset.per_case(
            normaliser.margins(normaliser.transform(devset.queries("mid")), refs).max(axis=1)
        )
        flagged = float((scores[~devset.expects(entity)] >= threshold).mean())
        print(
            f"cohort members as calibration negatives (leave one out), {entity}: threshold "
            f"{threshold:.3f}, which flags {flagged:.0%} of the test negatives (rejected)"
        )
    rng = np.random.default_rng(0)
    order = rng.permutation(len(members))
    half, rest = order[: len(order) // 2], order[len(order) // 2 :]
    base = np.partition(members[rest] @ members[half].T, -COHORT_TOP_K, axis=1)[:, -COHORT_TOP_K:]
    pairs = members[rest] @ members[rest].T
    np.fill_diagonal(pairs, -np.inf)
    best_other = (pairs - base.mean(axis=1)[:, None]).max(axis=0)
    print(
        "visual floor: best margin another cohort character reaches against a one-picture "
        f"entity: median {np.median(best_other):.3f}, p90 {np.percentile(best_other, 90):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-media", type=Path, default=EVAL_MEDIA)
    parser.add_argument("--cache", type=Path, default=Path("var/cohort-research"))
    args = parser.parse_args()
    items, meta, cohort = extract(args.eval_media, args.cache)
    devset = DevSet(items, meta)
    print(f"cohort: {len(cohort['names'])} pictures; mid-level blocks {MID_BLOCKS}\n")
    header = "| method | " + " | ".join(
        f"{e} AP | {e} TPR@FPR<=0.01 | {e} calibrated TPR / FPR (look-alikes)" for e in CHARACTERS
    )
    print(header + " |")
    print("|---" * (1 + 3 * len(CHARACTERS)) + "|")
    for name, method in methods(cohort).items():
        found = evaluate(devset, method)
        cells = []
        for entity in CHARACTERS:
            r = found[entity]
            cells += [
                f"{r['ap']:.3f}",
                f"{r['tpr_at_fpr_0.01']:.3f}",
                f"{r['calibrated_tpr']:.3f} / {r['calibrated_fpr']:.3f} ({int(r['lookalikes_flagged'])})",
            ]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print()
    rejected_ideas(devset, cohort)


if __name__ == "__main__":
    main()
