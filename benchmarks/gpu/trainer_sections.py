"""The suite's Trainer sections: the loader at several worker counts, both readers and both layouts, host syncs
per step, and DeepSpeed ZeRO-2 through `accelerate launch`."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.gpu.measure import (
    ROOT,
    measure_run,
    release_memory,
    write_generated_shards,
)
from benchmarks.gpu.sizes import (
    PAPER_RATE,
    THESIS_RATE,
    Run,
)
from musicssl.sharding.convert import convert_set
from musicssl.sharding.layout import MEL_ENCODINGS, Layout
from musicssl.sharding.mel import MelSettings
from musicssl.sharding.shard_set import ShardSet

READERS = ("stream", "random_access")  # both pair readers, side by side
SOURCES = (("pcm_s16le", "stream"), ("pcm_s16le", "random_access"), ("logmel_f16", "random_access"))
SOURCES += (("logmel_u8", "random_access"),)  # the stream reads PCM only
"""(layout, reader) pairs the loader section trains from, on the same generated tracks."""


def loader_section(run: Run) -> dict[str, Any]:
    """The Trainer on generated shards, as PCM and converted to both log-mel encodings, with each worker count and
    reader: does the loader keep the GPU busy, and how much does the layout change that?"""
    sizes = run.sizes
    shards = {"pcm_s16le": run.work / "loader-shards"}
    data = write_generated_shards(
        shards["pcm_s16le"], sizes.loader_tracks, sizes.loader_track_seconds, PAPER_RATE, sizes.loader_shard_bytes
    )
    run.log(f"wrote {data['tracks']} tracks, {data['gib']:.2f} GiB in {data['shards']} shards")
    for encoding, name in MEL_ENCODINGS.items():
        shards[name] = run.work / f"loader-shards-{name}"
        started = time.perf_counter()
        layout = Layout.logmel(encoding, MelSettings(PAPER_RATE))
        convert_set(ShardSet.open(shards["pcm_s16le"]), shards[name], layout, progress=False)
        data[f"convert_{name}_s"] = round(time.perf_counter() - started, 1)
        run.log(f"converted to {name} in {data[f'convert_{name}_s']} s")
    rows, skipped, cost = [], [], 0.0
    for workers in sizes.loader_workers:
        for layout_name, reader in SOURCES:
            row = {"layout": layout_name, "reader": reader, "workers": workers}
            if not run.budget.allows(cost):
                skipped.append({**row, "reason": "time budget spent"})
                continue
            start = time.perf_counter()
            flags = ["--pairs.num-workers", str(workers), "--pairs.reader", reader]
            config = run.paper(*run.trainer_flags(str(shards[layout_name]), sizes.loader_steps), *flags)
            rows.append({**row, **measure_run(config, sizes.skip_steps)})
            release_memory()
            cost = time.perf_counter() - start
            run.log(f"{layout_name}, {reader}, {workers} workers: {rows[-1]['pairs_per_s']:.0f} pairs/s")
    return {"data": data, "readers": list(READERS), "rows": rows, "skipped": skipped}


def sync_section(run: Run) -> dict[str, Any]:
    """Host synchronisations in each step of the Trainer on the paper preset (the loop promises one per step)."""
    config = run.paper(*run.trainer_flags(run.small_shards(PAPER_RATE), run.sizes.sync_steps))
    cuda = run.device.type == "cuda"
    result = measure_run(config, skip=1, count_syncs=cuda)
    if not cuda:
        result["syncs"] = {"skipped": "torch.cuda.set_sync_debug_mode needs a CUDA device"}
    return {"mode": "warn", "log_every": config.log_every, **result}


def launcher_unavailable(launcher: str, device: torch.device) -> str | None:
    """Why `launcher` cannot run here, or None."""
    if launcher != "deepspeed_zero2":
        return None
    if importlib.util.find_spec("deepspeed") is None:
        return "DeepSpeed is not installed: carry its wheel (make gpu-wheels) or pip install -e '.[deepspeed]'"
    if device.type != "cuda":
        return "DeepSpeed ZeRO-2 needs a CUDA device"
    return None


def deepspeed_section(run: Run) -> dict[str, Any]:
    """The thesis VICReg preset through `accelerate launch` under each launcher config, one process."""
    sizes = run.sizes
    rows, skipped, cost = [], [], 0.0
    for launcher in sizes.deepspeed_launchers:
        reason = launcher_unavailable(launcher, run.device)
        if reason is None and not run.budget.allows(cost):
            reason = "time budget spent"
        if reason is not None:
            skipped.append({"launcher": launcher, "reason": reason})
            continue
        start = time.perf_counter()
        data = run.small_shards(THESIS_RATE)
        flags = ["--preset", "thesis-vicreg", *run.trainer_flags(data, sizes.deepspeed_steps), *sizes.deepspeed_flags]
        try:
            rows.append({"launcher": launcher, **launch_worker(launcher, flags, sizes.skip_steps, run)})
            run.log(f"{launcher}: {rows[-1]['pairs_per_s']:.1f} pairs/s")
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            skipped.append({"launcher": launcher, "reason": f"failed: {error}"})
            run.log(f"{launcher} failed: {error}")
        cost = time.perf_counter() - start
    return {"preset": "thesis-vicreg", "processes": 1, "rows": rows, "skipped": skipped}


def launch_worker(launcher: str, flags: list[str], skip: int, run: Run) -> dict[str, Any]:
    """`accelerate launch` this script as a training worker with configs/accelerate/<launcher>.yaml; its figures."""
    result = Path(tempfile.mkdtemp(dir=run.work, prefix="worker-")) / "result.json"
    config = ROOT / "configs" / "accelerate" / f"{launcher}.yaml"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config)]
    command += [
        "--num_processes",
        "1",
        "--module",
        "benchmarks.gpu_suite",
        "--train-worker",
        str(result),
        "--skip-steps",
        str(skip),
        "--",
    ]
    timeout = max(run.budget.seconds - run.budget.elapsed(), 0) + 120
    done = subprocess.run([*command, *flags], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if done.returncode or not result.exists():
        raise RuntimeError(f"exit status {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
    return json.loads(result.read_text())
