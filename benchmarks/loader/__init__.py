"""The pair loader benchmark (`python -m benchmarks.loader_speed`), one module per measurement family:
`speed` (pairs/s, resume), `remote` (HTTP), `page_cache` (cold against warm), `composition` (same-track pairs
per batch), `scale` (a simulated large index); `common` holds the settings, the speed row and the readers."""
