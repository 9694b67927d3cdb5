"""Selecting evaluation records for a comparison: by param values, full data only, grouped, pooled."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from musicssl.downstream.tracking import EvaluationRecord


def select(records: Iterable[EvaluationRecord], where: Mapping[str, str]) -> list[EvaluationRecord]:
    """The records whose params equal every given value."""
    return [record for record in records if all(record.params.get(k) == v for k, v in where.items())]


def full_data(records: Iterable[EvaluationRecord]) -> list[EvaluationRecord]:
    """The records trained on the whole training set."""
    return [record for record in records if float(record.params["fraction"]) == 1.0]


def group(records: Iterable[EvaluationRecord], *params: str) -> dict[tuple[str, ...], list[EvaluationRecord]]:
    """Records grouped by the values of some params, groups in sorted order."""
    groups: dict[tuple[str, ...], list[EvaluationRecord]] = defaultdict(list)
    for record in records:
        groups[tuple(record.params[name] for name in params)].append(record)
    return dict(sorted(groups.items()))


def pooled(records: Sequence[EvaluationRecord], metric: str) -> np.ndarray:
    """Bootstrap values of a metric from all the records, concatenated (NaN values dropped)."""
    values = np.concatenate([record.resamples[metric] for record in records])
    return values[~np.isnan(values)]
