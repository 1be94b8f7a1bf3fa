"""Run jupyter_server's own test suite, unmodified, in chunks, and total the outcomes.

    /path/to/venv/bin/python compat/jupyter_suite.py SRC_DIR [--out DIR] [--timeout S]

``SRC_DIR`` is an unpacked jupyter_server sdist (it ships ``tests/``; ``pip download
--no-binary :all: --no-deps jupyter_server==X`` fetches it). Each chunk is one pytest run
with its own wall-clock limit, so a hang costs one chunk, not the suite; the suite's own
pytest settings (``filterwarnings = error``, per-test timeout) apply. Which ``tornado`` runs is
the environment's business (compat/dropin_pth.py puts asyncweb's in place). Writes one JUnit
XML per chunk to ``--out`` and prints per-chunk and total counts, the failing test ids, and
``N passed, N failed``.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

# Heavy directories run apart; the rest of tests/ goes in one last chunk.
CHUNKS = [
    "tests/services/contents",
    "tests/services/kernels",
    "tests/services/sessions",
    "tests/services/api tests/services/config tests/services/events "
    "tests/services/kernelspecs tests/services/nbconvert",
    "tests/auth",
    "tests/base tests/nbconvert tests/unix_sockets",
    "tests/extension",
    "tests/test_gateway.py",
    "tests/test_serverapp.py tests/test_terminal.py",
]


def rest_of_tests(src: str) -> list[str]:
    named = {p for chunk in CHUNKS for p in chunk.split()}
    rest = []
    for path in sorted(glob.glob(os.path.join(src, "tests", "*"))):
        rel = os.path.relpath(path, src)
        if rel in named or rel.startswith("tests/services"):
            continue
        if os.path.isdir(path) or (
            rel.endswith(".py") and os.path.basename(rel).startswith("test_")
        ):
            rest.append(rel)
    return rest


def count(xml_path: str) -> tuple[dict[str, int], list[str]]:
    counts = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    failing: list[str] = []
    if not os.path.exists(xml_path):
        return counts, failing
    root = ET.parse(xml_path).getroot()
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None:
            counts["failed"] += 1
            failing.append(name)
        elif case.find("error") is not None:
            counts["error"] += 1
            failing.append(name + " (error)")
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, failing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("--out", default="jupyter-suite-results")
    parser.add_argument("--timeout", type=float, default=1500.0, help="seconds per chunk")
    parser.add_argument("--only", help="run only the chunks containing this text")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    chunks = [*CHUNKS, " ".join(rest_of_tests(args.src))]
    totals = {"passed": 0, "failed": 0, "error": 0, "skipped": 0}
    all_failing: list[str] = []
    for number, chunk in enumerate(chunks):
        if args.only and args.only not in chunk:
            continue
        xml_path = os.path.abspath(os.path.join(args.out, f"chunk{number:02d}.xml"))
        log_path = os.path.abspath(os.path.join(args.out, f"chunk{number:02d}.log"))
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--color=no",
            "--continue-on-collection-errors",
            f"--junitxml={xml_path}",
            *chunk.split(),
        ]
        # Tests run `jupyter ...` and friends: this environment's scripts come first.
        env = dict(os.environ)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        with open(log_path, "w", encoding="utf-8") as log:
            try:
                subprocess.run(
                    command,
                    cwd=args.src,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=args.timeout,
                )
                note = ""
            except subprocess.TimeoutExpired:
                note = " (chunk timed out)"
        counts, failing = count(xml_path)
        for key in totals:
            totals[key] += counts[key]
        all_failing += failing
        print(f"{chunk[:70]:70} {counts}{note}", flush=True)
    print("failing:")
    for name in all_failing:
        print(f"  {name}")
    print(
        f"total: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['error']} errors, {totals['skipped']} skipped"
    )
    print(f"{totals['passed']} passed, {totals['failed'] + totals['error']} failed")
    return 0 if totals["failed"] + totals["error"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
