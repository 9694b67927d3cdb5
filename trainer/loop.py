"""The pre-training loop: Accelerate (DDP, mixed precision, accumulation), safe checkpoints, MLflow."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm

from sharding.location import load_index
from sharding.stream import PairStreamConfig, pair_loader
from trainer.augment import AugmentationChain, make_views
from trainer.checkpoints import CheckpointPolicy, latest_checkpoint, save_checkpoint
from trainer.config import TrainConfig
from trainer.demo_data import ensure_demo_shards
from trainer.diagnostics import collapse_metrics
from trainer.distributed import convert_sync_batchnorm
from trainer.export import RECIPE_NAME, BackboneRecipe, export_backbone
from trainer.optim import build_optimizer
from trainer.preemption import StopRequest
from trainer.pretexts import Pretext, build_pretext
from trainer.schedules import WarmupCosine
from trainer.tracking import RunTracker

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"  # the run's full configuration, in every checkpoint
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: stopped on request with a checkpoint; run the same command again to resume


@dataclass
class LoopState:
    """Position of the loop, saved in every checkpoint."""

    step: int = 0
    mlflow_run_id: str | None = None
    nonfinite_skipped: int = 0
    view_rng: torch.Tensor | None = None

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


class TeacherState:
    """The part of a pretext outside the student (EMA teacher, DINO center) as a checkpointable object."""

    def __init__(self, pretext: Pretext) -> None:
        self.pretext = pretext

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.pretext.state_dict().items() if not k.startswith("student.")}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        result = self.pretext.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("student.")]
        if missing or result.unexpected_keys:
            raise RuntimeError(
                f"checkpoint does not match the {self.pretext.name} pretext: missing {missing}, "
                f"unexpected {result.unexpected_keys}"
            )


class StepHook(Protocol):
    """Work the entry point adds to the loop, run on rank 0 (e.g. downstream.monitor.QuickProbeHook)."""

    def due(self, step: int) -> bool: ...

    def __call__(self, step: int, backbone: torch.nn.Module) -> dict[str, float]: ...


HookFactory = Callable[[torch.nn.Module], StepHook]
"""Builds a hook once the data and the backbone exist (it may need the backbone's window and sample rate)."""


@dataclass
class TrainResult:
    """What a call to `train` did: its last step, the loss of each step it ran, and why it stopped."""

    step: int
    losses: list[float]
    preempted: bool
    output_dir: Path
    backbone_path: Path | None


def make_accelerator(config: TrainConfig) -> Accelerator:
    """Mixed precision per the config: bf16 where the GPU has it, fp16 with loss scaling on older GPUs."""
    precision = config.precision
    if precision == "auto":
        if not torch.cuda.is_available():
            precision = "no"
        else:
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return Accelerator(mixed_precision=precision, gradient_accumulation_steps=config.grad_accum)


def micro_batch_size(config: TrainConfig, processes: int) -> int:
    """Pairs each process sees per forward; the global batch must split evenly."""
    parts = processes * config.grad_accum
    if config.batch_size % parts:
        raise ValueError(
            f"--batch-size {config.batch_size} does not split over {processes} processes x "
            f"{config.grad_accum} accumulation steps; use a multiple of {parts}"
        )
    return config.batch_size // parts


def backbone_recipe(config: TrainConfig) -> BackboneRecipe:
    """How to build the configured backbone (the ResNet's input length is the crop length)."""
    model = config.model
    if model.backbone == "resnet":
        kwargs = {"f_max": model.f_max, "width": model.width, "duration_s": config.data.crop_seconds}
        return BackboneRecipe("resnet", kwargs)
    return BackboneRecipe("samplecnn", {"embed_dim": model.embed_dim})


class PairBatches:
    """Micro-batches of pairs in a fixed order per epoch: a resumed run sees the data it would have seen."""

    def __init__(
        self, location: str, config: TrainConfig, crop_samples: int, micro_batch: int, rank: int, world: int
    ):
        self.location, self.config, self.rank, self.world = location, config, rank, world
        self.crop_samples, self.micro_batch = crop_samples, micro_batch
        self.per_epoch = config.steps_per_epoch * config.grad_accum

    def from_step(self, step: int) -> Iterator[torch.Tensor]:
        """Micro-batches from optimiser step `step` on, across epochs."""
        epoch, offset = divmod(step, self.config.steps_per_epoch)
        skip = offset * self.config.grad_accum
        while True:
            batches = self._epoch(epoch)
            for index, batch in enumerate(batches):
                if index >= skip:
                    yield batch
            epoch, skip = epoch + 1, 0

    def _epoch(self, epoch: int) -> Iterator[torch.Tensor]:
        data = self.config.data
        stream = PairStreamConfig(
            crop_samples=self.crop_samples,
            min_gap_seconds=data.min_gap_seconds,
            max_gap_seconds=data.max_gap_seconds,
            pairs_per_track=data.pairs_per_track,
            batch_size=self.micro_batch,
            track_shuffle=data.track_shuffle,
            pair_shuffle=data.pair_shuffle,
            num_workers=data.num_workers,
            seed=self.config.seed * 1_000_003 + epoch,
            batches_per_epoch=self.per_epoch,
        )
        return iter(pair_loader(self.location, stream, rank=self.rank, world_size=self.world))


def zero_loss(module: torch.nn.Module) -> torch.Tensor:
    """A zero loss touching every parameter: backward through it keeps DDP's gradient all-reduce in step."""
    return sum((p.sum() * 0.0 for p in module.parameters() if p.requires_grad), torch.zeros(()))


def all_finite(accelerator: Accelerator, loss: torch.Tensor) -> bool:
    """Whether the loss is finite on every rank (all ranks skip together, so DDP stays in step)."""
    flag = torch.isfinite(loss.detach()).float().reshape(1)
    if accelerator.num_processes > 1:
        flag = accelerator.reduce(flag, reduction="sum") / accelerator.num_processes
    return bool(flag.item() == 1.0)


def train(
    config: TrainConfig, stop_after_steps: int | None = None, hook_factories: Sequence[HookFactory] = ()
) -> TrainResult:
    """Run or resume a pre-training; `stop_after_steps` stops early with a checkpoint, like a pre-emption."""
    accelerator = make_accelerator(config)
    set_seed(config.seed)
    output_dir = Path(config.resolved_output_dir())
    checkpoint_dir = output_dir / "checkpoints"
    recipe = backbone_recipe(config)
    name = recipe.name
    backbone = recipe.build()
    location = config.data.data or ensure_demo_shards(accelerator, backbone.sample_rate)
    index = load_index(location)
    if backbone.sample_rate != index.sample_rate:
        raise ValueError(
            f"{location}: shards are at {index.sample_rate} Hz but the {name} backbone expects "
            f"{backbone.sample_rate} Hz; prepare the data with `python -m data_prep ... --sample-rate "
            f"{backbone.sample_rate}`"
        )
    crop_samples = backbone.num_samples
    pretext = build_pretext(config.pretext, backbone, config.pretext_config)
    if accelerator.num_processes > 1 and accelerator.device.type == "cuda":
        pretext = convert_sync_batchnorm(pretext)  # teachers too, so their BatchNorm sees the global batch
    pretext.to(accelerator.device)

    optimizer = build_optimizer(
        pretext.student,
        config.optim.optimizer,
        base_lr=config.optim.base_lr,
        weight_decay=config.optim.weight_decay,
        batch_size=config.batch_size,
    )
    peak_lr = optimizer.param_groups[0]["lr"]
    lr_schedule = WarmupCosine(
        peak=peak_lr,
        total_steps=config.total_steps,
        warmup_steps=min(config.optim.warmup_steps, config.total_steps),
        final=peak_lr * config.optim.final_lr_ratio,
    )
    student, optimizer = accelerator.prepare(pretext.student, optimizer)
    chain = None
    if config.data.views != "temporal":
        augment = dataclasses.replace(
            config.augment, sample_rate=backbone.sample_rate, crop_samples=crop_samples
        )
        chain = AugmentationChain(augment)
    view_rng = torch.Generator(device=accelerator.device).manual_seed(config.seed + accelerator.process_index)

    state = LoopState()
    config_json = json.dumps(dataclasses.asdict(config), indent=1)
    accelerator.register_for_checkpointing(state, TeacherState(pretext), lr_schedule)
    resume_from = latest_checkpoint(checkpoint_dir)
    if resume_from is not None:
        saved_config = json.loads((resume_from / CONFIG_NAME).read_text())
        check_same_run(saved_config, json.loads(config_json), resume_from)
        accelerator.load_state(str(resume_from))
        if state.view_rng is not None:
            view_rng.set_state(state.view_rng)
        accelerator.print(f"resuming from {resume_from} at step {state.step}")

    tracker = RunTracker(enabled=config.mlflow and accelerator.is_main_process)
    tracker.start(
        experiment=config.study,
        run_name=config.run_name or f"{config.pretext}-{name}",
        params=dataclasses.asdict(config),
        run_id=state.mlflow_run_id,
    )
    state.mlflow_run_id = tracker.run_id

    micro_batch = micro_batch_size(config, accelerator.num_processes)
    batches = PairBatches(
        location, config, crop_samples, micro_batch, accelerator.process_index, accelerator.num_processes
    ).from_step(state.step)
    policy = CheckpointPolicy(
        keep_last=config.checkpoint.keep_last,
        keep_steps=frozenset(config.checkpoint.keep_steps)
        | frozenset(e * config.steps_per_epoch for e in config.checkpoint.keep_epochs),
    )

    def checkpoint() -> None:
        state.view_rng = view_rng.get_state()
        extra_files = {RECIPE_NAME: recipe.to_json(), CONFIG_NAME: config_json}
        save_checkpoint(accelerator, checkpoint_dir, state.step, policy, extra_files)

    hooks = [make(backbone) for make in hook_factories] if accelerator.is_main_process else []
    stop = StopRequest()
    losses: list[float] = []
    consecutive_nonfinite = 0
    first_step = state.step
    progress = tqdm(
        total=config.total_steps,
        initial=state.step,
        desc=f"{config.pretext}",
        disable=not accelerator.is_main_process,
        dynamic_ncols=True,
    )
    started = time.perf_counter()
    preempted = False
    student.train()
    try:
        while state.step < config.total_steps:
            step_ok = True
            for _ in range(config.grad_accum):
                pairs = next(batches).to(accelerator.device, non_blocking=True)
                views = make_views(pairs, config.data.views, chain, view_rng)
                with accelerator.accumulate(student):
                    with accelerator.autocast():
                        out = pretext.compute_loss(views, student)
                    finite = all_finite(accelerator, out.loss)
                    step_ok &= finite
                    accelerator.backward(out.loss if finite else zero_loss(student).to(out.loss.device))
                    if accelerator.sync_gradients:
                        if step_ok:
                            if config.optim.grad_clip is not None:
                                accelerator.clip_grad_norm_(student.parameters(), config.optim.grad_clip)
                            lr = lr_schedule.value_at(state.step)
                            for group in optimizer.param_groups:
                                group["lr"] = lr * group.get("lr_scale", 1.0)
                            optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
            if step_ok:
                consecutive_nonfinite = 0
                pretext.after_optimizer_step(state.step, config.total_steps)
            else:
                consecutive_nonfinite += 1
                state.nonfinite_skipped += 1
                if consecutive_nonfinite >= config.max_nonfinite:
                    raise FloatingPointError(
                        f"{consecutive_nonfinite} consecutive non-finite losses at step {state.step}: lower "
                        "--optim.base-lr, set --optim.grad-clip, or use --precision no to rule out overflow"
                    )
            state.step += 1
            lr_schedule.position = state.step
            loss_value = float(out.loss.detach()) if finite else math.nan
            losses.append(loss_value)
            progress.update(1)

            if state.step % config.log_every == 0 or state.step == config.total_steps:
                elapsed = time.perf_counter() - started
                pairs_per_s = (state.step - first_step) * config.batch_size / max(elapsed, 1e-9)
                metrics = {f"loss/{k}": float(v) for k, v in out.terms.items()}
                metrics |= {
                    "loss": loss_value,
                    "lr": lr_schedule.value_at(state.step),
                    "pairs_per_s": pairs_per_s,
                }
                metrics["nonfinite_skipped"] = float(state.nonfinite_skipped)
                if torch.cuda.is_available():
                    metrics["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
                progress.set_postfix(
                    loss=f"{loss_value:.4f}",
                    lr=f"{metrics['lr']:.2e}",
                    pairs_s=f"{pairs_per_s:.0f}",
                    refresh=False,
                )
                tracker.log_metrics(metrics, step=state.step)
            if state.step % config.diagnostics_every == 0:
                diagnostics = collapse_metrics(out.embeddings[:, 0], out.embeddings[:, 1])
                diagnostics |= pretext.extra_metrics()
                tracker.log_metrics({f"diag/{k}": v for k, v in diagnostics.items()}, step=state.step)

            for hook in hooks:
                if hook.due(state.step):
                    probe = hook(state.step, accelerator.unwrap_model(student).backbone)
                    tracker.log_metrics(probe, step=state.step)
                    progress.write(
                        f"step {state.step}: " + ", ".join(f"{k} {v:.2f}" for k, v in probe.items())
                    )
            if state.step % config.checkpoint.every_steps == 0 or state.step in policy.keep_steps:
                checkpoint()
            ran = state.step - first_step
            asked_to_stop = stop.agreed(accelerator) or (
                stop_after_steps is not None and ran >= stop_after_steps
            )
            if asked_to_stop and state.step < config.total_steps:
                checkpoint()
                preempted = True
                reason = stop.signal_name or f"--stop-after-steps {stop_after_steps}"
                accelerator.print(
                    f"stopping at step {state.step} ({reason}); checkpoint saved, rerun to resume"
                )
                break
    finally:
        stop.restore()
        progress.close()

    backbone_path = None
    if preempted:
        tracker.end(status="KILLED")
    else:
        checkpoint()
        backbone_path = output_dir / "backbone.safetensors"
        if accelerator.is_main_process:
            export_backbone(accelerator.unwrap_model(student).backbone, recipe, backbone_path)
            tracker.log_artifact(backbone_path)
        tracker.end()
    accelerator.wait_for_everyone()
    return TrainResult(state.step, losses, preempted, output_dir, backbone_path)


def check_same_run(saved: dict[str, Any], current: dict[str, Any], where: Path) -> None:
    """Refuse to resume a checkpoint of another method or model; report other changed settings."""
    essentials = {"pretext": (), "model": (), "batch_size": (), "crop_seconds": ("data",)}
    for key, parents in essentials.items():
        before, now = saved, current
        for parent in parents:
            before, now = before.get(parent, {}), now.get(parent, {})
        if before.get(key) != now.get(key):
            raise ValueError(
                f"{where} was written with {key}={before.get(key)!r}, this run has {now.get(key)!r}; "
                "use another --output-dir or the original settings"
            )
    changed = sorted(k for k in current if saved.get(k) != current[k])
    if changed:
        log.warning("resuming %s with changed settings: %s", where, ", ".join(changed))
