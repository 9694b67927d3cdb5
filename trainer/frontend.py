"""Log-mel spectrogram front end computed inside the model, on the model's device, always in fp32.

Matches deezer/multi-view-ssl-benchmark's ``SpecModule`` (ssl_framework/models/__init__.py): Hann window,
``n_fft`` 1024, hop ``n_fft // 2`` = 512, centred frames with reflect padding (``num_samples // 512 + 1``
frames: 126 for 4 s at 16 kHz), power spectrogram normalised by the window's L2 norm
(``normalized=True``), mel filterbank on the slaney mel scale, ``10 log10`` with the 100 dB floor taken
per example. The submodule ``spec`` (torchaudio's MelSpectrogram) holds the window and filterbank under
deezer's names so their checkpoints load; the arithmetic is `sharding.mel`'s, shared with the log-mel shard
layout, so that a log-mel set stores exactly what this front end computes (`forward_db` takes such input).

Deviations, both settable to deezer's values for reproduction (``DEEZER_FRONTEND``):
- ``f_max`` defaults to the Nyquist frequency. deezer uses 11025 Hz at 16 kHz, above Nyquist: the mel
  points above 8 kHz have no FFT bins, so the top bands are empty. Allowed, with a warning.
- ``mel_norm`` defaults to ``"slaney"`` (area-normalised triangles, as librosa); deezer uses none.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torchaudio
from torch import nn

from musicssl.sharding.mel import MelSettings, apply_floor, power_db

DEEZER_FRONTEND: dict[str, Any] = {"f_max": 11025.0, "mel_norm": None}
"""Front-end settings that reproduce the published deezer checkpoints (16 kHz input)."""

ROUNDING_ULPS = 256
"""Tolerance for a saved filterbank or window, in float32 ulps of its largest value. torchaudio's float32
filterbank is up to 112 such ulps away from the exact (float64) one, so two builds may differ by about twice
that; another front end (f_max 11000 instead of 11025, another norm) differs by 10^4 ulps or more."""


def same_up_to_rounding(saved: torch.Tensor, own: torch.Tensor) -> bool:
    """Whether ``saved`` equals ``own`` up to float32 rounding: same shape, within ROUNDING_ULPS of max |own|."""
    if saved.shape != own.shape:
        return False
    tolerance = ROUNDING_ULPS * torch.finfo(torch.float32).eps * float(own.abs().max())
    return bool((saved.to(own) - own).abs().max() <= tolerance)


class LogMelFrontend(nn.Module):
    """Waveform (N, T) -> log-mel (N, 1, n_mels, frames) in dB, computed in fp32 even under autocast."""

    def __init__(
        self,
        sample_rate: int = 16000,
        n_fft: int = 1024,
        hop_length: int = 512,
        n_mels: int = 128,
        f_min: float = 0.0,
        f_max: float | None = None,
        mel_norm: str | None = "slaney",
        top_db: float = 100.0,
    ) -> None:
        super().__init__()
        nyquist = sample_rate / 2
        f_max = nyquist if f_max is None else float(f_max)
        if not 0 <= f_min < f_max:
            raise ValueError(f"LogMelFrontend: need 0 <= f_min < f_max, got f_min={f_min}, f_max={f_max}")
        if f_max > nyquist:
            warnings.warn(
                f"LogMelFrontend: f_max={f_max:g} Hz is above the Nyquist frequency {nyquist:g} Hz of "
                f"{sample_rate} Hz audio, so the top mel bands stay empty; use it only to reproduce the "
                "deezer checkpoints (f_max=11025), otherwise leave f_max unset",
                stacklevel=2,
            )
        self.top_db = top_db
        self.settings = MelSettings(sample_rate, n_fft, hop_length, n_mels, f_min, f_max, mel_norm)
        with warnings.catch_warnings():
            # torchaudio's "all zero filterbank" warning repeats the one above in less useful words
            warnings.filterwarnings("ignore", message=".*filterbank.*all zero.*")
            self.spec = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate,
                n_fft=n_fft,
                hop_length=hop_length,
                f_min=f_min,
                f_max=f_max,
                n_mels=n_mels,
                power=2.0,
                normalized=True,
                center=True,
                pad_mode="reflect",
                norm=mel_norm,
                mel_scale="slaney",
            )
        # torchaudio's periodic window is a view into n_fft + 1 values; safetensors refuses such buffers
        self.spec.spectrogram.window = self.spec.spectrogram.window.clone()

    @property
    def sample_rate(self) -> int:
        return self.settings.sample_rate

    @property
    def hop_length(self) -> int:
        return self.settings.hop_length

    @property
    def n_mels(self) -> int:
        return self.settings.n_mels

    @property
    def f_max(self) -> float:
        return self.settings.f_max

    def num_frames(self, num_samples: int) -> int:
        """Number of spectrogram frames for ``num_samples`` input samples (centred frames)."""
        return self.settings.num_frames(num_samples)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """Return the log-mel spectrogram of a (N, T) waveform batch as (N, 1, n_mels, frames) float32."""
        if waveform.dim() != 2:
            raise ValueError(f"LogMelFrontend expects a (N, T) waveform batch, got shape {tuple(waveform.shape)}")
        db = power_db(waveform, self.spec.spectrogram.window, self.spec.mel_scale.fb, self.hop_length)
        return apply_floor(db, self.top_db)

    def forward_db(self, db: torch.Tensor) -> torch.Tensor:
        """Floor (N, 1, n_mels, frames) mel power in dB read from a log-mel shard set, as `forward` floors its own."""
        if db.dim() != 4 or db.shape[1:3] != (1, self.n_mels):
            raise ValueError(
                f"LogMelFrontend expects log-mel of shape (N, 1, {self.n_mels}, frames), got {tuple(db.shape)}"
            )
        return apply_floor(db.float(), self.top_db)

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Refuse a checkpoint whose filterbank or window differs from this front end's (beyond float rounding)."""
        for name, own in (
            ("spec.mel_scale.fb", self.spec.mel_scale.fb),
            ("spec.spectrogram.window", self.spec.spectrogram.window),
        ):
            saved = state_dict.get(prefix + name)
            if saved is not None and not same_up_to_rounding(saved, own):
                error_msgs.append(
                    f"{prefix}{name}: the checkpoint's front end differs from this model's "
                    f"(f_max={self.f_max:g}); build the backbone with the front end it was trained with "
                    "(for deezer checkpoints: trainer.frontend.DEEZER_FRONTEND)"
                )
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
