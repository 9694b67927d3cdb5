"""Downstream evaluation of frozen embeddings: probes, tagging metrics, bootstrap, limited data, comparison.

Modules: `embeddings` (labelled chunk/track embeddings), `metrics`, `bootstrap`, `limited_data`, `probes`,
`quick_eval` (kNN / ridge during pre-training), `evaluation` (one task end to end), `tracking` (MLflow),
`plots` and `compare` (`python -m downstream.compare`).
"""
