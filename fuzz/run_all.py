"""Run every fuzz target for a bounded time, one atheris process each, and summarize.

``python fuzz/run_all.py [SECONDS] [TARGET ...]`` (``nox -s fuzz -- 30 request cookie``).
Prints one line per target (inputs tried, crash inputs saved under ``tests/corpus/TARGET/``)
and exits non-zero if any target crashed.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.targets import TARGETS  # noqa: E402


def main(argv: list[str]) -> int:
    seconds = int(argv[0]) if argv and argv[0].isdigit() else 60
    names = [name for name in argv if not name.isdigit()] or list(TARGETS)
    failed = False
    rows = []
    for name in names:
        corpus = ROOT / "tests" / "corpus" / name
        before = set(corpus.glob("*")) if corpus.is_dir() else set()
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(ROOT / "fuzz" / "run.py"), name, f"-max_total_time={seconds}"],
            capture_output=True,
            text=True,
            errors="replace",
            check=False,
        )
        elapsed = time.monotonic() - started
        after = set(corpus.glob("*")) if corpus.is_dir() else set()
        crashes = sorted(after - before)
        done = re.search(r"Done (\d+) runs in (\d+) second", proc.stderr)
        runs = done.group(1) if done else "?"
        if crashes or proc.returncode != 0:
            failed = True
            sys.stderr.write(proc.stderr[-4000:])
        rows.append(
            f"{name}: {runs} inputs in {elapsed:.0f} s, exit {proc.returncode}, "
            f"crashes saved: {[str(p.relative_to(ROOT)) for p in crashes]}"
        )
    print("\n".join(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
