"""The ``asyncweb`` command (also ``python -m asyncweb``).

``asyncweb serve module:app`` imports ``module`` (from the current directory or ``--app-dir``)
and serves its ``app``, which may be an ``Application`` (any ``HTTPServerConnectionDelegate``),
a factory returning one (any callable that takes no arguments), or an ``HTTPServer``-style
request callback (a callable taking the request). ``module:factory.attr`` walks attributes.

With ``--workers N`` the parent binds the port, forks N workers (``process.fork_processes``)
and restarts any that dies. Where the platform has ``SO_REUSEPORT`` each worker binds its
own socket and the kernel spreads connections over them; otherwise (and for ``--uds``) the
workers share the parent's socket. SIGTERM or SIGINT stops accepting, lets in-flight
requests finish (up to ``--shutdown-timeout`` seconds), then exits 0; the parent passes the
signal on to its workers and exits once they have.

Before serving (and before forking), the objects alive after start-up are collected once and
frozen (``gc.freeze``): the collector never walks them again, so a full collection costs what
the requests allocate, not what the imports did; ``--no-gc-freeze`` leaves gc alone.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import importlib
import inspect
import logging
import os
import signal
import socket
import ssl
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from asyncweb.log import LogFormatter, access_log, gen_log

__all__ = ["CLIError", "load_target", "main"]


_RELOAD_PORT_ENV = "_ASYNCWEB_RELOAD_PORT"
# Seconds within which a worker takes a repeated signal for the same Ctrl-C.
_SAME_PRESS = 0.5


class CLIError(Exception):
    """A problem worth one line on stderr, not a traceback."""


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (exit 2), as ``asyncweb: error: ...``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"asyncweb: error: {message} (see '{self.prog} --help')\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range (0-65535)")
    return port


def _build_parser() -> argparse.ArgumentParser:
    from asyncweb import version

    parser = _Parser(prog="asyncweb", description="Run asyncweb applications.")
    parser.add_argument("--version", action="version", version=f"asyncweb {version}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    serve = commands.add_parser(
        "serve",
        help="serve an application",
        description="Serve MODULE:APP (an Application, a factory returning one, or a request "
        "callback taking the request).",
    )
    serve.add_argument("target", metavar="MODULE:APP", help="e.g. myproject.web:app")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s; '' for all)",
    )
    serve.add_argument(
        "--port", type=_port, default=8888, help="port (default: %(default)s; 0 picks a free one)"
    )
    serve.add_argument(
        "--uds", metavar="PATH", help="listen on this Unix socket instead of host:port"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default: 1; 0 means one per CPU)",
    )
    serve.add_argument(
        "--reload", action="store_true", help="restart when the code changes (development)"
    )
    serve.add_argument("--certfile", help="TLS certificate chain (PEM); serves HTTPS")
    serve.add_argument("--keyfile", help="TLS private key (PEM), if not in --certfile")
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="(default: %(default)s)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log one line per request (default: on)",
    )
    serve.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="use uvloop (default: when installed)",
    )
    serve.add_argument(
        "--xheaders", action="store_true", help="trust X-Real-Ip/X-Forwarded-* from a proxy"
    )
    serve.add_argument(
        "--max-connections-per-address",
        type=int,
        default=None,
        metavar="N",
        help="at most N open connections per client IP; more get a 503 (default: no cap; "
        "behind a proxy every client has the proxy's address)",
    )
    serve.add_argument(
        "--http-parser",
        choices=("h11", "httptools"),
        default="h11",
        help="request parser: h11 (the reference) or httptools (faster; needs the httptools "
        "package) (default: %(default)s)",
    )
    serve.add_argument(
        "--http2",
        action="store_true",
        help="also serve HTTP/2: by ALPN with --certfile, else by prior knowledge (h2c)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests may take before connections are cut "
        "(default: %(default)s)",
    )
    serve.add_argument(
        "--gc-freeze",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after start-up, move every live object out of the garbage collector's view "
        "(gc.freeze) so collections while serving skip them (default: on)",
    )
    serve.add_argument(
        "--app-dir", default=".", help="directory put first on sys.path (default: current)"
    )
    return parser


# -- finding the application -------------------------------------------------------------------


def load_target(spec: str) -> Any:
    """Import ``module:attr`` and return what ``HTTPServer`` takes: a connection delegate
    (an ``Application``) or a request callback. Factories (callables without required
    arguments) are called. Raises :class:`CLIError` for a bad spec, a missing module or a
    missing attribute; errors raised by the module's own code propagate."""
    module_name, colon, attr_path = spec.partition(":")
    if not colon or not module_name or not attr_path:
        raise CLIError(f"expected MODULE:APP (e.g. myapp:app), got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = err.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            raise CLIError(f"could not import module {module_name!r}: {err}") from None
        raise
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CLIError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    return _as_request_callback(target, spec)


def _as_request_callback(target: Any, spec: str) -> Any:
    if hasattr(target, "start_request") and not isinstance(target, type):
        return target
    if isinstance(target, type) and hasattr(target, "SUPPORTED_METHODS"):
        raise CLIError(
            f"{spec} is a RequestHandler class, not an Application; serve an application "
            f'that routes to it, e.g. app = Application([(r"/", {target.__name__})])'
        )
    if not callable(target):
        raise CLIError(
            f"{spec} is a {type(target).__name__}, not an Application, a factory or a request "
            "callback"
        )
    if isinstance(target, type) and hasattr(target, "start_request"):
        made = target()
    elif _takes_no_arguments(target):
        made = target()
        if inspect.isawaitable(made):
            if hasattr(made, "close"):
                made.close()
            raise CLIError(f"{spec} is an async factory; make it a plain function")
    else:
        return target  # a request callback: called with each request
    if hasattr(made, "start_request") or callable(made):
        return made
    raise CLIError(
        f"factory {spec} returned a {type(made).__name__}, not an Application or a callable"
    )


def _takes_no_arguments(func: Any) -> bool:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    return all(
        param.default is not param.empty or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        for param in signature.parameters.values()
    )


# -- sockets -----------------------------------------------------------------------------------


def _bind(args: argparse.Namespace, port: int, reuse_port: bool) -> list[socket.socket]:
    from asyncweb.netutil import bind_sockets, bind_unix_socket

    where = f"unix:{args.uds}" if args.uds else f"{args.host or '*'}:{port}"
    try:
        if args.uds:
            return [bind_unix_socket(args.uds, mode=0o666)]
        return bind_sockets(port, args.host or None, reuse_port=reuse_port)
    except OSError as err:
        reason = {
            errno.EADDRINUSE: "address already in use",
            errno.EACCES: "permission denied",
            errno.EADDRNOTAVAIL: "address not available on this machine",
        }.get(err.errno or 0, err.strerror or str(err))
        raise CLIError(f"cannot listen on {where}: {reason}") from None
    except (socket.gaierror, ValueError) as err:
        raise CLIError(f"cannot listen on {where}: {err}") from None


def _url(args: argparse.Namespace, sockets: list[socket.socket]) -> str:
    if args.uds:
        return f"unix:{args.uds}"
    scheme = "https" if args.certfile else "http"
    host, port = sockets[0].getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.certfile:
        if args.keyfile:
            raise CLIError("--keyfile needs --certfile")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(args.certfile, args.keyfile)
    except (OSError, ssl.SSLError) as err:
        raise CLIError(f"cannot load the TLS certificate/key: {err}") from None
    return context


# -- serving -----------------------------------------------------------------------------------


def _configure_logging(args: argparse.Namespace) -> None:
    root = logging.getLogger()
    root.setLevel(getattr(logging, args.log_level.upper()))
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(LogFormatter())
        root.addHandler(handler)
    access_log.disabled = not args.access_log


def _choose_loop(args: argparse.Namespace) -> None:
    from asyncweb import ioloop

    if args.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            raise CLIError("--uvloop: uvloop is not installed (pip install uvloop)") from None
    if args.uvloop is not None:
        ioloop._use_uvloop = args.uvloop


def _serve_here(
    request_callback: Any,
    sockets: list[socket.socket],
    args: argparse.Namespace,
    ssl_context: ssl.SSLContext | None,
    announce: str | None = None,
) -> None:
    """Run the application's start-up hooks, log ``announce``, serve on ``sockets`` until
    SIGTERM/SIGINT, then stop gracefully (``asyncweb.web.lifecycle``) and return."""
    from asyncweb import process
    from asyncweb.httpserver import HTTPServer
    from asyncweb.ioloop import IOLoop
    from asyncweb.web.lifecycle import stop_serving

    io_loop = IOLoop.current()
    loop = io_loop.asyncio_loop
    applications = [request_callback] if hasattr(request_callback, "startup") else []
    try:
        for application in applications:
            io_loop.run_sync(application.startup)
        server = HTTPServer(
            request_callback,
            ssl_options=ssl_context,
            xheaders=args.xheaders,
            http_parser=args.http_parser,
            max_connections_per_address=args.max_connections_per_address,
            http2=args.http2,
        )
        server.add_sockets(sockets)
        if args.gc_freeze:
            _freeze_startup_objects()
        if announce is not None:
            gen_log.info("%s", announce)
        signals: list[int] = []
        signal_times: list[float] = []
        worker = process.task_id() is not None
        force = asyncio.Event()

        async def drain() -> None:
            try:
                await stop_serving([server], applications, args.shutdown_timeout, force)
            finally:
                loop.stop()

        def on_signal(signum: int) -> None:
            # The first signal stops gracefully, the second stops now, a third leaves
            # without waiting for anything. A worker gets each Ctrl-C twice (from the
            # terminal's process group, then passed on by its parent): the same press.
            now = loop.time()
            if worker and signals and now - signal_times[-1] < _SAME_PRESS:
                return
            signals.append(signum)
            signal_times.append(now)
            name = signal.Signals(signum).name
            if len(signals) == 1:
                gen_log.info(
                    "%s received; finishing in-flight requests (up to %gs; again to stop now)",
                    name,
                    args.shutdown_timeout,
                )
                loop.create_task(drain())
            elif len(signals) == 2:
                gen_log.info("%s received again; stopping now", name)
                force.set()
            else:
                os._exit(130 if signum == signal.SIGINT else 143)

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        if args.reload:
            from asyncweb import autoreload

            autoreload.start()
        try:
            io_loop.start()
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
    finally:
        _close_loop(io_loop)


def _freeze_startup_objects() -> None:
    """Collect start-up garbage once, then freeze what is left: full collections while
    serving then skip the application's modules, routes and templates (62 ms -> 0 for 600k
    start-up objects), and forked workers do not write to the pages they share with the
    parent by touching those objects' gc headers."""
    gc.collect()
    gc.freeze()


def _close_loop(io_loop: Any) -> None:
    """Close the loop as asyncio.run does: no task left pending, async generators and the
    default executor shut down."""
    from asyncweb.web.lifecycle import cancel_other_tasks

    loop = io_loop.asyncio_loop
    try:
        if asyncio.all_tasks(loop):
            loop.run_until_complete(cancel_other_tasks(1.0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        io_loop.close()


def _serve(args: argparse.Namespace) -> None:
    if args.workers < 0:
        raise CLIError("--workers must be 0 (one per CPU) or more")
    if args.reload and args.workers != 1:
        raise CLIError("--reload cannot be combined with --workers (it restarts one process)")
    _configure_logging(args)
    _choose_loop(args)
    ssl_context = _ssl_context(args)
    app_dir = os.path.abspath(args.app_dir)
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    try:
        request_callback = load_target(args.target)
    except CLIError:
        raise
    except Exception:
        if not args.reload:
            raise
        # Show the error and restart once the code is fixed.
        traceback.print_exc()
        _wait_for_fix(args.target)
    from asyncweb import process

    workers = args.workers if args.workers > 0 else process.cpu_count()
    settings = getattr(request_callback, "settings", None)
    if workers != 1 and isinstance(settings, dict) and settings.get("autoreload"):
        why = "debug=True" if settings.get("debug") else "autoreload=True"
        raise CLIError(
            f"--workers {args.workers} cannot serve an Application with {why} (it restarts "
            "one process on code changes); use one worker, or turn it off"
        )
    if args.reload:
        _reload_templates(request_callback)
    if workers == 1:
        port = args.port
        if args.reload and port == 0:
            # A reload re-runs this command line: keep the port picked by the first run.
            port = int(os.environ.get(_RELOAD_PORT_ENV, "0"))
        sockets = _bind(args, port, reuse_port=False)
        if args.reload and port == 0 and not args.uds:
            os.environ[_RELOAD_PORT_ENV] = str(sockets[0].getsockname()[1])
        announce = f"Serving on {_url(args, sockets)} (pid {os.getpid()})"
        _serve_here(request_callback, sockets, args, ssl_context, announce)
        return
    per_worker = hasattr(socket, "SO_REUSEPORT") and not args.uds
    sockets = _bind(args, args.port, reuse_port=per_worker)
    port = 0 if args.uds else sockets[0].getsockname()[1]
    gen_log.info(
        "Serving on %s with %d workers (pid %d)", _url(args, sockets), workers, os.getpid()
    )
    if per_worker:
        # The port is known and free; each worker binds its own socket to it.
        for sock in sockets:
            sock.close()
    if args.gc_freeze:
        _freeze_startup_objects()
    try:
        number = process.fork_processes(workers, max_restarts=None)
    except RuntimeError as err:
        raise CLIError(str(err)) from None
    if per_worker:
        sockets = _bind(args, port, reuse_port=True)
    gen_log.info("worker %d started (pid %d)", number, os.getpid())
    _serve_here(request_callback, sockets, args, ssl_context)


def _reload_templates(application: Any) -> None:
    """``--reload`` means templates too: re-read them (and static file versions) on each
    request, as ``debug=True`` does, so an edit shows without a restart."""
    settings = getattr(application, "settings", None)
    if not isinstance(settings, dict) or not hasattr(application, "_reset_caches_per_request"):
        return
    settings["compiled_template_cache"] = False
    settings["static_hash_cache"] = False
    application._reset_caches_per_request = True


def _wait_for_fix(target: str) -> NoReturn:
    import importlib.util

    from asyncweb import autoreload

    module_name = target.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        autoreload.watch(spec.origin)
    gen_log.error("waiting for a change to restart")
    autoreload.wait()
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``asyncweb`` and ``python -m asyncweb``; returns the exit status."""
    parser = _build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_usage(sys.stderr)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            _serve(args)
    except CLIError as err:
        print(f"asyncweb: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
