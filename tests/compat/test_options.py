"""asyncweb.options: defining, parsing command lines and config files, help, errors."""

from __future__ import annotations

import datetime
import io
import logging
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest

from asyncweb import options as options_module
from asyncweb.options import Error, OptionParser


def parser_with(**defs: dict[str, object]) -> OptionParser:
    parser = OptionParser()
    for name, kwargs in defs.items():
        parser.define(name, **kwargs)  # type: ignore[arg-type]
    return parser


def test_types_inferred_and_parsed() -> None:
    parser = OptionParser()
    parser.define("port", default=80)
    parser.define("ratio", default=0.5)
    parser.define("name")
    parser.define("debug", default=False)
    parser.define("when", type=datetime.datetime)
    parser.define("span", type=datetime.timedelta)
    rest = parser.parse_command_line(
        [
            "prog",
            "--port=8080",
            "--ratio=1.25",
            "--name=a=b",
            "--debug",
            "--when=2024-02-03 04:05",
            "--span=1h 30min",
            "file.txt",
            "--not-parsed",
        ]
    )
    assert rest == ["file.txt", "--not-parsed"]
    assert parser.port == 8080 and isinstance(parser.port, int)
    assert parser.ratio == 1.25
    assert parser.name == "a=b"
    assert parser.debug is True
    assert parser.when == datetime.datetime(2024, 2, 3, 4, 5)
    assert parser.span == datetime.timedelta(hours=1, minutes=30)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", datetime.timedelta(seconds=90)),
        ("1.5h", datetime.timedelta(hours=1.5)),
        ("2 days", datetime.timedelta(days=2)),
        ("1w 1d 1h 1m 1s 1ms 1us", datetime.timedelta(1 * 7 + 1, 3661, 1001)),
        ("-1.5e1s", datetime.timedelta(seconds=-15)),
    ],
)
def test_timedelta_forms(text: str, expected: datetime.timedelta) -> None:
    parser = parser_with(span={"type": datetime.timedelta})
    parser.parse_command_line(["prog", f"--span={text}"])
    assert parser.span == expected


def test_bool_values_and_dash_underscore() -> None:
    parser = parser_with(log_it={"default": True})
    parser.parse_command_line(["prog", "--log-it=false"])
    assert parser.log_it is False
    parser.parse_command_line(["prog", "--log_it=1"])
    assert parser["log-it"] is True
    parser.parse_command_line(["prog", "--log_it=0"])
    assert parser.log_it is False


def test_multiple_and_ranges() -> None:
    parser = parser_with(
        ports={"type": int, "multiple": True},
        hosts={"type": str, "multiple": True},
    )
    assert parser.ports == [] and parser.hosts == []
    parser.parse_command_line(["prog", "--ports=1:3,7", "--hosts=a,b"])
    assert parser.ports == [1, 2, 3, 7]
    assert parser.hosts == ["a", "b"]


def test_remaining_after_double_dash() -> None:
    parser = parser_with(x={"default": 1})
    assert parser.parse_command_line(["prog", "--x=2", "--", "--x=3"]) == ["--x=3"]
    assert parser.x == 2


def test_errors_are_clear() -> None:
    parser = parser_with(port={"default": 80}, when={"type": datetime.datetime})
    with pytest.raises(Error, match="Unrecognized command line option: 'nope'"):
        parser.parse_command_line(["prog", "--nope=1"])
    with pytest.raises(Error, match="'port' requires a value"):
        parser.parse_command_line(["prog", "--port"])
    with pytest.raises(Error, match="'port': 'abc' is not a valid int"):
        parser.parse_command_line(["prog", "--port=abc"])
    with pytest.raises(Error, match="date/time"):
        parser.parse_command_line(["prog", "--when=yesterday"])
    with pytest.raises(Error, match="required to be a int"):
        parser.port = "80"
    with pytest.raises(Error, match="already defined"):
        parser.define("port")
    with pytest.raises(AttributeError, match="Unrecognized option 'missing'"):
        parser.missing  # noqa: B018
    with pytest.raises(AttributeError):
        parser.missing = 1
    with pytest.raises(KeyError):
        parser["missing"]


def test_callback_runs_on_set_and_parse() -> None:
    seen: list[object] = []
    parser = parser_with(level={"default": 1, "callback": seen.append})
    parser.parse_command_line(["prog", "--level=5"])
    parser.level = 7
    assert seen == [5, 7]


def test_parse_callbacks_only_when_final() -> None:
    parser = parser_with(x={"default": 1})
    calls: list[int] = []
    parser.add_parse_callback(lambda: calls.append(parser.x))
    parser.parse_command_line(["prog", "--x=2"], final=False)
    assert calls == []
    parser.parse_command_line(["prog", "--x=3"])
    assert calls == [3]


def test_config_file(tmp_path: Path) -> None:
    parser = parser_with(
        port={"default": 80},
        hosts={"type": str, "multiple": True},
        ports={"type": int, "multiple": True},
        name={"type": str},
    )
    config = tmp_path / "app.conf"
    config.write_text(
        "import os\nport = 9000\nhosts = ['a', 'b']\nports = '1:2'\n"
        "name = os.path.basename(__file__)\nunrelated = 3\n"
    )
    parser.parse_config_file(str(config))
    assert parser.port == 9000
    assert parser.hosts == ["a", "b"]
    assert parser.ports == [1, 2]
    assert parser.name == "app.conf"
    config.write_text("port = 'x'\n")
    with pytest.raises(Error, match="not a valid int"):
        parser.parse_config_file(str(config))
    config.write_text("hosts = 5\n")
    with pytest.raises(Error, match="list of str"):
        parser.parse_config_file(str(config))


def test_groups_and_dicts() -> None:
    parser = OptionParser()
    parser.define("a", default=1, group="g1")
    parser.define("b", default="x", group="g1")
    parser.define("c", default=2.0)
    assert parser.group_dict("g1") == {"a": 1, "b": "x"}
    assert parser.groups() == {"", "g1", __file__}
    assert parser.group_dict("")["c"] == 2.0
    assert parser.as_dict() == {"help": None, "a": 1, "b": "x", "c": 2.0}
    assert dict(parser.items())["b"] == "x"
    assert "a" in parser and "zzz" not in parser
    assert sorted(parser) == ["a", "b", "c", "help"]


def test_mockable() -> None:
    parser = parser_with(port={"default": 80})
    with mock.patch.object(parser.mockable(), "port", 8080):
        assert parser.port == 8080
    assert parser.port == 80


def test_print_help() -> None:
    parser = OptionParser()
    parser.define("port", default=8888, help="listen on this port", metavar="PORT")
    parser.define("a_really_long_option_name_that_does_not_fit", help="x " * 40)
    out = io.StringIO()
    parser.print_help(out)
    text = out.getvalue()
    assert "Usage:" in text
    assert "--port=PORT" in text and "listen on this port (default 8888)" in text
    assert f"{__file__} options:" in text
    assert "--a-really-long-option-name-that-does-not-fit\n" in text


def test_help_flag_prints_and_exits(tmp_path: Path) -> None:
    script = tmp_path / "prog.py"
    script.write_text(
        "from asyncweb.options import define, parse_command_line\n"
        "define('port', default=8888, help='listen here')\n"
        "parse_command_line()\n"
        "print('not reached')\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "listen here (default 8888)" in result.stderr
    assert "--logging=debug|info|warning|error|none" in result.stderr
    # asyncweb's own options come first, ungrouped; the script's under its file name.
    head, _, tail = result.stderr.partition(f"{script} options:")
    assert "--help" in head and "--logging" in head and "listen here" in tail
    assert "frozen" not in result.stderr
    assert "not reached" not in result.stdout


def test_global_options_and_logging_options(tmp_path: Path) -> None:
    opts = options_module.options
    for name in (
        "logging",
        "log_to_stderr",
        "log_file_prefix",
        "log_file_max_size",
        "log_file_num_backups",
        "log_rotate_mode",
        "log_rotate_when",
        "log_rotate_interval",
    ):
        assert name in opts
    assert opts.logging == "info"
    log_file = tmp_path / "app.log"
    logger = logging.getLogger("asyncweb.test.options")
    parser = OptionParser()
    options_module.define_logging_options(parser)
    try:
        parser.parse_command_line(
            ["prog", "--logging=warning", f"--log_file_prefix={log_file}"], final=False
        )
        from asyncweb.log import enable_pretty_logging

        enable_pretty_logging(parser, logger)
        logger.info("hidden")
        logger.warning("shown %d", 1)
        for handler in logger.handlers:
            handler.flush()
        text = log_file.read_text()
        assert "shown 1" in text and "hidden" not in text
        assert text.startswith("[W ")
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
