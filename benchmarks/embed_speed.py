"""Throughput of `python -m downstream.embed` on CPU: 1 process, then 2 processes under torchrun, side by side.

Writes a shard set of `--tracks` generated tracks of `--seconds` s (16 kHz noise) and a randomly initialised paper
ResNet export (`resnet`, width 16, 4 s windows; embedding time does not depend on the weights), then embeds the set
with one process and with two (each with one thread, OMP_NUM_THREADS=1), each into a fresh folder. Per process it
reports what the process itself measured (from its first track to its last part, start-up and model loading left
out): tracks/s and audio-hours/s, the latter also as audio-hours per core-hour (wall time x threads) and per
CPU-hour the process was actually given (its CPU time: on a loaded machine the two differ); per run the wall
time of the whole command and the speed-up of 2 processes over 1 (sum of the per-process rates, and the
wall-time ratio).

    .venv/bin/python -m benchmarks.embed_speed                   # table
    .venv/bin/python -m benchmarks.embed_speed --json            # machine-readable
    .venv/bin/python -m benchmarks.embed_speed --tracks 8 --seconds 8   # a quick check
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.harness import add_json_flag, print_json
from musicssl.trainer.export import BackboneRecipe, export_backbone
from tests.support.launching import free_port
from tests.support.shard_factory import write_shard_set

RATE = 16000
SUMMARY = re.compile(
    r"rank (\d+)/(\d+): (\d+) tracks in (\d+) parts, ([\d.]+) tracks/s, ([\d.]+) audio-hours/s, "
    r"(\d+) audio-hours per CPU-hour \((\d+) threads\)"
)


def make_inputs(work: Path, tracks: int, seconds: float) -> tuple[Path, Path]:
    """The generated shard set and the paper ResNet export."""
    rng = np.random.default_rng(0)
    pcm = [(rng.standard_normal(int(seconds * RATE)) * 3000).astype(np.int16) for _ in range(tracks)]
    write_shard_set(work / "shards", pcm, RATE, tracks_per_shard=8)
    torch.manual_seed(0)
    recipe = BackboneRecipe("resnet", {})
    backbone = export_backbone(recipe.build().eval(), recipe, work / "backbone.safetensors")
    return work / "shards", backbone


def run_embedding(processes: int, shards: Path, backbone: Path, out: Path, chunk: int, batch: int) -> dict[str, Any]:
    """Embed the set with `processes` processes; the per-process figures they print and the command's wall time."""
    flags = ["--backbone", str(backbone), "--data", str(shards), "--out", str(out), "--device", "cpu",
             "--chunk-tracks", str(chunk), "--batch-size", str(batch), "--no-progress"]  # fmt: skip
    module = ["-m", "musicssl.downstream.embed", *flags]
    if processes == 1:
        command = [sys.executable, *module]
    else:
        rendezvous = ["--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}"]
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(processes),
                   *rendezvous, *module]  # fmt: skip
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    ranks = []
    for match in SUMMARY.finditer(done.stdout):
        rank, _, tracks, parts, tracks_s, hours_s, per_cpu_hour, threads = match.groups()
        ranks.append({"rank": int(rank), "tracks": int(tracks), "parts": int(parts), "tracks_per_s": float(tracks_s),
                      "audio_hours_per_s": float(hours_s),
                      "audio_hours_per_core_hour": float(hours_s) * 3600 / int(threads),
                      "audio_hours_per_cpu_hour": int(per_cpu_hour), "threads": int(threads)})  # fmt: skip
    ranks.sort(key=lambda item: item["rank"])
    return {
        "processes": processes,
        "wall_s": wall,
        "per_process": ranks,
        "tracks_per_s": sum(r["tracks_per_s"] for r in ranks),
        "audio_hours_per_s": sum(r["audio_hours_per_s"] for r in ranks),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=32, help="generated tracks")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each track")
    parser.add_argument("--chunk-tracks", type=int, default=4, help="tracks per part")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    add_json_flag(parser)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="embed-speed-") as folder:
        work = Path(folder)
        shards, backbone = make_inputs(work, args.tracks, args.seconds)
        runs = [
            run_embedding(n, shards, backbone, work / f"out-{n}", args.chunk_tracks, args.batch_size) for n in (1, 2)
        ]
    one, two = runs
    result = {
        "command": [sys.executable, "-m", "benchmarks.embed_speed", *(sys.argv[1:] if argv is None else argv)],
        "cpus": os.cpu_count(),
        "tracks": args.tracks,
        "track_seconds": args.seconds,
        "backbone": "resnet (paper, width 16, 4 s windows), fp32",
        "runs": runs,
        "speedup_rate": two["audio_hours_per_s"] / one["audio_hours_per_s"],
        "speedup_wall": one["wall_s"] / two["wall_s"],
    }
    if args.json:
        print_json(result, indent=1)
        return 0
    for run in runs:
        for rank in run["per_process"]:
            print(f"{run['processes']} proc, rank {rank['rank']}: {rank['tracks']} tracks, "
                  f"{rank['tracks_per_s']:.2f} tracks/s, {rank['audio_hours_per_s']:.4f} audio-h/s "
                  f"= {rank['audio_hours_per_core_hour']:.0f} audio-h per core-hour of wall time, "
                  f"{rank['audio_hours_per_cpu_hour']} per CPU-hour used")  # fmt: skip
        print(f"{run['processes']} proc total: {run['audio_hours_per_s']:.4f} audio-h/s, wall {run['wall_s']:.1f} s")
    print(f"2 vs 1 process: x{result['speedup_rate']:.2f} (rates), x{result['speedup_wall']:.2f} (wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
