"""``StaticFileHandler``: files from a directory, with validators, ranges and versioned URLs.

Files are streamed in ``CHUNK_SIZE`` pieces, each flushed before the next is read, so a large
file never sits in memory and a slow client holds back reading. ``static_url()`` appends a
content hash (``?v=``) and requests carrying one are cached for ten years. Overridable steps
(``get_absolute_path``, ``validate_absolute_path``, ``get_content``, ``get_content_version``,
``make_static_url``...) follow Tornado's, so subclasses that serve from elsewhere port as is.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import mimetypes
import os
import os.path
import stat
import threading
from collections.abc import Iterator
from typing import Any

from asyncweb import httputil
from asyncweb.log import gen_log
from asyncweb.protocol import StreamClosedError
from asyncweb.web.builtin_handlers import _names_other_host
from asyncweb.web.errors import HTTPError
from asyncweb.web.handler import RequestHandler

__all__ = ["StaticFileHandler"]


class StaticFileHandler(RequestHandler):
    """Serve the files under ``path`` (the URL pattern's first group is the file).

    ``Application(static_path=...)`` maps ``/static/(.*)`` (``static_url_prefix``),
    ``/favicon.ico`` and ``/robots.txt`` here. ``default_filename`` (e.g. ``"index.html"``)
    serves directories; without it they are refused.
    """

    # Versioned URLs never change content, so clients may keep them (almost) forever.
    CACHE_MAX_AGE = 86400 * 365 * 10
    CHUNK_SIZE = 64 * 1024
    MAX_CACHED_VERSIONS = 10000
    # Files larger than this get no version (hashing them would hold up the loop); None: any.
    MAX_VERSION_CONTENT_SIZE: int | None = None

    _static_hashes: dict[str, str | None] = {}
    _lock = threading.Lock()  # static_url may be called from other threads (templates)

    root: str
    default_filename: str | None
    path: str
    absolute_path: str
    modified: datetime.datetime | None

    # Where symlinks under the root may point (Tornado 6.5.9+): None means the root only.
    allowed_symlink_directory: str | list[str] | None = None

    def initialize(  # type: ignore[override]
        self,
        path: str,
        default_filename: str | None = None,
        allowed_symlink_directory: str | list[str] | None = None,
    ) -> None:
        self.root = path
        self.default_filename = default_filename
        if allowed_symlink_directory is not None:
            self.allowed_symlink_directory = allowed_symlink_directory

    @classmethod
    def reset(cls) -> None:
        """Forget every computed version hash (done per request with ``static_hash_cache``
        off, i.e. in debug mode, so edited files get new URLs)."""
        with cls._lock:
            cls._static_hashes = {}

    def head(self, path: str) -> Any:
        return self.get(path, include_body=False)

    async def get(self, path: str, include_body: bool = True) -> None:
        self.path = self.parse_url_path(path)
        del path  # only the parsed form from here on
        absolute_path = self.get_absolute_path(self.root, self.path)
        validated = self.validate_absolute_path(self.root, absolute_path)
        if validated is None:
            return
        self.absolute_path = validated
        self.modified = self.get_modified_time()
        self.set_headers()
        if self.should_return_304():
            self.set_status(304)
            return

        size = self.get_content_size()
        start: int | None = None
        end: int | None = None
        range_header = self.request.headers.get("Range")
        request_range = httputil._parse_request_range(range_header) if range_header else None
        if request_range is not None:
            start, end = request_range
            if start is not None and start < 0:
                start = max(start + size, 0)  # a suffix longer than the file is all of it
            if (
                start is not None and (start >= size or (end is not None and start >= end))
            ) or end == 0:
                # Nothing of the file is in the range (RFC 9110 14.1.1): 416 with the size.
                self.set_status(416)
                self.set_header("Content-Type", "text/plain")
                self.set_header("Content-Range", f"bytes */{size}")
                return
            if end is not None and end > size:
                end = size
            if size != (end or size) - (start or 0):
                self.set_status(206)
                self.set_header("Content-Range", httputil._get_content_range(start, end, size))
            else:
                start = end = None  # the range is the whole file: a plain 200
        self.set_header("Content-Length", (end if end is not None else size) - (start or 0))
        if not include_body:
            return
        content = self.get_content(self.absolute_path, start, end)
        chunks = [content] if isinstance(content, bytes) else content
        try:
            for chunk in chunks:
                self.write(chunk)
                await self.flush()
        except StreamClosedError:
            pass  # the client left mid-file
        finally:
            close = getattr(content, "close", None)
            if close is not None:
                close()  # closes the file if the generator stopped early

    # -- validators and headers ----------------------------------------------------------------

    def compute_etag(self) -> str | None:
        """The content version (a hash of the file) as the Etag."""
        version = self._get_cached_version(self.absolute_path)
        return f'"{version}"' if version else None

    def set_headers(self) -> None:
        self.set_header("Accept-Ranges", "bytes")
        self.set_etag_header()
        if self.modified is not None:
            self.set_header("Last-Modified", self.modified)
        content_type = self.get_content_type()
        if content_type:
            self.set_header("Content-Type", content_type)
        cache_time = self.get_cache_time(self.path, self.modified, content_type)
        if cache_time > 0:
            expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
                seconds=cache_time
            )
            self.set_header("Expires", expires)
            self.set_header("Cache-Control", f"max-age={cache_time}")
        self.set_extra_headers(self.path)

    def should_return_304(self) -> bool:
        """If-None-Match decides when present; otherwise If-Modified-Since."""
        if self.request.headers.get("If-None-Match"):
            return self.check_etag_header()
        since_text = self.request.headers.get("If-Modified-Since")
        if since_text is None or self.modified is None:
            return False
        try:
            since = email.utils.parsedate_to_datetime(since_text)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=datetime.timezone.utc)
        return since >= self.modified

    # -- paths ---------------------------------------------------------------------------------

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        """The filesystem path for URL path ``path`` (not yet checked to be inside root)."""
        return os.path.abspath(os.path.join(root, path))

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        """Check ``absolute_path`` is a file inside ``root`` (symlinks resolved): 403 for
        anything outside or not a file, 404 when missing. A directory with
        ``default_filename`` set is redirected to end in "/" and then serves that file.
        Returns None when the response is already complete (the redirect)."""
        if "\x00" in absolute_path:
            raise HTTPError(404)
        if "\\" in self.path:
            # Browsers and Windows read "\" as "/": refuse it rather than guess.
            raise HTTPError(403, "%s: backslashes are not allowed in static paths", self.path)
        root = os.path.abspath(root)
        allowed = self.allowed_symlink_directory or root
        targets = [
            os.path.realpath(d) for d in ([allowed] if isinstance(allowed, str) else allowed)
        ]
        if not _inside(root, absolute_path) or not any(
            _inside(target, os.path.realpath(absolute_path)) for target in targets
        ):
            raise HTTPError(403, "%s is not in root static directory", self.path)
        if os.path.isdir(absolute_path) and self.default_filename is not None:
            request_path = self.request.path
            if not request_path.endswith("/"):
                if _names_other_host(request_path + "/"):
                    raise HTTPError(403, "cannot redirect path with two initial slashes")
                self.redirect(request_path + "/", permanent=True)
                return None
            absolute_path = os.path.join(absolute_path, self.default_filename)
            resolved = os.path.realpath(absolute_path)
            if not any(_inside(target, resolved) for target in targets):
                raise HTTPError(403, "%s is not in root static directory", self.path)
        if not os.path.exists(absolute_path):
            raise HTTPError(404)
        if not os.path.isfile(absolute_path):
            raise HTTPError(403, "%s is not a file", self.path)
        return absolute_path

    def parse_url_path(self, url_path: str) -> str:
        """The relative file path for the URL's path group (``/`` becomes ``os.sep``)."""
        if os.path.sep != "/":
            url_path = url_path.replace("/", os.path.sep)
        return url_path

    # -- content -------------------------------------------------------------------------------

    @classmethod
    def get_content(
        cls, abspath: str, start: int | None = None, end: int | None = None
    ) -> Iterator[bytes] | bytes:
        """The file's bytes ``[start:end]``: an iterator of chunks (``CHUNK_SIZE`` each, read
        as they are consumed) or, from overrides, one bytes object."""
        return _read_chunks(abspath, start, end, cls.CHUNK_SIZE)

    @classmethod
    def get_content_version(cls, abspath: str) -> str:
        """A hash of the file's content (SHA-512, hex) for ``?v=`` and the Etag."""
        content = cls.get_content(abspath)
        hasher = hashlib.sha512()
        if isinstance(content, bytes):
            hasher.update(content)
        else:
            for chunk in content:
                hasher.update(chunk)
        return hasher.hexdigest()

    def _stat(self) -> os.stat_result:
        cached: os.stat_result | None = getattr(self, "_stat_result", None)
        if cached is None:
            cached = self._stat_result = os.stat(self.absolute_path)
        return cached

    def get_content_size(self) -> int:
        return self._stat()[stat.ST_SIZE]

    def get_modified_time(self) -> datetime.datetime | None:
        """The file's mtime (whole seconds, UTC): HTTP dates have no fractions."""
        return datetime.datetime.fromtimestamp(
            int(self._stat()[stat.ST_MTIME]), datetime.timezone.utc
        )

    def get_content_type(self) -> str:
        mime_type, encoding = mimetypes.guess_type(self.absolute_path)
        if encoding == "gzip":
            return "application/gzip"  # a .gz file is served as is, not as its content
        if encoding is not None:
            return "application/octet-stream"
        return mime_type or "application/octet-stream"

    def set_extra_headers(self, path: str) -> None:
        """Override to add headers to every static response."""

    def get_cache_time(self, path: str, modified: datetime.datetime | None, mime_type: str) -> int:
        """Seconds clients may cache: ``CACHE_MAX_AGE`` for versioned (``?v=``) requests,
        else 0 (revalidate with the Etag/Last-Modified)."""
        return self.CACHE_MAX_AGE if "v" in self.request.arguments else 0

    # -- URLs ----------------------------------------------------------------------------------

    @classmethod
    def make_static_url(
        cls, settings: dict[str, Any], path: str, include_version: bool = True
    ) -> str:
        """``static_url_prefix`` + ``path``, plus ``?v=<hash>`` unless ``include_version`` is
        false (or the file can't be read)."""
        url = str(settings.get("static_url_prefix", "/static/")) + path
        if not include_version:
            return url
        version = cls.get_version(settings, path)
        if not version:
            return url
        return f"{url}?v={version}"

    @classmethod
    def get_version(cls, settings: dict[str, Any], path: str) -> str | None:
        """The version hash of static file ``path``, or None when it cannot be read (logged).
        A path outside ``static_path`` raises HTTPError(403): ``static_url`` never reads
        anything outside the static directory."""
        static_path = settings["static_path"]
        abs_path = cls.get_absolute_path(static_path, path)
        # Passed on as given: a subclass may take other roots (Jupyter's FileFindHandler takes
        # a list and checks its own); the containment check is for one directory.
        if isinstance(static_path, (str, os.PathLike)):
            root = os.path.abspath(static_path)
            if not _inside(root, os.path.abspath(abs_path)):
                raise HTTPError(403, "%s is not in root static directory", path)
        return cls._get_cached_version(abs_path)

    @classmethod
    def _get_cached_version(cls, abs_path: str) -> str | None:
        with cls._lock:
            hashes = cls._static_hashes
            if abs_path in hashes:
                version = hashes.pop(abs_path)  # re-inserted below: most recently used last
            else:
                try:
                    cls._check_versionable(abs_path)
                    version = cls.get_content_version(abs_path)
                except Exception as e:
                    gen_log.error("Could not open static file %r: %s", abs_path, e)
                    version = None
                # Bounded: the least recently used versions go first.
                while hashes and len(hashes) >= cls.MAX_CACHED_VERSIONS:
                    del hashes[next(iter(hashes))]
            hashes[abs_path] = version
        return version or None

    @classmethod
    def _check_versionable(cls, abs_path: str) -> None:
        """Refuse what reading to the end would never finish or block on (a device such as
        /dev/zero, a FIFO, a directory) and files over MAX_VERSION_CONTENT_SIZE. Only for the
        default get_content, which reads the filesystem; overrides may serve anything."""
        if getattr(cls.get_content, "__func__", None) is not _default_get_content:
            return
        info = os.stat(abs_path)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"{abs_path} is not a file")
        limit = cls.MAX_VERSION_CONTENT_SIZE
        if limit is not None and info.st_size > limit:
            raise ValueError(f"{abs_path} is larger than MAX_VERSION_CONTENT_SIZE ({limit})")


_default_get_content = StaticFileHandler.get_content.__func__  # type: ignore[attr-defined]


def _read_chunks(abspath: str, start: int | None, end: int | None, size: int) -> Iterator[bytes]:
    with open(abspath, "rb") as file:
        if start is not None:
            file.seek(start)
        remaining = None if end is None else end - (start or 0)
        while remaining is None or remaining > 0:
            chunk = file.read(size if remaining is None else min(size, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _inside(root: str, path: str) -> bool:
    root = root if root.endswith(os.path.sep) else root + os.path.sep
    return (path + os.path.sep).startswith(root)
