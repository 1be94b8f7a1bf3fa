"""Small helpers shared across asyncweb, named as in ``tornado.util``."""

from __future__ import annotations

import asyncio
import datetime
import importlib
import inspect
import re
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# Python 3 has one text type; these names keep Tornado-era code importing.
unicode_type = str
basestring_type = str
bytes_type = bytes


class ObjectDict(dict[str, Any]):
    """A dict whose keys can also be read and written as attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


def import_object(name: str) -> Any:
    """Import a module, or an attribute of a module, from its dotted name.

    ``import_object("os.path")`` returns the module, ``import_object("os.path.join")``
    the function. Raises ImportError when nothing by that name exists.
    """
    if "." not in name:
        return importlib.import_module(name)
    module_name, _, attr = name.rpartition(".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        pass
    # Not an attribute (yet): it may be a submodule that has not been imported.
    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(f"{module_name!r} has no attribute or submodule {attr!r}") from None


def timedelta_to_seconds(td: datetime.timedelta) -> float:
    """Equivalent to ``td.total_seconds()`` (kept for older callers)."""
    return td.total_seconds()


class GzipDecompressor:
    """Incremental gzip decoding with an output cap per call, as Tornado 6.6's.

    Bytes that did not fit under ``max_length`` stay in :attr:`unconsumed_tail`; feed them
    back in on the next call. A body of several gzip members (concatenated) decodes as one;
    anything after a member that is not another member, or a stream that stops inside a
    member, raises ``zlib.error``.
    """

    def __init__(self) -> None:
        self._member = _new_gzip_member()
        self._member_started = False
        self._tail = b""

    def decompress(self, value: bytes, max_length: int | None = None) -> bytes:
        """Decode ``value``, returning at most ``max_length`` bytes.

        Without ``max_length`` (deprecated, as in Tornado 6.6) there is no cap: a small
        body can inflate to gigabytes.
        """
        if not max_length:
            warnings.warn(
                "GzipDecompressor.decompress() without max_length is deprecated",
                DeprecationWarning,
                stacklevel=2,
            )
            max_length = 0
        output: list[bytes] = []
        produced = 0
        data = value
        while data:
            room = max_length - produced if max_length else 0
            if max_length and room <= 0:
                break  # full: what is left goes back to the caller as the tail
            self._member_started = True
            chunk = self._member.decompress(data, room)
            output.append(chunk)
            produced += len(chunk)
            if not self._member.eof:
                data = self._member.unconsumed_tail
                break
            # One member ended; what follows it must be the next member.
            data = self._member.unused_data
            self._member = _new_gzip_member()
            self._member_started = False
        self._tail = data
        return b"".join(output)

    @property
    def unconsumed_tail(self) -> bytes:
        return self._tail

    def flush(self) -> bytes:
        """Return whatever output is still buffered; the object is not usable afterwards.

        Raises ValueError while input is left in :attr:`unconsumed_tail` (flushing it would
        inflate it without a cap), and ``zlib.error`` when the stream ended inside a member.
        """
        if self._tail:
            raise ValueError("unconsumed input left: feed unconsumed_tail back in first")
        rest: bytes = self._member.flush()
        if self._member_started and not self._member.eof:
            raise zlib.error("gzip stream ended inside a member")
        return rest


def _new_gzip_member() -> Any:
    # 16 + MAX_WBITS: expect a gzip header and trailer, not a raw zlib stream.
    return zlib.decompressobj(16 + zlib.MAX_WBITS)


def errno_from_exception(e: BaseException) -> int | None:
    """The errno of ``e``: its ``errno`` attribute, else its first argument, else None."""
    if hasattr(e, "errno"):
        return e.errno  # type: ignore[no-any-return]
    if e.args:
        return e.args[0]  # type: ignore[no-any-return]
    return None


_RE_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def _re_unescape_one(match: re.Match[str]) -> str:
    char = match.group(1)
    # \d, \w, \1... mean something in a pattern; they are not escaped literals.
    if char in _ALNUM:
        raise ValueError(f"'\\{char}' is a pattern escape, not an escaped literal")
    return char


def re_unescape(s: str) -> str:
    """Undo :func:`re.escape`: turn each ``\\x`` back into ``x``.

    Raises ValueError on escapes that are not literal characters (such as ``\\d``).
    """
    return _RE_ESCAPE.sub(_re_unescape_one, s)


# Raised by ``with_timeout`` and ``IOLoop.run_sync`` when time runs out. As in Tornado 6.2+,
# it is asyncio's (on Python 3.11+ the builtin TimeoutError), so any of the three catches it.
TimeoutError = asyncio.TimeoutError


_warned_once: set[str] = set()


def warn_deprecated_once(name: str, replacement: str) -> None:
    """Emit one ``DeprecationWarning`` per legacy API per process, naming its replacement.

    Legacy code calls these APIs in loops; one warning says all there is to say.
    """
    if name in _warned_once:
        return
    _warned_once.add(name)
    warnings.warn(f"{name} is deprecated; use {replacement}", DeprecationWarning, stacklevel=3)


class Configurable:
    """A base class whose constructor builds the implementation chosen by :meth:`configure`.

    Subclasses define :meth:`configurable_base` (the class holding the setting) and
    :meth:`configurable_default` (the implementation used when nothing was configured).
    ``initialize(**kwargs)`` takes the place of ``__init__``.
    """

    __impl_class: type[Configurable] | None = None
    __impl_kwargs: dict[str, Any] | None = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        base = cls.configurable_base()
        init_kwargs: dict[str, Any] = {}
        if cls is base:
            impl = cls.configured_class()
            if base.__impl_kwargs:
                init_kwargs.update(base.__impl_kwargs)
        else:
            impl = cls
        init_kwargs.update(kwargs)
        if impl.configurable_base() is not base:
            # The implementation is itself a configurable family: let it choose.
            return impl(*args, **init_kwargs)
        instance = super().__new__(impl)
        instance.initialize(*args, **init_kwargs)
        return instance

    @classmethod
    def configurable_base(cls) -> type[Configurable]:
        raise NotImplementedError()

    @classmethod
    def configurable_default(cls) -> type[Configurable]:
        raise NotImplementedError()

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        """Set up the instance (called once, instead of ``__init__``)."""

    @classmethod
    def configure(cls, impl: type[Configurable] | str | None, **kwargs: Any) -> None:
        """Choose the implementation (a class or its dotted name) and default kwargs."""
        base = cls.configurable_base()
        if isinstance(impl, str):
            impl = import_object(impl)
        if impl is not None and not (isinstance(impl, type) and issubclass(impl, cls)):
            raise ValueError(f"Invalid subclass of {cls}")
        base.__impl_class = impl
        base.__impl_kwargs = kwargs

    @classmethod
    def configured_class(cls) -> type[Configurable]:
        base = cls.configurable_base()
        # The setting belongs to the base class itself, not to a subclass that inherited it.
        if base.__dict__.get("_Configurable__impl_class") is None:
            base.__impl_class = cls.configurable_default()
        assert base.__impl_class is not None
        return base.__impl_class

    @classmethod
    def _save_configuration(cls) -> tuple[type[Configurable] | None, dict[str, Any] | None]:
        base = cls.configurable_base()
        return (base.__impl_class, base.__impl_kwargs)

    @classmethod
    def _restore_configuration(
        cls, saved: tuple[type[Configurable] | None, dict[str, Any] | None]
    ) -> None:
        base = cls.configurable_base()
        base.__impl_class = saved[0]
        base.__impl_kwargs = saved[1]


def _claim_public_names(namespace: dict[str, Any]) -> None:
    """A package's public names (its ``__all__``) defined in its submodules report the package
    as their ``__module__``, where they were always imported from (reprs, pickles, docs)."""
    package = namespace["__name__"]
    for name in namespace["__all__"]:
        value = namespace[name]
        if getattr(value, "__module__", "").startswith(package + "."):
            value.__module__ = package


def raise_exc_info(exc_info: tuple[type[BaseException] | None, BaseException | None, Any]) -> Any:
    """Re-raise the exception of a ``sys.exc_info()`` triple, with its traceback."""
    _, value, tb = exc_info
    if value is None:
        raise TypeError("raise_exc_info called with no exception")
    try:
        raise value.with_traceback(tb)
    finally:
        # Break the frame -> traceback -> frame cycle.
        value = None
        tb = None


def exec_in(code: Any, glob: dict[str, Any], loc: Mapping[str, Any] | None = None) -> None:
    """``exec`` ``code`` (source text is compiled here, so this module's ``from __future__``
    imports do not leak into it) in ``glob``/``loc``."""
    if isinstance(code, str):
        code = compile(code, "<string>", "exec", dont_inherit=True)
    exec(code, glob, loc)


class ArgReplacer:
    """Finds and replaces one named argument of ``func`` in an ``(args, kwargs)`` call, whether
    it was passed by position or by keyword (used for ``callback=`` style arguments)."""

    def __init__(self, func: Callable[..., Any], name: str) -> None:
        self.name = name
        try:
            params = list(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            params = []
        self.arg_pos: int | None = params.index(name) if name in params else None

    def get_old_value(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], default: Any = None
    ) -> Any:
        if self.arg_pos is not None and len(args) > self.arg_pos:
            return args[self.arg_pos]
        return kwargs.get(self.name, default)

    def replace(
        self, new_value: Any, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> tuple[Any, Sequence[Any], dict[str, Any]]:
        """Returns ``(old_value, args, kwargs)`` with ``new_value`` in the argument's place
        (``old_value`` None if it was not passed)."""
        if self.arg_pos is not None and len(args) > self.arg_pos:
            old_value = args[self.arg_pos]
            args = list(args)
            args[self.arg_pos] = new_value
        else:
            old_value = kwargs.get(self.name)
            kwargs[self.name] = new_value
        return old_value, args, kwargs


def _websocket_mask_python(mask: bytes, data: bytes) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated (RFC 6455 masking; its own inverse)."""
    if not data:
        return b""
    length = len(data)
    repeated = (bytes(mask) * (length // 4 + 1))[:length]
    value = int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")
    return value.to_bytes(length, "big")
