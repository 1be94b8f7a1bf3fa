"""asyncweb.log: Tornado's log format, colour only on terminals, pretty logging set-up."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asyncweb import log
from asyncweb.options import OptionParser


def make_record(msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("asyncweb.test", level, "/x/mod.py", 12, msg, args, None)


def test_logger_names() -> None:
    assert log.access_log.name == "asyncweb.access"
    assert log.app_log.name == "asyncweb.application"
    assert log.gen_log.name == "asyncweb.general"


def test_format_without_colour() -> None:
    formatter = log.LogFormatter(color=False)
    line = formatter.format(make_record("hello %s", "world", level=logging.WARNING))
    assert line.startswith("[W ")
    assert line.endswith(" mod:12] hello world")
    assert "\033" not in line


def test_multiline_and_traceback_are_indented() -> None:
    formatter = log.LogFormatter(color=False)
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord(
            "t", logging.ERROR, "/x/mod.py", 1, "two\nlines", (), sys.exc_info()
        )
    text = formatter.format(record)
    lines = text.split("\n")
    assert lines[0].endswith("] two")
    assert all(line.startswith("    ") for line in lines[1:])
    assert "ValueError: boom" in text


def test_bad_arguments_do_not_raise() -> None:
    text = log.LogFormatter(color=False).format(make_record("%d items", "not a number"))
    assert "Bad message" in text


def test_colour_only_on_a_terminal(tmp_path: Path) -> None:
    # stderr of this test process is not a terminal: no escape codes even with color=True.
    assert "\033" not in log.LogFormatter().format(make_record("x"))
    # In a real pseudo-terminal the prefix is coloured by level.
    script = tmp_path / "colour.py"
    script.write_text(
        "import logging\n"
        "from asyncweb.log import LogFormatter\n"
        "r = logging.LogRecord('t', logging.ERROR, 'm.py', 1, 'msg', (), None)\n"
        "print(repr(LogFormatter().format(r)))\n"
    )
    import pty

    main, secondary = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, str(script)],
            stderr=secondary,
            stdout=subprocess.PIPE,
            text=True,
            timeout=30,
            env={**os.environ, "TERM": "xterm"},
        )
    finally:
        os.close(secondary)
        os.close(main)
    assert "\\x1b[2;31m[E " in result.stdout
    assert "\\x1b[0m msg" in result.stdout


def _logging_parser(*args: str) -> OptionParser:
    parser = OptionParser()
    log.define_logging_options(parser)
    parser.parse_command_line(["prog", *args], final=False)
    return parser


@pytest.fixture
def logger() -> logging.Logger:
    logger = logging.getLogger("asyncweb.test.log")
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.setLevel(logging.NOTSET)


def test_enable_pretty_logging_stderr_by_default(logger: logging.Logger) -> None:
    log.enable_pretty_logging(_logging_parser("--logging=debug"), logger)
    assert logger.level == logging.DEBUG
    assert len(logger.handlers) == 1
    assert isinstance(logger.handlers[0].formatter, log.LogFormatter)


def test_logging_none_leaves_logger_alone(logger: logging.Logger) -> None:
    log.enable_pretty_logging(_logging_parser("--logging=none"), logger)
    assert logger.handlers == [] and logger.level == logging.NOTSET


def test_time_rotation_and_stderr(tmp_path: Path, logger: logging.Logger) -> None:
    prefix = tmp_path / "t.log"
    parser = _logging_parser(
        f"--log_file_prefix={prefix}",
        "--log_rotate_mode=time",
        "--log_rotate_when=H",
        "--log_rotate_interval=2",
        "--log_to_stderr",
    )
    log.enable_pretty_logging(parser, logger)
    file_handlers = [
        h for h in logger.handlers if isinstance(h, logging.handlers.TimedRotatingFileHandler)
    ]
    assert len(file_handlers) == 1 and file_handlers[0].interval == 2 * 3600
    assert len(logger.handlers) == 2


def test_size_rotation(tmp_path: Path, logger: logging.Logger) -> None:
    prefix = tmp_path / "s.log"
    parser = _logging_parser(
        f"--log_file_prefix={prefix}", "--log_file_max_size=200", "--log_file_num_backups=2"
    )
    log.enable_pretty_logging(parser, logger)
    assert len(logger.handlers) == 1  # a file and no stderr
    for i in range(30):
        logger.info("line %d of the size rotation test", i)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["s.log", "s.log.1", "s.log.2"]


def test_bad_rotate_mode(tmp_path: Path, logger: logging.Logger) -> None:
    parser = _logging_parser(f"--log_file_prefix={tmp_path / 'x'}", "--log_rotate_mode=daily")
    with pytest.raises(ValueError, match="'size' or 'time'"):
        log.enable_pretty_logging(parser, logger)


def test_parse_command_line_configures_root_logging(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(
        "import logging\n"
        "from asyncweb.options import parse_command_line\n"
        "parse_command_line()\n"
        "logging.getLogger('asyncweb.application').warning('visible')\n"
        "logging.getLogger('x').debug('invisible')\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), "--logging=warning"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "] visible" in result.stderr and "[W " in result.stderr
    assert "invisible" not in result.stderr
