"""Run Tornado's own test suite against asyncweb through the drop-in.

``python tests/tornado_suite/run.py [-j N] [--json FILE] [MODULE ...]``
(or ``nox -s tornado-suite``):
downloads the Tornado wheel named below with ``pip download --no-deps`` into a cache directory
(``$ASYNCWEB_TORNADO_CACHE``, default ``~/.cache/asyncweb/tornado-suite``), extracts only
``tornado/test/`` into a temporary directory, and runs each test module in its own process with
``asyncweb.dropin`` installed, so every ``tornado.X`` the tests import is ``asyncweb.X`` and only
``tornado.test.*`` comes from the wheel. Prints per-module counts and a total. Tornado's files are
never written into this repository.

Exit status: 0 when the suite ran (whatever the counts), 3 when the wheel cannot be obtained.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import types
import unittest
import zipfile
from collections.abc import Sequence
from pathlib import Path

TORNADO_VERSION = "6.6.1"
MODULE_TIMEOUT = 300.0
WHEEL_UNAVAILABLE = 3

# Tornado's runtests.py list, less its doctest entries (they run the docstrings of Tornado's own
# modules, which asyncweb does not copy).
MODULES = [
    "api_test",
    "asyncio_test",
    "auth_test",
    "autoreload_test",
    "circlerefs_test",
    "concurrent_test",
    "curl_httpclient_test",
    "escape_test",
    "gen_test",
    "http1connection_test",
    "httpclient_test",
    "httpserver_test",
    "httputil_test",
    "import_test",
    "ioloop_test",
    "iostream_test",
    "locale_test",
    "locks_test",
    "netutil_test",
    "log_test",
    "options_test",
    "process_test",
    "property_test",
    "queues_test",
    "routing_test",
    "security_corpus_test",
    "simple_httpclient_test",
    "tcpclient_test",
    "tcpserver_test",
    "template_test",
    "testing_test",
    "twisted_test",
    "util_test",
    "web_test",
    "websocket_test",
    "wsgi_test",
]


def cache_dir() -> Path:
    env = os.environ.get("ASYNCWEB_TORNADO_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "asyncweb" / "tornado-suite"


def obtain_wheel(cache: Path) -> Path | None:
    """The Tornado wheel from the cache, downloading it once; None when pip cannot get it."""
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"tornado-{TORNADO_VERSION}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", f"tornado=={TORNADO_VERSION}"),
                *("--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q"),
                *("-d", str(cache)),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        found = sorted(cache.glob(pattern))
        if proc.returncode != 0 or not found:
            sys.stderr.write(proc.stderr[-2000:])
            return None
    return found[0]


def extract_tests(wheel: Path, dest: Path) -> Path:
    """Only ``tornado/test/`` from the wheel, under ``dest``; returns the package directory."""
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith("tornado/test/"):
                zf.extract(name, dest)
    return dest / "tornado" / "test"


# --- the child: one test module, in its own process ---------------------------------------


class _TestPackageFinder(importlib.abc.MetaPathFinder):
    """``tornado.test`` is the extracted package; everything else under ``tornado`` stays
    with the drop-in."""

    def __init__(self, test_dir: str) -> None:
        self.test_dir = test_dir

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "tornado.test":
            return importlib.util.spec_from_file_location(
                fullname,
                os.path.join(self.test_dir, "__init__.py"),
                submodule_search_locations=[self.test_dir],
            )
        if fullname.startswith("tornado.test."):
            return importlib.machinery.PathFinder.find_spec(fullname, [self.test_dir])
        return None


TEST_TIMEOUT = 30.0


class TestTimedOut(BaseException):
    """Raised (from SIGALRM) in a test that runs past TEST_TIMEOUT; a BaseException so that
    the event loop passes it up to unittest instead of logging it."""


class _WatchdogResult(unittest.TextTestResult):
    """Fails a test that hangs instead of letting it stall the whole module."""

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)

    def stopTest(self, test: unittest.TestCase) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        super().stopTest(test)


def _alarm(signum: int, frame: object) -> None:
    raise TestTimedOut(f"test ran past {TEST_TIMEOUT:.0f}s")


def run_child(module: str, test_dir: str, verbose: bool) -> int:
    import logging

    from asyncweb import dropin

    dropin.install()
    sys.meta_path.insert(0, _TestPackageFinder(test_dir))
    # As Tornado's runtests does: a handler on the root logger, access logs silenced.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
    logging.getLogger("asyncweb.access").setLevel(logging.CRITICAL)

    counts = {"module": module, "tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    counts["import_error"] = ""
    name = "tornado.test." + module
    try:
        suite = unittest.defaultTestLoader.loadTestsFromName(name)
    except BaseException as exc:  # reported, not raised
        counts["import_error"] = f"{type(exc).__name__}: {exc}"[:300]
        print("RESULT " + json.dumps(counts), flush=True)
        return 0
    # The loader turns an import error inside the module into a failing _FailedTest.
    failed_imports = [t for t in _iter_tests(suite) if type(t).__name__ == "_FailedTest"]
    if failed_imports:
        exc = getattr(failed_imports[0], "_exception", None)
        lines = [line for line in str(exc).splitlines() if line.strip()]
        counts["import_error"] = (lines[-1] if lines else type(exc).__name__)[:300]
        print("RESULT " + json.dumps(counts), flush=True)
        return 0
    stream = sys.stderr if verbose else open(os.devnull, "w")  # noqa: SIM115
    runner = unittest.TextTestRunner(
        stream=stream, verbosity=2 if verbose else 0, resultclass=_WatchdogResult
    )
    signal.signal(signal.SIGALRM, _alarm)
    result = runner.run(suite)
    # Subtests report separately; count each test once, by its worst outcome.
    failed = {_test_id(t) for t, _ in result.failures} | {
        _test_id(t) for t in result.unexpectedSuccesses
    }
    errors = {_test_id(t) for t, _ in result.errors} - failed
    counts.update(
        tests=result.testsRun,
        passed=result.testsRun - len(failed) - len(errors) - len(result.skipped),
        failed=len(failed),
        errors=len(errors),
        skipped=len(result.skipped),
    )
    if verbose:
        for test, tb in result.failures + result.errors:
            sys.stderr.write(f"=== {test}\n{tb}\n")
    print("RESULT " + json.dumps(counts), flush=True)
    return 0


def _test_id(test: unittest.TestCase) -> str:
    # A subtest's id() includes its parameters; the test it belongs to is test_case.
    return str(getattr(test, "test_case", test).id())


def _iter_tests(suite: unittest.TestSuite | unittest.TestCase) -> list[unittest.TestCase]:
    if isinstance(suite, unittest.TestSuite):
        out: list[unittest.TestCase] = []
        for item in suite:
            out.extend(_iter_tests(item))
        return out
    return [suite]


# --- the parent ---------------------------------------------------------------------------


def _child_env() -> dict[str, str]:
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(repo), env.get("PYTHONPATH", "")]))
    return env


def run_module(module: str, test_dir: Path, timeout: float) -> dict[str, object]:
    env = _child_env()
    cmd = [sys.executable, __file__, "--child", module, "--tests-dir", str(test_dir)]
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=test_dir.parent.parent,
        )
    except subprocess.TimeoutExpired:
        return {"module": module, "tests": 0, "passed": 0, "failed": 0, "errors": 0,
                "skipped": 0, "import_error": f"timed out after {timeout:.0f}s",
                "seconds": time.monotonic() - started}  # fmt: skip
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            counts: dict[str, object] = json.loads(line[len("RESULT ") :])
            counts["seconds"] = time.monotonic() - started
            return counts
    tail = (proc.stderr or proc.stdout)[-300:].strip().replace("\n", " | ")
    return {"module": module, "tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
            "import_error": f"crashed (rc {proc.returncode}): {tail}",
            "seconds": time.monotonic() - started}  # fmt: skip


def print_table(results: list[dict[str, object]]) -> None:
    head = f"{'module':<24} {'tests':>5} {'pass':>5} {'fail':>5} {'error':>5} {'skip':>5}  note"
    print(head)
    print("-" * len(head))
    totals = dict.fromkeys(("tests", "passed", "failed", "errors", "skipped"), 0)
    import_failures = 0
    for r in results:
        for key in totals:
            totals[key] += int(r[key])  # type: ignore[call-overload]
        note = str(r["import_error"])
        if note:
            import_failures += 1
            note = "NOT RUN: " + note
        print(
            f"{r['module']:<24} {r['tests']:>5} {r['passed']:>5} {r['failed']:>5} "
            f"{r['errors']:>5} {r['skipped']:>5}  {note}"
        )
    print("-" * len(head))
    print(
        f"{'total':<24} {totals['tests']:>5} {totals['passed']:>5} {totals['failed']:>5} "
        f"{totals['errors']:>5} {totals['skipped']:>5}  "
        f"{import_failures} of {len(results)} modules not run"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="test modules (default: all)")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="also write the per-module results here")
    parser.add_argument("--timeout", type=float, default=MODULE_TIMEOUT, help="per module")
    parser.add_argument("-v", "--verbose", action="store_true", help="(one module) show tests")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--tests-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, args.tests_dir, args.verbose)

    wheel = obtain_wheel(cache_dir())
    if wheel is None:
        print(f"cannot obtain the tornado {TORNADO_VERSION} wheel", file=sys.stderr)
        return WHEEL_UNAVAILABLE
    modules = [m.removeprefix("tornado.test.") for m in args.modules] or MODULES
    with tempfile.TemporaryDirectory(prefix="tornado-suite-") as tmp:
        test_dir = extract_tests(wheel, Path(tmp))
        if args.verbose:
            # Each module in turn, its test names and tracebacks on stderr.
            for module in modules:
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        module,
                        "-v",
                        "--tests-dir",
                        str(test_dir),
                    ],
                    env=_child_env(),
                    cwd=tmp,
                    timeout=args.timeout,
                )
            return 0
        with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
            results = list(pool.map(lambda m: run_module(m, test_dir, args.timeout), modules))
    print(f"Tornado {TORNADO_VERSION}'s test suite on asyncweb (through asyncweb.dropin)")
    print_table(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
