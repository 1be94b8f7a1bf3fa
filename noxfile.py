"""Developer sessions: ``nox -s tests typecheck lint bench``."""

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
