"""Replays every saved fuzz input through its target: the crash inputs ``nox -s fuzz`` saved
under ``tests/corpus/<target>/`` (each a bug that was fixed, kept as a regression test) and the
seed inputs under ``fuzz/seeds/<target>/``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fuzz import targets  # noqa: E402

INPUTS = sorted(
    path
    for base in (ROOT / "tests" / "corpus", ROOT / "fuzz" / "seeds")
    for path in base.glob("*/*")
    if path.is_file() and path.parent.name in targets.TARGETS
)


@pytest.fixture(scope="module", autouse=True)
def shared_loop() -> Iterator[None]:
    yield
    targets.close_loop()
    logging.getLogger("asyncweb").setLevel(logging.NOTSET)


def test_every_target_has_inputs_to_replay() -> None:
    assert {path.parent.name for path in INPUTS} >= {"request", "multipart", "cookie"}


@pytest.mark.parametrize(
    "path", INPUTS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}"
)
def test_replay(path: Path) -> None:
    targets.TARGETS[path.parent.name](path.read_bytes())


MULTIPART_SEEDS = sorted((ROOT / "fuzz" / "seeds" / "multipart").glob("*"))


@pytest.mark.parametrize("path", MULTIPART_SEEDS, ids=lambda p: p.name)
def test_multipart_seeds_are_valid_bodies_the_parser_accepts(path: Path) -> None:
    # The target tolerates HTTPInputError; the seeds are well-formed forms and must parse,
    # with and without the optional CRLF after the closing delimiter (RFC 2046 epilogue).
    from asyncweb import httputil

    content_type, _, body = path.read_bytes().partition(b"\n")
    for variant in (body, body.removesuffix(b"\r\n")):
        arguments: dict[str, list[bytes]] = {}
        files: dict[str, list[httputil.HTTPFile]] = {}
        httputil.parse_body_arguments(content_type.decode("latin-1"), variant, arguments, files)
        assert arguments or files
