"""Chat: asyncweb's demo application.

Sign in with a name (a signed cookie, no external provider), pick a room, talk. Messages reach
browsers over WebSocket, or by long polling (``/a/message/updates``) where WebSocket is not
available; each room keeps its last 200 messages. Every message goes through a pub/sub broker:
the in-memory one by default, or Redis (``--broker redis://127.0.0.1:6379/0``) so that several
processes, on one machine or many, serve the same rooms.

    python examples/chat/app.py --port 8888 [--broker redis://...] [--debug]
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import signal
import time
import uuid
from collections.abc import Awaitable
from typing import Any

from asyncweb import ioloop, locale, web, websocket
from asyncweb.options import define, options, parse_command_line
from asyncweb.pubsub import Broker, MemoryBroker

HERE = os.path.dirname(os.path.abspath(__file__))
HISTORY_SIZE = 200
MAX_MESSAGE_LENGTH = 2000
MAX_NAME_LENGTH = 40
CHANNEL = "chat"
ROOM_PATTERN = r"[A-Za-z0-9_-]{1,32}"
_ROOM_RE = re.compile(ROOM_PATTERN)
DEFAULT_ROOMS = ("lobby", "python", "random")
# A long poll is answered empty after this long, so proxies never see a stuck request.
POLL_TIMEOUT = 30.0
USER_COOKIE = "chatuser"
LOCALE_COOKIE = "chatlocale"


class Room:
    """One room's recent history and the clients waiting for its next message."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.history: collections.deque[dict[str, Any]] = collections.deque(maxlen=HISTORY_SIZE)
        self.pollers: dict[asyncio.Future[list[dict[str, Any]]], float] = {}
        # Slow readers are closed rather than allowed to delay the room (they reconnect).
        self.sockets = websocket.BroadcastGroup()

    def since(self, cursor: str | None) -> list[dict[str, Any]]:
        """Messages after ``cursor``; all of the history when the cursor is unknown."""
        if not cursor:
            return list(self.history)
        messages = list(self.history)
        for index in range(len(messages) - 1, -1, -1):
            if messages[index]["id"] == cursor:
                return messages[index + 1 :]
        return messages

    def wait(self) -> asyncio.Future[list[dict[str, Any]]]:
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self.pollers[future] = time.monotonic()
        return future

    def cancel_wait(self, future: asyncio.Future[list[dict[str, Any]]]) -> None:
        self.pollers.pop(future, None)
        if not future.done():
            future.set_result([])

    def deliver(self, message: dict[str, Any]) -> None:
        self.history.append(message)
        pollers, self.pollers = self.pollers, {}
        for future in pollers:
            if not future.done():
                future.set_result([message])
        self.sockets.send({"type": "message", "message": message})

    def prune_pollers(self, older_than: float) -> int:
        stale = [f for f, started in self.pollers.items() if started < older_than]
        for future in stale:
            self.cancel_wait(future)
        return len(stale)


class ChatService:
    """The rooms of this process, fed by the broker: every process sees every message.

    The broker is made in :meth:`start`, on the serving loop: under ``asyncweb serve
    --workers N`` the application is built before the workers fork, and each worker needs a
    broker (and Redis connection) of its own.
    """

    def __init__(self, broker_url: str = "memory") -> None:
        self.broker_url = broker_url
        self.broker: Broker | None = None
        self.rooms: dict[str, Room] = {name: Room(name) for name in DEFAULT_ROOMS}
        self._started: asyncio.Future[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._pruner: ioloop.PeriodicCallback | None = None

    @property
    def started(self) -> bool:
        return self._started is not None and self._started.done()

    def start(self) -> asyncio.Future[None]:
        """Subscribe to the broker, once; concurrent callers share the same start."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._start())
        return self._started

    def room(self, name: str) -> Room:
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        return room

    async def _start(self) -> None:
        self.broker = make_broker(self.broker_url)
        subscription = self.broker.subscribe(CHANNEL)
        # Serve only once the broker delivers to us: no message posted here is missed.
        await subscription.ready()
        self._consumer = asyncio.ensure_future(self._consume(subscription))
        self._pruner = ioloop.PeriodicCallback(self.prune, 5000)
        self._pruner.start()

    async def stop(self) -> None:
        if self._pruner is not None:
            self._pruner.stop()
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
        if self.broker is not None:
            await self.broker.close()

    async def _consume(self, subscription: Any) -> None:
        async for message in subscription:
            if isinstance(message, dict) and isinstance(message.get("room"), str):
                self.room(message["room"]).deliver(message)

    async def post(self, room: str, author: str, body: str) -> dict[str, Any]:
        message = {
            "id": uuid.uuid4().hex,
            "room": room,
            "from": author,
            "body": body,
            "time": time.time(),
        }
        await self.start()
        assert self.broker is not None
        await self.broker.publish(CHANNEL, message)
        return message

    def prune(self) -> None:
        older_than = time.monotonic() - POLL_TIMEOUT
        for room in self.rooms.values():
            room.prune_pollers(older_than)

    def stats(self) -> dict[str, int]:
        return {
            "rooms": len(self.rooms),
            "pollers": sum(len(r.pollers) for r in self.rooms.values()),
            "sockets": sum(len(r.sockets) for r in self.rooms.values()),
        }


class BaseHandler(web.RequestHandler):
    def prepare(self) -> Awaitable[None] | None:
        # Only the first requests of a process wait: for its subscription to the broker.
        return None if self.chat.started else self.chat.start()

    @property
    def chat(self) -> ChatService:
        service: ChatService = self.settings["chat"]
        return service

    def get_current_user(self) -> str | None:
        value = self.get_signed_cookie(USER_COOKIE)
        return value.decode() if value else None

    def get_user_locale(self) -> locale.Locale | None:
        code = self.get_cookie(LOCALE_COOKIE)
        if code and code in locale.get_supported_locales():
            return locale.get(code)
        return None  # fall back to Accept-Language

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace["locale_names"] = locale.LOCALE_NAMES
        return namespace

    def local_next(self, default: str = "/") -> str:
        """The ``next`` argument when it stays on this site."""
        target: str = self.get_argument("next", default)
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            return default
        return target


class MessageModule(web.UIModule):
    def render(self, message: dict[str, Any]) -> bytes:
        return self.render_string("modules/message.html", message=message)

    def embedded_css(self) -> str:
        return ".message .from { font-weight: 600; }"


class HomeHandler(BaseHandler):
    def get(self) -> None:
        self.redirect("/room/lobby")


class RoomHandler(BaseHandler):
    @web.authenticated
    def get(self, name: str) -> None:
        room = self.chat.room(name)
        self.render(
            "room.html",
            room=room,
            rooms=sorted(self.chat.rooms),
            messages=list(room.history),
            transport=self.get_argument("transport", "auto"),
        )


class LoginHandler(BaseHandler):
    def get(self) -> None:
        self.render("login.html", error=None, next=self.local_next())

    def post(self) -> None:
        name = " ".join(self.get_argument("name", "").split())
        if not name or len(name) > MAX_NAME_LENGTH:
            self.set_status(400)
            self.render(
                "login.html",
                error=self.locale.translate("Please choose a name of 1 to 40 characters."),
                next=self.local_next(),
            )
            return
        self.set_signed_cookie(USER_COOKIE, name, httponly=True, samesite="Lax")
        self.redirect(self.local_next())


class LogoutHandler(BaseHandler):
    def post(self) -> None:
        self.clear_cookie(USER_COOKIE)
        self.redirect("/auth/login")


class LocaleHandler(BaseHandler):
    def post(self) -> None:
        code = self.get_argument("lang")
        if code not in locale.get_supported_locales():
            raise web.HTTPError(400, reason="unsupported language")
        self.set_cookie(LOCALE_COOKIE, code, samesite="Lax")
        self.redirect(self.local_next())


class MessageNewHandler(BaseHandler):
    @web.authenticated
    async def post(self) -> None:
        room = self.get_argument("room")
        body = self.get_argument("body").strip()
        if not body:
            raise web.HTTPError(400, reason="empty message")
        if len(body) > MAX_MESSAGE_LENGTH:
            raise web.HTTPError(413, reason="message too long")
        if room not in self.chat.rooms and not _valid_room(room):
            raise web.HTTPError(400, reason="bad room name")
        assert self.current_user is not None
        message = await self.chat.post(room, self.current_user, body)
        if self.get_argument("next", None):
            self.redirect(self.local_next())
        else:
            self.write(message)


class MessageUpdatesHandler(BaseHandler):
    """Long polling: answers at once when there is news after ``cursor``, else waits for it."""

    _future: asyncio.Future[list[dict[str, Any]]] | None = None
    _room: Room | None = None

    @web.authenticated
    async def post(self) -> None:
        name = self.get_argument("room")
        if not _valid_room(name):
            raise web.HTTPError(400, reason="bad room name")
        room = self._room = self.chat.room(name)
        messages = room.since(self.get_argument("cursor", None))
        if not messages:
            self._future = room.wait()
            messages = await self._future
        if self.request.connection is None or self._finished:
            return
        self.write({"messages": messages})

    def on_connection_close(self) -> None:
        if self._room is not None and self._future is not None:
            self._room.cancel_wait(self._future)


class ChatSocketHandler(websocket.WebSocketHandler, BaseHandler):
    room: Room | None = None

    def open(self, name: str) -> None:
        if self.current_user is None:
            self.close(4001, "sign in first")
            return
        self.room = self.chat.room(name)
        self.room.sockets.add(self)

    async def on_message(self, message: str | bytes) -> None:
        if self.room is None or self.current_user is None:
            return
        try:
            body = str(json.loads(message)["body"]).strip()
        except (ValueError, KeyError, TypeError):
            self.close(1003, "expected JSON with a body")
            return
        if body and len(body) <= MAX_MESSAGE_LENGTH:
            await self.chat.post(self.room.name, self.current_user, body)

    def on_close(self) -> None:
        self._leave()

    def _leave(self) -> None:
        if self.room is not None:
            self.room.sockets.discard(self)


class HealthHandler(BaseHandler):
    def check_xsrf_cookie(self) -> None:
        pass

    def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.write(
            {
                "status": "ok",
                "pid": os.getpid(),
                "broker": type(self.chat.broker).__name__,
                **self.chat.stats(),
            }
        )


def _valid_room(name: str) -> bool:
    return _ROOM_RE.fullmatch(name) is not None


def make_broker(url: str) -> Broker:
    if url in ("", "memory"):
        return MemoryBroker()
    if url.startswith(("redis://", "rediss://", "unix://")):
        from asyncweb.pubsub import RedisBroker

        return RedisBroker(url)
    raise ValueError(f"unknown broker {url!r}: use 'memory' or a redis:// URL")


def make_app(service: ChatService, cookie_secret: str, debug: bool = False) -> web.Application:
    locale.load_translations(os.path.join(HERE, "locale"))
    return web.Application(
        [
            (r"/", HomeHandler),
            (rf"/room/({ROOM_PATTERN})", RoomHandler),
            (r"/auth/login", LoginHandler),
            (r"/auth/logout", LogoutHandler),
            (r"/locale", LocaleHandler),
            (r"/a/message/new", MessageNewHandler),
            (r"/a/message/updates", MessageUpdatesHandler),
            (rf"/ws/({ROOM_PATTERN})", ChatSocketHandler),
            (r"/healthz", HealthHandler),
        ],
        chat=service,
        cookie_secret=cookie_secret,
        login_url="/auth/login",
        template_path=os.path.join(HERE, "templates"),
        static_path=os.path.join(HERE, "static"),
        ui_modules={"Message": MessageModule},
        xsrf_cookies=True,
        debug=debug,
    )


define("port", default=8888, help="port to listen on")
define("address", default="127.0.0.1", help="address to listen on")
define(
    "broker", default="memory", help="'memory', or a redis:// URL to share rooms across processes"
)
define("cookie_secret", default="", help="signs the sign-in cookie; random per start when empty")
define("debug", default=False, help="reload on code change, tracebacks in error pages")


def application() -> web.Application:
    """The app for ``asyncweb serve app:application --app-dir examples/chat --workers N``.

    Settings come from the environment: ``CHAT_BROKER`` (``memory`` or a redis:// URL; with
    several workers use Redis, or each worker has rooms of its own) and ``CHAT_COOKIE_SECRET``
    (random when unset: made here, before the workers fork, so they all share it).
    """
    service = ChatService(os.environ.get("CHAT_BROKER", "memory"))
    secret = os.environ.get("CHAT_COOKIE_SECRET") or uuid.uuid4().hex
    return make_app(service, secret)


async def serve() -> None:
    service = ChatService(options.broker)
    await service.start()
    secret = options.cookie_secret or os.environ.get("CHAT_COOKIE_SECRET") or uuid.uuid4().hex
    app = make_app(service, secret, debug=options.debug)
    server = app.listen(options.port, address=options.address)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    print(f"Chat on http://{options.address}:{options.port}/ (Ctrl-C to stop)", flush=True)
    await stopped.wait()
    server.stop()
    await service.stop()
    await server.close_all_connections()


def main() -> None:
    parse_command_line()
    try:
        ioloop.IOLoop.current().run_sync(serve)
    except (ValueError, OSError) as e:  # a bad --broker, a taken port: one line, no traceback
        raise SystemExit(f"chat: {e}") from None


if __name__ == "__main__":
    main()
