"""The log-mel shard layout against PCM on the demo corpus: the same crops' mel, their embeddings, and a paired probe
comparison of a model pre-trained on each.

    .venv/bin/python -m benchmarks.mel_equivalence --work /tmp/meleq [--crops 256] [--seed 0] [--json]

1. Mel: random crops of the demo set, of the demo preset's length (2 s, 63 frames), starting on the 512-sample
   hop. The front end on the PCM crop (what a PCM run feeds the model) against the same frames read from the fp16
   and uint8 conversions, both floored per crop as the model floors them: max and mean |difference| in dB over
   the crop's inner frames and over its two edge frames (the PCM path pads each crop, the log-mel set holds the
   real neighbours).
2. Embeddings: the backbone pre-trained on PCM embeds each crop from its waveform and from its uint8 frames; the
   cosine of the two.
3. Probe: the demo preset's contrastive recipe trained on the PCM set and on its uint8 conversion with the same
   seed, probed (the Makefile's probe) on the same test tracks; the paired difference log-mel - PCM with its 95 %
   interval (`downstream.paired`, 1000 resamples). The layout holds when the interval contains 0 or lies above it.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import tyro

from benchmarks.harness import emit_report
from benchmarks.pretext_margins import METRICS, ensure_demo_corpus, probe, run_logged, train_command
from musicssl.data_prep.pcm import pcm_to_float
from musicssl.downstream.paired import PairedConfig, paired_bootstrap
from musicssl.sharding.convert import convert_set
from musicssl.sharding.format import ShardIndex
from musicssl.sharding.layout import MEL_ENCODINGS, Layout
from musicssl.sharding.mel import MelSettings
from musicssl.sharding.recover import read_samples
from musicssl.sharding.shard_set import ShardSet
from musicssl.trainer.export import load_backbone

PRETEXT = "contrastive"


@dataclass
class Args:
    """Benchmark settings."""

    work: Path = Path("/tmp/mel-equivalence")
    """Folder for the corpus, both sets, the runs and the MLflow store (kept; what exists is reused)."""
    crops: int = 256
    seed: int = 0
    paired_resamples: int = 1000
    json: bool = False


@dataclass
class MelDifference:
    """|log-mel set - front end on PCM| in dB after the per-crop floor, for one encoding."""

    encoding: str
    inner_max: float
    inner_mean: float
    edge_max: float
    edge_mean: float


@dataclass
class Report:
    crops: int
    mel: list[MelDifference] = field(default_factory=list)
    cosine_mean: float = 0.0
    cosine_min: float = 0.0
    train_seconds: dict[str, float] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    difference: dict[str, dict[str, float]] = field(default_factory=dict)


def stored_tracks(directory: Path) -> dict[str, np.ndarray]:
    """Every track's payload as stored (int16 samples, or (frames, n_mels) values) by key."""
    index = ShardIndex.load_local(directory)
    layout = index.layout
    return {
        sample["__key__"]: layout.decode(sample[layout.member])
        for info in index.shards
        for sample in read_samples(directory / info.name)
    }


def crop_starts(pcm: dict[str, np.ndarray], count: int, frames: int, hop: int, seed: int) -> list[tuple[str, int]]:
    """(track key, start frame) of `count` random crops of `frames` frames, inside their tracks."""
    rng = np.random.default_rng(seed)
    keys = sorted(pcm)
    chosen = rng.choice(keys, size=count)
    return [(key, int(rng.integers(0, len(pcm[key]) // hop - frames + 2))) for key in chosen]


def compare_crops(
    backbone: torch.nn.Module, pcm: dict[str, np.ndarray], mel: dict[str, dict[str, np.ndarray]], args: Args
) -> tuple[list[MelDifference], np.ndarray]:
    """The dB differences per encoding and the cosine of waveform and uint8 embeddings of the same crops."""
    frontend = backbone.mel_frontend
    frames, hop = frontend.num_frames(backbone.num_samples), frontend.hop_length
    starts = crop_starts(pcm, args.crops, frames, hop, args.seed)
    waves = torch.stack(
        [torch.from_numpy(pcm_to_float(pcm[key][s * hop : s * hop + backbone.num_samples])) for key, s in starts]
    )
    with torch.no_grad():
        reference = frontend(waves)
        differences, inputs = [], {}
        for encoding, tracks in mel.items():
            layout = Layout(MEL_ENCODINGS[encoding], frontend.settings)
            values = torch.from_numpy(np.stack([tracks[key][s : s + frames] for key, s in starts]))
            inputs[encoding] = layout.to_model_input(values)
            error = (frontend.forward_db(inputs[encoding]) - reference).abs()[:, 0]  # (N, n_mels, frames)
            inner, edges = error[..., 1:-1], error[..., [0, -1]]
            differences.append(
                MelDifference(
                    encoding, float(inner.max()), float(inner.mean()), float(edges.max()), float(edges.mean())
                )
            )
        cosine = torch.nn.functional.cosine_similarity(backbone(waves), backbone(inputs["uint8"]), dim=1)
    return differences, cosine.numpy()


def run(args: Args) -> Report:
    """Build the sets, train on each, then measure."""
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    shards = ensure_demo_corpus(work, "")
    sample_rate = ShardSet.open(shards).sample_rate
    sets = {"pcm": shards}
    for encoding in MEL_ENCODINGS:
        sets[encoding] = work / f"shards-logmel-{encoding}"
        if not (sets[encoding] / "index.json").exists():
            layout = Layout.logmel(encoding, MelSettings(sample_rate))
            convert_set(ShardSet.open(shards), sets[encoding], layout, progress=False)
    report = Report(args.crops)
    results = {}
    for name in ("pcm", "uint8"):
        output = work / f"run-{name}"
        if not (output / "backbone.safetensors").exists():
            train = train_command("demo", PRETEXT, sets[name], args.seed, output, "--monitor.data None")
            started = time.perf_counter()
            run_logged(train, work, work / f"train-{name}.log")
            report.train_seconds[name] = round(time.perf_counter() - started, 1)
        results[name] = probe(work, shards, output / "backbone.safetensors", PRETEXT, args.seed, random_init=False)
        report.scores[name] = {m: round(results[name].full_test.values()[m], 2) for m in METRICS}
    paired = paired_bootstrap(
        results["uint8"].predictions,
        results["pcm"].predictions,
        PairedConfig(num_resamples=args.paired_resamples),
        METRICS,
    )
    report.difference = {
        m: {key: round(value, 4) for key, value in asdict(d).items() if isinstance(value, float)}
        for m, d in paired.items()
    }
    backbone, _ = load_backbone(work / "run-pcm" / "backbone.safetensors")
    pcm = stored_tracks(shards)
    mel = {encoding: stored_tracks(sets[encoding]) for encoding in MEL_ENCODINGS}
    report.mel, cosine = compare_crops(backbone.eval(), pcm, mel, args)
    report.cosine_mean, report.cosine_min = float(cosine.mean()), float(cosine.min())
    return report


def print_report(report: Report) -> None:
    print(f"{report.crops} random crops; |log-mel set - front end on the PCM crop| in dB after the per-crop floor")
    print("encoding  inner max  inner mean  edge max  edge mean")
    for d in report.mel:
        print(f"{d.encoding:<9} {d.inner_max:9.4f} {d.inner_mean:11.5f} {d.edge_max:9.2f} {d.edge_mean:10.3f}")
    print(f"embedding cosine, waveform vs uint8 frames: mean {report.cosine_mean:.5f}, min {report.cosine_min:.5f}")
    print(f"training seconds: {report.train_seconds}")
    for metric in METRICS:
        d = report.difference[metric]
        scores = f"uint8 {report.scores['uint8'][metric]:.2f}, PCM {report.scores['pcm'][metric]:.2f}"
        print(f"{metric}: {scores}, log-mel - PCM {d['observed']:+.2f} ({d['low']:+.2f}..{d['high']:+.2f})")


def main() -> None:
    args = tyro.cli(Args)
    emit_report(run(args), args.json, print_report)


if __name__ == "__main__":
    main()
