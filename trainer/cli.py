"""`train.py` command line: pick a preset (`--preset paper`), then any flag overrides it."""

from __future__ import annotations

import tyro

from musicssl.trainer.config import TrainConfig
from musicssl.trainer.presets import apply_overrides, available_presets, load_preset, split_recipes
from musicssl.trainer.pretexts import PRETEXTS


def split_preset(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take `--preset NAME` (or `--preset=NAME`) out of argv; tyro parses the rest."""
    rest: list[str] = []
    preset = None
    args = iter(argv)
    for arg in args:
        if arg == "--preset":
            preset = next(args, None)
            if preset is None:
                raise SystemExit(f"--preset needs a name: one of {available_presets()} or a .toml path")
        elif arg.startswith("--preset="):
            preset = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return preset, rest


def parse_config(argv: list[str]) -> tuple[TrainConfig, int | None]:
    """The TrainConfig of a command line, and the optional --stop-after-steps. The preset's recipe for the run's
    pretext applies over the preset, and flags over both (so the command line is parsed twice when there is one)."""
    preset, rest = split_preset(argv)
    defaults, recipes = TrainConfig(), {}
    if preset is not None:
        settings, recipes = split_recipes(load_preset(preset), PRETEXTS, where=f"preset {preset}")
        defaults = apply_overrides(defaults, settings, where=f"preset {preset}")
    stop_after, rest = split_stop_after(rest)
    description = (
        "Pre-train a music backbone with a self-supervised pretext. "
        f"Presets: {', '.join(available_presets())} "
        "(--preset NAME, default: none; flags given after it override it). --stop-after-steps N stops with a "
        "checkpoint after N steps, as a pre-emption would; the same command resumes."
    )
    config = tyro.cli(TrainConfig, default=defaults, args=rest, description=description)
    if config.pretext in recipes:
        where = f"preset {preset}, recipe {config.pretext}"
        defaults = apply_overrides(defaults, recipes[config.pretext], where=where)
        config = tyro.cli(TrainConfig, default=defaults, args=rest, description=description)
    return config, stop_after


def split_stop_after(argv: list[str]) -> tuple[int | None, list[str]]:
    """Take `--stop-after-steps N` out of argv (a run-control flag, not a hyperparameter)."""
    if "--stop-after-steps" not in argv:
        return None, argv
    at = argv.index("--stop-after-steps")
    try:
        value = int(argv[at + 1])
    except (IndexError, ValueError):
        raise SystemExit("--stop-after-steps needs a whole number of steps") from None
    return value, argv[:at] + argv[at + 2 :]
