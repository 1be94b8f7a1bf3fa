"""Global command-line and config-file options, Tornado's ``tornado.options`` interface.

Each module defines the options it uses, at import time::

    from asyncweb.options import define, options

    define("port", default=8888, help="listen on this port", type=int)
    define("backends", type=str, multiple=True, metavar="HOST:PORT")

and the main program parses them once, then reads them as attributes::

    options.parse_command_line()   # --port=80 --backends=a:1,b:2
    app.listen(options.port)

Names may be written with ``_`` or ``-`` (``--log_file_prefix`` == ``--log-file-prefix``).
Values are typed: ``int``, ``float``, ``str``, ``bool``, ``datetime``, ``timedelta`` or any
callable taking a string. ``multiple=True`` options take comma-separated lists, and integer
lists take ranges (``1:3`` is 1, 2, 3). Unknown options, missing values and values that do
not parse raise :class:`Error` with the option's name in the message.

``parse_config_file(path)`` runs a Python file and takes every global that names a defined
option. ``parse_command_line`` and ``parse_config_file`` run the parse callbacks when
``final`` is true, which is how ``--logging`` and friends configure logging.
"""

from __future__ import annotations

import datetime
import numbers
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

from asyncweb.log import define_logging_options

__all__ = [
    "Error",
    "OptionParser",
    "add_parse_callback",
    "define",
    "options",
    "parse_command_line",
    "parse_config_file",
    "print_help",
]


class Error(Exception):
    """A bad option: unknown name, missing or unparsable value, wrong type, duplicate."""


def _normalize(name: str) -> str:
    return name.replace("_", "-")


_UNSET: Any = object()


class _Option:
    def __init__(
        self,
        name: str,
        default: Any = None,
        type: type | None = None,
        help: str | None = None,
        metavar: str | None = None,
        multiple: bool = False,
        file_name: str | None = None,
        group_name: str | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        if default is None and multiple:
            default = []
        self.name = name
        if type is None:
            raise ValueError("type must not be None")
        self.type = type
        self.help = help
        self.metavar = metavar
        self.multiple = multiple
        self.file_name = file_name
        self.group_name = group_name
        self.callback = callback
        self.default = default
        self._value: Any = _UNSET

    def value(self) -> Any:
        return self.default if self._value is _UNSET else self._value

    def _type_name(self) -> str:
        return getattr(self.type, "__name__", str(self.type))

    def _parse_one(self, text: str) -> Any:
        try:
            if self.type is datetime.datetime:
                return _parse_datetime(text)
            if self.type is datetime.timedelta:
                return _parse_timedelta(text)
            if self.type is bool:
                return text.strip().lower() not in ("false", "0", "f", "no", "off")
            if self.type is str:
                return text
            return self.type(text)
        except Error:
            raise
        except (ValueError, TypeError) as err:
            raise Error(
                f"Option {self.name!r}: {text!r} is not a valid {self._type_name()} ({err})"
            ) from err

    def parse(self, text: str) -> Any:
        """Set the value from its text form (a comma-separated list when ``multiple``)."""
        if self.multiple:
            values: list[Any] = []
            for part in text.split(","):
                if isinstance(self.type, type) and issubclass(self.type, numbers.Integral):
                    low, colon, high = part.partition(":")
                    first = self._parse_one(low)
                    last = self._parse_one(high) if colon else first
                    values.extend(range(first, last + 1))
                else:
                    values.append(self._parse_one(part))
            self._value = values
        else:
            self._value = self._parse_one(text)
        if self.callback is not None:
            self.callback(self._value)
        return self.value()

    def set(self, value: Any) -> None:
        """Set an already-typed value (checked against the option's type)."""
        if self.multiple:
            if not isinstance(value, list):
                raise Error(f"Option {self.name!r} is required to be a list of {self._type_name()}")
            for item in value:
                if item is not None and not isinstance(item, self.type):
                    raise Error(
                        f"Option {self.name!r} is required to be a list of "
                        f"{self._type_name()} ({item!r} given)"
                    )
        elif value is not None and not isinstance(value, self.type):
            raise Error(
                f"Option {self.name!r} is required to be a {self._type_name()} "
                f"({type(value).__name__} {value!r} given)"
            )
        self._value = value
        if self.callback is not None:
            self.callback(self._value)


_DATETIME_FORMATS = (
    "%a %b %d %H:%M:%S %Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M",
    "%Y%m%d %H:%M:%S",
    "%Y%m%d %H:%M",
    "%Y-%m-%d",
    "%Y%m%d",
    "%H:%M:%S",
    "%H:%M",
)


def _parse_datetime(text: str) -> datetime.datetime:
    for fmt in _DATETIME_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt)
        except ValueError:
            pass
    raise ValueError(f"unrecognized date/time format: {text!r}")


_TIMEDELTA_UNITS = {
    "": "seconds",
    "us": "microseconds",
    "microsecond": "microseconds",
    "ms": "milliseconds",
    "millisecond": "milliseconds",
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "h": "hours",
    "hr": "hours",
    "hour": "hours",
    "d": "days",
    "day": "days",
    "w": "weeks",
    "week": "weeks",
}
_TIMEDELTA_PART = re.compile(r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*")


def _parse_timedelta(text: str) -> datetime.timedelta:
    """``"90"``, ``"1.5h"``, ``"1h 30min"``, ``"2 days"``: bare numbers are seconds."""
    total = datetime.timedelta()
    position = 0
    while position < len(text):
        match = _TIMEDELTA_PART.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"unrecognized time span: {text!r}")
        number, unit = match.groups()
        unit = unit.lower()
        name = _TIMEDELTA_UNITS.get(unit) or _TIMEDELTA_UNITS.get(unit.removesuffix("s"))
        if name is None:
            raise ValueError(f"unknown time unit {unit!r} in {text!r}")
        total += datetime.timedelta(**{name: float(number)})
        position = match.end()
    if position == 0:
        raise ValueError("empty time span")
    return total


class OptionParser:
    """A collection of options; the module-level functions use the global ``options``.

    Read values as attributes or items (``options.port``, ``options["port"]``); assigning
    type-checks. Iterating yields the option names.
    """

    def __init__(self) -> None:
        # Written through __dict__ because __setattr__ sets option values.
        self.__dict__["_options"] = {}
        self.__dict__["_parse_callbacks"] = []
        self.define(
            "help",
            type=bool,
            help="show this help information",
            callback=self._help_callback,
        )
        # Listed first in the help, not under the file that made the parser.
        self._options["help"].file_name = self._options["help"].group_name = ""

    _options: dict[str, _Option]
    _parse_callbacks: list[Callable[[], None]]

    # -- reading and writing values ------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        option = self.__dict__["_options"].get(_normalize(name))
        if option is None:
            raise AttributeError(f"Unrecognized option {name!r}")
        return option.value()

    def __setattr__(self, name: str, value: Any) -> None:
        option = self._options.get(_normalize(name))
        if option is None:
            raise AttributeError(f"Unrecognized option {name!r}")
        option.set(value)

    def __getitem__(self, name: str) -> Any:
        try:
            return self._options[_normalize(name)].value()
        except KeyError:
            raise KeyError(f"Unrecognized option {name!r}") from None

    def __setitem__(self, name: str, value: Any) -> None:
        option = self._options.get(_normalize(name))
        if option is None:
            raise KeyError(f"Unrecognized option {name!r}")
        option.set(value)

    def __iter__(self) -> Iterator[str]:
        return (option.name for option in self._options.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _normalize(name) in self._options

    def items(self) -> Iterable[tuple[str, Any]]:
        """``(name, value)`` pairs for every option."""
        return [(option.name, option.value()) for option in self._options.values()]

    def groups(self) -> set[str]:
        """The group names (by default the file that defined each option)."""
        return {option.group_name or "" for option in self._options.values()}

    def group_dict(self, group: str | None) -> dict[str, Any]:
        """``{name: value}`` of one group's options (of all options when ``group`` is empty),
        handy as ``Application(**options.group_dict("application"))``."""
        return {
            option.name: option.value()
            for option in self._options.values()
            if not group or group == option.group_name
        }

    def as_dict(self) -> dict[str, Any]:
        """``{name: value}`` of every option."""
        return {option.name: option.value() for option in self._options.values()}

    # -- defining -----------------------------------------------------------------------------

    def define(
        self,
        name: str,
        default: Any = None,
        type: type | None = None,
        help: str | None = None,
        metavar: str | None = None,
        multiple: bool = False,
        group: str | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> None:
        """Define an option. Without ``type`` it is the default's type (``str`` when there is
        no default or the option is ``multiple``). ``callback(value)`` runs whenever the value
        is set. Defining a name twice raises :class:`Error`."""
        normalized = _normalize(name)
        if normalized in self._options:
            raise Error(
                f"Option {normalized!r} already defined in {self._options[normalized].file_name}"
            )
        file_name = _defining_file()
        if type is None:
            type = default.__class__ if not multiple and default is not None else str
        self._options[normalized] = _Option(
            name,
            default=default,
            type=type,
            help=help,
            metavar=metavar,
            multiple=multiple,
            file_name=file_name,
            group_name=group if group else file_name,
            callback=callback,
        )

    # -- parsing ------------------------------------------------------------------------------

    def parse_command_line(self, args: list[str] | None = None, final: bool = True) -> list[str]:
        """Parse ``--name=value`` / ``--flag`` arguments (``sys.argv`` by default; its first
        item is the program name and skipped). Returns the arguments left after the first
        one that isn't an option (or after ``--``).

        Beyond Tornado, ``--name value`` is accepted too for options that take a value (as
        argparse users expect); Tornado refuses that form, so no input Tornado accepts
        changes meaning. A flag (a ``bool`` option) never takes the next argument."""
        if args is None:
            args = sys.argv
        remaining: list[str] = []
        index = 1
        while index < len(args):
            arg = args[index]
            index += 1
            if not arg.startswith("-"):
                remaining = args[index - 1 :]
                break
            if arg == "--":
                remaining = args[index:]
                break
            name, equals, value = arg.lstrip("-").partition("=")
            option = self._options.get(_normalize(name))
            if option is None:
                raise Error(f"Unrecognized command line option: {name!r} (try --help)")
            if not equals:
                if option.type is bool:
                    value = "true"
                elif index < len(args) and not args[index].startswith("--"):
                    value = args[index]
                    index += 1
                else:
                    raise Error(f"Option {option.name!r} requires a value: --{name}=VALUE")
            option.parse(value)
        if final:
            self.run_parse_callbacks()
        return remaining

    def parse_config_file(self, path: str, final: bool = True) -> None:
        """Run the Python file at ``path`` and take each global that names an option.

        Values are set as they are (checked against the option's type); a string for a
        non-string option is parsed like the command line would (``port = "80"``).
        Globals that name no option are ignored.
        """
        config: dict[str, Any] = {"__file__": os.path.abspath(path)}
        with open(path, "rb") as file:
            code = compile(file.read(), path, "exec")
        exec(code, config, config)
        for name, value in config.items():
            option = self._options.get(_normalize(name))
            if option is None:
                continue
            if option.multiple and not isinstance(value, (list, str)):
                raise Error(
                    f"Option {option.name!r} is required to be a list of "
                    f"{option._type_name()} or a comma-separated string"
                )
            if isinstance(value, str) and (option.type is not str or option.multiple):
                option.parse(value)
            else:
                option.set(value)
        if final:
            self.run_parse_callbacks()

    def print_help(self, file: TextIO | None = None) -> None:
        """Write every option, grouped by defining file, to ``file`` (stderr by default)."""
        out = file if file is not None else sys.stderr
        print(f"Usage: {sys.argv[0] if sys.argv else 'program'} [OPTIONS]", file=out)
        print("\nOptions:\n", file=out)
        by_group: dict[str, list[_Option]] = {}
        for option in self._options.values():
            by_group.setdefault(option.group_name or "", []).append(option)
        for group_name, group in sorted(by_group.items()):
            if group_name:
                print(f"\n{os.path.normpath(group_name)} options:\n", file=out)
            for option in sorted(group, key=lambda option: option.name):
                label = _normalize(option.name)
                if option.metavar:
                    label += "=" + option.metavar
                description = option.help or ""
                if option.default is not None and option.default != "":
                    description += f" (default {option.default})"
                lines = textwrap.wrap(description, 44)
                if len(label) > 30 or not lines:
                    lines.insert(0, "")
                print(f"  --{label:<30} {lines[0]}".rstrip(), file=out)
                for line in lines[1:]:
                    print(f"{'':<34} {line}", file=out)

    def _help_callback(self, value: bool) -> None:
        if value:
            self.print_help()
            sys.exit(0)

    def add_parse_callback(self, callback: Callable[[], None]) -> None:
        """Run ``callback()`` after each final parse."""
        self._parse_callbacks.append(callback)

    def run_parse_callbacks(self) -> None:
        for callback in self._parse_callbacks:
            callback()

    def mockable(self) -> _Mockable:
        """A view whose attributes can be patched and restored, e.g. with
        ``mock.patch.object(options.mockable(), "port", 8080)``."""
        return _Mockable(self)


class _Mockable:
    """Setting an attribute remembers the old value; deleting it puts the old value back
    (what ``mock.patch.object`` does on exit)."""

    def __init__(self, parser: OptionParser) -> None:
        self.__dict__["_parser"] = parser
        self.__dict__["_saved"] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._saved:
            raise AssertionError(f"option {name!r} is already patched")
        self._saved[name] = getattr(self._parser, name)
        setattr(self._parser, name, value)

    def __delattr__(self, name: str) -> None:
        setattr(self._parser, name, self._saved.pop(name))


def _defining_file() -> str:
    """The file of the first caller outside this module and the logging set-up; "" for the
    options asyncweb itself defines at import time (``--help``, the logging options)."""
    frame = sys._getframe(1)
    here = (__file__, sys.modules["asyncweb.log"].__file__)
    while frame is not None and frame.f_code.co_filename in here:
        if frame.f_code.co_name == "<module>":
            return ""
        frame = frame.f_back  # type: ignore[assignment]
    return frame.f_code.co_filename if frame is not None else ""


options = OptionParser()
"""The global option parser the module-level functions work on."""


def define(
    name: str,
    default: Any = None,
    type: type | None = None,
    help: str | None = None,
    metavar: str | None = None,
    multiple: bool = False,
    group: str | None = None,
    callback: Callable[[Any], None] | None = None,
) -> None:
    """Define an option on the global parser (see :meth:`OptionParser.define`)."""
    options.define(name, default, type, help, metavar, multiple, group, callback)


def parse_command_line(args: list[str] | None = None, final: bool = True) -> list[str]:
    """Parse the command line into the global options."""
    return options.parse_command_line(args, final=final)


def parse_config_file(path: str, final: bool = True) -> None:
    """Parse a Python config file into the global options."""
    options.parse_config_file(path, final=final)


def print_help(file: TextIO | None = None) -> None:
    """Print the global options' help."""
    options.print_help(file)


def add_parse_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` after the global options are parsed."""
    options.add_parse_callback(callback)


define_logging_options(options)
