"""Embeddings of a labelled shard set from a frozen backbone, cached on disk so re-probing never re-extracts.

Every track is cut into non-overlapping windows of the backbone's input length (`sharding.windows`), the
windows of consecutive tracks are batched together through the backbone (inference mode, optional bf16
autocast on CUDA), and each track keeps all its window embeddings: `LabelledEmbeddings.from_chunks` then
serves both the paper's track-level mean and the thesis' chunk-level probes.

Multi-hot targets follow a tag vocabulary: the one given (e.g. an adapter's `tags.txt`, in its order; tags
outside it are ignored) or else the sorted union of the set's tags.

Cache: `<cache_dir>/<key>.npz`, written atomically, where the key is a sha256 over the backbone's weights and
recipe, the shard set's identity (sample rate, shard names and sha256s from index.json), the window length,
the vocabulary given (or "union") and the precision (fp32 or bf16 autocast). The task name is not part of
the key: renaming a task reuses the cache. Each split keeps its track ids, so evaluations can be paired.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from musicssl.data_prep.atomic import write_atomic
from musicssl.data_prep.progress import progress_bar
from musicssl.downstream.labelled_embeddings import LabelledEmbeddings, TaskEmbeddings
from musicssl.downstream.tag_check import check_asked_tags, check_scorable
from musicssl.sharding.format import ShardIndex, TrackMeta
from musicssl.sharding.shard_set import ShardSet
from musicssl.sharding.windows import iter_tracks, iter_windows
from musicssl.trainer.export import BackboneRecipe

SPLITS = ("train", "valid", "test")
CACHE_VERSION = 2  # 2: track ids stored with every split
DEFAULT_BATCH_SIZE = 64

logger = logging.getLogger(__name__)


def default_device() -> str:
    """CUDA when available, else CPU."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/musicssl/embeddings`, by default `~/.cache/musicssl/embeddings`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "musicssl" / "embeddings"


@dataclass(frozen=True)
class ExtractionSettings:
    """How embeddings are computed and where they are cached (cache_dir None: no cache)."""

    batch_size: int = DEFAULT_BATCH_SIZE
    device: str = field(default_factory=default_device)
    bf16: bool = False
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    progress: bool = True

    def __post_init__(self) -> None:
        """Reject settings that cannot run, naming the field."""
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.bf16 and torch.device(self.device).type != "cuda":
            raise ValueError(f"bf16 autocast needs a CUDA device, got device {self.device!r}; drop --bf16")


def prepare_backbone(backbone: nn.Module, settings: ExtractionSettings) -> nn.Module:
    """The backbone frozen in eval mode on the settings' device."""
    return backbone.requires_grad_(False).eval().to(settings.device)


def module_device(module: nn.Module) -> torch.device:
    """The device holding the module's first parameter (CPU for a parameter-free module)."""
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def embed_windows(backbone: nn.Module, windows: np.ndarray, batch_size: int, bf16: bool = False) -> np.ndarray:
    """Embeddings (M, D) float32 of windows (M, T), in batches on the backbone's device, without gradients."""
    device = module_device(backbone)
    outputs = []
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + batch_size]))
            outputs.append(backbone(batch.to(device, non_blocking=True)).float().cpu())
    return torch.cat(outputs).numpy()


def embed_tracks(
    backbone: nn.Module, tracks: Iterable[np.ndarray], batch_size: int, bf16: bool = False
) -> Iterator[np.ndarray]:
    """Window embeddings (n_i, D) of each track's windows (n_i, T), in order; windows of consecutive tracks
    share batches, so short tracks still fill the accelerator."""
    pending: list[np.ndarray] = []
    buffered = 0
    for windows in tracks:
        pending.append(windows)
        buffered += len(windows)
        if buffered >= batch_size:
            yield from _embed_pending(backbone, pending, batch_size, bf16)
            pending, buffered = [], 0
    if pending:
        yield from _embed_pending(backbone, pending, batch_size, bf16)


def _embed_pending(backbone: nn.Module, pending: list[np.ndarray], batch_size: int, bf16: bool) -> Iterator[np.ndarray]:
    """Embed the buffered tracks' windows together and hand them back track by track."""
    embeddings = embed_windows(backbone, np.concatenate(pending), batch_size, bf16)
    yield from np.split(embeddings, np.cumsum([len(windows) for windows in pending])[:-1])


def with_progress(
    per_track: Iterable[np.ndarray], total: int | None, description: str, enabled: bool = True
) -> Iterator[np.ndarray]:
    """Pass per-track embeddings through, showing tracks done and windows per second."""
    windows = 0
    with progress_bar(total=total, desc=description, unit="track", disable=not enabled) as bar:
        for embeddings in per_track:
            windows += len(embeddings)
            bar.update(1)
            elapsed = bar.format_dict["elapsed"]
            if elapsed > 0:
                bar.set_postfix_str(f"{windows / elapsed:.0f} windows/s", refresh=False)
            yield embeddings


def pool_windows(windows: np.ndarray, pooling: str = "mean") -> np.ndarray:
    """One vector from a track's window embeddings (n, D): their mean, or their element-wise max."""
    if pooling == "mean":
        return windows.mean(axis=0)
    if pooling == "max":
        return windows.max(axis=0)
    raise ValueError(f"unknown pooling {pooling!r}; use mean or max")


def track_windows(wave: np.ndarray, window: int, max_windows: int | None = None) -> np.ndarray:
    """The track's non-overlapping windows (n, window), the first `max_windows` only when given."""
    return np.stack(list(itertools.islice(iter_windows(wave, window), max_windows)))


def labelled_windows(
    shards: ShardSet, window: int, max_windows: int | None = None
) -> Iterator[tuple[np.ndarray, TrackMeta]]:
    """(windows (n, window), metadata) of every track of a labelled set; a track with no split is refused."""
    for wave, meta in iter_tracks(shards):
        if meta.split not in SPLITS:
            raise ValueError(
                f"{shards.location}: track {meta.track_id!r} has split {meta.split!r}, evaluation needs "
                f"one of {SPLITS} for every track; fill the manifest's split column and re-run data_prep"
            )
        yield track_windows(wave, window, max_windows), meta


def read_vocabulary(path: Path) -> tuple[str, ...]:
    """Tags of a `tags.txt` (one a line, in target order; blank lines ignored); duplicates are an error."""
    try:
        tags = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError as err:
        raise FileNotFoundError(f"{path}: cannot read the tag vocabulary ({err}); check --tags") from err
    duplicates = sorted({tag for tag in tags if tags.count(tag) > 1})
    if not tags or duplicates:
        raise ValueError(f"{path}: the vocabulary must list distinct tags, one a line (duplicates {duplicates})")
    return tags


def vocabulary_for(tag_lists: Iterable[Sequence[str]], given: Sequence[str] | None) -> tuple[str, ...]:
    """The given vocabulary, else the sorted union of the tracks' tags; an empty one is an error."""
    vocabulary = tuple(given) if given is not None else tuple(sorted(set().union(*map(set, tag_lists))))
    if not vocabulary:
        raise ValueError("no track has tags: give tags in the manifest's tags column and re-run data_prep")
    return vocabulary


def multi_hot(tag_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> np.ndarray:
    """(N, C) float32 targets: 1 where the track has the vocabulary's tag; other tags are ignored."""
    column = {tag: i for i, tag in enumerate(vocabulary)}
    targets = np.zeros((len(tag_lists), len(vocabulary)), dtype=np.float32)
    for row, tags in enumerate(tag_lists):
        targets[row, [column[tag] for tag in tags if tag in column]] = 1.0
    return targets


def assemble_task(
    name: str, per_track: Sequence[np.ndarray], metas: Sequence[TrackMeta], vocabulary: Sequence[str] | None
) -> TaskEmbeddings:
    """Group per-track chunk embeddings by split into a TaskEmbeddings with multi-hot targets."""
    tag_names = vocabulary_for((meta.tags for meta in metas), vocabulary)
    if vocabulary is not None:
        check_asked_tags(vocabulary, {tag for meta in metas for tag in meta.tags}, f"task {name!r}")
    members = {split: [i for i, meta in enumerate(metas) if meta.split == split] for split in SPLITS}
    for split, found in members.items():
        if not found:
            raise ValueError(
                f"task {name!r}: no {split} tracks; evaluation needs train, valid and test tracks "
                "(the manifest's split column)"
            )
    check_scorable(tag_names, {split: [metas[i].tags for i in found] for split, found in members.items()})
    splits = {}
    for split, found in members.items():
        targets = multi_hot([metas[i].tags for i in found], tag_names)
        ids = [metas[i].track_id for i in found]
        splits[split] = LabelledEmbeddings.from_chunks([per_track[i] for i in found], targets, ids)
    return TaskEmbeddings(name=name, tag_names=tag_names, **splits)


def weights_hash(backbone: nn.Module, recipe: BackboneRecipe) -> str:
    """sha256 over the recipe and every state_dict tensor (name, dtype, shape, bytes): the weights' id."""
    digest = hashlib.sha256(recipe.to_json().encode())
    for name, tensor in sorted(backbone.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{flat.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def shard_set_identity(index: ShardIndex) -> str:
    """sha256 over the index's sample rate and its shards' names, track counts and sha256s."""
    body = [index.sample_rate, [(s.name, s.samples, s.sha256) for s in index.shards]]
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()


def cache_key(weights: str, data: str, window: int, vocabulary: Sequence[str] | None, bf16: bool) -> str:
    """The cache file's name: a sha256 over everything the embeddings and targets depend on."""
    body = {
        "version": CACHE_VERSION,
        "weights": weights,
        "data": data,
        "window": window,
        "vocabulary": list(vocabulary) if vocabulary is not None else "union",
        "precision": "bf16" if bf16 else "fp32",
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def save_task(path: Path, task: TaskEmbeddings) -> None:
    """Write the splits' chunks, offsets, targets and the tag names as one .npz, atomically."""
    arrays: dict[str, np.ndarray] = {"tag_names": np.array(task.tag_names, dtype=str)}
    for split in SPLITS:
        data: LabelledEmbeddings = getattr(task, split)
        arrays |= {f"{split}_chunks": data.chunks, f"{split}_offsets": data.offsets}
        arrays[f"{split}_targets"] = data.targets
        if data.track_ids is not None:
            arrays[f"{split}_track_ids"] = np.array(data.track_ids, dtype=str)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def _track_ids(arrays: np.lib.npyio.NpzFile, split: str) -> tuple[str, ...] | None:
    """The split's track ids stored by `save_task`, None for a task saved without them."""
    key = f"{split}_track_ids"
    return tuple(str(track_id) for track_id in arrays[key]) if key in arrays.files else None


def load_task(path: Path, name: str) -> TaskEmbeddings | None:
    """The cached task at `path`, or None when missing or unreadable (then it is extracted again)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as arrays:
            splits = {
                split: LabelledEmbeddings(
                    arrays[f"{split}_chunks"],
                    arrays[f"{split}_offsets"],
                    arrays[f"{split}_targets"],
                    _track_ids(arrays, split),
                )
                for split in SPLITS
            }
            tag_names = tuple(str(tag) for tag in arrays["tag_names"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        logger.warning("%s: unreadable embedding cache (%s); extracting again", path, err)
        return None
    return TaskEmbeddings(name=name, tag_names=tag_names, **splits)


def extract_task(
    backbone: nn.Module,
    recipe: BackboneRecipe,
    shards: ShardSet,
    name: str,
    vocabulary: Sequence[str] | None = None,
    settings: ExtractionSettings | None = None,
) -> TaskEmbeddings:
    """Window embeddings of every track of a labelled shard set, per split, from the cache when present."""
    settings = settings or ExtractionSettings()
    shards.require_sample_rate(backbone.sample_rate)
    index = shards.index
    cache_path = None
    if settings.cache_dir is not None:
        weights, data = weights_hash(backbone, recipe), shard_set_identity(index)
        key = cache_key(weights, data, backbone.num_samples, vocabulary, settings.bf16)
        cache_path = Path(settings.cache_dir).expanduser() / f"{key}.npz"
        cached = load_task(cache_path, name)
        if cached is not None:
            logger.info("embeddings of %s from the cache %s", name, cache_path)
            return cached
    backbone = prepare_backbone(backbone, settings)
    metas: list[TrackMeta] = []

    def windows_of_tracks() -> Iterator[np.ndarray]:
        for windows, meta in labelled_windows(shards, backbone.num_samples):
            metas.append(meta)
            yield windows

    per_track = embed_tracks(backbone, windows_of_tracks(), settings.batch_size, settings.bf16)
    embeddings = list(with_progress(per_track, index.num_tracks, f"embedding {name}", settings.progress))
    task = assemble_task(name, embeddings, metas, vocabulary)
    if cache_path is not None:
        save_task(cache_path, task)
    return task
