"""Real database servers for the tests: MariaDB and PostgreSQL started in temporary
directories on free loopback ports, each once per test session. A test that needs a server
whose binaries are not installed is skipped (CI installs them)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{_tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen in time:\n{_tail(log)}")


def _tail(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-3000:]
    except OSError:
        return ""


@dataclass
class MariaDB:
    port: int
    socket: str
    database: str = "asyncweb_test"

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{self.database}"

    @property
    def host(self) -> str:
        """The ``host`` argument of the legacy ``Connection``."""
        return f"127.0.0.1:{self.port}"


@dataclass
class PostgreSQL:
    port: int
    database: str = "postgres"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{self.database}"


def mariadb_binaries() -> tuple[str, str] | None:
    server = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
    install = shutil.which("mariadb-install-db")
    return (server, install) if server and install else None


def postgres_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture(scope="session")
def mariadb() -> Iterator[MariaDB]:
    binaries = mariadb_binaries()
    if binaries is None:
        pytest.skip("MariaDB is not installed (apt-get install mariadb-server)")
    server, install = binaries
    root = tempfile.mkdtemp(prefix="asyncweb-mariadb-")
    datadir, sock, log = f"{root}/data", f"{root}/mysqld.sock", f"{root}/error.log"
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [install, "--no-defaults", f"--datadir={datadir}", "--skip-test-db", *user],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    process = subprocess.Popen(
        [
            server,
            "--no-defaults",
            f"--datadir={datadir}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={root}/mysqld.pid",
            f"--log-error={log}",
            "--skip-grant-tables",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--skip-log-bin",
            *user,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, process, log)
        import pymysql

        deadline = time.monotonic() + 60
        while True:
            try:
                conn = pymysql.connect(host="127.0.0.1", port=port, user="root")
                break
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with conn:
            conn.cursor().execute("CREATE DATABASE asyncweb_test CHARACTER SET utf8mb4")
        yield MariaDB(port, sock)
    finally:
        process.terminate()
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgresql() -> Iterator[PostgreSQL]:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    root = tempfile.mkdtemp(prefix="asyncweb-postgres-")
    os.chmod(root, 0o755)
    datadir, log, run = f"{root}/data", f"{root}/server.log", f"{root}/run"
    # PostgreSQL refuses to run as root: as root (CI), run it as "nobody".
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "nobody", "--"]
        os.mkdir(datadir, 0o700)
        os.mkdir(run, 0o700)
        open(log, "w").close()
        for path in (datadir, run, log):
            shutil.chown(path, "nobody")
    else:
        os.mkdir(run, 0o700)
    env = {**os.environ, "LC_ALL": "C"}
    initdb = [f"{bindir}/initdb", "-D", datadir, "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    subprocess.run(
        [*as_user, *initdb, "--no-locale", "--no-sync"],
        check=True,
        capture_output=True,
        env=env,
        cwd=root,
    )
    port = _free_port()
    options = f"-p {port} -k {run} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = subprocess.run(
        [*as_user, f"{bindir}/pg_ctl", "-D", datadir, "-l", log, "-o", options, "-w", "start"],
        capture_output=True,
        env=env,
        cwd=root,
    )
    if started.returncode:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"pg_ctl start failed: {started.stderr!r}\n{_tail(log)}")
    try:
        yield PostgreSQL(port)
    finally:
        subprocess.run(
            [*as_user, f"{bindir}/pg_ctl", "-D", datadir, "-m", "fast", "-w", "stop"],
            capture_output=True,
            env=env,
            cwd=root,
        )
        shutil.rmtree(root, ignore_errors=True)
