"""Presets: TOML files in configs/presets that set TrainConfig defaults before CLI flags override them.

A preset may hold a recipe per pretext, `[recipes.NAME]` tables applied over the rest of the preset when the run's
pretext is NAME (short runs need other settings per method: the demo preset, docs/benchmarks.md)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

from musicssl.data_prep.entry import config_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

PRESET_DIR = config_dir() / "presets"


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_preset(name_or_path: str) -> dict[str, Any]:
    """The nested dict of a preset given by name (configs/presets/NAME.toml) or by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.toml"
    if not path.exists():
        raise FileNotFoundError(
            f"preset {name_or_path!r} not found; choose one of {available_presets()} or give a .toml path"
        )
    with path.open("rb") as f:
        return tomllib.load(f)


RECIPES = "recipes"


def split_recipes(preset: dict[str, Any], pretexts: Iterable[str], where: str) -> tuple[dict[str, Any], dict]:
    """A preset's settings without its `[recipes.NAME]` tables, and those tables by pretext name."""
    settings = dict(preset)
    recipes = settings.pop(RECIPES, {})
    unknown = sorted(set(recipes) - set(pretexts))
    if unknown:
        raise KeyError(f"{where}: recipes for unknown pretexts {unknown}; valid: {sorted(pretexts)}")
    return settings, recipes


def apply_overrides(config: Any, overrides: dict[str, Any], where: str = "preset") -> Any:
    """A copy of a dataclass with the (nested) values of `overrides` set; unknown keys are an error."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in fields:
            raise KeyError(f"{where}: unknown setting {key!r}; valid here: {sorted(fields)}")
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = apply_overrides(current, value, f"{where}.{key}")
        elif isinstance(current, tuple) and isinstance(value, list):
            changes[key] = tuple(value)
        elif isinstance(value, list) and current is not None and isinstance(current, list):
            changes[key] = list(value)
        else:
            changes[key] = value
    updated = dataclasses.replace(config, **changes)
    check_choices(updated, where)
    return updated


def check_choices(config: Any, where: str) -> None:
    """Refuse a field annotated ``Literal[...]`` whose value is not one of its choices (tyro checks flags; values
    from a preset, a sweep or a dict of overrides would otherwise pass silently)."""
    for name, hint in get_type_hints(type(config)).items():
        value = getattr(config, name)
        if get_origin(hint) is Literal and value not in get_args(hint):
            raise ValueError(f"{where}: {name} must be one of {get_args(hint)}, got {value!r}")
