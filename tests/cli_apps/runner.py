"""Runs ``asyncweb serve`` in a subprocess for the CLI and cross-process tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

TESTS = Path(__file__).parent.parent
ASYNCWEB = Path(sys.executable).with_name("asyncweb")


class Server:
    """An ``asyncweb serve`` process whose stderr is collected line by line."""

    def __init__(
        self, *args: str, module: bool = True, cwd: Path = TESTS, env: dict[str, str] | None = None
    ) -> None:
        command = [sys.executable, "-m", "asyncweb"] if module else [str(ASYNCWEB)]
        self.proc = subprocess.Popen(
            [*command, "serve", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            # Its own process group, so teardown can kill workers a failed test left behind.
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.terminated = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, timeout: float = 20.0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        seen = 0
        while True:
            for line in self.lines[seen:]:
                match = regex.search(line)
                if match:
                    return match
            seen = len(self.lines)
            if self.proc.poll() is not None and seen == len(self.lines):
                self._reader.join(5)
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                raise AssertionError(f"exited ({self.proc.returncode}): {self.text}")
            assert time.monotonic() < deadline, f"no {pattern!r} in: {self.text}"
            time.sleep(0.02)

    def url(self) -> str:
        return self.wait_for_line(r"Serving on (\S+)").group(1)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def terminate(self) -> None:
        self.terminated = True
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (once) and the exit status."""
        if self.proc.poll() is None and not self.terminated:
            self.terminate()
        try:
            code = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return code


def kill_all(servers: list[Server]) -> None:
    """Kill each server's whole process group (workers a failed test left behind too)."""
    for server in servers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        server._reader.join(10)
        if server.proc.stderr is not None and not server._reader.is_alive():
            server.proc.stderr.close()
