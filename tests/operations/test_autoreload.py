"""asyncweb.autoreload: a real process that re-executes itself when a file changes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SCRIPT = """
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helper_module
from asyncweb import autoreload
from asyncweb.ioloop import IOLoop

log = sys.argv[1]
with open(log, "a") as f:
    f.write(f"run {os.getpid()} {helper_module.VALUE} {' '.join(sys.argv[2:])}\\n")
autoreload.watch(os.path.join(os.path.dirname(log), "watched.txt"))
autoreload.add_reload_hook(lambda: open(log, "a").write("hook\\n"))
loop = IOLoop.current()
loop.add_callback(autoreload.start, 20)
loop.start()
"""

WAIT_SCRIPT = """
import os, sys
from asyncweb import autoreload
log = sys.argv[1]
with open(log, "a") as f:
    f.write("waiting\\n")
autoreload.watch(os.path.join(os.path.dirname(log), "watched.txt"))
autoreload.wait()
"""


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for_lines(path: Path, count: int, proc: subprocess.Popen[bytes]) -> list[str]:
    deadline = time.monotonic() + 20
    while len(lines(path)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, lines(path)
        time.sleep(0.02)
    return lines(path)


def change_until_restart(
    path: Path, content: str, log: Path, count: int, proc: subprocess.Popen[bytes]
) -> list[str]:
    """Rewrite ``path`` with ever later mtimes until ``log`` has ``count`` lines: whichever
    mtime the watcher recorded first, a later one follows."""
    path.write_text(content)
    bump = 0
    deadline = time.monotonic() + 20
    while len(lines(log)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, lines(log)
        bump += 10
        stat = path.stat()
        os.utime(path, (stat.st_atime, time.time() + bump))
        time.sleep(0.1)
    return lines(log)


def test_restart_on_watched_file_and_module_change(tmp_path: Path) -> None:
    (tmp_path / "helper_module.py").write_text("VALUE = 1\n")
    (tmp_path / "watched.txt").write_text("a")
    script = tmp_path / "server.py"
    script.write_text(SCRIPT)
    log = tmp_path / "log.txt"
    proc = subprocess.Popen([sys.executable, str(script), str(log), "--flag", "x y"])
    try:
        first = wait_for_lines(log, 1, proc)[0].split(" ", 3)
        assert first[2:] == ["1", "--flag x y"]
        restarted = change_until_restart(tmp_path / "watched.txt", "b", log, 3, proc)
        assert restarted[1] == "hook"
        # Same process (re-executed in place), same arguments.
        assert restarted[2].split(" ", 3) == [*first[:2], "1", "--flag x y"]
        again = change_until_restart(tmp_path / "helper_module.py", "VALUE = 2\n", log, 5, proc)
        assert again[4].split(" ", 3)[2] == "2"
    finally:
        proc.kill()
        proc.wait()


def test_wait_restarts_on_change(tmp_path: Path) -> None:
    (tmp_path / "watched.txt").write_text("a")
    script = tmp_path / "waiter.py"
    script.write_text(WAIT_SCRIPT)
    log = tmp_path / "log.txt"
    proc = subprocess.Popen([sys.executable, str(script), str(log)])
    try:
        wait_for_lines(log, 1, proc)
        assert change_until_restart(tmp_path / "watched.txt", "b", log, 2, proc) == [
            "waiting",
            "waiting",
        ]
    finally:
        proc.kill()
        proc.wait()
