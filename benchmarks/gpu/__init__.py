"""The GPU suite's parts (`python -m benchmarks.gpu_suite`): `sizes` (what a run measures and its budgets),
`measure` (how a step and a Trainer run are measured), `model_sections` (step, memory, SampleCNN),
`trainer_sections` (loader, host syncs, DeepSpeed) and `report` (the JSON and the table)."""
