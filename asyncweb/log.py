"""The framework's loggers, named after Tornado's (``tornado.*`` becomes ``asyncweb.*``), and
Tornado's pretty console/file logging set-up.

``access_log`` gets one line per finished request, ``app_log`` errors from application code,
``gen_log`` everything else (protocol problems, bad client input).

``enable_pretty_logging()`` (run by ``options.parse_command_line()``) sends records to stderr
with :class:`LogFormatter` (coloured on a terminal) and, with ``--log_file_prefix``, to a
rotating file.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncweb.options import OptionParser

__all__ = [
    "LogFormatter",
    "access_log",
    "app_log",
    "define_logging_options",
    "enable_pretty_logging",
    "gen_log",
]

access_log = logging.getLogger("asyncweb.access")
app_log = logging.getLogger("asyncweb.application")
gen_log = logging.getLogger("asyncweb.general")

# ANSI colour numbers (30 + n foreground) per level.
_DEFAULT_COLORS = {
    logging.DEBUG: 4,  # blue
    logging.INFO: 2,  # green
    logging.WARNING: 3,  # yellow
    logging.ERROR: 1,  # red
    logging.CRITICAL: 5,  # magenta
}


def _stream_is_color_terminal(stream: Any) -> bool:
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    import os

    return os.environ.get("TERM", "") not in ("", "dumb") and "NO_COLOR" not in os.environ


class LogFormatter(logging.Formatter):
    """Tornado's log line: ``[L yymmdd HH:MM:SS module:line] message``.

    The bracketed prefix is coloured by level when ``color`` is true and stderr is a colour
    terminal. Multi-line messages and tracebacks are indented under the first line, so each
    record starts at the left margin. Reads ``record.message`` text safely even when the
    arguments don't fit the format string (the error is shown instead of raised).
    """

    DEFAULT_FORMAT = (
        "%(color)s[%(levelname)1.1s %(asctime)s %(module)s:%(lineno)d]%(end_color)s %(message)s"
    )
    DEFAULT_DATE_FORMAT = "%y%m%d %H:%M:%S"
    DEFAULT_COLORS = _DEFAULT_COLORS

    def __init__(
        self,
        fmt: str = DEFAULT_FORMAT,
        datefmt: str = DEFAULT_DATE_FORMAT,
        style: str = "%",
        color: bool = True,
        colors: dict[int, int] | None = None,
    ) -> None:
        super().__init__(datefmt=datefmt)
        self._format_string = fmt
        self._colors: dict[int, str] = {}
        self._normal = ""
        if color and _stream_is_color_terminal(sys.stderr):
            for level, code in (colors if colors is not None else _DEFAULT_COLORS).items():
                self._colors[level] = f"\033[2;3{code}m"
            self._normal = "\033[0m"

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception as err:
            message = f"Bad message ({err!r}): {record.__dict__!r}"
        record.message = message
        record.asctime = self.formatTime(record, self.datefmt)
        color = self._colors.get(record.levelno, "")
        record.color = color
        record.end_color = self._normal if color else ""
        formatted = self._format_string % record.__dict__
        extra: list[str] = []
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            extra.append(record.exc_text)
        if record.stack_info:
            extra.append(self.formatStack(record.stack_info))
        if extra:
            formatted = "\n".join([formatted.rstrip(), *extra])
        return formatted.replace("\n", "\n    ")


def enable_pretty_logging(options: Any = None, logger: logging.Logger | None = None) -> None:
    """Configure ``logger`` (the root logger by default) from the logging options.

    ``options`` defaults to ``asyncweb.options.options``. ``logging`` sets the level (``none``
    leaves logging alone); ``log_file_prefix`` adds a rotating file (by size or by time, see
    ``log_rotate_mode``); stderr gets a handler when ``log_to_stderr`` is true, or when it is
    unset and the logger has no handler yet.
    """
    if options is None:
        from asyncweb.options import options as global_options

        options = global_options
    if options.logging is None or options.logging.lower() == "none":
        return
    if logger is None:
        logger = logging.getLogger()
    level = logging.getLevelName(options.logging.upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown logging level {options.logging!r}")
    logger.setLevel(level)
    if options.log_file_prefix:
        mode = options.log_rotate_mode
        handler: logging.Handler
        if mode == "size":
            handler = logging.handlers.RotatingFileHandler(
                filename=options.log_file_prefix,
                maxBytes=options.log_file_max_size,
                backupCount=options.log_file_num_backups,
                encoding="utf-8",
            )
        elif mode == "time":
            handler = logging.handlers.TimedRotatingFileHandler(
                filename=options.log_file_prefix,
                when=options.log_rotate_when,
                interval=options.log_rotate_interval,
                backupCount=options.log_file_num_backups,
                encoding="utf-8",
            )
        else:
            raise ValueError(f"log_rotate_mode must be 'size' or 'time', not {mode!r}")
        handler.setFormatter(LogFormatter(color=False))
        logger.addHandler(handler)
    if options.log_to_stderr or (options.log_to_stderr is None and not logger.handlers):
        stream_handler = logging.StreamHandler()
        stream_handler.setFormatter(LogFormatter())
        logger.addHandler(stream_handler)


def define_logging_options(options: OptionParser | None = None) -> None:
    """Define ``--logging``, ``--log_to_stderr``, ``--log_file_*`` and ``--log_rotate_*`` on
    ``options`` (the global parser by default) and apply them after each parse."""
    if options is None:
        from asyncweb.options import options as global_options

        options = global_options
    options.define(
        "logging",
        default="info",
        help="log level for Python logging; 'none' leaves the logging set-up alone",
        metavar="debug|info|warning|error|none",
    )
    options.define(
        "log_to_stderr",
        type=bool,
        default=None,
        help="log to stderr (in colour on a terminal); unset: only when there is no log file "
        "and no other handler",
    )
    options.define(
        "log_file_prefix",
        type=str,
        default=None,
        metavar="PATH",
        help="write the log to this file, rotated (one distinct path per process)",
    )
    options.define(
        "log_file_max_size",
        type=int,
        default=100 * 1000 * 1000,
        help="bytes a log file may reach before it is rotated (size mode)",
    )
    options.define("log_file_num_backups", type=int, default=10, help="rotated log files to keep")
    options.define(
        "log_rotate_when",
        type=str,
        default="midnight",
        help="unit of the time-mode rotation interval: S, M, H, D, W0-W6 or midnight",
    )
    options.define(
        "log_rotate_interval",
        type=int,
        default=1,
        help="how many log_rotate_when units between rotations (time mode)",
    )
    options.define(
        "log_rotate_mode",
        type=str,
        default="size",
        help="rotate log files by 'size' or by 'time'",
    )
    parser = options
    parser.add_parse_callback(lambda: enable_pretty_logging(parser))
