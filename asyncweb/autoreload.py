"""Restart the process when its code changes (for development), Tornado's ``autoreload``.

``start()`` checks, every ``check_time`` milliseconds on the running loop, the files of every
loaded module and the files given to ``watch()``. When one has changed it runs the reload
hooks and replaces the process with a fresh run of the same command line (``os.execv``), so
the new code is imported from scratch. ``Application(debug=True)`` (or ``autoreload=True``)
starts it.

Listening sockets are not inherited by the new process (Python opens them non-inheritable),
so the new run binds them again; connections open at the time of the restart are dropped.
Not for production, and not inside ``fork_processes`` children, where it stays off.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import weakref
from collections.abc import Callable

from asyncweb import process
from asyncweb.log import gen_log

__all__ = ["add_reload_hook", "start", "wait", "watch"]

_watched_files: set[str] = set()
_reload_hooks: list[Callable[[], None]] = []
_started_loops: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_reload_attempted = False


def start(check_time: int = 500) -> None:
    """Watch for changes on the current loop, every ``check_time`` milliseconds.

    Calling it again for the same loop does nothing.
    """
    from asyncweb.ioloop import IOLoop

    loop = IOLoop.current().asyncio_loop
    if loop in _started_loops:
        return
    if _started_loops:
        gen_log.warning("asyncweb.autoreload started on more than one loop in this process")
    _started_loops.add(loop)
    modify_times: dict[str, float] = {}
    interval = check_time / 1000.0

    def check() -> None:
        if loop.is_closed():
            return
        _check_files(modify_times)
        loop.call_later(interval, check)

    # The first pass records the current times; later passes compare with them.
    _check_files(modify_times)
    loop.call_later(interval, check)


def wait() -> None:
    """Block until a watched file changes, then restart the process.

    For the end of scripts (test runners, a server whose app failed to import): run them
    again once their source changes.
    """
    from asyncweb.ioloop import new_event_loop

    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    _started_loops.discard(loop)
    try:
        loop.call_soon(start)
        loop.run_forever()
    finally:
        loop.close()


def watch(filename: str) -> None:
    """Also restart when ``filename`` (not a module, e.g. a template or config) changes."""
    _watched_files.add(os.path.abspath(filename))


def add_reload_hook(fn: Callable[[], None]) -> None:
    """Run ``fn()`` just before the process restarts (to close files, flush state...).

    Opened files and sockets are not inherited by the new process anyway (Python opens
    them non-inheritable), so hooks are rarely needed for that.
    """
    _reload_hooks.append(fn)


def _module_files() -> list[str]:
    files = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str):
            continue
        if path.endswith((".pyc", ".pyo")):
            path = path[:-1]
        files.append(path)
    return files


def _check_files(modify_times: dict[str, float]) -> None:
    if _reload_attempted or process.task_id() is not None:
        # A forked child cannot re-exec for its parent; and a failed re-exec stays failed.
        return
    for path in (*_module_files(), *_watched_files):
        try:
            modified = os.stat(path).st_mtime
        except OSError:
            continue
        previous = modify_times.setdefault(path, modified)
        if modified != previous:
            gen_log.info("%s modified; restarting server", path)
            _reload()
            return


def _command_line() -> list[str]:
    """The arguments that started this interpreter, ``-m package`` included."""
    orig = getattr(sys, "orig_argv", None)
    if orig:
        return [sys.executable, *orig[1:]]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name:
        name = spec.name.removesuffix(".__main__")
        return [sys.executable, "-m", name, *sys.argv[1:]]
    return [sys.executable, *sys.argv]


def _reload() -> None:
    global _reload_attempted
    _reload_attempted = True
    for hook in _reload_hooks:
        try:
            hook()
        except Exception:
            gen_log.exception("error in reload hook %r", hook)
    if hasattr(signal, "setitimer"):
        # Pending interval timers would outlive the exec and kill the new process.
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    argv = _command_line()
    try:
        os.execv(sys.executable, argv)
    except OSError:
        gen_log.exception("autoreload: could not restart the process")
