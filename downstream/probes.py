"""Probes trained on frozen embeddings: a linear layer (paper) or a 2-layer MLP (thesis), multi-label BCE.

Three protocols, selected by name and overridable field by field:
- "paper" (ICASSP 2024): linear probe on track-level embeddings (chunks averaged per track), batch 256,
  25 epochs x 128 steps, Adam (lr 1e-3: the paper does not state it), keep the best validation-loss weights.
- "thesis" (Hesse & Lof 2023, following CLMR): chunk-level training, chunk predictions averaged per track at
  prediction time, Adam lr 1e-3, weight decay 1e-6, ReduceLROnPlateau(factor 0.1, patience 5) and early
  stopping on the validation loss (patience 10, at most 200 epochs of one pass each, as in CLMR), best
  weights.
- "marble": the MARBLE benchmark's constrained probe (a43992899/MARBLE-Benchmark at d9300e3, 2025-05-18:
  benchmark/tasks/MTT/MTT_base_config.yaml, benchmark/models/probers.py): track-level features (the clip's
  mean), one 512-unit hidden layer with dropout 0.2, Adam (no weight decay), batch 64, at most 100 epochs,
  ReduceLROnPlateau(max, factor 0.5, patience 3) and early stopping (patience 10) on the validation ROC-AUC,
  whose best epoch is kept; the learning rate is selected on the validation ROC-AUC from a grid (the repo's
  hp_search grid 1e-4 ... 1e-2, extended to 5e-5 as the issue's "5e-5 ... 1e-2" reads MARBLE's constrained
  track). The test split plays no part in the selection.

Embeddings are standardised with the mean and standard deviation of the training examples (tracks or chunks,
whichever the probe is trained on; a constant dimension keeps std 1), and the same statistics are applied to
validation and test data so that nothing leaks from them. The validation loss is measured at the training
level. Training is deterministic for a given seed on a given device.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from torch import nn

from musicssl.downstream.labelled_embeddings import LabelledEmbeddings, average_per_track
from musicssl.downstream.metrics import macro_scores

Aggregation = Literal["track", "chunk"]
Criterion = Literal["loss", "roc_auc"]
PREDICT_BATCH = 8192


@dataclass(frozen=True)
class ProbeConfig:
    """Probe architecture and training schedule; see PROTOCOLS for the two published settings."""

    hidden_dim: int | None = None
    dropout: float = 0.0
    aggregation: Aggregation = "track"
    batch_size: int = 256
    max_epochs: int = 25
    steps_per_epoch: int | None = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    plateau_patience: int | None = None
    plateau_factor: float = 0.1
    early_stopping_patience: int | None = None
    select_on: Criterion = "loss"
    """Validation criterion for the kept epoch, the plateau schedule, early stopping and the learning-rate
    grid: the loss (lower is better) or the macro tag-wise ROC-AUC (higher is better)."""
    learning_rates: tuple[float, ...] = ()
    """Grid the learning rate is selected from on the validation split; empty: ``learning_rate`` only."""
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        """Reject settings that cannot train, naming the field."""
        if self.aggregation not in ("track", "chunk"):
            raise ValueError(f"aggregation must be 'track' or 'chunk', got {self.aggregation!r}")
        if self.hidden_dim is not None and self.hidden_dim < 1:
            raise ValueError(f"hidden_dim must be None (linear probe) or >= 1, got {self.hidden_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.batch_size < 1 or self.max_epochs < 1:
            raise ValueError(f"batch_size and max_epochs must be >= 1, got {self.batch_size}, {self.max_epochs}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be None (one pass) or >= 1, got {self.steps_per_epoch}")
        if self.select_on not in ("loss", "roc_auc"):
            raise ValueError(f"select_on must be 'loss' or 'roc_auc', got {self.select_on!r}")
        if any(rate <= 0 for rate in self.learning_rates):
            raise ValueError(f"learning_rates must be positive, got {self.learning_rates}")


PROTOCOLS: dict[str, ProbeConfig] = {
    "paper": ProbeConfig(),
    "thesis": ProbeConfig(
        aggregation="chunk",
        max_epochs=200,
        steps_per_epoch=None,
        weight_decay=1e-6,
        plateau_patience=5,
        early_stopping_patience=10,
    ),
    "marble": ProbeConfig(
        hidden_dim=512,
        dropout=0.2,
        aggregation="track",
        batch_size=64,
        max_epochs=100,
        steps_per_epoch=None,
        weight_decay=0.0,
        plateau_patience=3,
        plateau_factor=0.5,
        early_stopping_patience=10,
        select_on="roc_auc",
        learning_rates=(5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2),
    ),
}


def probe_config(protocol: str, **overrides: object) -> ProbeConfig:
    """The named protocol's config with some fields replaced, e.g. probe_config("thesis", hidden_dim=512)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown probe protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    return replace(PROTOCOLS[protocol], **overrides)


def build_probe(in_dim: int, num_tags: int, hidden_dim: int | None, dropout: float) -> nn.Module:
    """Linear layer (hidden_dim None) or Linear-ReLU-(Dropout)-Linear MLP producing tag logits."""
    if hidden_dim is None:
        return nn.Linear(in_dim, num_tags)
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim), nn.ReLU()]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(hidden_dim, num_tags))
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Standardiser:
    """Per-dimension mean and standard deviation of the training examples."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, examples: np.ndarray) -> Standardiser:
        """Statistics of training examples (M, D); a constant dimension gets std 1 instead of 0."""
        std = examples.std(axis=0)
        return cls(mean=examples.mean(axis=0), std=np.where(std < 1e-8, 1.0, std).astype(np.float32))

    def __call__(self, examples: np.ndarray) -> np.ndarray:
        """Standardise examples (M, D) with the training statistics."""
        return ((examples - self.mean) / self.std).astype(np.float32)


def training_examples(data: LabelledEmbeddings, aggregation: Aggregation) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets the probe trains on: one row per track, or one per chunk with its track's tags."""
    if aggregation == "track":
        return data.track_embeddings(), data.targets
    return data.chunks, data.targets[data.chunk_track_index()]


@dataclass
class TrainingHistory:
    """Per-epoch losses and learning rate, the epoch whose weights were kept, and whether it stopped early."""

    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    learning_rate: list[float] = field(default_factory=list)
    valid_roc_auc: list[float] = field(default_factory=list)
    """Validation macro tag-wise ROC-AUC per epoch (x100), measured when the probe selects on it."""
    best_epoch: int = -1
    stopped_early: bool = False

    def valid_score(self, criterion: Criterion, epoch: int | None = None) -> float:
        """The validation criterion at ``epoch`` (default: the kept epoch)."""
        values = self.valid_loss if criterion == "loss" else self.valid_roc_auc
        return values[self.best_epoch if epoch is None else epoch]


@dataclass
class TrainedProbe:
    """A trained probe with its standardiser; predicts per-track tag probabilities."""

    model: nn.Module
    standardiser: Standardiser
    config: ProbeConfig
    history: TrainingHistory

    def predict(self, data: LabelledEmbeddings) -> np.ndarray:
        """Tag probabilities (N, C) per track; in chunk mode, the mean of the track's chunk probabilities."""
        if self.config.aggregation == "track":
            return self._probabilities(data.track_embeddings())
        return average_per_track(self._probabilities(data.chunks), data.offsets)

    @torch.no_grad()
    def _probabilities(self, examples: np.ndarray) -> np.ndarray:
        """Sigmoid of the logits of standardised examples, computed in batches."""
        self.model.eval()
        inputs = torch.from_numpy(self.standardiser(examples))
        outputs = [
            torch.sigmoid(self.model(batch.to(self.config.device))).cpu() for batch in inputs.split(PREDICT_BATCH)
        ]
        return torch.cat(outputs).numpy()


def _batches(rng: np.random.Generator, num_examples: int, batch_size: int, steps: int) -> Iterator[np.ndarray]:
    """Index batches from successive shuffles of the examples, dropping each shuffle's incomplete tail."""
    batch_size = min(batch_size, num_examples)
    order = rng.permutation(num_examples)
    position = 0
    for _ in range(steps):
        if position + batch_size > num_examples:
            order, position = rng.permutation(num_examples), 0
        yield order[position : position + batch_size]
        position += batch_size


def better(criterion: Criterion, score: float, than: float) -> bool:
    """Whether ``score`` beats ``than``: a lower loss or a higher ROC-AUC."""
    return score < than if criterion == "loss" else score > than


@torch.no_grad()
def _valid_roc_auc(model: nn.Module, inputs: torch.Tensor, targets: np.ndarray) -> float:
    """Macro tag-wise ROC-AUC (x100) of the model's validation scores, without dropout."""
    model.eval()
    scores = torch.cat([model(batch).cpu() for batch in inputs.split(PREDICT_BATCH)]).numpy()
    return macro_scores(targets, scores, names=("roc_auc_tagwise",))["roc_auc_tagwise"]


@torch.no_grad()
def _mean_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean BCE of the whole set, evaluated in batches without dropout."""
    model.eval()
    total = sum(
        nn.functional.binary_cross_entropy_with_logits(model(x), y, reduction="sum").item()
        for x, y in zip(inputs.split(PREDICT_BATCH), targets.split(PREDICT_BATCH), strict=True)
    )
    return total / targets.numel()


def _train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    batches: Iterator[np.ndarray],
) -> float:
    """One epoch of BCE steps over the given index batches; returns the mean training loss."""
    model.train()
    losses = []
    for batch in batches:
        index = torch.from_numpy(batch).to(inputs.device)
        loss = nn.functional.binary_cross_entropy_with_logits(model(inputs[index]), targets[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses).mean().item()


def train_probe(train: LabelledEmbeddings, valid: LabelledEmbeddings, config: ProbeConfig) -> TrainedProbe:
    """Train a probe on `train` at ``config.learning_rate``, keep the weights of the best validation epoch
    (``config.select_on``), and return it."""
    if valid.num_tracks == 0 or train.num_tracks == 0:
        raise ValueError(
            f"probe needs training and validation tracks, got {train.num_tracks} and {valid.num_tracks}: "
            "the best checkpoint is chosen on the validation loss"
        )
    if train.num_tags != valid.num_tags or train.dim != valid.dim:
        raise ValueError(
            f"train ({train.dim}-d, {train.num_tags} tags) and valid "
            f"({valid.dim}-d, {valid.num_tags} tags) embeddings differ"
        )
    train_x, train_y = training_examples(train, config.aggregation)
    valid_x, valid_y = training_examples(valid, config.aggregation)
    standardiser = Standardiser.fit(train_x)
    device = torch.device(config.device)

    def to_tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(device)

    train_inputs, train_targets = to_tensor(standardiser(train_x)), to_tensor(train_y)
    valid_inputs, valid_targets = to_tensor(standardiser(valid_x)), to_tensor(valid_y)
    steps = config.steps_per_epoch or -(-len(train_x) // config.batch_size)
    rng = np.random.default_rng(config.seed)
    history = TrainingHistory()
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(config.seed)
        model = build_probe(train.dim, train.num_tags, config.hidden_dim, config.dropout).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
        criterion = config.select_on
        scheduler = (
            torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer,
                mode="min" if criterion == "loss" else "max",
                factor=config.plateau_factor,
                patience=config.plateau_patience,
            )
            if config.plateau_patience is not None
            else None
        )
        best_state = copy.deepcopy(model.state_dict())
        for epoch in range(config.max_epochs):
            batches = _batches(rng, len(train_x), config.batch_size, steps)
            history.train_loss.append(_train_epoch(model, optimizer, train_inputs, train_targets, batches))
            history.valid_loss.append(_mean_loss(model, valid_inputs, valid_targets))
            if criterion == "roc_auc":
                history.valid_roc_auc.append(_valid_roc_auc(model, valid_inputs, valid_y))
            history.learning_rate.append(optimizer.param_groups[0]["lr"])
            score = history.valid_score(criterion, epoch)
            if history.best_epoch < 0 or better(criterion, score, history.valid_score(criterion)):
                history.best_epoch = epoch
                best_state = copy.deepcopy(model.state_dict())
            if scheduler is not None:
                scheduler.step(score)
            patience = config.early_stopping_patience
            if patience is not None and epoch - history.best_epoch >= patience:
                history.stopped_early = epoch + 1 < config.max_epochs
                break
        model.load_state_dict(best_state)
    return TrainedProbe(model=model.eval(), standardiser=standardiser, config=config, history=history)


def fit_probe(
    train: LabelledEmbeddings, valid: LabelledEmbeddings, config: ProbeConfig
) -> tuple[TrainedProbe, dict[float, float]]:
    """Train the probe, selecting its learning rate on the validation split when ``config.learning_rates``
    gives a grid: one probe per rate, the best validation score wins (ties: the first in the grid).

    Returns the chosen probe (its config holds the chosen ``learning_rate``) and every candidate's validation
    score (``config.select_on`` at its kept epoch); no scores without a grid.
    """
    if not config.learning_rates:
        return train_probe(train, valid, config), {}
    candidates = [train_probe(train, valid, replace(config, learning_rate=rate)) for rate in config.learning_rates]
    scores = {probe.config.learning_rate: probe.history.valid_score(config.select_on) for probe in candidates}
    best = candidates[0]
    for probe in candidates[1:]:
        if better(
            config.select_on, probe.history.valid_score(config.select_on), best.history.valid_score(config.select_on)
        ):
            best = probe
    return best, scores
