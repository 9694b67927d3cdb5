"""The pre-training loop: Accelerate (DDP, mixed precision, accumulation), safe checkpoints, MLflow.

One optimiser step = `grad_accum` micro-batches of pairs through `pretext.compute_loss`, then one small
all-reduce that every rank waits on anyway (the step's loss, whether any rank saw a non-finite loss, whether any
rank was asked to stop): it is the loop's only host synchronisation per step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from accelerate.utils import set_seed
from tqdm import tqdm

from musicssl.data_prep.locks import exclusive_folder
from musicssl.data_prep.progress import progress_bar
from musicssl.sharding.read.chooser import training_tracks
from musicssl.sharding.read.config import PairsConfig
from musicssl.sharding.read.random_access import RandomAccessReader
from musicssl.sharding.shard_set import ShardSet
from musicssl.trainer.accelerator import configure_deepspeed, make_accelerator
from musicssl.trainer.augment import make_views
from musicssl.trainer.checkpoints import (
    check_resumable,
    latest_checkpoint,
    make_universal,
    save_checkpoint,
    set_aside_unreadable,
)
from musicssl.trainer.collapse import CollapseAlarm
from musicssl.trainer.config import TrainConfig
from musicssl.trainer.diagnostics import collapse_metrics
from musicssl.trainer.distributed import broadcast_from_rank_zero, convert_sync_batchnorm
from musicssl.trainer.epochs import resolve_epochs
from musicssl.trainer.export import RECIPE_NAME, STUDENT_WEIGHTS, export_backbone
from musicssl.trainer.loop_state import LoopState, PretextState, check_same_run
from musicssl.trainer.optim import learning_rate_schedule, set_weight_decay, weight_decay_schedule
from musicssl.trainer.preemption import StopRequest
from musicssl.trainer.pretexts import PretextOutput, build_pretext
from musicssl.trainer.run_parts import (
    ResumablePairs,
    backbone_recipe,
    checkpoint_policy,
    micro_batch_size,
    optimizer_for,
    reader_pairs,
    training_layout,
    view_chain,
)
from musicssl.trainer.state_files import check_loads_safely, load_state_files, state_files
from musicssl.trainer.tracking import OUTBOX_NAME, RunTracker

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"  # the run's full configuration, in every checkpoint
NO_DATA = (
    "no training data: pass --data SHARDS (a shard set from `python -m data_prep`, a folder, URL or `{}` "
    "template), or --data demo (train.py only) for the built-in demo corpus"
)
EXIT_PREEMPTED = 75  # EX_TEMPFAIL: stopped on request with a checkpoint; run the same command again to resume
EXIT_COLLAPSED = 3  # --stop-on-collapse: the collapse alarm fired; checkpoint saved, nothing exported


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
    collapse_signals: tuple[str, ...] = ()
    """Collapse alarm signals fired so far in the run (resumed parts included), in firing order."""
    stopped_on_collapse: bool = False


@dataclass(frozen=True)
class StepReport:
    """What every rank agreed on after a step."""

    loss: float
    """Mean over ranks and micro-batches (NaN when non-finite)."""
    nonfinite: bool
    stop_requested: bool


class Trainer:
    """One pre-training run: everything is built from the config, resumed if a checkpoint exists, then `run`."""

    def __init__(self, config: TrainConfig, hook_factories: Sequence[HookFactory] = ()) -> None:
        self.config = config
        self.accelerator = make_accelerator(config.precision, config.grad_accum, config.optim.grad_clip)
        set_seed(config.seed)
        self.output_dir = Path(config.resolved_output_dir())
        self.checkpoint_dir = self.output_dir / "checkpoints"
        self.recipe = backbone_recipe(config)
        backbone = self.recipe.build()
        shards, pairs = self._open_data(backbone)
        optimizer = self._build_pretext(backbone)
        self._choose_checkpoint()
        self._prepare(optimizer, backbone)
        self._resume()
        self._start_tracking()
        try:  # the run exists in MLflow from here: a failure before training ends it FAILED, not RUNNING
            self._record_config()
            self._start_reading(shards, pairs)
            self._say_count_changed()
            self.policy = checkpoint_policy(self.config)
            self.hooks = [make(backbone) for make in hook_factories] if self.accelerator.is_main_process else []
        except BaseException as error:
            self.tracker.abort(error)
            raise

    def _open_data(self, backbone: torch.nn.Module) -> tuple[ShardSet, PairsConfig]:
        """The shard set, opened once for every reader of this process, and the reader's settings; the epochs
        resolved against the set (`--steps-per-epoch pass`)."""
        config = self.config
        if config.data is None:
            raise ValueError(NO_DATA)
        shards = ShardSet.open(config.data)
        shards.require_sample_rate(backbone.sample_rate)
        self.layout = training_layout(shards, backbone, config.pairs.views)
        pairs = reader_pairs(config, backbone.num_samples)
        self.config = resolve_epochs(config, lambda: training_tracks(shards, pairs), self.accelerator.print)
        return shards, pairs

    def _build_pretext(self, backbone: torch.nn.Module) -> torch.optim.Optimizer:
        """The pretext around the backbone on the device, its schedules, and the optimiser over its student."""
        config, accelerator = self.config, self.accelerator
        pretext = build_pretext(config.pretext, backbone, config.pretext_config)
        if accelerator.num_processes > 1 and accelerator.device.type == "cuda":
            pretext = convert_sync_batchnorm(pretext)  # teachers too, so their BatchNorm sees the global batch
        self.pretext = pretext.to(accelerator.device)
        optimizer = optimizer_for(config, pretext.student)
        peak_lr = optimizer.param_groups[0]["lr"]
        self.lr_schedule = learning_rate_schedule(config.optim, peak_lr, config.total_steps)
        self.weight_decay_schedule = weight_decay_schedule(config.optim, config.total_steps)
        return optimizer

    def _choose_checkpoint(self) -> None:
        """What a checkpoint holds besides the model, and the newest readable one to resume from (rank 0 sets aside
        the unreadable ones first)."""
        accelerator = self.accelerator
        self.deepspeed = accelerator.state.deepspeed_plugin is not None
        self.state = LoopState()
        self.count_changed: str | None = None  # on a resume on another process count: what it was written on
        self.checkpointed = {"loop_state": self.state, "pretext_state": PretextState(self.pretext)}
        self.checkpointed["lr_schedule"] = self.lr_schedule
        required = [CONFIG_NAME, *(f"{name}.json" for name in self.checkpointed)]
        if accelerator.is_main_process:
            set_aside_unreadable(self.checkpoint_dir, required, accelerator.print)
        accelerator.wait_for_everyone()
        self.resume_from = latest_checkpoint(self.checkpoint_dir)

    def _prepare(self, optimizer: torch.optim.Optimizer, backbone: torch.nn.Module) -> None:
        """Student and optimiser through Accelerate (DeepSpeed configured for the checkpoint to load), the views'
        augmentation chain and its generator, and the collapse alarm."""
        config, accelerator = self.config, self.accelerator
        self.micro_batch = micro_batch_size(config, accelerator.num_processes)
        universal = self.resume_from is not None and check_resumable(
            self.resume_from, self.deepspeed, accelerator.num_processes
        )
        configure_deepspeed(accelerator, self.micro_batch, config.optim.grad_clip, config.optim.optimizer, universal)
        if universal:
            self._make_universal(self.resume_from)
        self.student, self.optimizer = accelerator.prepare(self.pretext.student, optimizer)
        self.chain = view_chain(config, backbone)
        self.view_rng = torch.Generator(device=accelerator.device)
        self.view_rng.manual_seed(config.seed + accelerator.process_index)
        prototypes = config.clustering.num_prototypes if config.pretext == "clustering" else None
        self.alarm = CollapseAlarm(config.collapse, backbone.embed_dim, config.batch_size, prototypes)
        self.config_json = json.dumps(dataclasses.asdict(config), indent=1)

    def _start_tracking(self) -> None:
        """The MLflow run on rank 0: the resumed one's, if any."""
        config = self.config
        self.tracker = RunTracker(config.mlflow and self.accelerator.is_main_process, self.output_dir / OUTBOX_NAME)
        self.tracker.start(
            experiment=config.study,
            run_name=config.run_name or f"{config.pretext}-{self.recipe.name}",
            params=dataclasses.asdict(config),
            run_id=self.state.mlflow_run_id,
        )

    def _record_config(self) -> None:
        """A new MLflow run gets the config as an artifact; the loop state keeps the run's id for a resume."""
        if self.tracker.enabled and self.state.mlflow_run_id is None:
            config_path = self.output_dir / CONFIG_NAME
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(self.config_json)
            self.tracker.log_artifact(config_path)
        self.state.mlflow_run_id = self.tracker.run_id

    def _start_reading(self, shards: ShardSet, pairs: PairsConfig) -> None:
        """This rank's micro-batches, from the resumed data position (or the step's) on."""
        accelerator, grad_accum = self.accelerator, self.config.grad_accum
        rank, world = accelerator.process_index, accelerator.num_processes
        self.pairs = ResumablePairs(shards, pairs, self.config, self.micro_batch, rank, world)
        if self.state.data_position is None:
            self.state.data_position = self.pairs.position_at(self.state.step, grad_accum)
        self.batches = self.pairs.from_position(self.state.data_position)

    def _make_universal(self, checkpoint: Path) -> None:
        """Rank 0 converts the ZeRO checkpoint of another process count to DeepSpeed's universal form, which the
        engine then loads on this count."""
        self.accelerator.print(
            f"{checkpoint} was written by DeepSpeed ZeRO on another number of processes than this run's "
            f"{self.accelerator.num_processes}: loading it through DeepSpeed's universal checkpoint"
        )
        if self.accelerator.is_main_process:
            make_universal(checkpoint)
        self.accelerator.wait_for_everyone()

    def _resume(self) -> None:
        """Load the newest checkpoint, if any, after checking it belongs to this run."""
        resume_from = self.resume_from
        if resume_from is None:
            return
        saved_config = json.loads((resume_from / CONFIG_NAME).read_text())
        check_same_run(saved_config, json.loads(self.config_json), resume_from)
        if not self.accelerator.is_main_process:  # rank 0 checked it while choosing it (set_aside_unreadable)
            check_loads_safely(resume_from, self.accelerator.process_index)
        self.accelerator.load_state(str(resume_from))
        load_state_files(resume_from, self.checkpointed)
        self.accelerator.print(f"resuming from {resume_from} at step {self.state.step}")
        self._restore_view_rng(self.state.view_rng)
        if self.state.collapse_alarm is not None:
            self.alarm.load_state_dict(self.state.collapse_alarm)

    def _restore_view_rng(self, saved: torch.Tensor | None) -> None:
        """This rank's augmentation generator as checkpointed; on another number of processes (whose ranks have no
        saved state of their own) every rank re-seeds it from (seed, rank, step), and `count_changed` says so."""
        rank, world = self.accelerator.process_index, self.accelerator.num_processes
        saved_world = saved.shape[0] if saved is not None and saved.dim() == 2 else None
        if saved_world == world:
            self.view_rng.set_state(saved[rank].clone())  # a row view: set_state reads its storage from 0
            return
        self.view_rng.manual_seed(
            int(np.random.SeedSequence([self.config.seed, rank, self.state.step]).generate_state(1)[0])
        )
        self.count_changed = f"on {saved_world} process(es)" if saved_world else "without per-rank generator states"

    def _say_count_changed(self) -> None:
        """One line on a resume on another number of processes: what carries over and what does not."""
        if self.count_changed is None:
            return
        if isinstance(self.pairs.reader, RandomAccessReader):
            batches = "the global batches continue unchanged"
        else:
            batches = (
                "the stream reader deals shards to ranks, so the pairs from here differ from an uninterrupted run's "
                "(a set with tracks.parquet is read by random access, whose global batches do not depend on it)"
            )
        views = f"; each rank's augmentation generator is re-seeded from (seed, rank, step {self.state.step})"
        self.accelerator.print(
            f"the checkpoint was written {self.count_changed}, this run has {self.accelerator.num_processes}: "
            f"{batches}{views if self.chain else ''}"
        )

    def run(self, stop_after_steps: int | None = None) -> TrainResult:
        """Train to the end, or until a stop signal / `stop_after_steps` steps (checkpointed, resumable)."""
        config, state = self.config, self.state
        first_step = state.step
        losses: list[float] = []
        consecutive_nonfinite = 0
        stop = StopRequest()
        progress = progress_bar(
            total=config.total_steps,
            initial=state.step,
            desc=config.pretext,
            disable=not self.accelerator.is_main_process,
        )
        self.student.train()
        try:
            if state.step == 0:  # the untrained weights: where a monitor's curve starts
                self._run_hooks(0, progress)
            self.window_start = (time.perf_counter(), state.step)
            while state.step < config.total_steps:
                report, out = self._step(stop.signal_name is not None)
                losses.append(report.loss)
                if report.nonfinite:
                    consecutive_nonfinite += 1
                    state.nonfinite_skipped += 1
                    if consecutive_nonfinite >= config.max_nonfinite:
                        raise FloatingPointError(
                            f"{consecutive_nonfinite} consecutive non-finite losses at step {state.step}: lower "
                            "--optim.base-lr, set --optim.grad-clip, or use --precision no to rule out overflow"
                        )
                else:
                    consecutive_nonfinite = 0
                state.step += 1
                state.data_position = self.pairs.position_at(state.step, config.grad_accum)
                progress.update(1)
                collapsed = self._log(report, out, progress)
                if state.step % config.checkpoint.every_steps == 0 or state.step in self.policy.keep_steps:
                    self._checkpoint()
                if collapsed and config.stop_on_collapse:
                    self._checkpoint()
                    self.accelerator.print(
                        f"stopping at step {state.step}: the collapse alarm fired (--stop-on-collapse); "
                        "checkpoint saved, nothing exported"
                    )
                    self.tracker.end(status="FAILED")
                    return TrainResult(state.step, losses, False, self.output_dir, None, tuple(self.alarm.fired), True)
                ran_enough = stop_after_steps is not None and state.step - first_step >= stop_after_steps
                if (report.stop_requested or ran_enough) and state.step < config.total_steps:
                    self._checkpoint()
                    reason = stop.signal_name or f"--stop-after-steps {stop_after_steps}"
                    self.accelerator.print(
                        f"stopping at step {state.step} ({reason}); checkpoint saved, rerun to resume"
                    )
                    self.tracker.end(status="KILLED")
                    return TrainResult(state.step, losses, True, self.output_dir, None, tuple(self.alarm.fired))
            return TrainResult(state.step, losses, False, self.output_dir, self._finish(), tuple(self.alarm.fired))
        except BaseException as error:
            self.tracker.abort(error)
            raise
        finally:
            stop.restore()
            progress.close()

    def _step(self, stop_requested: bool) -> tuple[StepReport, PretextOutput]:
        """One optimiser step over `grad_accum` micro-batches; skipped on every rank if a loss is non-finite."""
        self._set_schedules()  # before the first backward: DeepSpeed steps inside the last one
        device = self.accelerator.device
        loss_sum = torch.zeros((), device=device)
        nonfinite = torch.zeros((), device=device)
        for _ in range(self.config.grad_accum):
            pairs = self.layout.to_model_input(next(self.batches).to(device, non_blocking=True))
            views = make_views(pairs, self.config.pairs.views, self.chain, self.view_rng)
            with self.accelerator.accumulate(self.student):  # DDP syncs gradients on the last one only
                with self.accelerator.autocast():
                    out = self.pretext.compute_loss(views, self.student)
                self.accelerator.backward(out.loss)
            loss = out.loss.detach().float()
            loss_sum += loss
            nonfinite += (~torch.isfinite(loss)).float()
        report = self._agree(loss_sum / self.config.grad_accum, nonfinite, stop_requested)
        if not report.nonfinite:
            self._optimizer_step()
            self.pretext.after_optimizer_step(self.state.step, self.config.total_steps)
        elif self.deepspeed and self.student.was_step_applied():  # the engine steps inside `backward`
            raise FloatingPointError(
                f"DeepSpeed applied the update of step {self.state.step} although a loss was non-finite; the run "
                "cannot go on from these weights: resume from the last checkpoint with --precision no or fp16"
            )
        self.optimizer.zero_grad(set_to_none=True)
        return report, out

    def _agree(self, loss: torch.Tensor, nonfinite: torch.Tensor, stop_requested: bool) -> StepReport:
        """One all-reduce of (loss, non-finite count, stop flag): every rank takes the same decisions."""
        flags = torch.stack([loss, nonfinite, torch.tensor(float(stop_requested), device=loss.device)])
        if self.accelerator.num_processes > 1:
            flags = self.accelerator.reduce(flags, reduction="sum")
            flags[0] /= self.accelerator.num_processes
        mean_loss, bad, stop = flags.tolist()
        return StepReport(loss=mean_loss, nonfinite=bad > 0, stop_requested=stop > 0)

    def _set_schedules(self) -> None:
        """The learning rate and weight decay of this step."""
        lr = self.lr_schedule(self.state.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.weight_decay_schedule is not None:
            set_weight_decay(self.optimizer, self.weight_decay_schedule(self.state.step))

    def _optimizer_step(self) -> None:
        """Clip and step (under DeepSpeed both happened in `backward`, and these calls do nothing)."""
        if self.config.optim.grad_clip is not None:
            self.accelerator.clip_grad_norm_(self.student.parameters(), self.config.optim.grad_clip)
        self.optimizer.step()

    def _log(self, report: StepReport, out: PretextOutput, progress: tqdm) -> bool:
        """Loss terms, lr and throughput every `log_every` steps; diagnostics and hooks on their own clocks.
        True when the collapse alarm fired at this step."""
        config, step = self.config, self.state.step
        if step % config.log_every == 0 or step == config.total_steps:
            now = time.perf_counter()
            started, first = self.window_start
            pairs_per_s = (step - first) * config.batch_size / max(now - started, 1e-9)
            self.window_start = (now, step)
            metrics = {f"loss/{k}": float(v) for k, v in out.terms.items()}
            metrics |= {
                "loss": report.loss,
                "lr": self.lr_schedule(step),
                "pairs_per_s": pairs_per_s,
            }
            metrics["nonfinite_skipped"] = float(self.state.nonfinite_skipped)
            data = self.pairs.reader.stats
            metrics |= {
                "data/failed_reads": float(data.corrupt_skipped),
                "data/bytes_per_pair": data.bytes / max(data.pairs, 1),
            }
            if torch.cuda.is_available():
                metrics["peak_memory_gb"] = torch.cuda.max_memory_allocated() / 2**30
            terms = {name: f"{float(value):.3g}" for name, value in out.terms.items()} if len(out.terms) > 1 else {}
            progress.set_postfix(
                loss=f"{report.loss:.4f}",
                **terms,
                lr=f"{metrics['lr']:.2e}",
                pairs_s=f"{pairs_per_s:.0f}",
                refresh=False,
            )
            self.tracker.log_metrics(metrics, step=step)
        collapsed = False
        if step % config.diagnostics_every == 0:
            diagnostics = collapse_metrics(out.embeddings[:, 0], out.embeddings[:, 1])
            diagnostics |= self.pretext.extra_metrics()
            self.tracker.log_metrics({f"diag/{k}": v for k, v in diagnostics.items()}, step=step)
            collapsed = self._check_collapse(step, diagnostics, progress)
        self._run_hooks(step, progress)
        return collapsed

    def _run_hooks(self, step: int, progress: tqdm) -> None:
        """Run the hooks due at `step` on the unwrapped backbone and log what they return."""
        for hook in self.hooks:
            if hook.due(step):
                probe = hook(step, self.accelerator.unwrap_model(self.student).backbone)
                self.tracker.log_metrics(probe, step=step)
                progress.write(f"step {step}: " + ", ".join(f"{k} {v:.2f}" for k, v in probe.items()))

    def _check_collapse(self, step: int, diagnostics: dict[str, float], progress: tqdm) -> bool:
        """Feed the collapse alarm rank 0's diagnostics (each rank measures its own batch), so that every rank
        takes the same decision; warn, and log ``collapse/<signal>`` (metric 1 and a tag), for each new signal."""
        values = torch.tensor(list(diagnostics.values()), dtype=torch.float32, device=self.accelerator.device)
        agreed = dict(zip(diagnostics, broadcast_from_rank_zero(values).tolist(), strict=True))
        firings = self.alarm.observe(step, agreed)
        for firing in firings:
            if self.accelerator.is_main_process:
                progress.write(firing.warning(self.config.pretext))
            self.tracker.log_metrics({f"collapse/{firing.signal}": 1.0}, step=step)
            self.tracker.set_tags({f"collapse/{firing.signal}": f"step {step}: {firing.reading}"})
        return bool(firings)

    def _checkpoint(self) -> None:
        every_rank = self.accelerator.gather(self.view_rng.get_state().to(self.accelerator.device)[None])
        self.state.view_rng = every_rank.cpu()
        self.state.collapse_alarm = self.alarm.state_dict()
        extra_files, extra_tensors = state_files(self.checkpointed)
        extra_files |= {RECIPE_NAME: self.recipe.to_json(), CONFIG_NAME: self.config_json}
        if self.deepspeed:  # ZeRO-2 holds every parameter on every rank
            extra_tensors[STUDENT_WEIGHTS] = self.accelerator.unwrap_model(self.student).state_dict()
        save_checkpoint(self.accelerator, self.checkpoint_dir, self.state.step, self.policy, extra_files, extra_tensors)

    def _finish(self) -> Path:
        """Final checkpoint, the backbone exported on its own, the MLflow run closed."""
        self._checkpoint()
        backbone_path = self.output_dir / "backbone.safetensors"
        if self.accelerator.is_main_process:
            backbone = self.accelerator.unwrap_model(self.student).backbone
            export_backbone(backbone, self.recipe, backbone_path, self.config.pretext, self.state.mlflow_run_id)
            self.tracker.log_artifact(backbone_path)
        self.tracker.end()
        self.accelerator.wait_for_everyone()
        return backbone_path


def train(
    config: TrainConfig, stop_after_steps: int | None = None, hook_factories: Sequence[HookFactory] = ()
) -> TrainResult:
    """Run or resume a pre-training; `stop_after_steps` stops early with a checkpoint, like a pre-emption. The
    output folder is held by this run (rank 0) from start to end: a second run into it is refused at start."""
    first_rank = os.environ.get("RANK", "0") == "0"
    what = f"train.py --pretext {config.pretext}"
    with exclusive_folder(Path(config.resolved_output_dir()), what) if first_rank else contextlib.nullcontext():
        return Trainer(config, hook_factories).run(stop_after_steps)
