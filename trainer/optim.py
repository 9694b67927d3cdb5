"""Optimisers for pre-training: Adam, AdamW and LARS, with weight decay only on weight matrices and kernels.

``build_optimizer`` applies the linear scaling rule ``lr = batch_size / 256 * base_lr`` (Goyal et al.;
VICReg, Barlow Twins and the thesis state base learning rates per 256 examples) and splits the
parameters in two groups: weights with two or more dimensions get weight decay (and LARS adaptation);
biases, normalisation parameters and every other 1-d parameter get neither.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from musicssl.trainer.schedules import WarmupCosine

if TYPE_CHECKING:
    from musicssl.trainer.config import OptimConfig

NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)
"""Module types whose affine parameters are never decayed."""


def scaled_learning_rate(base_lr: float, batch_size: int) -> float:
    """The linear scaling rule: ``batch_size / 256 * base_lr``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size}")
    return batch_size / 256 * base_lr


def split_decay_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters in a decayed group (>= 2-d weights) and an exempt group (biases, norms, 1-d).

    Each group carries a ``lars_adaptation`` flag, read by :class:`LARS` and ignored by Adam(W), and a
    ``decayed`` flag, read by :func:`set_weight_decay`.
    """
    norm_parameters = {id(p) for m in model.modules() if isinstance(m, NORM_LAYERS) for p in m.parameters()}
    decay, exempt = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        is_exempt = parameter.ndim <= 1 or name.endswith(".bias") or id(parameter) in norm_parameters
        (exempt if is_exempt else decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lars_adaptation": True, "decayed": True},
        {"params": exempt, "weight_decay": 0.0, "lars_adaptation": False, "decayed": False},
    ]
    return [group for group in groups if group["params"]]


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise adaptive rate scaling (You et al. 2017), as in VICReg/Barlow Twins.

    For each parameter ``p`` with gradient ``g`` in a group with ``lars_adaptation`` (the default):
    ``u = g + weight_decay * p``; ``u *= eta * ||p|| / ||u||`` when both norms are positive. Groups with
    ``lars_adaptation=False`` use ``u = g + weight_decay * p`` unscaled. Then ``buf = momentum * buf + u``
    and ``p -= lr * buf``.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float,
        weight_decay: float = 0.0,
        momentum: float = 0.9,
        eta: float = 0.001,
    ) -> None:
        if lr < 0 or weight_decay < 0 or not 0 <= momentum < 1 or eta <= 0:
            raise ValueError(
                f"LARS: need lr >= 0, weight_decay >= 0, 0 <= momentum < 1 and eta > 0, got lr={lr}, "
                f"weight_decay={weight_decay}, momentum={momentum}, eta={eta}"
            )
        defaults = {"lr": lr, "weight_decay": weight_decay, "momentum": momentum, "eta": eta}
        super().__init__(params, defaults | {"lars_adaptation": True})

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Apply one update to every parameter that has a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                update = parameter.grad.add(parameter, alpha=group["weight_decay"])
                if group["lars_adaptation"]:
                    parameter_norm = torch.linalg.vector_norm(parameter)
                    update_norm = torch.linalg.vector_norm(update)
                    trust = torch.where(
                        (parameter_norm > 0) & (update_norm > 0),
                        group["eta"] * parameter_norm / update_norm,
                        torch.ones_like(parameter_norm),
                    )
                    update.mul_(trust)
                state = self.state[parameter]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(parameter)
                buffer = state["momentum_buffer"]
                buffer.mul_(group["momentum"]).add_(update)
                parameter.add_(buffer, alpha=-group["lr"])
        return loss


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "lars": LARS,
}


def build_optimizer(
    model: nn.Module, name: str, base_lr: float, weight_decay: float, batch_size: int, **kwargs: Any
) -> torch.optim.Optimizer:
    """Optimiser ``name`` ("adamw", "adam" or "lars") over ``model`` at ``lr = batch_size / 256 * base_lr``.

    Weight decay (and, for LARS, the trust-ratio adaptation) applies to >= 2-d weights only; biases,
    normalisation parameters and other 1-d parameters are exempt. ``batch_size`` is the global batch
    (all ranks, all accumulation steps). ``kwargs`` go to the optimiser (e.g. ``betas``; ``eta``,
    ``momentum`` for LARS).
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    groups = split_decay_groups(model, weight_decay)
    if not groups:
        raise ValueError(f"build_optimizer: {type(model).__name__} has no trainable parameters")
    return OPTIMIZERS[name](groups, lr=scaled_learning_rate(base_lr, batch_size), **kwargs)


def learning_rate_schedule(optim: OptimConfig, peak: float, total_steps: int) -> WarmupCosine:
    """Warm-up then cosine from ``peak`` to ``optim.final_lr`` (absolute) or ``optim.final_lr_ratio`` x peak."""
    final = peak * optim.final_lr_ratio if optim.final_lr is None else optim.final_lr
    return WarmupCosine(
        peak=peak, total_steps=total_steps, warmup_steps=min(optim.warmup_steps, total_steps), final=final
    )


def weight_decay_schedule(optim: OptimConfig, total_steps: int) -> WarmupCosine | None:
    """Cosine from ``optim.weight_decay`` to ``optim.weight_decay_end`` over the run (deezer utils/scheduler.py
    ``get_weights_decay_scheduler``, after DINO); None when the weight decay is constant."""
    if optim.weight_decay_end is None:
        return None
    return WarmupCosine(peak=optim.weight_decay, total_steps=total_steps, warmup_steps=0, final=optim.weight_decay_end)


def set_weight_decay(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set the weight decay of the decayed groups of :func:`split_decay_groups`; exempt groups keep 0."""
    for group in optimizer.param_groups:
        if group.get("decayed", True):
            group["weight_decay"] = value
