"""What every backbone shares: the waveform-in, embedding-out contract and how its settings become a model."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from torch import nn

from musicssl.trainer.frontend import LogMelFrontend


class Backbone(nn.Module):
    """Maps a (N, num_samples) float waveform at ``sample_rate`` to (N, embed_dim) embeddings. A subclass names
    itself (``name``: its ``--backbone`` choice) and its settings (``Config``: the ``[name]`` section).

    A backbone with a log-mel front end (``mel_frontend``) also takes (N, 1, n_mels, frames) mel power in dB, as a
    log-mel shard set stores it, and then skips its front end; it still embeds waveforms, so exports stay one model.
    """

    name: ClassVar[str]
    Config: ClassVar[type]
    embed_dim: int
    sample_rate: int
    num_samples: int

    @property
    def mel_frontend(self) -> LogMelFrontend | None:
        """The log-mel front end whose output ``forward`` also accepts; None for a waveform-only backbone."""
        return None

    @classmethod
    def recipe_kwargs(cls, config: Any, crop_seconds: float) -> dict[str, Any]:
        """Constructor arguments from the run's settings section and crop length, as exports record them (JSON).
        By default the Config's fields, for a backbone whose input length is its own."""
        return dataclasses.asdict(config)
