"""The loop's own state in a checkpoint without pickle: each object's `state_dict()` as `<name>.json`, its tensors
in `<name>.safetensors`. Loading either runs no code from the file, unlike `torch.load(weights_only=False)`,
which Accelerate uses for the objects registered with it (`custom_checkpoint_*.pkl`)."""

from __future__ import annotations

import importlib.util
import json
import pickle
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from accelerate.utils import load
from safetensors.torch import load_file

TENSOR = "__tensor__"  # a JSON leaf {"__tensor__": key} stands for the tensor stored under key
PICKLED_STATE = "custom_checkpoint_*.pkl"  # what Accelerate wrote for registered objects (older checkpoints)
RNG_STATE = "random_states_{rank}.pkl"  # Accelerate's RNG file, which it reads with weights_only=True
DEEPSPEED_ENGINE_FILES = "pytorch_model/**/*.pt"  # ZeRO's parts and model states, and the universal form


FIX = (
    "resume from another checkpoint (move this one away) or start afresh with another --output-dir; its weights, "
    "model.safetensors, still export and evaluate"
)


class Stateful(Protocol):
    def state_dict(self) -> Mapping[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def split_tensors(tree: Any, tensors: dict[str, torch.Tensor], key: str = "") -> Any:
    """`tree` as JSON-able values, its tensors moved into `tensors` under their path."""
    if isinstance(tree, torch.Tensor):
        tensors[key] = tree.detach().cpu().clone()  # a copy: safetensors refuses tensors that share memory
        return {TENSOR: key}
    if isinstance(tree, Mapping):
        return {str(name): split_tensors(value, tensors, f"{key}/{name}") for name, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [split_tensors(value, tensors, f"{key}/{index}") for index, value in enumerate(tree)]
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    raise TypeError(f"cannot store a {type(tree).__name__} at {key or '/'} without pickle")


def join_tensors(tree: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of `split_tensors`."""
    if isinstance(tree, dict):
        if set(tree) == {TENSOR}:
            return tensors[tree[TENSOR]]
        return {name: join_tensors(value, tensors) for name, value in tree.items()}
    if isinstance(tree, list):
        return [join_tensors(value, tensors) for value in tree]
    return tree


def state_files(objects: Mapping[str, Stateful]) -> tuple[dict[str, str], dict[str, dict[str, torch.Tensor]]]:
    """The files that hold `objects` (name -> object): JSON texts and safetensors contents, by file name."""
    texts, tensor_files = {}, {}
    for name, obj in objects.items():
        tensors: dict[str, torch.Tensor] = {}
        texts[f"{name}.json"] = json.dumps(split_tensors(obj.state_dict(), tensors))
        tensor_files[f"{name}.safetensors"] = tensors
    return texts, tensor_files


def deepspeed_record_types() -> list[type]:
    """The DeepSpeed classes its checkpoint files hold besides tensors and containers (loss scaler settings, the
    ZeRO stage, fragment addresses): plain records, which the weights-only unpickler builds without running code."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def refuse_code(path: Path, read: Callable[[Path], object]) -> None:
    """Read `path` with a weights-only reader; a file that needs more (a pickled object) is refused. A damaged file
    passes here: `checkpoints.unreadable_reason` sets it aside."""
    try:
        read(path)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()[0][:200]
        raise ValueError(f"{path} does not load as plain data ({type(error).__name__}: {reason}): {FIX}") from None
    except Exception:
        return


def check_loads_safely(checkpoint: Path, rank: int) -> None:
    """Before Accelerate reads `checkpoint`, refuse what would run code or be skipped: pickled state, which
    Accelerate unpickles with weights_only=False (this trainer never writes it; older versions did); this rank's RNG
    file unless it loads with weights_only=True (Accelerate would skip it with a log line and the run would go on
    unlike the original); on rank 0, DeepSpeed's engine files unless they load with weights_only=True and
    DeepSpeed's record types (DeepSpeed itself reads them with weights_only=False)."""
    pickled = sorted(path.name for path in checkpoint.glob(PICKLED_STATE))
    if pickled:
        raise ValueError(
            f"{checkpoint} holds {', '.join(pickled)}: pickles, which could run code when loaded and which this "
            f"trainer never writes: {FIX}"
        )
    rng = checkpoint / RNG_STATE.format(rank=rank)
    if rng.is_file():
        refuse_code(rng, load)
    engine_files = sorted(checkpoint.glob(DEEPSPEED_ENGINE_FILES))
    if rank != 0 or not engine_files or importlib.util.find_spec("deepspeed") is None:
        return  # without DeepSpeed such a checkpoint is refused anyway (checkpoints.check_resumable)
    with torch.serialization.safe_globals(deepspeed_record_types()):
        for path in engine_files:
            refuse_code(path, lambda path: torch.load(path, map_location="cpu", weights_only=True))


def load_state_files(checkpoint: Path, objects: Mapping[str, Stateful]) -> None:
    """Restore `objects` from their files in `checkpoint`."""
    for name, obj in objects.items():
        text = checkpoint / f"{name}.json"
        if not text.is_file():
            raise ValueError(f"{checkpoint} has no {text.name}: {FIX}")
        tensors = load_file(str(checkpoint / f"{name}.safetensors"))
        obj.load_state_dict(join_tensors(json.loads(text.read_text()), tensors))
