"""Fuzz targets and the harness they share with the test suite (``tests/*/test_fuzz*.py``,
``tests/protocol/test_corpus_replay.py``). Run them with ``nox -s fuzz``."""
