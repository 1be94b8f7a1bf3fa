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
import threading
import time
import types
import unittest
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def install_hooks(test_dir: str) -> None:
    """The drop-in, plus ``tornado.test`` from ``test_dir``; idempotent."""
    from asyncweb import dropin

    dropin.install()
    if not any(isinstance(f, _TestPackageFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _TestPackageFinder(test_dir))


# Put on PYTHONPATH for the children: Tornado's tests also start Python subprocesses that
# import tornado (``python -c "from tornado.ioloop import IOLoop ..."``), and those must get
# the drop-in too.
_SITECUSTOMIZE = """\
import importlib.util, os
_spec = importlib.util.spec_from_file_location("_tornado_suite_runner", {runner!r})
_runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_runner)
_runner.install_hooks({test_dir!r})
"""

TEST_TIMEOUT = 30.0


class TestTimedOut(BaseException):
    """Raised (from SIGALRM) in a test that runs past TEST_TIMEOUT; a BaseException so that
    the event loop passes it up to unittest instead of logging it."""


class _ReportingResult(unittest.TextTestResult):
    """Prints each test's outcome as it ends (so a crash loses nothing already run) and fails
    a test that hangs instead of letting it stall the whole module."""

    def startTest(self, test: unittest.TestCase) -> None:
        super().startTest(test)
        self._outcome_now = "pass"
        print("START " + test.id(), file=sys.__stdout__, flush=True)
        signal.setitimer(signal.ITIMER_REAL, TEST_TIMEOUT)

    def stopTest(self, test: unittest.TestCase) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        super().stopTest(test)
        print(f"DONE {self._outcome_now} {test.id()}", file=sys.__stdout__, flush=True)

    def _worse(self, outcome: str) -> None:
        order = ["pass", "skip", "error", "fail"]
        if order.index(outcome) > order.index(self._outcome_now):
            self._outcome_now = outcome

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        if not isinstance(test, unittest.TestCase):  # setUpClass/module fixtures
            print(f"DONE error {test.id()}", file=sys.__stdout__, flush=True)
        else:
            self._worse("error")

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self._worse("fail")

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._worse("fail" if issubclass(err[0], test.failureException) else "error")

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        if isinstance(test, unittest.TestCase):
            self._worse("skip")
        # A skipped class fixture (Tornado's abstract base tests) is not a test.

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        self._worse("fail")


def _alarm(signum: int, frame: object) -> None:
    raise TestTimedOut(f"test ran past {TEST_TIMEOUT:.0f}s")


def _drop_done(suite: unittest.TestSuite, done: set[str]) -> unittest.TestSuite:
    kept = unittest.TestSuite()
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            kept.addTest(_drop_done(item, done))
        elif item.id() not in done:
            kept.addTest(item)
    return kept


def run_child(module: str, test_dir: str, verbose: bool, skip_file: str | None) -> int:
    import logging

    install_hooks(test_dir)
    # As Tornado's runtests does: a handler on the root logger, access logs silenced.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").setLevel(logging.CRITICAL)
    logging.getLogger("asyncweb.access").setLevel(logging.CRITICAL)

    name = "tornado.test." + module
    try:
        suite = unittest.defaultTestLoader.loadTestsFromName(name)
    except BaseException as exc:  # reported, not raised
        print("IMPORT_ERROR " + f"{type(exc).__name__}: {exc}"[:300], flush=True)
        return 0
    # The loader turns an import error inside the module into a failing _FailedTest.
    failed_imports = [t for t in _iter_tests(suite) if type(t).__name__ == "_FailedTest"]
    if failed_imports:
        exc = getattr(failed_imports[0], "_exception", None)
        lines = [line for line in str(exc).splitlines() if line.strip()]
        print("IMPORT_ERROR " + (lines[-1] if lines else type(exc).__name__)[:300], flush=True)
        return 0
    if skip_file:
        with open(skip_file) as f:
            suite = _drop_done(suite, set(f.read().split()))
    stream = sys.stderr if verbose else open(os.devnull, "w")  # noqa: SIM115
    runner = unittest.TextTestRunner(
        stream=stream, verbosity=2 if verbose else 0, resultclass=_ReportingResult
    )
    signal.signal(signal.SIGALRM, _alarm)
    result = runner.run(suite)
    if verbose:
        for test, tb in result.failures + result.errors:
            sys.stderr.write(f"=== {test}\n{tb}\n")
    print("FINISHED", flush=True)
    return 0


def _iter_tests(suite: unittest.TestSuite | unittest.TestCase) -> list[unittest.TestCase]:
    if isinstance(suite, unittest.TestSuite):
        out: list[unittest.TestCase] = []
        for item in suite:
            out.extend(_iter_tests(item))
        return out
    return [suite]


# --- the parent ---------------------------------------------------------------------------


_SITE_LOCK = threading.Lock()


def _child_env(test_dir: Path) -> dict[str, str]:
    repo = Path(__file__).resolve().parents[2]
    site = test_dir.parent.parent / "site"
    # The pool's threads all come here first: one writes the site folder, the others wait.
    with _SITE_LOCK:
        if not site.is_dir():
            site.mkdir()
            text = _SITECUSTOMIZE.format(
                runner=str(Path(__file__).resolve()), test_dir=str(test_dir)
            )
            (site / "sitecustomize.py").write_text(text)
    env = dict(os.environ)
    paths = [str(site), str(repo), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    return env


MAX_RESTARTS = 20


def run_module(module: str, test_dir: Path, timeout: float) -> dict[str, object]:
    """Run one module; a child that crashes or hangs is restarted after the test it was in
    (which counts as an error), up to MAX_RESTARTS times."""
    counts: dict[str, object] = {"module": module, "tests": 0, "passed": 0, "failed": 0}
    counts.update(errors=0, skipped=0, import_error="", crashes=[])
    key = {"pass": "passed", "fail": "failed", "error": "errors", "skip": "skipped"}
    done: set[str] = set()
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("w", suffix=".skip", delete=False) as skip:
        skip_path = skip.name
    try:
        for _ in range(MAX_RESTARTS + 1):
            Path(skip_path).write_text("\n".join(sorted(done)))
            cmd = [sys.executable, __file__, "--child", module, "--tests-dir", str(test_dir)]
            cmd += ["--skip-file", skip_path]
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=_child_env(test_dir),
                cwd=test_dir.parent.parent,
            )
            killer = threading.Timer(max(1.0, timeout - (time.monotonic() - started)), proc.kill)
            killer.start()
            running: str | None = None
            finished = False
            assert proc.stdout is not None
            for line in proc.stdout:
                word, _, rest = line.rstrip("\n").partition(" ")
                if word == "IMPORT_ERROR":
                    counts["import_error"] = rest
                elif word == "START":
                    running = rest
                elif word == "DONE":
                    outcome, _, test_id = rest.partition(" ")
                    if test_id not in done:
                        done.add(test_id)
                        counts["tests"] = int(counts["tests"]) + 1  # type: ignore[call-overload]
                        counts[key[outcome]] = int(counts[key[outcome]]) + 1  # type: ignore[call-overload]
                    running = None
                elif word == "FINISHED":
                    finished = True
            proc.wait()
            killer.cancel()
            if finished or counts["import_error"]:
                break
            if running is None:
                counts["import_error"] = f"child died outside a test (rc {proc.returncode})"
                break
            # The test it died in is an error; carry on after it.
            crashes = counts["crashes"]
            assert isinstance(crashes, list)
            crashes.append(f"{running} (rc {proc.returncode})")
            done.add(running)
            counts["tests"] = int(counts["tests"]) + 1  # type: ignore[call-overload]
            counts["errors"] = int(counts["errors"]) + 1  # type: ignore[call-overload]
            if time.monotonic() - started > timeout:
                counts["import_error"] = f"timed out after {timeout:.0f}s"
                break
    finally:
        os.unlink(skip_path)
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


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
        if note and not r["tests"]:
            import_failures += 1
            note = "NOT RUN: " + note
        crashes = r.get("crashes") or []
        assert isinstance(crashes, list)
        if crashes:
            note = f"{len(crashes)} test(s) killed the process, restarted after each; " + note
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
    parser.add_argument("--skip-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, args.tests_dir, args.verbose, args.skip_file)

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
                    env=_child_env(test_dir),
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
