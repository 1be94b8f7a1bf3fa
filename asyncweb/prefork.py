"""Pre-forked servers: ``fork_processes`` makes worker processes that share the listening
sockets, and ``task_id`` tells a worker its number (``asyncweb.process`` re-exports both)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from types import FrameType
from typing import Any

from asyncweb.ioloop import IOLoop
from asyncweb.log import gen_log

_task_id: int | None = None


def cpu_count() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def task_id() -> int | None:
    """In a child of :func:`fork_processes`, its number (0 to n-1); else ``None``."""
    return _task_id


def _reseed_random() -> None:
    # Children must not share the parent's random sequence.
    random.seed(int.from_bytes(os.urandom(16), "big"))


def fork_processes(num_processes: int | None, max_restarts: int | None = None) -> int:
    """Fork ``num_processes`` children (``None`` or <= 0: one per CPU) and return, in each
    child, its task id (0 to n-1).

    The parent never returns: it waits for its children and restarts any that exits with an
    error or is killed by a signal, up to ``max_restarts`` times in all (default 100, then
    ``RuntimeError``). It exits with status 0 once every child has exited normally. SIGTERM
    or SIGINT sent to the parent is passed on to every child and ends the restarting, so one
    ``kill`` stops the group gracefully.

    Call it before any event loop exists: loops, their file descriptors and threads cannot
    be shared across a fork.
    """
    if sys.platform == "win32":
        raise RuntimeError("fork_processes is not available on Windows")
    if max_restarts is None:
        max_restarts = 100
    if num_processes is None or num_processes <= 0:
        num_processes = cpu_count()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("fork_processes() cannot be called while an event loop is running")
    if IOLoop.current(instance=False) is not None:
        # The children would share the loop's selector and file descriptors with each other.
        raise RuntimeError(
            "fork_processes() must come before any IOLoop is created in this process "
            "(an Application with debug=True or autoreload=True creates one)"
        )
    gen_log.info("Starting %d processes", num_processes)
    children: dict[int, int] = {}
    stopping: list[int] = []
    forwarded = (signal.SIGTERM, signal.SIGINT)
    previous: dict[int, Any] = {}

    def start_child(number: int) -> int | None:
        pid = os.fork()
        if pid == 0:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            _reseed_random()
            global _task_id
            _task_id = number
            return number
        children[pid] = number
        return None

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.append(signum)
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    for signum in forwarded:
        previous[signum] = signal.signal(signum, forward)
    restarts = 0
    try:
        for number in range(num_processes):
            child = start_child(number)
            if child is not None:
                return child
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid not in children:
                continue
            number = children.pop(pid)
            if os.WIFSIGNALED(status):
                how = f"was killed by signal {os.WTERMSIG(status)}"
            elif os.WEXITSTATUS(status) != 0:
                how = f"exited with status {os.WEXITSTATUS(status)}"
            else:
                gen_log.info("child %d (pid %d) exited normally", number, pid)
                continue
            if stopping:
                gen_log.info("child %d (pid %d) %s while stopping", number, pid, how)
                continue
            restarts += 1
            if restarts > max_restarts:
                raise RuntimeError("Too many child restarts, giving up")
            gen_log.warning("child %d (pid %d) %s, restarting", number, pid, how)
            child = start_child(number)
            if child is not None:
                return child
    finally:
        if _task_id is None:
            for number, handler in previous.items():
                signal.signal(number, handler)
    sys.exit(0)
