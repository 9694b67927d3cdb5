"""The HEAR 2021 common API over any backbone `trainer.export.load_backbone` reads.

    model = load_model("backbone.safetensors")            # or a checkpoint folder, or a deezer .pt
    embeddings, timestamps = get_timestamp_embeddings(audio, model)   # (n, T, D), (n, T) in ms
    scenes = get_scene_embeddings(audio, model)                       # (n, D)

`audio` is a float tensor (n_sounds, n_samples) in [-1, 1] at `model.sample_rate`, on any device. Outputs are
float32 on the model's device (the validator moves the model with `.to(device)`).

Timestamp embeddings: one every `model.hop_ms` (default 50 ms, HEAR's suggestion for transcription-like
tasks). The audio is zero-padded by half a window on each side and cut into backbone windows every hop
(`sharding.windows.iter_windows`), so the window of timestamp t (ms) covers [t - window/2, t + window/2) of the
sound: the timestamp is the centre of the window whose embedding it labels. Timestamps are i * hop for
i = 0 .. n_samples // hop (1 + n_samples // hop per sound, the first at 0 ms), the same for every sound.
With the paper's 4 s ResNet each timestamp embedding sees 4 s of context around it.

Scene embeddings: the mean of the embeddings of the sound's non-overlapping windows, exactly what
`musicssl-embed` gives for a file (`extract_task.track_windows`: the tail shorter than a window is dropped, a
sound shorter than one window is zero-padded at the end). Averaging the 50 ms-hop timestamp embeddings instead
would cost window/hop (80 for 4 s) times more forward passes for nearly the same vector.

Memory stays bounded: windows are built lazily and embedded `model.batch_size` at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from musicssl.downstream.extract_task import (
    DEFAULT_BATCH_SIZE,
    default_device,
    embed_tracks,
    module_device,
    track_windows,
)
from musicssl.sharding.windows import iter_windows
from musicssl.trainer.export import load_backbone

DEFAULT_HOP_MS = 50.0
NO_MODEL_FILE = (
    "load_model needs a model file: pass a backbone.safetensors exported by train.py, a checkpoint folder "
    "runs/.../checkpoints/step-*, or a deezer .pt checkpoint"
)


class HearModel(nn.Module):
    """A frozen backbone with HEAR's attributes: `sample_rate`, `scene_embedding_size` and
    `timestamp_embedding_size` (both the backbone's embed_dim), plus the hop between timestamps and the number
    of windows per forward pass."""

    def __init__(self, backbone: nn.Module, hop_ms: float = DEFAULT_HOP_MS, batch_size: int = DEFAULT_BATCH_SIZE):
        super().__init__()
        self.backbone = backbone.requires_grad_(False).eval()
        self.sample_rate = int(backbone.sample_rate)
        self.scene_embedding_size = int(backbone.embed_dim)
        self.timestamp_embedding_size = int(backbone.embed_dim)
        self.window = int(backbone.num_samples)
        self.hop = round(hop_ms * self.sample_rate / 1000)
        if self.hop < 1:
            raise ValueError(f"hop_ms={hop_ms} is under one sample at {self.sample_rate} Hz")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self.eval()

    @property
    def hop_ms(self) -> float:
        """The interval between timestamps in ms (the hop in whole samples)."""
        return self.hop * 1000 / self.sample_rate

    def __repr__(self) -> str:
        """One line (the validator prints the model): the backbone's class and the HEAR geometry."""
        return (
            f"HearModel({type(self.backbone).__name__}, sample_rate={self.sample_rate}, "
            f"embedding_size={self.scene_embedding_size}, window={self.window}, hop={self.hop} samples)"
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """The backbone: (N, window) -> (N, D)."""
        return self.backbone(windows)


def load_model(
    model_file_path: str = "", hop_ms: float = DEFAULT_HOP_MS, batch_size: int = DEFAULT_BATCH_SIZE
) -> HearModel:
    """The backbone at `model_file_path` (export, checkpoint folder or deezer .pt) as a HEAR model in eval mode,
    on CUDA when available."""
    if not model_file_path:
        raise ValueError(NO_MODEL_FILE)
    backbone, _ = load_backbone(model_file_path)
    return HearModel(backbone, hop_ms, batch_size).to(default_device())


def timestamps_ms(n_samples: int, model: HearModel) -> np.ndarray:
    """The centres (ms) of the timestamp windows of a sound of `n_samples`: i * hop, i = 0 .. n_samples // hop."""
    return np.arange(n_samples // model.hop + 1, dtype=np.float64) * model.hop * 1000 / model.sample_rate


def centred_windows(sound: np.ndarray, model: HearModel) -> Iterator[np.ndarray]:
    """The windows centred on each timestamp, in order: the sound zero-padded by half a window each side
    (window - window // 2 on the right, so the count is 1 + n_samples // hop), cut every hop."""
    left = model.window // 2
    padded = np.pad(sound, (left, model.window - left))
    return iter_windows(padded, model.window, model.hop)


def _chunks(windows: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    while chunk := list(itertools.islice(windows, size)):
        yield np.stack(chunk)


def _as_numpy(audio: torch.Tensor, model: HearModel) -> np.ndarray:
    if audio.dim() != 2:
        raise ValueError(
            f"audio must be (n_sounds, n_samples) at {model.sample_rate} Hz, got shape {tuple(audio.shape)}"
        )
    return audio.detach().to("cpu", torch.float32).numpy()


def get_timestamp_embeddings(audio: torch.Tensor, model: HearModel) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings (n_sounds, n_timestamps, D) float32 and their timestamps (n_sounds, n_timestamps) in ms,
    every `model.hop_ms`, each the centre of its window (see the module docstring)."""
    sounds = _as_numpy(audio, model)
    stamps = timestamps_ms(sounds.shape[1], model)
    chunks = (chunk for sound in sounds for chunk in _chunks(centred_windows(sound, model), model.batch_size))
    per_chunk = list(embed_tracks(model.backbone, chunks, model.batch_size))
    flat = np.concatenate(per_chunk) if per_chunk else np.zeros((0, model.timestamp_embedding_size), np.float32)
    device = module_device(model.backbone)
    embeddings = torch.from_numpy(flat.reshape(len(sounds), len(stamps), -1)).to(device, torch.float32)
    timestamps = torch.from_numpy(np.tile(stamps, (len(sounds), 1))).to(device, torch.float32)
    return embeddings, timestamps


def get_scene_embeddings(audio: torch.Tensor, model: HearModel) -> torch.Tensor:
    """Embeddings (n_sounds, D) float32: each sound's mean over its non-overlapping windows."""
    sounds = _as_numpy(audio, model)
    per_sound = embed_tracks(model.backbone, (track_windows(s, model.window) for s in sounds), model.batch_size)
    means = [windows.mean(axis=0) for windows in per_sound]
    scenes = np.stack(means) if means else np.zeros((0, model.scene_embedding_size), np.float32)
    return torch.from_numpy(scenes.astype(np.float32, copy=False)).to(module_device(model.backbone))
