"""Every fenced ``python`` sample in README.md and docs/*.md runs as written.

The conventions, for whoever writes a sample (also in docs/testing.md):

* A sample with no marker is a **script**: it is written to a file in an empty temporary
  directory and run there with this Python (``python sample.py``, asyncweb importable); it
  must exit with status 0 within 60 seconds.
* ``<!-- sample: server GET /path -->`` (or ``... GET /path 404`` for another expected
  status) on the line before the fence: the sample starts a server on port 8888 and serves
  until stopped. Every ``8888`` in its text is replaced by a free loopback port; the test
  waits for that port, sends one GET for the path, checks the status (200 unless given),
  then sends SIGINT, as Ctrl-C would, and expects the process to end.
* ``<!-- sample: fragment -->`` on the line before the fence: a piece that needs names from
  elsewhere (``myproject``, ``...``, a top-level ``await``); it is only compiled.

Blank lines between the marker and the fence are allowed; any other ``sample:`` marker is an
error. New samples in any of these files are picked up by themselves.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(\s*)```python\s*$")
MARKER = re.compile(r"^\s*<!--\s*sample:\s*(.*?)\s*-->\s*$")
SERVER = re.compile(r"^server GET (/\S*)(?: (\d{3}))?$")
SCRIPT_TIMEOUT = 60


@dataclass
class Sample:
    where: str  # "docs/x.md:12", the fence's line
    code: str
    kind: str  # "script", "server" or "fragment"
    path: str = "/"
    status: int = 200


def extract(text: str, name: str) -> list[Sample]:
    """The ``python`` samples in one Markdown text, with their markers read."""
    samples = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start, indent = index, fence.group(1)
        body = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            line = lines[index]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            index += 1
        index += 1
        previous = start - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = MARKER.match(lines[previous]) if previous >= 0 else None
        sample = Sample(f"{name}:{start + 1}", "\n".join(body) + "\n", "script")
        if marker is not None:
            words = marker.group(1)
            server = SERVER.match(words)
            if words == "fragment":
                sample.kind = "fragment"
            elif server is not None:
                sample.kind, sample.path = "server", server.group(1)
                sample.status = int(server.group(2) or 200)
            else:
                raise ValueError(f"{sample.where}: unknown sample marker {words!r}")
        samples.append(sample)
    return samples


def all_samples() -> list[Sample]:
    found = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found += extract(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    return found


def environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_script(sample: Sample, directory: Path) -> None:
    (directory / "sample.py").write_text(sample.code, encoding="utf-8")
    try:
        done = subprocess.run(
            [sys.executable, "sample.py"],
            cwd=directory,
            env=environment(),
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{sample.where}: still running after {SCRIPT_TIMEOUT} s")
    assert done.returncode == 0, f"{sample.where} exited {done.returncode}:\n{done.stderr}"


def run_server(sample: Sample, directory: Path) -> None:
    port = free_port()
    (directory / "sample.py").write_text(sample.code.replace("8888", str(port)), "utf-8")
    log = (directory / "output.txt").open("w+", encoding="utf-8")
    with log:
        proc = subprocess.Popen(
            [sys.executable, "sample.py"],
            cwd=directory,
            env=environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + SCRIPT_TIMEOUT
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"{sample.where} exited {proc.returncode}:\n{log.read()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    assert time.monotonic() < deadline, f"{sample.where}: never listened"
                    time.sleep(0.05)
            url = f"http://127.0.0.1:{port}{sample.path}"
            try:
                with urllib.request.urlopen(url, timeout=30) as resp:
                    status = resp.status
            except urllib.error.HTTPError as e:
                status = e.code
                e.close()
            assert status == sample.status, f"{sample.where}: GET {sample.path} -> {status}"
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{sample.where}: Ctrl-C (SIGINT) did not stop it")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


SAMPLES = all_samples()


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.where for s in SAMPLES])
def test_sample_runs_as_written(sample: Sample, tmp_path: Path) -> None:
    # Every sample must at least compile (a fragment may await at the top level).
    compile(sample.code, sample.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if sample.kind == "script":
        run_script(sample, tmp_path)
    elif sample.kind == "server":
        run_server(sample, tmp_path)


# -- the harness itself ------------------------------------------------------------------------


def test_markers_are_read() -> None:
    text = (
        "intro\n\n```python\nprint(1)\n```\n\n<!-- sample: fragment -->\n```python\nx = y\n```\n"
        "<!-- sample: server GET /a/b 404 -->\n\n   ```python\n   app = 1\n   ```\n"
        "```sh\nls\n```\n"
    )
    found = extract(text, "t.md")
    assert [(s.where, s.kind, s.code) for s in found] == [
        ("t.md:3", "script", "print(1)\n"),
        ("t.md:8", "fragment", "x = y\n"),
        ("t.md:13", "server", "app = 1\n"),
    ]
    assert (found[2].path, found[2].status) == ("/a/b", 404)
    with pytest.raises(ValueError, match="unknown sample marker"):
        extract("<!-- sample: skip -->\n```python\npass\n```\n", "t.md")


def test_the_docs_have_samples_of_every_kind() -> None:
    kinds = {s.kind for s in SAMPLES}
    assert kinds == {"script", "server", "fragment"}
    assert any(s.where.startswith("README.md") and s.kind == "server" for s in SAMPLES)


def test_a_failing_script_or_a_dead_server_is_caught(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="exited 3"):
        run_script(Sample("x.md:1", "raise SystemExit(3)\n", "script"), tmp_path)
    with pytest.raises(pytest.fail.Exception, match="exited 1"):
        run_server(Sample("x.md:1", "raise RuntimeError('no server')\n", "server"), tmp_path)
