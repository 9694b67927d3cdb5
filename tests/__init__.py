"""The test suite, a package so that test modules may share basenames across folders (tests/sharding/test_cli.py,
tests/data_prep/test_cli.py) and import their helpers as `tests.support.*` with the repository root on sys.path."""
