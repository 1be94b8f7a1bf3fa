"""Eleven end-to-end checks of a real Jupyter Server, over loopback only.

    /path/to/venv/bin/python compat/jupyter_smoke.py [--expect asyncweb|tornado]

Starts ``jupyter server`` from the same Python (a temporary root directory, a random token,
127.0.0.1 and a free port), then talks to it as a browser would: HTTP with urllib, WebSockets
with the ``websocket-client`` package (a Jupyter dependency, no part of asyncweb or Tornado).
A real ipykernel runs ``1+1``. Prints one line per check and ``N passed, N failed``; the exit
status is 0 only when all pass. ``--expect`` says whose ``tornado`` the server and the kernel
must be running on (asyncweb's by default; ``tornado`` when comparing with real Tornado).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import websocket  # websocket-client

HOST = "127.0.0.1"
# Prints whose tornado the server runs on, then starts it as `jupyter server` would.
SERVER_BOOT = (
    "import sys, tornado; print('SMOKE_TORNADO=' + tornado.__file__, file=sys.stderr, flush=True); "
    "from jupyter_server.serverapp import main; sys.exit(main())"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, root: str) -> None:
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = os.path.join(root, "server.log")
        self.log = open(self.log_path, "w+", encoding="utf-8")  # noqa: SIM115
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=os.path.join(root, "runtime"))
        env["JUPYTER_CONFIG_DIR"] = os.path.join(root, "config")
        env["JUPYTER_DATA_DIR"] = os.path.join(root, "data")
        notebooks = os.path.join(root, "notebooks")
        os.makedirs(notebooks)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                SERVER_BOOT,
                f"--ServerApp.ip={HOST}",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                "--ServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                f"--ServerApp.root_dir={notebooks}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=root,
        )

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Authorization", f"token {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def ws(self, path: str) -> websocket.WebSocket:
        return websocket.create_connection(
            f"ws://{HOST}:{self.port}{path}",
            header=[f"Authorization: token {self.token}"],
            timeout=30,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("server did not listen in time")

    def output(self) -> str:
        self.log.flush()
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def kernel_message(session: str, code: str) -> dict[str, Any]:
    msg_id = uuid.uuid4().hex
    return {
        "header": {
            "msg_id": msg_id,
            "username": "smoke",
            "session": session,
            "msg_type": "execute_request",
            "version": "5.3",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def execute(conn: websocket.WebSocket, code: str, timeout: float = 60.0) -> dict[str, str]:
    """Run ``code`` in the kernel; returns the text/plain result and stdout seen."""
    message = kernel_message(uuid.uuid4().hex, code)
    conn.send(json.dumps(message))
    msg_id = message["header"]["msg_id"]
    seen: dict[str, str] = {"result": "", "stdout": "", "status": ""}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = json.loads(conn.recv())
        if reply.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = reply["msg_type"]
        if kind == "execute_result":
            seen["result"] = reply["content"]["data"]["text/plain"]
        elif kind == "stream" and reply["content"]["name"] == "stdout":
            seen["stdout"] += reply["content"]["text"]
        elif kind == "error":
            raise RuntimeError(f"kernel error: {reply['content']['ename']}")
        elif kind == "execute_reply":
            seen["status"] = reply["content"]["status"]
        if seen["status"] and (seen["result"] or seen["stdout"]):
            return seen
    raise TimeoutError(f"no reply to {code!r}: {seen}")


def run_checks(server: Server, expect: str) -> list[tuple[str, bool, str]]:
    results: list[tuple[str, bool, str]] = []
    state: dict[str, Any] = {}

    def check(name: str, body: Callable[[], str]) -> None:
        try:
            detail = body()
            results.append((name, True, detail))
        except Exception as e:  # one failed check must not stop the others
            results.append((name, False, f"{type(e).__name__}: {e}"))
            if os.environ.get("SMOKE_VERBOSE"):
                traceback.print_exc()

    def owner(path: str) -> str:
        return "tornado" if os.sep + "tornado" + os.sep in path else "asyncweb"

    def server_starts() -> str:
        server.wait_ready()
        line = next((x for x in server.output().splitlines() if x.startswith("SMOKE_TORNADO=")), "")
        path = line.partition("=")[2]
        assert owner(path) == expect, f"server runs tornado from {path}"
        return path

    def api() -> str:
        status, body = server.request("GET", "/api")
        assert status == 200 and "version" in body, (status, body)
        status, body = server.request("GET", "/api/status")
        assert status == 200 and "started" in body, (status, body)
        return f"jupyter_server {server.request('GET', '/api')[1]['version']}"

    def kernel_create() -> str:
        status, body = server.request("POST", "/api/kernels", {"name": "python3"})
        assert status == 201, (status, body)
        state["kernel"] = body["id"]
        status, listed = server.request("GET", "/api/kernels")
        assert any(k["id"] == body["id"] for k in listed), listed
        return body["id"]

    def kernel_ws() -> str:
        state["ws"] = server.ws(f"/api/kernels/{state['kernel']}/channels")
        return "101"

    def execute_one_plus_one() -> str:
        seen = execute(state["ws"], "1+1")
        assert seen["result"] == "2" and seen["status"] == "ok", seen
        return "1+1 -> 2"

    def kernel_runs_dropin() -> str:
        seen = execute(state["ws"], "import tornado; print(tornado.__file__)")
        path = seen["stdout"].strip()
        assert owner(path) == expect, f"kernel imports tornado from {path}"
        return path

    def contents() -> str:
        model = {"type": "file", "format": "text", "content": "hello from the smoke test\n"}
        status, body = server.request("PUT", "/api/contents/smoke.txt", model)
        assert status in (200, 201), (status, body)
        status, body = server.request("GET", "/api/contents/smoke.txt?content=1")
        assert status == 200 and body["content"] == model["content"], (status, body)
        status, body = server.request("GET", "/api/contents")
        assert any(item["name"] == "smoke.txt" for item in body["content"]), body
        return "PUT, GET, list"

    def sessions() -> str:
        status, body = server.request(
            "POST",
            "/api/sessions",
            {"path": "smoke.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        )
        assert status == 201, (status, body)
        status, listed = server.request("GET", "/api/sessions")
        assert any(s["id"] == body["id"] for s in listed), listed
        # Its kernel answers too (and has finished starting: one stopped mid-start prints a
        # traceback of its own).
        conn = server.ws(f"/api/kernels/{body['kernel']['id']}/channels?session_id={body['id']}")
        try:
            assert execute(conn, "6*7")["result"] == "42"
        finally:
            conn.close()
        status, _ = server.request("DELETE", f"/api/sessions/{body['id']}")
        assert status == 204, status
        return body["id"]

    def terminal_create() -> str:
        status, body = server.request("POST", "/api/terminals")
        assert status == 200 and "name" in body, (status, body)
        state["terminal"] = body["name"]
        return body["name"]

    def terminal_ws() -> str:
        conn = server.ws(f"/terminals/websocket/{state['terminal']}")
        try:
            conn.send(json.dumps(["stdin", "echo smoke-$((40+2))\r"]))
            deadline = time.monotonic() + 30
            output = ""
            while time.monotonic() < deadline and "smoke-42" not in output:
                kind, *rest = json.loads(conn.recv())
                if kind == "stdout":
                    output += rest[0]
            assert "smoke-42" in output, output
        finally:
            conn.close()
        status, _ = server.request("DELETE", f"/api/terminals/{state['terminal']}")
        assert status == 204, status
        return "echo over the terminal WebSocket"

    def kernel_shutdown() -> str:
        state["ws"].close()
        status, _ = server.request("DELETE", f"/api/kernels/{state['kernel']}")
        assert status == 204, status
        status, listed = server.request("GET", "/api/kernels")
        assert not any(k["id"] == state["kernel"] for k in listed), listed
        return "deleted"

    check("server starts (on the expected tornado)", server_starts)
    check("/api and /api/status", api)
    check("kernel create", kernel_create)
    check("kernel WebSocket connects", kernel_ws)
    check("execute 1+1 over the kernel WebSocket", execute_one_plus_one)
    check("the kernel runs on the expected tornado", kernel_runs_dropin)
    check("contents: save, read, list", contents)
    check("sessions: create, list, delete", sessions)
    check("terminal create", terminal_create)
    check("terminal WebSocket runs a command", terminal_ws)
    check("kernel shutdown", kernel_shutdown)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", choices=("asyncweb", "tornado"), default="asyncweb")
    parser.add_argument("--show-log", action="store_true", help="print the server's log")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="jupyter-smoke-")
    server = Server(root)
    try:
        results = run_checks(server, args.expect)
    finally:
        server.stop()
    for name, ok, detail in results:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}")
    passed = sum(1 for _, ok, _ in results if ok)
    failed = len(results) - passed
    log = server.output() if not server.log.closed else open(server.log_path).read()  # noqa: SIM115
    # Tracebacks in the server's log count against it even when every check passed.
    tracebacks = log.count("Traceback (most recent call last)")
    if args.show_log or failed or tracebacks:
        print("---- server log ----")
        print(log[-20000:])
    shutil.rmtree(root, ignore_errors=True)
    print(f"server log tracebacks: {tracebacks}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
