"""The read side of a shard set: anchor/positive pairs for training, by random access or as a stream.

`config` (the one PairsConfig), `epoch_plan` (which track each pair of each batch comes from), `batches` (where a
pair's crops lie, the int16 batches), `counters` (what the readers read), `reader` (the interface both readers
share), `random_access` and `stream` (the two readers), `chooser` (opens the one a set allows).
"""
