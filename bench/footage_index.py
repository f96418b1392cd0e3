"""Which index answers radius-31 PDQ lookups over a catalogue of films: speed, recall, memory.

    python -m bench.footage_index [--hashes 1000000 4000000 16000000] [--clip-hashes 30]

Stored hashes stand for dense reference footage (``bench.footage`` prints the measured count
per hour): shots of random balanced 256-bit hashes, each kept hash a step of 9 to 40 bits from
the one before (a hash is kept only when it moved more than ``KEEP_BITS``), 48 kept hashes a
shot. Queries are stored hashes moved by 0 to 31 bits (a copy's frames lie that far from their
reference's nearest hash), so every query has a true match within radius 31. A lookup is one
query clip: ``--clip-hashes`` hashes (nine decoded frames, about three hashes each) searched
in one call. Recall: the share of queries whose true match comes back. Memory: the index's
own bytes, from faiss's serialised size. Each candidate is measured at each size in turn on
this machine's cores (faiss uses them all).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import faiss
import numpy as np
import numpy.typing as npt

from monitor.likeness.footage.hashes import HASH_BYTES, MATCH_DISTANCE
from monitor.likeness.footage.index import HashIndex

__all__ = ["main", "synthetic_footage"]

Hashes = npt.NDArray[np.uint8]
SHOT = 48


def synthetic_footage(count: int, seed: int = 0) -> Hashes:
    """``count`` hashes in shots of ``SHOT``: each a random walk of 9-40 bit steps."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, HASH_BYTES), np.uint8)
    for start in range(0, count, SHOT * 4096):
        shots = min(4096, -(-(count - start) // SHOT))
        steps = rng.integers(9, 41, (shots, SHOT, 1)) / (HASH_BYTES * 8)
        flips = rng.random((shots, SHOT, HASH_BYTES * 8)) < steps
        flips[:, 0] = rng.random((shots, HASH_BYTES * 8)) < 0.5  # the shot's first frame
        walk = np.bitwise_xor.accumulate(flips.astype(np.uint8), axis=1)
        rows = np.packbits(walk.reshape(-1, HASH_BYTES * 8), axis=1)
        out[start : start + len(rows)] = rows[: count - start]
    return out


def moved(stored: Hashes, count: int, seed: int = 1) -> tuple[Hashes, npt.NDArray[np.int64]]:
    """``count`` stored hashes, each with 0 to 31 of its bits flipped, and their rows."""
    rng = np.random.default_rng(seed)
    sources = rng.integers(0, len(stored), count)
    order = np.argsort(rng.random((count, HASH_BYTES * 8)), axis=1)
    flip = order < rng.integers(0, MATCH_DISTANCE + 1, (count, 1))
    bits = np.unpackbits(stored[sources], axis=1) ^ flip.astype(np.uint8)
    return np.packbits(bits, axis=1), sources


def range_search(index: faiss.IndexBinary) -> Callable[[Hashes], list[set[int]]]:
    def search(queries: Hashes) -> list[set[int]]:
        limits, _, rows = index.range_search(queries, MATCH_DISTANCE + 1)
        return [set(rows[limits[i] : limits[i + 1]].tolist()) for i in range(len(queries))]

    return search


def candidates(stored: Hashes) -> dict[str, tuple[faiss.IndexBinary, float]]:
    """Name -> (built index, seconds to build)."""
    out: dict[str, tuple[faiss.IndexBinary, float]] = {}
    started = time.perf_counter()
    flat = faiss.IndexBinaryFlat(HASH_BYTES * 8)
    flat.add(stored)
    out["flat (exact)"] = (flat, time.perf_counter() - started)
    for nprobe in (16, 64):
        started = time.perf_counter()
        ivf = HashIndex.inverted(stored, nprobe=nprobe)
        out[f"IVF {ivf.nlist} lists, nprobe {nprobe}"] = (ivf, time.perf_counter() - started)
    started = time.perf_counter()
    mih = faiss.IndexBinaryMultiHash(HASH_BYTES * 8, 16, 16)
    mih.nflip = 1  # 16 tables of 16 bits: within 31 bits, some table is within 1 bit: exact
    mih.add(stored)
    out["multi-index hashing 16x16, 1 flip (exact)"] = (mih, time.perf_counter() - started)
    return out


def memory(index: faiss.IndexBinary) -> int:
    if isinstance(index, faiss.IndexBinaryMultiHash):
        # not serialisable: codes, plus per table an id per stored hash and its bucket map
        return int(index.ntotal) * (HASH_BYTES + 16 * 8)
    return int(faiss.serialize_index_binary(index).size)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--clip-hashes", type=int, default=30)
    parser.add_argument("--clips", type=int, default=40)
    args = parser.parse_args(argv)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    print(
        f"{'stored':>11s}  {'index':44s} {'build s':>8s} {'clips/s':>8s} "
        f"{'ms/hash':>8s} {'recall':>7s} {'MB':>8s}"
    )
    for count in args.hashes:
        stored = synthetic_footage(count)
        queries, sources = moved(stored, args.clips * args.clip_hashes)
        for name, (index, built) in candidates(stored).items():
            search = range_search(index)
            search(queries[: args.clip_hashes])  # warm
            found: list[set[int]] = []
            started = time.perf_counter()
            for clip in range(args.clips):
                at = clip * args.clip_hashes
                found += search(queries[at : at + args.clip_hashes])
            took = time.perf_counter() - started
            recall = np.mean([int(s) in f for s, f in zip(sources.tolist(), found, strict=True)])
            print(
                f"{count:11,d}  {name:44s} {built:8.1f} {args.clips / took:8.1f} "
                f"{1000 * took / len(queries):8.3f} {recall:7.4f} {memory(index) / 1e6:8.0f}",
                flush=True,
            )
            del index


if __name__ == "__main__":
    main()
