"""The Accelerator of a run, the same under every launcher: the backend follows the hardware found, not the
launch config, and the process count Accelerate sees must be the one the launcher started.

Accelerate picks NCCL for a launch config of GPUs; on a machine without one it finds no backend and runs every
process as a lone copy (`accelerate launch --config_file one_node.yaml` or plain `torchrun` on CPU): unsynchronised
models, each reading rank 0's data. Here a launch without a usable GPU always joins a gloo group (DeepSpeed too,
through its CPU accelerator), and a group whose size differs from the launcher's is an error, never a run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import sys
import threading
import time
from collections.abc import Mapping
from datetime import timedelta

import torch
from accelerate import Accelerator
from accelerate.utils import InitProcessGroupKwargs

DEEPSPEED_VARIABLE = "ACCELERATE_USE_DEEPSPEED"  # set by `accelerate launch` for a DeepSpeed config
DEEPSPEED_ACCELERATOR_VARIABLE = "DS_ACCELERATOR"  # DeepSpeed's device; it assumes CUDA unless told
ACCUMULATION_VARIABLE = "ACCELERATE_GRADIENT_ACCUMULATION_STEPS"  # a launch config's, read over Accelerator(...)
CLIPPING_VARIABLE = "ACCELERATE_GRADIENT_CLIPPING"  # a DeepSpeed launch config's gradient_clipping
SEPARATE_STORE_VARIABLE = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"  # "1": torchrun gives each attempt a fresh store
TIMEOUT_VARIABLE = "MUSICSSL_COLLECTIVE_TIMEOUT"  # seconds a collective waits for the other ranks
DEFAULT_TIMEOUT_S = 600.0  # NCCL's own default; gloo's is 30 minutes
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


def collective_timeout(environ: Mapping[str, str] = os.environ) -> timedelta:
    """How long a collective (and the group's start) waits for every rank before this rank stops with an error:
    $MUSICSSL_COLLECTIVE_TIMEOUT seconds, 600 (10 minutes) unless set. A host that disappears (powered off, link
    cut) sends nothing, so the ranks left wait this long in their next all-reduce; then gloo raises, naming the
    peer it waited for, and the launcher stops."""
    given = environ.get(TIMEOUT_VARIABLE, "")
    try:
        seconds = float(given) if given else DEFAULT_TIMEOUT_S
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise ValueError(f"{TIMEOUT_VARIABLE}={given!r}: give the collective timeout in seconds, e.g. 600")
    return timedelta(seconds=seconds)


def source_address() -> str:
    """ ", ADDRESS": this machine's address on the route to the main node ($MASTER_ADDR), where there is one (a UDP
    socket's connect sends nothing, it only picks the route)."""
    main = os.environ.get("MASTER_ADDR")
    if not main:
        return ""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((main, int(os.environ.get("MASTER_PORT", "29500"))))
            return f", {probe.getsockname()[0]}"
    except OSError:
        return ""


class PeerWatch:
    """Names a rank that goes silent. Every `interval` seconds each rank bumps its counter in the group's store
    (hosted on the main node) and reads the others'; a rank whose counter has not moved for `silence` seconds (by
    this rank's clock, so clocks need not agree) is reported once, with its node and host name, on stderr. A
    collective blocked on a lost host fails only at the collective timeout, and gloo's error then names no peer;
    the report, which comes first, does. A rank that ends normally marks itself done and is never reported."""

    def __init__(self, store: torch.distributed.Store, rank: int, world: int, interval: float, silence: float):
        self.store = torch.distributed.PrefixStore("musicssl/alive", store)
        self.rank, self.world, self.interval, self.silence = rank, world, interval, silence
        self.stopped = threading.Event()
        node, host = os.environ.get("GROUP_RANK", "?"), socket.gethostname()
        self.store.set(f"who/{rank}", f"node {node}, host {host}{source_address()}")
        self.beats = 0
        self.thread = threading.Thread(target=self._run, name="musicssl-peer-watch", daemon=True)

    def start(self) -> PeerWatch:
        self.thread.start()
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Mark this rank done (a normal end) and stop watching."""
        if not self.stopped.is_set():
            self.stopped.set()
            with contextlib.suppress(Exception):  # the main node's store may be gone already
                self.store.set(f"beat/{self.rank}", "done")

    def _run(self) -> None:
        keys = [f"beat/{rank}" for rank in range(self.world)]
        last: dict[int, tuple[bytes, float]] = {}
        reported: set[int] = set()
        while not self.stopped.wait(self.interval):
            try:
                self.beats += 1
                self.store.set(keys[self.rank], str(self.beats))
                if not self.store.check(keys):
                    continue  # a rank that has not beaten yet is still starting
                now = time.monotonic()
                for rank, value in enumerate(self.store.multi_get(keys)):
                    if rank == self.rank or value == b"done":
                        continue
                    if last.get(rank, (None, 0.0))[0] != value:
                        last[rank] = (value, now)
                    elif now - last[rank][1] >= self.silence and rank not in reported:
                        reported.add(rank)
                        self._report(rank, now - last[rank][1])
            except Exception as error:  # the store (on the main node) is gone: say so once, unless this rank ends
                if not self.stopped.wait(2 * self.interval):  # (rank 0 may end a moment before the others)
                    print(f"[musicssl] rank {self.rank}: lost the group's store on the main node (rank 0): {error}",
                          file=sys.stderr, flush=True)  # fmt: skip
                return

    def _report(self, rank: int, silent_for: float) -> None:
        who = self.store.get(f"who/{rank}").decode()
        print(
            f"[musicssl] rank {self.rank}: rank {rank} ({who}) has not been heard from for {silent_for:.0f} s: its "
            f"host or process is lost; collectives waiting for it fail after the collective timeout "
            f"({collective_timeout().total_seconds():.0f} s, ${TIMEOUT_VARIABLE}), then rerun to resume from the "
            "last complete checkpoint",
            file=sys.stderr,
            flush=True,
        )


def watch_peers(silence: float | None = None) -> PeerWatch | None:
    """Start a PeerWatch where this process is one of several ranks of a group with a store. A rank is reported
    after `silence` seconds without a beat: a third of the collective timeout, at most 60 s (so the report comes
    well before the timeout's error); the ranks beat 5 times in that time."""
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() < 2:
        return None
    silence = silence or min(60.0, collective_timeout().total_seconds() / 3)
    rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    try:
        store = torch.distributed.distributed_c10d._get_default_store()
        return PeerWatch(store, rank, world, silence / 5, silence).start()
    except Exception as error:  # a group without a store: train without the watch
        print(f"[musicssl] rank {rank}: not watching the other ranks ({error})", file=sys.stderr, flush=True)
        return None


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
    timeout = collective_timeout()
    options["kwargs_handlers"] = [InitProcessGroupKwargs(timeout=timeout)]  # backend: Accelerate's choice
    if not gpu and launched_processes() > 1:
        options["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo", timeout=timeout)]
        if uses_deepspeed():
            os.environ.setdefault(DEEPSPEED_ACCELERATOR_VARIABLE, "cpu")
        else:
            options["cpu"] = True  # Accelerate's multi-CPU mode: a gloo group and DDP over it
    accelerator = Accelerator(**options)
    check_process_count(accelerator.num_processes, launched_processes())
    watch_peers()
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
