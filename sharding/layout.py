"""What a shard set stores per track, and the geometry readers need to cut crops from it by byte ranges.

Two layouts (docs/data-layout.md):
- PCM: int16 samples (`pcm` member), 2 bytes a sample; a crop is any run of samples.
- log-mel: the front end's mel power in dB before its floor (`sharding.mel.power_db`) of the whole track, frame
  after frame (`mel` member, (frames, n_mels) row-major), as fp16 or as uint8 on a fixed dB scale; a crop is a
  run of frames, so crop starts and gaps snap to the hop (32 ms at 16 kHz). 8x (uint8) or 4x (fp16) fewer bytes
  a crop than PCM, with waveform augmentation no longer possible.
Readers work in units (a sample or a frame): a track of `num_samples` samples has `units(num_samples)` units of
`unit_bytes` bytes each, so a crop's bytes lie at `offset + start * unit_bytes`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from musicssl.data_prep.pcm import PCM_SCALE, PCM_SHA1_KEY
from musicssl.sharding.mel import MelSettings, power_db

PCM_ENCODING = "pcm_s16le"
MEL_ENCODINGS = {"fp16": "logmel_f16", "uint8": "logmel_u8"}
MelEncoding = Literal["fp16", "uint8"]
UINT8_DB_MIN = -100.0
"""uint8 code 0: the lowest dB the front end produces (10 log10 of its AMIN)."""
UINT8_DB_STEP = 0.5
"""dB between uint8 codes: 255 steps cover -100 to +27.5 dB, above the loudest mel band of full-scale audio
(+7 dB with slaney-normalised filters, +21 dB with deezer's unnormalised ones); values are rounded to the
nearest code (error <= 0.25 dB) and clipped above."""
MEL_SHA1_KEY = "mel_sha1"  # metadata key of a track's stored mel bytes' sha1, which verify checks

_DTYPES = {PCM_ENCODING: np.dtype("<i2"), "logmel_f16": np.dtype("<f2"), "logmel_u8": np.dtype("u1")}


@dataclass(frozen=True)
class Layout:
    """A set's per-track payload: its encoding and, for log-mel, the front-end settings it was computed with."""

    encoding: str = PCM_ENCODING
    mel: MelSettings | None = None

    def __post_init__(self) -> None:
        if self.encoding not in _DTYPES:
            raise ValueError(f"unknown shard encoding {self.encoding!r}; this code reads {', '.join(_DTYPES)}")
        if self.is_mel != (self.mel is not None):
            raise ValueError(f"encoding {self.encoding!r}: mel settings must be given exactly for log-mel layouts")

    @classmethod
    def logmel(cls, encoding: MelEncoding, settings: MelSettings) -> Layout:
        """The log-mel layout in `encoding` ("fp16" or "uint8") of a front end with `settings`."""
        if encoding not in MEL_ENCODINGS:
            raise ValueError(f"log-mel encoding {encoding!r}: choose one of {', '.join(MEL_ENCODINGS)}")
        return cls(MEL_ENCODINGS[encoding], settings)

    @property
    def is_mel(self) -> bool:
        return self.encoding != PCM_ENCODING

    @property
    def member(self) -> str:
        """The tar member extension of a track's payload."""
        return "mel" if self.is_mel else "pcm"

    @property
    def hash_key(self) -> str:
        """The metadata key holding the sha1 of a track's payload bytes."""
        return MEL_SHA1_KEY if self.is_mel else PCM_SHA1_KEY

    @property
    def dtype(self) -> np.dtype:
        return _DTYPES[self.encoding]

    @property
    def unit_shape(self) -> tuple[int, ...]:
        """Shape of one unit: () for a sample, (n_mels,) for a frame."""
        return (self.mel.n_mels,) if self.mel is not None else ()

    @property
    def unit_bytes(self) -> int:
        return math.prod(self.unit_shape) * self.dtype.itemsize

    def units(self, num_samples: int | np.ndarray) -> int | np.ndarray:
        """Units stored for a track (or a crop) of `num_samples` samples."""
        return num_samples // self.mel.hop_length + 1 if self.mel is not None else num_samples

    def payload_bytes(self, num_samples: int | np.ndarray) -> int | np.ndarray:
        return self.units(num_samples) * self.unit_bytes

    def gap_units(self, min_samples: int, max_samples: int) -> tuple[int, int]:
        """(min, max) start-to-start distance in units: a gap in samples, rounded inwards to whole hops."""
        if self.mel is None:
            return min_samples, max_samples
        hop = self.mel.hop_length
        return -(-min_samples // hop), max_samples // hop

    def batch_shape(self, batch_size: int, crop_units: int) -> tuple[int, ...]:
        """Shape of a batch of pairs: (B, 2, crop) samples or (B, 2, crop frames, n_mels)."""
        return (batch_size, 2, crop_units, *self.unit_shape)

    def encode(self, pcm: np.ndarray) -> bytes:
        """A track's payload from its int16 PCM: the samples, or its log-mel in this layout's encoding."""
        if self.mel is None:
            return pcm.astype("<i2", copy=False).tobytes()
        mel = self.mel
        wave = torch.from_numpy(pcm.astype(np.float32)).mul_(1.0 / PCM_SCALE)[None]
        with torch.inference_mode():
            db = power_db(wave, mel.window(), mel.filterbank(), mel.hop_length)[0, 0].T.contiguous()  # (frames, n_mels)
            if self.encoding == MEL_ENCODINGS["uint8"]:
                codes = db.sub_(UINT8_DB_MIN).mul_(1.0 / UINT8_DB_STEP).round_().clamp_(0, 255)
                return codes.to(torch.uint8).numpy().tobytes()
            return db.to(torch.float16).numpy().astype("<f2", copy=False).tobytes()

    def decode(self, raw: bytes | np.ndarray) -> np.ndarray:
        """A payload's values as stored: int16 samples, or (frames, n_mels) fp16 dB or uint8 codes."""
        values = np.frombuffer(raw, dtype=self.dtype) if isinstance(raw, bytes) else raw
        return values.reshape(-1, *self.unit_shape)

    def to_model_input(self, batch: torch.Tensor) -> torch.Tensor:
        """A batch as read -> float32 model input on its device: waveforms in [-1, 1), or mel dB laid out as
        (..., 1, n_mels, frames) for the backbone's log-mel entry."""
        if self.mel is None:
            return batch.float().mul_(1.0 / PCM_SCALE)
        if self.encoding == MEL_ENCODINGS["uint8"]:
            db = batch.float().mul_(UINT8_DB_STEP).add_(UINT8_DB_MIN)
        else:
            db = batch.float()
        return db.transpose(-1, -2).unsqueeze(-3)

    def to_json(self) -> dict[str, Any] | None:
        """What a log-mel track's metadata records of its layout; None for PCM."""
        return {"encoding": self.encoding, "mel": self.mel.to_json()} if self.mel is not None else None

    @classmethod
    def from_json(cls, body: dict[str, Any] | None) -> Layout:
        return cls(body["encoding"], MelSettings.from_json(body["mel"])) if body else cls()

    def describe(self) -> str:
        """The layout in a few words, for summaries and errors."""
        return f"{self.encoding} ({self.mel.describe()})" if self.mel is not None else self.encoding


PCM_LAYOUT = Layout()
"""The layout of every set made before log-mel sets existed, and the default."""


def payload_sha1(raw: bytes) -> str:
    """Hex sha1 of a track's payload as stored (for PCM the same as `data_prep.pcm.pcm_sha1`)."""
    return hashlib.sha1(raw).hexdigest()
