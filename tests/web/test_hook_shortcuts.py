"""The framework skips hooks that are the base class's no-ops and routes without forwarding
objects where nothing is overridden. Each override must still be called, and the shortcut
paths must answer as the general ones."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asyncweb import httputil
from asyncweb.httpserver import HTTPServer, _HTTPRequestContext
from asyncweb.routing import PathMatches, Rule, RuleRouter
from asyncweb.web import Application, RequestHandler
from asyncweb.web.delegates import _HandlerDelegate
from tests.support.servers import Fetch, Serve

calls: list[str] = []


class Plain(RequestHandler):
    """Overrides no hook: every shortcut is taken."""

    def get(self, *args: str) -> None:
        self.write("plain " + ",".join(args))


class Hooked(RequestHandler):
    """Overrides each hook a shortcut skips when it is the base's."""

    def initialize(self, **kwargs: Any) -> None:
        calls.append(f"initialize {sorted(kwargs)}")

    def set_default_headers(self) -> None:
        calls.append("set_default_headers")
        self.set_header("X-Default", "yes")

    def prepare(self) -> None:
        calls.append("prepare")

    def get(self) -> None:
        self.write("hooked")

    def _log(self) -> None:
        calls.append("_log")
        super()._log()

    def on_finish(self) -> None:
        calls.append("on_finish")


class AsyncPrepare(RequestHandler):
    async def prepare(self) -> None:
        await asyncio.sleep(0)
        calls.append("async prepare")

    def get(self) -> None:
        self.write("after prepare")


class PrepareFinishes(RequestHandler):
    def prepare(self) -> None:
        self.finish("from prepare")

    def get(self) -> None:
        raise AssertionError("prepare() finished the request")


async def test_overridden_hooks_are_called(serve: Serve, fetch: Fetch) -> None:
    app = Application(
        [
            ("/plain/(.*)", Plain),
            ("/hooked", Hooked),
            ("/kwargs", Hooked, {"colour": "red"}),
            ("/async", AsyncPrepare),
            ("/finishes", PrepareFinishes),
        ],
        log_function=lambda handler: calls.append(f"log {handler.get_status()}"),
    )
    base = await serve(app)
    calls.clear()
    resp = await fetch(base + "/plain/a")
    assert (resp.status, resp.body) == (200, b"plain a")
    assert resp.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert calls == ["log 200"]
    for path, kwargs in (("/hooked", "[]"), ("/kwargs", "['colour']")):
        calls.clear()
        resp = await fetch(base + path)
        assert (resp.status, resp.body, resp.headers["X-Default"]) == (200, b"hooked", "yes")
        assert calls == [
            "set_default_headers",
            f"initialize {kwargs}",
            "prepare",
            "_log",
            "log 200",
            "on_finish",
        ]
    calls.clear()
    resp = await fetch(base + "/async")
    assert (resp.status, resp.body) == (200, b"after prepare")
    assert calls == ["async prepare", "log 200"]
    resp = await fetch(base + "/finishes")
    assert (resp.status, resp.body) == (200, b"from prepare")


async def test_hooks_overridden_on_the_class_later_are_called(serve: Serve, fetch: Fetch) -> None:
    class Patched(RequestHandler):
        def get(self) -> None:
            self.write("patched")

    base = await serve(Application([("/", Patched)], log_function=lambda handler: None))
    assert (await fetch(base + "/")).body == b"patched"
    calls.clear()
    Patched.prepare = lambda self: calls.append("prepare")  # type: ignore[method-assign]
    Patched.on_finish = lambda self: calls.append("on_finish")  # type: ignore[method-assign]
    assert (await fetch(base + "/")).body == b"patched"
    assert calls == ["prepare", "on_finish"]


class CountingApplication(Application):
    def find_handler(
        self, request: httputil.HTTPServerRequest, **kwargs: Any
    ) -> httputil.HTTPMessageDelegate:
        calls.append(f"find_handler {request.path}")
        return super().find_handler(request, **kwargs)

    def get_handler_delegate(
        self, request: Any, target_class: Any, *args: Any, **kwargs: Any
    ) -> Any:
        calls.append(f"get_handler_delegate {target_class.__name__} {args} {kwargs}")
        return super().get_handler_delegate(request, target_class, *args, **kwargs)


async def test_an_applications_overrides_are_called(serve: Serve, fetch: Fetch) -> None:
    app = CountingApplication([("/plain/(.*)", Plain), ("/kwargs", Hooked, {"colour": "red"})])
    base = await serve(app)
    calls.clear()
    resp = await fetch(base + "/plain/x%41")
    assert (resp.status, resp.body) == (200, b"plain xA")
    assert calls == [
        "find_handler /plain/x%41",
        "get_handler_delegate Plain () {'path_args': [b'xA'], 'path_kwargs': {}}",
    ]
    calls.clear()
    assert (await fetch(base + "/kwargs")).body == b"hooked"
    assert calls[:2] == [
        "find_handler /kwargs",
        "get_handler_delegate Hooked () {'target_kwargs': {'colour': 'red'}}",
    ]
    calls.clear()
    resp = await fetch(base + "/nowhere")
    assert resp.status == 404
    assert calls == [
        "find_handler /nowhere",
        "get_handler_delegate ErrorHandler ({'status_code': 404},) {}",
    ]


async def test_an_overridden_start_request_is_called(serve: Serve, fetch: Fetch) -> None:
    class Starting(Application):
        def start_request(
            self, server_conn: object, request_conn: httputil.HTTPConnection
        ) -> httputil.HTTPMessageDelegate:
            calls.append("start_request")
            return super().start_request(server_conn, request_conn)

    base = await serve(Starting([("/plain/(.*)", Plain)]))
    calls.clear()
    resp = await fetch(base + "/plain/y")
    assert (resp.status, resp.body, calls) == (200, b"plain y", ["start_request"])


class Echo(httputil.HTTPMessageDelegate):
    """A delegate that needs its headers_received: it must not be skipped."""

    def __init__(self, connection: httputil.HTTPConnection) -> None:
        self.connection = connection
        self.path = ""

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.path = start_line.path

    def finish(self) -> None:
        body = self.path.encode()
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", 200, "OK"),
            httputil.HTTPHeaders({"Content-Length": str(len(body))}),
            body,
        )
        self.connection.finish()


class EchoTarget(httputil.HTTPServerConnectionDelegate):
    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return Echo(request_conn)


class CustomMatcher(PathMatches):
    """Not a PathMatches as such: its parameters go through get_target_delegate."""


async def test_a_plain_rule_router_and_other_targets(serve: Serve, fetch: Fetch) -> None:
    router = RuleRouter(
        [
            ("/echo", EchoTarget()),
            Rule(CustomMatcher("/app/(.*)"), Application([("/app/(.*)", Plain)])),
        ]
    )
    base = await serve(router)
    resp = await fetch(base + "/echo?q=1")
    assert (resp.status, resp.body) == (200, b"/echo?q=1")
    resp = await fetch(base + "/app/z")
    assert (resp.status, resp.body) == (200, b"plain z")
    resp = await fetch(base + "/none")
    assert (resp.status, resp.body) == (404, b"")
    app = Application([Rule(CustomMatcher("/c/(.*)"), Plain), ("/echo", EchoTarget())])
    base = await serve(app)
    assert (await fetch(base + "/c/w")).body == b"plain w"
    assert (await fetch(base + "/echo")).body == b"/echo"


async def test_xheaders_reach_the_routed_request(serve: Serve, fetch: Fetch) -> None:
    class Address(RequestHandler):
        def get(self) -> None:
            self.write(f"{self.request.remote_ip} {self.request.protocol}")

    base = await serve(Application([("/", Address)]), xheaders=True)
    resp = await fetch(base + "/", headers={"X-Real-Ip": "10.1.2.3", "X-Scheme": "https"})
    assert resp.body == b"10.1.2.3 https"
    assert (await fetch(base + "/")).body == b"127.0.0.1 http"


def test_request_from_head_is_what_the_constructor_builds() -> None:
    class Connection:
        def __init__(self, context: Any) -> None:
            self.context = context

    context = _HTTPRequestContext(None, True, None, set())
    start_line = httputil.RequestStartLine("POST", "/a/b?c=d&e", "HTTP/1.1")
    many = [(b"x-%d" % i, b"v") for i in range(20)]
    for conn in (Connection(context), Connection(None), object()):
        for pairs in ([(b"host", b"example.com:8")], [], [*many, (b"host", b"h")]):
            headers = httputil.HTTPHeaders.from_raw(pairs)
            before = time.time()
            built = httputil.HTTPServerRequest(
                connection=conn,  # type: ignore[arg-type]
                server_connection=conn,
                start_line=start_line,
                headers=headers,
            )
            fast = httputil.HTTPServerRequest._from_head(conn, start_line, headers)
            assert before <= fast._start_time <= time.time()
            del built._start_time, fast._start_time
            assert vars(fast) == vars(built)
            assert (fast.host, fast.host_name) == (built.host, built.host_name)


def test_a_server_given_a_handler_class_router_builds_a_buffered_delegate() -> None:
    app = Application([("/p/(.*)", Plain)])
    request = httputil.HTTPServerRequest(method="GET", uri="/p/%7E")
    delegate = app.find_handler(request)
    assert isinstance(delegate, _HandlerDelegate)
    assert (delegate.handler_class, delegate.path_args, delegate.path_kwargs) == (
        Plain,
        [b"~"],
        {},
    )
    assert delegate.handler_kwargs is None
    assert isinstance(HTTPServer(app), HTTPServer)


class InitAfter:
    """A mixin after RequestHandler in the MRO: its __init__ runs through super().__init__()."""

    def __init__(self) -> None:
        calls.append("mixin init")
        super().__init__()


class WithMixin(RequestHandler, InitAfter):
    def get(self) -> None:
        self.write("mixed")


class MixinFirst(InitAfter, RequestHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        calls.append("own init")
        RequestHandler.__init__(self, *args, **kwargs)

    def get(self) -> None:
        self.write("first")


async def test_a_mixins_init_after_request_handler_runs_each_time(
    serve: Serve, fetch: Fetch
) -> None:
    base = await serve(Application([("/mixed", WithMixin), ("/first", MixinFirst)]))
    calls.clear()
    for _ in range(2):
        assert (await fetch(base + "/mixed")).body == b"mixed"
        assert (await fetch(base + "/first")).body == b"first"
    assert calls == ["mixin init", "own init"] * 2
