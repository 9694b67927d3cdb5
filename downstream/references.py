"""Published figures to compare a reproduction with (configs/references.toml), matched to tracked runs.

A reference holds a study's score for a setting named in run params (task, pretext, pretrain_epochs, embed_dim,
...; ``probe`` is "linear" or "mlp"). It belongs next to a group of evaluation runs when every key of its
setting has the same value in all of the group's runs: runs that do not record a setting are never compared
with a figure that depends on it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from musicssl.data_prep.entry import config_dir
from musicssl.downstream.tracking import EvaluationRecord

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REFERENCES_FILE = config_dir() / "references.toml"
PROBE_KEY = "probe"
"""Setting key for the probe: "linear" (run param probe_hidden_dim None) or "mlp" (a hidden layer)."""


@dataclass(frozen=True)
class Reference:
    """One published score row: where it is printed, the setting it was measured in, its metric values."""

    document: str
    table: str
    row: str
    column: str
    setting: dict[str, str]
    values: dict[str, float]
    note: str = ""

    @property
    def label(self) -> str:
        """Short name of the table it comes from, e.g. "thesis A.1"."""
        return f"{self.document} {self.table}"

    @property
    def source(self) -> str:
        """Full citation inside the documents, e.g. "thesis Table A.1, row 300 epochs, column CLMR"."""
        column = f", column {self.column}" if self.column else ""
        return f"{self.document} Table {self.table}, row {self.row}{column}"


@dataclass(frozen=True)
class Published:
    """A reference's value of one metric, for a table cell or a figure."""

    reference: Reference
    value: float
    x: float | None = field(default=None)
    """The reference's value of a swept param, for sweep figures."""


def load_references(path: Path = REFERENCES_FILE) -> list[Reference]:
    """Every [[score]] of the references file, settings as strings (the way MLflow returns run params)."""
    with path.open("rb") as handle:
        scores = tomllib.load(handle).get("score", [])
    return [
        Reference(
            document=entry["source"]["document"],
            table=str(entry["source"]["table"]),
            row=str(entry["source"].get("row", "")),
            column=str(entry["source"].get("column", "")),
            setting={key: str(value) for key, value in entry["setting"].items()},
            values={metric: float(value) for metric, value in entry["values"].items()},
            note=entry.get("note", ""),
        )
        for entry in scores
    ]


def probe_kind(params: Mapping[str, str]) -> str:
    """ "linear" for a run without a probe hidden layer, "mlp" for one with it."""
    return "linear" if params.get("probe_hidden_dim", "None") in ("None", "") else "mlp"


def common_params(records: Sequence[EvaluationRecord]) -> dict[str, str]:
    """The params every record has with one value, plus the probe kind when all agree on it."""
    if not records:
        return {}
    common = dict(records[0].params)
    for record in records[1:]:
        common = {key: value for key, value in common.items() if record.params.get(key) == value}
    kinds = {probe_kind(record.params) for record in records}
    if len(kinds) == 1:
        common[PROBE_KEY] = kinds.pop()
    return common


def same_value(run_value: str, reference_value: str) -> bool:
    """Equal as numbers when both are numbers ("300" and "300.0"), else as strings."""
    try:
        return float(run_value) == float(reference_value)
    except ValueError:
        return run_value == reference_value


def matches(reference: Reference, params: Mapping[str, str], ignore: Iterable[str] = ()) -> bool:
    """Whether the runs with these common params were measured in the reference's setting (keys in ``ignore``
    aside, e.g. a swept param)."""
    skipped = set(ignore)
    return all(
        key in params and same_value(params[key], value)
        for key, value in reference.setting.items()
        if key not in skipped
    )


def published_for(
    references: Iterable[Reference], params: Mapping[str, str], metric: str, swept: str | None = None
) -> list[Published]:
    """The references matching runs with ``params`` that report ``metric``; with ``swept``, those that give the
    swept param a numeric value, whatever it is, with that value as ``x``."""
    found = []
    for reference in references:
        if metric not in reference.values or not matches(reference, params, ignore=() if swept is None else (swept,)):
            continue
        if swept is None:
            found.append(Published(reference, reference.values[metric]))
        elif is_number(reference.setting.get(swept, "")):
            found.append(Published(reference, reference.values[metric], float(reference.setting[swept])))
    return found


def is_number(text: str) -> bool:
    """Whether a param or setting value parses as a float."""
    try:
        float(text)
    except ValueError:
        return False
    return True
