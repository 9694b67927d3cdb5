"""Pre-emption: SIGTERM / SIGUSR2 (Slurm's warning) make the loop checkpoint and stop, on every rank."""

from __future__ import annotations

import signal
from types import FrameType

import torch
from accelerate import Accelerator

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class StopRequest:
    """Remembers that a stop signal arrived; ranks agree on the decision to stop before acting on it."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name

    def agreed(self, accelerator: Accelerator) -> bool:
        """True on every rank when any rank received a stop signal (one tiny all-reduce)."""
        flag = torch.tensor([1.0 if self.signal_name else 0.0], device=accelerator.device)
        if accelerator.num_processes > 1:
            flag = accelerator.reduce(flag, reduction="sum")
        return bool(flag.item() > 0)

    def restore(self) -> None:
        """Put back the handlers that were there before (tests and notebooks run several trainings)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
