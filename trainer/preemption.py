"""Pre-emption: SIGTERM / SIGUSR2 (Slurm's warning) make the loop checkpoint and stop, on every rank."""

from __future__ import annotations

import signal
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class StopRequest:
    """Remembers that a stop signal arrived; the loop's per-step all-reduce makes every rank stop together."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name

    def restore(self) -> None:
        """Put back the handlers that were there before (tests and notebooks run several trainings)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
