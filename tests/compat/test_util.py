from __future__ import annotations

import datetime
import errno
import gzip
import os.path
import re
import zlib

import pytest

from asyncweb.util import (
    GzipDecompressor,
    ObjectDict,
    basestring_type,
    errno_from_exception,
    import_object,
    re_unescape,
    timedelta_to_seconds,
    unicode_type,
)


def test_object_dict_attribute_access() -> None:
    d = ObjectDict(a=1)
    assert d.a == 1
    d.b = 2
    assert d["b"] == 2
    assert d == {"a": 1, "b": 2}
    with pytest.raises(AttributeError):
        _ = d.missing
    assert getattr(d, "missing", "default") == "default"
    assert isinstance(d, dict)


def test_import_object() -> None:
    assert import_object("os.path") is os.path
    assert import_object("os.path.join") is os.path.join
    assert import_object("os") is os
    assert import_object("asyncweb.util.ObjectDict") is ObjectDict
    # A submodule not imported yet is found too.
    mod = import_object("email.mime.text")
    assert mod.__name__ == "email.mime.text"


def test_import_object_missing() -> None:
    with pytest.raises(ImportError):
        import_object("os.no_such_thing")
    with pytest.raises(ImportError):
        import_object("no_such_module_anywhere")
    with pytest.raises(ImportError):
        import_object("no_such_module_anywhere.attr")


def test_type_aliases() -> None:
    assert unicode_type is str
    assert basestring_type is str


def test_timedelta_to_seconds() -> None:
    assert timedelta_to_seconds(datetime.timedelta(minutes=1, milliseconds=500)) == 60.5


def test_gzip_decompressor_whole() -> None:
    data = os.urandom(1000) * 20
    d = GzipDecompressor()
    assert d.decompress(gzip.compress(data)) + d.flush() == data


def test_gzip_decompressor_max_length() -> None:
    data = b"x" * 100_000
    d = GzipDecompressor()
    out = d.decompress(gzip.compress(data), 1000)
    assert len(out) == 1000
    chunks = [out]
    while d.unconsumed_tail:
        chunk = d.decompress(d.unconsumed_tail, 1000)
        assert len(chunk) <= 1000
        chunks.append(chunk)
    chunks.append(d.flush())
    assert b"".join(chunks) == data


def test_gzip_decompressor_rejects_garbage() -> None:
    with pytest.raises(zlib.error):
        GzipDecompressor().decompress(b"definitely not gzip")


def test_errno_from_exception() -> None:
    assert errno_from_exception(OSError(errno.ECONNRESET, "reset")) == errno.ECONNRESET
    assert errno_from_exception(Exception(errno.EPIPE)) == errno.EPIPE
    assert errno_from_exception(Exception()) is None
    # OSError always has the attribute, even when it is None.
    assert errno_from_exception(OSError()) is None


def test_re_unescape_round_trips_re_escape() -> None:
    samples = ["/favicon.ico", "index.html", "Hello, World!", "!$@#%;", "a.b*c+d?e(f)[g]{h}|i^j$"]
    for s in samples:
        assert re_unescape(re.escape(s)) == s
    every = "".join(chr(i) for i in range(128))
    assert re_unescape(re.escape(every)) == every


def test_re_unescape_rejects_pattern_escapes() -> None:
    for bad in [r"\d", r"\b", r"\Z", r"\1"]:
        with pytest.raises(ValueError):
            re_unescape(bad)


def test_warn_deprecated_once_warns_once_per_name() -> None:
    import warnings

    from asyncweb import util

    util._warned_once.discard("old_api")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        util.warn_deprecated_once("old_api", "new_api")
        util.warn_deprecated_once("old_api", "new_api")
    assert [str(w.message) for w in caught] == ["old_api is deprecated; use new_api"]
    assert caught[0].category is DeprecationWarning


def test_configurable_builds_the_configured_implementation() -> None:
    from typing import Any

    from asyncweb.util import Configurable

    class Base(Configurable):
        @classmethod
        def configurable_base(cls) -> type[Configurable]:
            return Base

        @classmethod
        def configurable_default(cls) -> type[Configurable]:
            return Plain

        def initialize(self, value: int = 0, **kwargs: Any) -> None:
            self.value = value
            self.extra = kwargs

    class Plain(Base):
        pass

    class Fancy(Base):
        pass

    assert type(Base()) is Plain
    assert Base(value=3).value == 3
    saved = Base._save_configuration()
    try:
        Base.configure(Fancy, colour="red")
        made = Base(value=1)
        assert type(made) is Fancy and made.extra == {"colour": "red"}
        assert type(Plain()) is Plain  # naming a class directly bypasses the setting
        with pytest.raises(ValueError):
            Base.configure(int)  # type: ignore[arg-type]
    finally:
        Base._restore_configuration(saved)
    assert type(Base()) is Plain
