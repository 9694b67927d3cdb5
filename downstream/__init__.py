"""Downstream evaluation of frozen embeddings: probes, tagging metrics, bootstrap, limited data, comparison.

Modules: `labelled_embeddings` (labelled chunk/track embeddings), `extract_task` (a labelled shard set's
embeddings, cached), `embed_files` (embeddings of any audio files), `metrics`, `bootstrap`, `limited_data`,
`probes`, `quick_eval` (kNN / ridge during pre-training), `evaluation` (one task end to end), `tracking` (MLflow),
`plots` and `compare` (`python -m downstream.compare`: the command line over `selection`, `summary_table`,
`differences` and `sweep_report`).
"""
