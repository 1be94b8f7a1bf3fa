"""Developer sessions: ``nox -s tests typecheck lint bench fuzz soak tornado-suite``."""

import sys

import nox

nox.options.sessions = ["tests", "typecheck", "lint"]


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[speed,test]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[speed,test,dev]")
    session.run("mypy", "--strict", "asyncweb")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """wrk against asyncweb and its peers, each in the benchmark's own venv."""
    session.run("bash", "benchmarks/setup.sh", external=True)
    session.run("benchmarks/.venv/bin/python", "benchmarks/run.py", *session.posargs, external=True)


@nox.session(venv_backend="none")
def fuzz(session: nox.Session) -> None:
    """atheris on every fuzz target: ``nox -s fuzz -- [SECONDS=60] [TARGET ...]``. Crash inputs
    land in tests/corpus/TARGET/ and are replayed by tests/protocol/test_corpus_replay.py."""
    session.run(sys.executable, "fuzz/run_all.py", *session.posargs, external=True)


@nox.session(venv_backend="none")
def soak(session: nox.Session) -> None:
    """Mixed traffic against a server subprocess, sampling its RSS (not in CI):
    ``nox -s soak -- [--duration SECONDS=600] [--rate REQ_PER_S]``."""
    session.run(sys.executable, "benchmarks/soak.py", *session.posargs, external=True)


# What the Jupyter run measures against: this jupyter_server's own test suite, these clients.
JUPYTER_PACKAGES = [
    "jupyter_server==2.21.1",
    "ipykernel",
    "pytest-jupyter[server]",
    "sockjs-tornado==1.0.7",
    "terminado==0.18.1",
    "websocket-client",
    "pytest",
    "pytest-timeout",
    "pytest-console-scripts",
    "requests",
    "flaky",
    "pre-commit",
    "uvloop",
]


@nox.session
def jupyter(session: nox.Session) -> None:
    """Real Tornado software on the drop-in (not in CI; about 15 minutes): Jupyter Server's 11
    checks and its own test suite, sockjs-tornado over every transport, terminado's tests on
    uvloop and on asyncio. ``nox -s jupyter -- smoke`` leaves out Jupyter's test suite."""
    session.install("-e", ".", *JUPYTER_PACKAGES)
    # Every process of this venv imports asyncweb for `tornado` (real Tornado came along as a
    # dependency and stays installed, unused).
    session.run("python", "compat/dropin_pth.py")
    check = "import tornado, asyncweb; assert tornado.__file__ == asyncweb.__file__"
    session.run("python", "-c", check)
    session.run("python", "compat/jupyter_smoke.py")
    session.run("python", "compat/sockjs_check.py")
    sources = session.create_tmp()

    def unpacked(dist: str) -> str:
        out = session.run("python", "compat/fetch_sdist.py", dist, sources, silent=True)
        return str(out).strip().splitlines()[-1]

    terminado = unpacked("terminado")
    for uvloop in ("1", "0"):
        session.run(
            "python",
            "-c",
            f"import os, sys, pytest; os.chdir({terminado!r}); "
            "sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', 'tests']))",
            env={"ASYNCWEB_UVLOOP": uvloop},
        )
    if "smoke" in session.posargs:
        return
    suite = unpacked("jupyter_server")
    session.run("python", "compat/jupyter_suite.py", suite, "--out", f"{sources}/jupyter-suite")


@nox.session(name="tornado-suite", venv_backend="none")
def tornado_suite(session: nox.Session) -> None:
    """Tornado 6.6.1's own test suite on asyncweb through the drop-in (the wheel is fetched
    with pip into ~/.cache/asyncweb/tornado-suite): ``nox -s tornado-suite -- [-j N] [MODULE ...]``.
    Prints pass/fail/error/skip counts per module and a total."""
    session.run(sys.executable, "tests/tornado_suite/run.py", *session.posargs, external=True)


@nox.session(venv_backend="none")
def autobahn(session: nox.Session) -> None:
    """Autobahn|Testsuite's fuzzing client against tests/autobahn_server.py (not in CI):
    ``nox -s autobahn`` runs every group but the compression ones (12.x, 13.x: ~15 s a case),
    ``nox -s autobahn -- all`` those too. autobahntestsuite 0.8.2 is Python 2 code: it needs a
    ``python2.7`` on PATH (with pip), and is installed under .nox/autobahn-py27. Reports go to
    .nox/autobahn-reports/; the session fails on any case Autobahn marks FAILED."""
    import json
    import shutil
    import subprocess
    import time
    from pathlib import Path

    python2 = shutil.which("python2.7") or shutil.which("python2")
    if python2 is None:
        session.skip("needs a Python 2.7 interpreter (python2.7) for autobahntestsuite 0.8.2")
    root = Path(__file__).resolve().parent
    target = root / ".nox" / "autobahn-py27"
    if not (target / "autobahntestsuite").exists():
        session.run(
            python2, "-m", "pip", "install", "--target", str(target),
            "autobahntestsuite==0.8.2", external=True,
        )  # fmt: skip
    reports = root / ".nox" / "autobahn-reports"
    port = 9111
    exclude = [] if "all" in session.posargs else ["12.*", "13.*"]
    spec = {
        "outdir": str(reports),
        "servers": [{"agent": "asyncweb", "url": f"ws://127.0.0.1:{port}/"}],
        "cases": ["*"],
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    }
    spec_path = root / ".nox" / "autobahn-fuzzingclient.json"
    spec_path.write_text(json.dumps(spec, indent=2))
    server = subprocess.Popen([sys.executable, "tests/autobahn_server.py", str(port)], cwd=root)
    try:
        time.sleep(1.0)
        session.run(
            python2, "-c", "from autobahntestsuite.wstest import run; run()",
            "-m", "fuzzingclient", "-s", str(spec_path),
            env={"PYTHONPATH": str(target)}, external=True,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait()
    results = json.loads((reports / "index.json").read_text())["asyncweb"]
    counts: dict[str, int] = {}
    failed = []
    for case, result in sorted(results.items()):
        behavior = result["behavior"]
        counts[behavior] = counts.get(behavior, 0) + 1
        if behavior == "FAILED":
            failed.append(case)
    session.log(f"Autobahn: {len(results)} cases: {counts}")
    if failed:
        session.error(f"FAILED cases: {', '.join(failed)}")


@nox.session(venv_backend="none")
def demos(session: nox.Session) -> None:
    """Tornado's demos (GitHub master, from the Tornado mirror or ``--demos DIR``), unmodified,
    on the drop-in: ``nox -s demos -- [compare] [--demos DIR] [DEMO ...]``. ``compare`` also runs
    them on Tornado 6.6.1 (a venv under .nox/demos-tornado) and prints the two side by side."""
    args = [a for a in session.posargs if a != "compare"]
    if "compare" in session.posargs:
        venv = ".nox/demos-tornado"
        session.run(sys.executable, "-m", "venv", venv, external=True)
        pip = f"{venv}/bin/pip"
        session.run(pip, "install", "-q", "tornado==6.6.1", "websockets", external=True)
        args = ["--tornado-python", f"{venv}/bin/python", *args]
    session.run(sys.executable, "compat/demos_check.py", *args, external=True)
