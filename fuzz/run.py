"""Run one fuzz target under atheris (libFuzzer): ``python fuzz/run.py TARGET [libFuzzer args]``.

The working corpus starts from ``fuzz/seeds/TARGET`` and ``tests/corpus/TARGET`` in a temporary
directory (so new coverage inputs don't land in the repository); a crashing input is written to
``tests/corpus/TARGET/`` by libFuzzer (``-artifact_prefix``) and is then replayed by
``tests/protocol/test_corpus_replay.py`` on every test run. ``nox -s fuzz`` runs every target in
turn.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import atheris  # type: ignore[import-untyped]  # noqa: E402

with atheris.instrument_imports(include=["asyncweb", "h11", "fuzz"]):
    from fuzz import targets


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in targets.TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(targets.TARGETS)}}} [libFuzzer options]")
    name = sys.argv[1]
    target = targets.TARGETS[name]
    crashes = ROOT / "tests" / "corpus" / name
    crashes.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"asyncweb-fuzz-{name}-"))
    for source in (ROOT / "fuzz" / "seeds" / name, crashes):
        if source.is_dir():
            for seed in source.iterdir():
                if seed.is_file():
                    shutil.copy(seed, work / seed.name)
    args = [
        sys.argv[0],
        *sys.argv[2:],
        f"-artifact_prefix={crashes}/",
        "-timeout=20",
        "-rss_limit_mb=2048",
        str(work),
    ]
    try:
        atheris.Setup(args, target)
        atheris.Fuzz()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
