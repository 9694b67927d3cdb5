"""Speed of data_prep against plain PyAV decoding of the same files, and its scaling with --workers.

    python -m benchmarks.data_prep_speed [--tracks 6] [--seconds 240] [--json]

Generates its own 44.1 kHz tracks (synthetic music, mp3/flac/ogg) in a temporary folder, then measures:
- baseline: PyAV alone decoding, downmixing and resampling each file to 16 kHz (the least any pipeline does);
- data_prep with --workers 1 and 2 (decode + checks + normalise + hash + shard writing + report), wall time
  of the whole call, including the start-up of worker processes;
- the same with --layout logmel (uint8): the log-mel of every track computed in the decoding workers;
- what that costs per audio hour once started: the uint8 log-mel of the decoded tracks on one thread, and the
  one-off import of torch that each spawned worker of a log-mel run pays (PCM workers do not import it).
Overhead is data_prep (1 worker) time over baseline time, minus one; the goal is <= 20 %. The log-mel cost is
data_prep --layout logmel time over data_prep's, minus one, at the same workers, and at scale (start-up paid
once per worker) the log-mel seconds per audio hour over data_prep's seconds per audio hour per worker; the goal
is <= 25 %.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import av
import numpy as np

from benchmarks.harness import add_json_flag, best_seconds, print_json
from musicssl.data_prep.audio_files import write_audio
from musicssl.data_prep.synth import TrackRecipe, render
from musicssl.data_prep.track import PrepSettings

SOURCE_RATE = 44100
TARGET_RATE = 16000
FORMATS = (".mp3", ".flac", ".ogg")
SECONDS_PER_HOUR = 3600.0


def make_inputs(folder: Path, tracks: int, seconds: float) -> list[Path]:
    """Synthetic tracks rotating through the formats."""
    paths = []
    for i in range(tracks):
        recipe = TrackRecipe(80.0 + 12 * i, i % 12, ("major", "minor")[i % 2], "piano", bool(i % 2), 0, 0, seconds, i)
        paths.append(
            write_audio(folder / f"track{i}{FORMATS[i % len(FORMATS)]}", render(recipe, SOURCE_RATE), SOURCE_RATE)
        )
    return paths


def decode_only(path: Path) -> np.ndarray:
    """Decode one file with PyAV alone into a mono 16 kHz float32 array."""
    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE)
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray()[0] for f in resampler.resample(frame)]
        chunks += [f.to_ndarray()[0] for f in resampler.resample(None)]
    return np.concatenate(chunks)


def logmel_seconds(waves: list[np.ndarray]) -> float:
    """Seconds to compute the uint8 log-mel of the tracks on one thread, as a log-mel run's worker does."""
    import torch

    from musicssl.data_prep.pcm import float_to_pcm
    from musicssl.sharding.layout import Layout
    from musicssl.sharding.mel import MelSettings

    layout, threads = Layout.logmel("uint8", MelSettings(TARGET_RATE)), torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pcm = [float_to_pcm(wave) for wave in waves]
        return best_seconds(lambda: [layout.encode(track) for track in pcm], 2)
    finally:
        torch.set_num_threads(threads)


def torch_import_seconds() -> float:
    """Wall seconds of a fresh interpreter that imports torch and torchaudio, less one that imports nothing."""
    bare = best_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 2)
    full = best_seconds(lambda: subprocess.run([sys.executable, "-c", "import torch, torchaudio"], check=True), 2)
    return full - bare


def prepare_fresh(source: Path, scratch: Path, workers: int, tracks: int, logmel: bool = False) -> None:
    """data_prep into a new output folder (in the uint8 log-mel layout with `logmel`), checking every track made
    it."""
    from musicssl.sharding.build import prepare_shards  # here: spawned workers re-import this script, not torch
    from musicssl.sharding.layout import PCM_LAYOUT, Layout
    from musicssl.sharding.mel import MelSettings

    layout = Layout.logmel("uint8", MelSettings(TARGET_RATE)) if logmel else PCM_LAYOUT
    out = Path(tempfile.mkdtemp(dir=scratch, prefix=f"out{workers}-"))
    summary = prepare_shards(source, out, PrepSettings(), workers=workers, progress=False, layout=layout)
    if summary.statuses["ok"] != tracks:
        raise RuntimeError(f"benchmark inputs were not all prepared: {dict(summary.statuses)}")


def rates(files: int, audio_s: float, seconds: float, workers: int) -> dict[str, float]:
    """Throughput figures, total and per worker."""
    return {
        "seconds": round(seconds, 3),
        "files_per_s": round(files / seconds, 3),
        "audio_hours_per_s": round(audio_s / SECONDS_PER_HOUR / seconds, 4),
        "files_per_s_per_worker": round(files / seconds / workers, 3),
        "audio_hours_per_s_per_worker": round(audio_s / SECONDS_PER_HOUR / seconds / workers, 4),
    }


def run(tracks: int, seconds: float, repeats: int) -> dict[str, object]:
    """All measurements (best of `repeats` each, files already in the page cache), as one dictionary."""
    with tempfile.TemporaryDirectory(prefix="data_prep_speed_") as tmp:
        folder = Path(tmp)
        paths = make_inputs(folder / "in", tracks, seconds)
        waves = [decode_only(p) for p in paths]  # also warms the page cache
        audio_s = sum(len(wave) for wave in waves) / TARGET_RATE
        results: dict[str, object] = {"tracks": tracks, "track_seconds": seconds, "formats": list(FORMATS)}
        results["pyav_decode_only"] = rates(
            tracks, audio_s, best_seconds(lambda: [decode_only(p) for p in paths], repeats), 1
        )
        results["logmel_seconds_per_audio_hour"] = round(logmel_seconds(waves) / audio_s * SECONDS_PER_HOUR, 3)
        del waves
        for workers, logmel in ((1, False), (2, False), (1, True), (2, True)):
            prepare = partial(prepare_fresh, folder / "in", folder, workers, tracks, logmel)
            name = f"data_prep{'_logmel' * logmel}_workers_{workers}"
            results[name] = rates(tracks, audio_s, best_seconds(prepare, repeats), workers)
    seconds = {name: r["seconds"] for name, r in results.items() if isinstance(r, dict)}
    one, two = seconds["data_prep_workers_1"], seconds["data_prep_workers_2"]
    results["overhead_vs_pyav_1_worker"] = round(one / seconds["pyav_decode_only"] - 1, 3)
    results["speedup_2_workers"] = round(one / two, 3)
    results["torch_import_s"] = round(torch_import_seconds(), 2)
    per_hour = seconds["data_prep_workers_1"] / (audio_s / SECONDS_PER_HOUR)
    results["logmel_cost_at_scale"] = round(results["logmel_seconds_per_audio_hour"] / per_hour, 3)
    for workers in (1, 2):
        pcm = seconds[f"data_prep_workers_{workers}"]
        results[f"logmel_cost_workers_{workers}"] = round(seconds[f"data_prep_logmel_workers_{workers}"] / pcm - 1, 3)
    return results


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=6, help="number of generated tracks")
    parser.add_argument("--seconds", type=float, default=240.0, help="length of each track")
    parser.add_argument("--repeats", type=int, default=2, help="runs per measurement; the fastest counts")
    add_json_flag(parser)
    args = parser.parse_args()
    results = run(args.tracks, args.seconds, args.repeats)
    if args.json:
        print_json(results, indent=1)
        return
    print(f"{args.tracks} tracks x {args.seconds:g} s ({', '.join(FORMATS)}), 44.1 kHz -> 16 kHz mono")
    names = ("pyav_decode_only", "data_prep_workers_1", "data_prep_workers_2")
    for name in (*names, "data_prep_logmel_workers_1", "data_prep_logmel_workers_2"):
        r = results[name]
        print(
            f"{name:29s} {r['seconds']:7.2f} s  {r['files_per_s']:6.2f} files/s  "  # type: ignore[index]
            f"{r['audio_hours_per_s']:.4f} audio-h/s  per worker: {r['files_per_s_per_worker']:.2f} files/s, "  # type: ignore[index]
            f"{r['audio_hours_per_s_per_worker']:.4f} audio-h/s"  # type: ignore[index]
        )
    print(f"overhead vs PyAV alone (1 worker): {results['overhead_vs_pyav_1_worker']:+.1%}")
    print(f"speed-up with 2 workers: {results['speedup_2_workers']:.2f}x")
    for workers in (1, 2):
        print(f"log-mel (uint8) cost, {workers} worker(s): {results[f'logmel_cost_workers_{workers}']:+.1%}")
    print(
        f"log-mel on one thread: {results['logmel_seconds_per_audio_hour']:.2f} s per audio hour, "
        f"{results['logmel_cost_at_scale']:+.1%} of data_prep's time per audio hour per worker; importing torch "
        f"(once per spawned log-mel worker): {results['torch_import_s']:.2f} s"
    )


if __name__ == "__main__":
    main()
