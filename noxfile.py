"""Developer sessions: ``nox -s tests typecheck lint bench fuzz soak``."""

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
    land in tests/corpus/TARGET/ and are replayed by tests/test_corpus_replay.py."""
    session.run(sys.executable, "fuzz/run_all.py", *session.posargs, external=True)


@nox.session(venv_backend="none")
def soak(session: nox.Session) -> None:
    """Mixed traffic against a server subprocess, sampling its RSS (not in CI):
    ``nox -s soak -- [--duration SECONDS=600] [--rate REQ_PER_S]``."""
    session.run(sys.executable, "benchmarks/soak.py", *session.posargs, external=True)
