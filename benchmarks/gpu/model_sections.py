"""The suite's model sections: the paper step per pretext and format (eager, compiled), its peak memory,
and the SampleCNN thesis presets with the augmentation chain."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from benchmarks.gpu.measure import (
    TrainingStep,
    cuda_context_gib,
    peak_memory_gib,
    release_memory,
    reset_peak_memory,
    synchronize,
    time_training_step,
)
from benchmarks.gpu.sizes import (
    CARD_GIB,
    FORMATS,
    Run,
)
from benchmarks.step_timing import median_step_seconds
from musicssl.trainer.cli import parse_config


def dynamo_counts() -> tuple[int, int]:
    """Graphs Dynamo compiled and graph breaks it met in this process so far (is a compiled row really compiled,
    and in how many pieces)."""
    counters = torch._dynamo.utils.counters
    return int(counters["stats"]["unique_graphs"]), sum(counters["graph_break"].values())


def step_section(run: Run) -> dict[str, Any]:
    """Paper ResNet step for each pretext x memory format, eager then compiled (the faster format first)."""
    sizes, base = run.sizes, run.paper()
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    cost: dict[bool, float] = {}

    def measure(pretext: str, memory_format: str, compiled: bool) -> None:
        setting = {"pretext": pretext, "memory_format": memory_format, "compiled": compiled}
        if not run.budget.allows(cost.get(compiled, 0.0)):
            skipped.append({**setting, "reason": "time budget spent"})
            return
        start, (graphs, breaks) = time.perf_counter(), dynamo_counts()
        step = TrainingStep(
            dataclasses.replace(base, pretext=pretext),
            run.device,
            sizes.precision,
            channels_last=memory_format == "channels_last",
            compile_backend=sizes.compile_backend if compiled else None,
        )
        row = {**setting, **time_training_step(step, sizes.warmup_steps, sizes.timed_steps)}
        if compiled:
            row["compile_s"] = row["first_step_s"] - row["seconds_per_step"]
            graphs_now, breaks_now = dynamo_counts()
            row |= {"graphs_compiled": graphs_now - graphs, "graph_breaks": breaks_now - breaks}
        del step
        release_memory(compiled)
        rows.append(row)
        cost[compiled] = time.perf_counter() - start
        run.log(f"{pretext} {memory_format} compiled={compiled}: {row['pairs_per_s']:.0f} pairs/s")

    for memory_format in FORMATS:
        for pretext in sizes.pretexts:
            measure(pretext, memory_format, compiled=False)
    for memory_format in formats_by_speed(rows)[: sizes.compile_formats]:
        for pretext in sizes.compile_pretexts:
            measure(pretext, memory_format, compiled=True)
    return {
        "precision": sizes.precision,
        "pairs": base.batch_size,
        "compile_backend": sizes.compile_backend,
        "rows": rows,
        "skipped": skipped,
        "best": best_settings(rows),
    }


def formats_by_speed(rows: list[dict[str, Any]]) -> list[str]:
    """Memory formats, the one with the higher summed eager pairs/s first."""
    speed = {fmt: sum(r["pairs_per_s"] for r in rows if r["memory_format"] == fmt) for fmt in FORMATS}
    return sorted(FORMATS, key=lambda fmt: -speed[fmt])


def best_settings(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per pretext, the fastest setting measured and its speed-up over today's default (contiguous, eager)."""
    best = {}
    for pretext in dict.fromkeys(r["pretext"] for r in rows):
        own = [r for r in rows if r["pretext"] == pretext]
        fastest = max(own, key=lambda r: r["pairs_per_s"])
        default = next(r for r in own if r["memory_format"] == "contiguous" and not r["compiled"])
        best[pretext] = {
            "memory_format": fastest["memory_format"],
            "compiled": fastest["compiled"],
            "pairs_per_s": fastest["pairs_per_s"],
            "speedup_over_default": fastest["pairs_per_s"] / default["pairs_per_s"],
        }
    return best


def memory_section(run: Run) -> dict[str, Any]:
    """Peak memory of the paper step per pretext in bf16 and in fp16 with loss scaling (a TITAN X has no bf16)."""
    base, rows, skipped = run.paper(), [], []
    for pretext in run.sizes.memory_pretexts:
        for precision in ("bf16", "fp16"):
            if not run.budget.allows():
                skipped.append({"pretext": pretext, "precision": precision, "reason": "time budget spent"})
                continue
            step = TrainingStep(dataclasses.replace(base, pretext=pretext), run.device, precision)
            reset_peak_memory(run.device)
            start = time.perf_counter()
            for _ in range(run.sizes.memory_steps):
                step()
            synchronize(run.device)
            rows.append(
                {
                    "pretext": pretext,
                    "precision": precision,
                    "seconds_per_step": (time.perf_counter() - start) / run.sizes.memory_steps,
                    "peak_allocated_gib": peak_memory_gib(run.device),
                    "peak_reserved_gib": peak_memory_gib(run.device, reserved=True),
                    "loss_scale": None if step.scaler is None else step.scaler.get_scale(),
                }
            )
            del step
            release_memory()
            run.log(f"{pretext} {precision}: peak {rows[-1]['peak_allocated_gib']} GiB")
    context = cuda_context_gib(run.device)
    for row in rows:
        peak = row["peak_allocated_gib"]
        row[f"fits_{CARD_GIB:g}_gib"] = None if peak is None or context is None else peak + context <= CARD_GIB
    return {
        "pairs": base.batch_size,
        "card_gib": CARD_GIB,
        "cuda_context_gib": context,
        "note": None if context is not None else "peak memory is read from the CUDA allocator: none on this device",
        "rows": rows,
        "skipped": skipped,
    }


def samplecnn_section(run: Run) -> dict[str, Any]:
    """Thesis presets on SampleCNN with the augmentation chain on the device: pairs/s, chain share, peak memory."""
    rows, skipped = [], []
    for preset, flags in run.sizes.samplecnn:
        if not run.budget.allows():
            skipped.append({"preset": preset, "reason": "time budget spent"})
            continue
        # synthetic pairs have no tracks to count an epoch of one pass over: a fixed one (it only places schedules)
        config = parse_config(["--preset", preset, "--steps-per-epoch", "1", *flags])[0]
        step = TrainingStep(config, run.device, run.sizes.precision)
        timing = time_training_step(step, run.sizes.warmup_steps, run.sizes.timed_steps)
        augment_s = median_step_seconds(step.views, run.sizes.timed_steps, run.device)
        rows.append(
            {
                "preset": preset,
                "pretext": config.pretext,
                "pairs": config.batch_size,
                "projector": list(config.pretext_config.projector_widths),
                "views": config.pairs.views,
                **timing,
                "augment_s": augment_s,
                "augment_share": augment_s / timing["seconds_per_step"],
            }
        )
        del step
        release_memory()
        run.log(f"{preset}: {rows[-1]['pairs_per_s']:.1f} pairs/s, chain {rows[-1]['augment_share']:.1%} of a step")
    return {"precision": run.sizes.precision, "rows": rows, "skipped": skipped}
