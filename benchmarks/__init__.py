"""Measured, reproducible speed figures (docs/benchmarks.md); run from the repository root as
`python -m benchmarks.NAME [--json]`. `benchmarks.harness` holds what they share: timing, `--json`, tables."""
