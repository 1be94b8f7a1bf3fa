"""The realistic endpoint (see asyncweb_realistic.py) on the bare h11 Protocol of h11_bare.py.

The ceiling for an h11-based framework doing this job: the same h11 plumbing plus the least
code that parses the path argument, the query string and the Cookie header and builds JSON.
"""

import functools
import json
from urllib.parse import parse_qsl, unquote

import h11
from _serve import run_on_uvloop
from h11_bare import HelloProtocol, http_date, main


def _cookie(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key == b"cookie":
            for part in value.split(b";"):
                k, _, v = part.strip().partition(b"=")
                if k == name:
                    return v.decode("latin-1")
    return None


class RealisticProtocol(HelloProtocol):
    def _response(self) -> bytes:
        request = self.request
        assert request is not None
        path, _, query = request.target.decode("ascii").partition("?")
        if not path.startswith("/user/") or "/" in path[6:] or len(path) == 6:
            return self._send(404, b"text/plain", b"Not Found")
        args = dict(parse_qsl(query))
        body = json.dumps(
            {
                "user": unquote(path[6:]),
                "greeting": args.get("greeting", "hello"),
                "session": _cookie(request.headers, b"session") or "anonymous",
            }
        ).encode()
        return self._send(200, b"application/json", body, [(b"cache-control", b"no-store")])

    def _send(
        self,
        status: int,
        content_type: bytes,
        body: bytes,
        extra: list[tuple[bytes, bytes]] | None = None,
    ) -> bytes:
        conn = self.conn
        headers = [
            (b"server", b"h11_bare"),
            (b"date", http_date()),
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
        ]
        head = conn.send(h11.Response(status_code=status, headers=headers + (extra or [])))
        data = conn.send(h11.Data(data=body))
        end = conn.send(h11.EndOfMessage())
        return (head or b"") + (data or b"") + (end or b"")


if __name__ == "__main__":
    run_on_uvloop(functools.partial(main, protocol=RealisticProtocol))
