"""Output transforms: rewrite a response's status, headers and body on the way out."""

from __future__ import annotations

import zlib

from asyncweb import httputil


class OutputTransform:
    """Base class: sees the first chunk with the headers, then each later chunk."""

    def __init__(self, request: httputil.HTTPServerRequest) -> None:
        pass

    def transform_first_chunk(
        self,
        status_code: int,
        headers: httputil.HTTPHeaders,
        chunk: bytes,
        finishing: bool,
    ) -> tuple[int, httputil.HTTPHeaders, bytes]:
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        return chunk


class GZipContentEncoding(OutputTransform):
    """gzip-encodes responses for clients that accept it (``compress_response=True``).

    Only compressible content types are encoded, and a response finished in one go must be at
    least ``MIN_LENGTH`` bytes; streamed responses are compressed chunk by chunk with a sync
    flush so each ``flush()`` reaches the client.
    """

    CONTENT_TYPES = {
        "application/javascript",
        "application/x-javascript",
        "application/xml",
        "application/atom+xml",
        "application/json",
        "application/xhtml+xml",
        "image/svg+xml",
    }
    # Level 6 is zlib's own default trade-off between CPU and size.
    GZIP_LEVEL = 6
    # Below this, gzip's header and trailer outweigh what compression saves.
    MIN_LENGTH = 1024

    def __init__(self, request: httputil.HTTPServerRequest) -> None:
        self._gzipping = "gzip" in request.headers.get("Accept-Encoding", "")
        self._compressor: zlib._Compress | None = None

    def _compressible_type(self, ctype: str) -> bool:
        return ctype.startswith("text/") or ctype in self.CONTENT_TYPES

    def transform_first_chunk(
        self,
        status_code: int,
        headers: httputil.HTTPHeaders,
        chunk: bytes,
        finishing: bool,
    ) -> tuple[int, httputil.HTTPHeaders, bytes]:
        # The response depends on Accept-Encoding whether or not we compress this one.
        if "Vary" in headers:
            headers["Vary"] += ", Accept-Encoding"
        else:
            headers["Vary"] = "Accept-Encoding"
        if self._gzipping:
            ctype = headers.get("Content-Type", "").split(";")[0].strip()
            self._gzipping = (
                self._compressible_type(ctype)
                and (not finishing or len(chunk) >= self.MIN_LENGTH)
                and "Content-Encoding" not in headers
                # A byte range is of the identity encoding: compressing it would mislabel
                # the Content-Range offsets.
                and status_code != 206
            )
        if self._gzipping:
            headers["Content-Encoding"] = "gzip"
            self._compressor = zlib.compressobj(self.GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            chunk = self.transform_chunk(chunk, finishing)
            if "Content-Length" in headers:
                if finishing:
                    headers["Content-Length"] = str(len(chunk))
                else:
                    del headers["Content-Length"]
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        if not self._gzipping or self._compressor is None:
            return chunk
        data = self._compressor.compress(chunk)
        data += self._compressor.flush(zlib.Z_FINISH if finishing else zlib.Z_SYNC_FLUSH)
        return data
