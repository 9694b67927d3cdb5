"""Similarity search (`downstream.neighbour_index`): build time, queries/s and recall@10 of HNSW against exact search.

For each size, synthetic track embeddings (`--dim`, default 512): `--clusters` Gaussian centres, each track its
centre plus a shared 16-d low-rank variation and a little isotropic noise, so that near neighbours share a
cluster but are not trivially its centre; cosine (unit rows). Queries are fresh draws from the same distribution.
Per size: the exact index (IndexFlatIP) and the HNSW graph (`HnswSettings`: M, efConstruction) are built with the
project's `build_index`; each answers the batch of `--queries` queries at once (queries/s) and 50 one at a time
(single-query latency); HNSW at every `--ef-search`, with recall@10 = the share of the exact top 10 it returns.
Index size is the size of the written index file. faiss runs on OMP_NUM_THREADS threads.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.neighbours_speed                 # 100k and 1M, 512-d
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.neighbours_speed --sizes 100000 --dim 1024 --json
    .venv/bin/python -m benchmarks.neighbours_speed --small                           # a quick check
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from benchmarks.harness import add_json_flag, print_json, print_table, timed
from musicssl.downstream.neighbour_index import HnswSettings, build_index, prepare, search, write_faiss

K = 10
SINGLE_QUERIES = 50
LATENT_DIM = 16
CHUNK = 100_000


def embeddings(rows: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    """Unit rows: a cluster centre + a shared low-rank variation + isotropic noise (generated in chunks)."""
    rng = np.random.default_rng(0)  # the same centres and variation for the tracks and the queries
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    variation = 0.5 * rng.standard_normal((LATENT_DIM, dim), dtype=np.float32)
    draws = np.random.default_rng(seed)
    out = np.empty((rows, dim), dtype=np.float32)
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        chunk = centres[draws.integers(0, clusters, n)] + draws.standard_normal((n, LATENT_DIM), np.float32) @ variation
        chunk += 0.3 * draws.standard_normal((n, dim), dtype=np.float32)
        out[start : start + n] = chunk
    return prepare(out, "cosine")


def measure(index: faiss.Index, queries: np.ndarray, ef_search: int | None) -> tuple[np.ndarray, dict[str, float]]:
    """The batch's top-K rows, its queries/s, and the single-query latency."""
    (rows, _), seconds = timed(lambda: search(index, queries, K, ef_search))
    start = time.perf_counter()
    for query in queries[:SINGLE_QUERIES]:
        search(index, query[None], K, ef_search)
    single_ms = 1000 * (time.perf_counter() - start) / min(SINGLE_QUERIES, len(queries))
    return rows, {"queries_per_s": len(queries) / seconds, "single_query_ms": single_ms}


def file_size(index: faiss.Index) -> int:
    """Bytes of the index as `downstream.neighbours build` writes it."""
    with tempfile.TemporaryDirectory(prefix="neighbours-speed-") as folder:
        path = Path(folder) / "index.faiss"
        write_faiss(index, path)
        return path.stat().st_size


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each query's exact top K among the found ones."""
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(found, exact, strict=True)]))


def run_size(size: int, args: argparse.Namespace, hnsw: HnswSettings) -> dict[str, Any]:
    """Both indexes of one size: build seconds, index bytes, queries/s, latency, recall@10."""
    vectors = embeddings(size, args.dim, args.clusters, seed=1)
    queries = embeddings(args.queries, args.dim, args.clusters, seed=2)
    (exact, _), exact_build = timed(lambda: build_index(vectors, exact_below=size + 1, progress=False))
    exact_rows, exact_speed = measure(exact, queries, None)
    result: dict[str, Any] = {
        "tracks": size,
        "exact": {"build_s": exact_build, "index_bytes": file_size(exact), **exact_speed},
    }
    del exact
    (graph, _), graph_build = timed(lambda: build_index(vectors, exact_below=0, hnsw=hnsw, progress=False))
    result["hnsw"] = {"build_s": graph_build, "index_bytes": file_size(graph), "searches": []}
    for ef in args.ef_search:
        rows, speed = measure(graph, queries, ef)
        result["hnsw"]["searches"].append({"ef_search": ef, "recall_at_10": recall(rows, exact_rows), **speed})
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000], help="tracks per index")
    parser.add_argument("--dim", type=int, default=512, help="embedding size (the paper ResNet's is 1024)")
    parser.add_argument("--clusters", type=int, default=1000, help="Gaussian cluster centres")
    parser.add_argument("--queries", type=int, default=1000, help="queries in the timed batch")
    parser.add_argument("--ef-search", type=int, nargs="+", default=[64, 128, 256], help="HNSW search widths")
    parser.add_argument("--small", action="store_true", help="a quick check: 2,000 32-d tracks, 50 queries")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    if args.small:
        args.sizes, args.dim, args.clusters, args.queries = [2000], 32, 20, 50
    hnsw = HnswSettings()
    result = {
        "command": [sys.executable, "-m", "benchmarks.neighbours_speed", *(sys.argv[1:] if argv is None else argv)],
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "faiss_threads": faiss.omp_get_max_threads(),
        "faiss_version": faiss.__version__,
        "dim": args.dim,
        "clusters": args.clusters,
        "queries": args.queries,
        "hnsw": asdict(hnsw),
        "sizes": [run_size(size, args, hnsw) for size in args.sizes],
    }
    if args.json:
        print_json(result, indent=1)
        return 0
    print(f"{args.dim}-d, {args.clusters} clusters, batch of {args.queries} queries, {result['faiss_threads']} "
          f"faiss threads, HNSW M={hnsw.m} efConstruction={hnsw.ef_construction}")  # fmt: skip
    rows = []
    for size in result["sizes"]:
        exact = size["exact"]
        rows.append([size["tracks"], "exact", exact["build_s"], exact["index_bytes"] / 2**20, exact["queries_per_s"],
                     exact["single_query_ms"], 1.0])  # fmt: skip
        for found in size["hnsw"]["searches"]:
            rows.append([size["tracks"], f"hnsw ef {found['ef_search']}", size["hnsw"]["build_s"],
                         size["hnsw"]["index_bytes"] / 2**20, found["queries_per_s"], found["single_query_ms"],
                         found["recall_at_10"]])  # fmt: skip
    header = ("tracks", "index", "build s", "MiB", "queries/s", "1 query ms", "recall@10")
    print_table(header, rows, (">9,", ">13", ">9.1f", ">8,.0f", ">10,.0f", ">11.2f", ">10.3f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
