"""The Accelerator of a run, the same under every launcher: the backend follows the hardware found, not the
launch config, and the process count Accelerate sees must be the one the launcher started.

Accelerate picks NCCL for a launch config of GPUs; on a machine without one it finds no backend and runs every
process as a lone copy (`accelerate launch --config_file one_node.yaml` or plain `torchrun` on CPU): unsynchronised
models, each reading rank 0's data. Here a launch without a usable GPU always joins a gloo group (DeepSpeed too,
through its CPU accelerator), and a group whose size differs from the launcher's is an error, never a run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs

DEEPSPEED_VARIABLE = "ACCELERATE_USE_DEEPSPEED"  # set by `accelerate launch` for a DeepSpeed config
DEEPSPEED_ACCELERATOR_VARIABLE = "DS_ACCELERATOR"  # DeepSpeed's device; it assumes CUDA unless told
ACCUMULATION_VARIABLE = "ACCELERATE_GRADIENT_ACCUMULATION_STEPS"  # a launch config's, read over Accelerator(...)
CLIPPING_VARIABLE = "ACCELERATE_GRADIENT_CLIPPING"  # a DeepSpeed launch config's gradient_clipping
SEPARATE_STORE_VARIABLE = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"  # "1": torchrun gives each attempt a fresh store
ZERO3_REFUSED = (
    "ZeRO stage 3 is not supported: it partitions the student's parameters, which the EMA teachers read and the "
    "export writes whole, and every model here fits one GPU (docs/distributed.md); use ZeRO-2 "
    "(configs/accelerate/deepspeed_zero2.yaml) or plain DDP"
)
LARS_REFUSED = (
    "--optim.optimizer lars cannot run under DeepSpeed ZeRO: ZeRO hands the optimizer flat partitions that cut "
    "across layers, so LARS would compute one trust ratio per partition instead of per layer; use plain DDP "
    "(configs/accelerate/one_node.yaml) for LARS, or --optim.optimizer adamw with ZeRO"
)


def check_launch_setting(variable: str, key: str, value: float, flag: str) -> None:
    """Refuse a launch config's `key` (passed on by `accelerate launch` as `variable`, which Accelerate reads over
    its own arguments) unless it equals the trainer's `value`."""
    given = os.environ.get(variable)
    if given not in (None, "auto") and float(given) != float(value):
        raise ValueError(
            f"the launch config sets {key} {given}, the trainer {flag} {value}: remove {key} from the launch config "
            f"(the trainer sets it) or pass {flag} {given}"
        )


def check_restartable(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse a launch that restarts failed groups (torchrun/accelerate launch --max-restarts N) through a
    rendezvous store shared across attempts: there a restarted group reads the dead group's addresses and cannot
    connect or hangs (pytorch#135712). Called at every attempt, so the first one stops, not the restart."""
    restarts = int(environ.get("TORCHELASTIC_MAX_RESTARTS", "0"))
    if restarts > 0 and environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        raise RuntimeError(
            f"this launch restarts a failed group up to {restarts} time(s) through one rendezvous store, where the "
            "restarted group would find the dead group's addresses and never connect (pytorch#135712): launch with "
            f"{SEPARATE_STORE_VARIABLE}=1 set, e.g. `{SEPARATE_STORE_VARIABLE}=1 torchrun --max-restarts "
            f"{restarts} ...` (slurm/node_launch.sh sets it)"
        )


def launched_processes() -> int:
    """Processes the launcher started (torchrun, accelerate launch and srun's node launchers set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def uses_deepspeed() -> bool:
    return os.environ.get(DEEPSPEED_VARIABLE, "false").lower() == "true"


def uses_gpu() -> bool:
    """A CUDA device is there and the launch did not ask for the CPU."""
    forced_cpu = os.environ.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes")
    return torch.cuda.is_available() and not forced_cpu


def make_accelerator(precision: str, grad_accum: int, grad_clip: float | None) -> Accelerator:
    """An Accelerator in the group the launcher started: NCCL on GPUs, gloo on CPUs (DDP and DeepSpeed alike);
    `precision` "auto" is bf16 where the GPU has it, fp16 with loss scaling on older GPUs, fp32 on the CPU.
    The trainer's accumulation and clipping are the run's: a launch config that sets others is refused."""
    check_launch_setting(ACCUMULATION_VARIABLE, "gradient_accumulation_steps", grad_accum, "--grad-accum")
    check_launch_setting(CLIPPING_VARIABLE, "gradient_clipping", grad_clip or 0.0, "--optim.grad-clip")
    check_restartable()
    gpu = uses_gpu()
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if gpu else "no"
    options: dict = {"mixed_precision": precision, "gradient_accumulation_steps": grad_accum}
    if not gpu and launched_processes() > 1:
        options["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo")]
        if uses_deepspeed():
            os.environ.setdefault(DEEPSPEED_ACCELERATOR_VARIABLE, "cpu")
        else:
            options["cpu"] = True  # Accelerate's multi-CPU mode: a gloo group and DDP over it
    accelerator = Accelerator(**options)
    check_process_count(accelerator.num_processes, launched_processes())
    return accelerator


def check_process_count(seen: int, launched: int) -> None:
    """Refuse a run in which the processes would not form one group of the launched size."""
    group = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    if seen == launched == group:
        return
    raise RuntimeError(
        f"the launcher started {launched} process(es) but this one sees a group of {group} and Accelerate counts "
        f"{seen}: the copies would train unsynchronised. Launch with `accelerate launch --num_processes N train.py` "
        "or `torchrun --nproc_per_node N train.py` on one machine, set --num_machines/--machine_rank on several, "
        "and do not mix a launcher with a process group made outside it"
    )


def configure_deepspeed(
    accelerator: Accelerator, micro_batch: int, grad_clip: float | None, optimizer: str, load_universal: bool = False
) -> None:
    """Before `prepare`: DeepSpeed's config takes the trainer's batch, accumulation and clipping (a DeepSpeed config
    file that says otherwise is refused), checks bf16 gradients for NaN/inf so that a non-finite step is skipped as
    in fp32 and fp16, loads a universal checkpoint if told, and what ZeRO cannot do here is refused."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None:
        return
    config = plugin.deepspeed_config
    stage = int(config.get("zero_optimization", {}).get("stage", 0))
    if stage >= 3:
        raise ValueError(ZERO3_REFUSED)
    if optimizer == "lars" and stage >= 1:
        raise ValueError(LARS_REFUSED)
    ours = {
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": accelerator.gradient_accumulation_steps,
        "train_batch_size": micro_batch * accelerator.gradient_accumulation_steps * accelerator.num_processes,
        "gradient_clipping": grad_clip or 0.0,
    }
    for key, value in ours.items():
        given = config.get(key, "auto")
        if given != "auto" and float(given) != float(value):
            raise ValueError(
                f'the DeepSpeed config sets {key} {given}, the trainer\'s settings give {value}: set it to "auto" '
                "or remove it (the trainer sets it)"
            )
        config[key] = value
    config.setdefault("bf16", {})["check_grad_overflow"] = True
    config.setdefault("checkpoint", {})["load_universal"] = load_universal
