"""finish() runs the default Etag hooks inline when a handler overrides none of them, and
reads and sets its own plain header map directly: the responses must be those of the general
path, which calls each hook and goes through HTTPHeaders methods (differential tests)."""

from __future__ import annotations

from typing import Any

from asyncweb import httputil
from asyncweb.web import Application, RequestHandler
from tests.support.servers import Fetch, Serve

BODIES: dict[str, list[Any]] = {
    "one": ["cacheable body"],
    "two": [b"first part, ", "second part"],
    "none": [],
    "empty": [b""],
    "json": [{"a": 1}],
}


class Plain(RequestHandler):
    """No hook overridden: the inline path."""

    def get(self, body: str) -> None:
        for part in BODIES[body]:
            self.write(part)

    def head(self, body: str) -> None:
        self.get(body)


class General(Plain):
    """An override that only defers to the default: forces the general path, and counts."""

    calls: list[str] = []

    def check_etag_header(self) -> bool:
        General.calls.append(self.request.method or "")
        return super().check_etag_header()


def _etag_of(headers: Any) -> str | None:
    value = headers.get("Etag")
    return None if value is None else str(value)


async def test_inline_etag_path_matches_the_general_path(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/plain/(.*)", Plain), ("/general/(.*)", General)]))
    General.calls.clear()
    exchanges = 0
    for body in BODIES:
        first = await fetch(f"{base}/general/{body}")
        etag = _etag_of(first.headers)
        assert etag is not None and etag.startswith('"') and len(etag) == 42
        conditions: list[str | None] = [None, "", etag, "W/" + etag, f'"x", {etag}', "*", '"x"']
        for method in ("GET", "HEAD"):
            for condition in conditions:
                headers = {} if condition is None else {"If-None-Match": condition}
                got = []
                for kind in ("plain", "general"):
                    resp = await fetch(f"{base}/{kind}/{body}", method=method, headers=headers)
                    got.append(
                        (
                            resp.status,
                            _etag_of(resp.headers),
                            resp.headers.get("Content-Length"),
                            resp.headers.get("Content-Type"),
                            resp.body,
                        )
                    )
                    exchanges += 1
                assert got[0] == got[1], (body, method, condition)
                matched = condition not in (None, "", '"x"')
                assert got[0][0] == (304 if matched else 200), (body, method, condition)
    # The overridden hook ran once per general response, with or without If-None-Match.
    assert len(General.calls) == exchanges // 2 + len(BODIES)


class SetsItsOwn(RequestHandler):
    """Overrides set_etag_header only: it must still run (no inline path)."""

    def set_etag_header(self) -> None:
        self.set_header("Etag", '"mine"')

    def get(self) -> None:
        self.write("x")


class ComputesNone(RequestHandler):
    def compute_etag(self) -> str | None:
        return None

    def get(self) -> None:
        self.write("x")


async def test_each_overridden_hook_still_decides(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/own", SetsItsOwn), ("/none", ComputesNone)]))
    resp = await fetch(base + "/own")
    assert (resp.status, _etag_of(resp.headers)) == (200, '"mine"')
    resp = await fetch(base + "/own", headers={"If-None-Match": '"mine"'})
    assert resp.status == 304
    resp = await fetch(base + "/none", headers={"If-None-Match": "*"})
    assert (resp.status, _etag_of(resp.headers)) == (200, None)


class _CountingHeaders(httputil.HTTPHeaders):
    """A subclass: finish() must go through its methods (the general path), and does."""

    lookups: list[str] = []

    def __contains__(self, name: object) -> bool:
        _CountingHeaders.lookups.append(str(name))
        return super().__contains__(name)


class HeaderCases(RequestHandler):
    def get(self, case: str) -> None:
        if case.startswith("sub"):
            self._headers = _CountingHeaders(self._headers)
        if case.startswith("raw"):
            # Headers still held as raw pairs (as from_raw keeps a request's).
            self._headers = httputil.HTTPHeaders.from_raw(
                [(b"content-type", b"text/plain"), (b"x-raw", b"1")]
            )
        if case.endswith("-length"):
            self.set_header("Content-Length", "5")
        if case.endswith("-etag"):
            self.set_header("ETag", '"set"')
        if case.endswith("-204"):
            self.set_status(204)
            return
        self.write("hello")


async def test_plain_and_general_header_maps_finish_alike(serve: Serve, fetch: Fetch) -> None:
    base = await serve(Application([("/(.*)", HeaderCases)]))
    _CountingHeaders.lookups.clear()
    for tail in ("", "-length", "-etag", "-204"):
        got = []
        for kind in ("plain", "sub", "raw"):
            resp = await fetch(f"{base}/{kind}{tail}")
            got.append(
                (
                    resp.status,
                    _etag_of(resp.headers),
                    resp.headers.get("Content-Length"),
                    resp.headers.get("X-Raw"),
                    resp.body,
                )
            )
        assert got[0] == got[1], tail
        assert got[0][:3] + got[0][4:] == got[2][:3] + got[2][4:], tail
        assert got[2][3] == "1", tail
    assert "Etag" in _CountingHeaders.lookups and "Content-Length" in _CountingHeaders.lookups
