"""Chat: asyncweb's demo application.

Sign in with a name (a signed cookie, no external provider), pick a room, talk. Messages reach
browsers over WebSocket, or by long polling (``/a/message/updates``) where WebSocket is not
available; each room keeps its last 200 messages, and a client that reconnects asks for what
it missed. Every message goes through a pub/sub broker: the in-memory one by default, or Redis
(``--broker redis://127.0.0.1:6379/0``) so that several processes, on one machine or many,
serve the same rooms. The room list lives in the broker too: rooms are created by a form
(POST), at most ``--max_rooms`` of them, and a created room expires after ``--room_expiry``
seconds with neither a message nor anyone in it.

    python examples/chat/app.py --port 8888 [--broker redis://...] [--debug]
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import errno
import json
import os
import re
import signal
import sys
import time
import urllib.parse
import uuid
from collections.abc import Awaitable
from typing import Any

from asyncweb import ioloop, locale, template, web, websocket
from asyncweb.log import app_log
from asyncweb.options import Error as OptionsError
from asyncweb.options import define, options, parse_command_line
from asyncweb.pubsub import Broker, MemoryBroker
from asyncweb.web.lifecycle import stop_serving

HERE = os.path.dirname(os.path.abspath(__file__))
HISTORY_SIZE = 200
MAX_MESSAGE_LENGTH = 2000
MAX_NAME_LENGTH = 40
CHANNEL = "chat"
ROOM_PATTERN = r"[A-Za-z0-9_-]{1,32}"
_ROOM_RE = re.compile(ROOM_PATTERN)
DEFAULT_ROOMS = ("lobby", "python", "random")
# The shared set (in the broker) of rooms users created, stamped with their last activity.
ROOMS_KEY = "chat:rooms"
MAX_ROOMS = 100
ROOM_EXPIRY = 3600.0
# How long start-up waits for the broker quietly before saying so at WARNING.
BROKER_PATIENCE = 2.0
# Links in messages: only http(s), never given the page (window.opener) or a referrer.
LINK_PARAMS = 'rel="nofollow noopener noreferrer" target="_blank"'
_MESSAGES = template.Loader(os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))
# A long poll is answered empty after this long, so proxies never see a stuck request.
POLL_TIMEOUT = 30.0
USER_COOKIE = "chatuser"
LOCALE_COOKIE = "chatlocale"


def render_message(message: dict[str, Any]) -> str:
    """A message as HTML: the one rendering for the page, WebSocket and long-poll clients."""
    when = datetime.datetime.fromtimestamp(float(message["time"]), datetime.timezone.utc)
    html = _MESSAGES.load("modules/message.html").generate(
        message=message,
        iso_time=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        clock=when.strftime("%H:%M"),
        link_params=LINK_PARAMS,
    )
    return html.decode("utf-8")


def _well_formed(message: Any) -> bool:
    """A message as :meth:`ChatService.post` makes them (other Redis clients may publish)."""
    return (
        isinstance(message, dict)
        and all(isinstance(message.get(k), str) for k in ("id", "room", "from", "body"))
        and isinstance(message.get("time"), (int, float))
        and not isinstance(message.get("time"), bool)
    )


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

    @property
    def occupied(self) -> bool:
        return bool(self.pollers) or len(self.sockets) > 0

    def deliver(self, message: dict[str, Any]) -> None:
        message = {**message, "html": render_message(message)}
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

    def __init__(
        self,
        broker_url: str = "memory",
        max_rooms: int = MAX_ROOMS,
        room_expiry: float = ROOM_EXPIRY,
    ) -> None:
        self.broker_url = broker_url
        self.max_rooms = max_rooms
        self.room_expiry = room_expiry
        self.broker: Broker | None = None
        # The rooms this process holds history and clients for; the list users see is
        # DEFAULT_ROOMS plus the broker's ROOMS_KEY set, alike in every process.
        self.rooms: dict[str, Room] = {name: Room(name) for name in DEFAULT_ROOMS}
        self._started: asyncio.Future[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._maintainer: asyncio.Task[None] | None = None

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
        self._maintainer = asyncio.ensure_future(self._maintain())

    async def stop(self) -> None:
        for task in (self._maintainer, self._consumer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.broker is not None:
            await self.broker.close()

    async def _consume(self, subscription: Any) -> None:
        async for message in subscription:
            if not _well_formed(message):
                continue
            try:
                self.room(message["room"]).deliver(message)
            except (ValueError, OverflowError, OSError):  # a time no clock can show
                app_log.warning("dropped a message with a bad time: %r", message.get("time"))

    # -- the room list, kept in the broker --------------------------------------------------

    async def room_names(self) -> list[str]:
        """Every room: the default ones, then those users created, by name."""
        await self.start()
        assert self.broker is not None
        created = await self.broker.members(ROOMS_KEY)
        return [*DEFAULT_ROOMS, *sorted(n for n in created if n not in DEFAULT_ROOMS)]

    async def room_exists(self, name: str) -> bool:
        return name in DEFAULT_ROOMS or name in await self.room_names()

    async def create_room(self, name: str) -> bool:
        """Add a room (or find it there); False when ``max_rooms`` rooms exist already."""
        if name in DEFAULT_ROOMS:
            return True
        await self.start()
        assert self.broker is not None
        return await self.broker.touch(ROOMS_KEY, name, time.time(), limit=self.max_rooms)

    async def touch_room(self, name: str) -> None:
        """Note activity in a created room, so it does not expire (never re-creates it)."""
        if name not in DEFAULT_ROOMS and self.broker is not None:
            await self.broker.touch(ROOMS_KEY, name, time.time(), create=False)

    async def _maintain(self) -> None:
        """Every few seconds: answer stale long polls, keep occupied rooms alive, expire
        rooms nobody used for ``room_expiry`` seconds and forget their history here."""
        interval = max(0.05, min(5.0, self.room_expiry / 4))
        while True:
            await asyncio.sleep(interval)
            self.prune()
            try:
                await self.maintain_rooms()
            except ConnectionError as err:  # the broker is down: try again next round
                app_log.warning("room upkeep skipped: %s", err)

    async def maintain_rooms(self) -> None:
        assert self.broker is not None
        for name, room in list(self.rooms.items()):
            if room.occupied:
                await self.touch_room(name)
        await self.broker.expire(ROOMS_KEY, time.time() - self.room_expiry)
        alive = set(await self.broker.members(ROOMS_KEY)).union(DEFAULT_ROOMS)
        for name, room in list(self.rooms.items()):
            if name not in alive and not room.occupied:
                del self.rooms[name]

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
        await self.touch_room(room)
        return message

    def prune(self) -> None:
        older_than = time.monotonic() - POLL_TIMEOUT
        for room in self.rooms.values():
            room.prune_pollers(older_than)

    def stats(self) -> dict[str, int]:
        return {
            "local_rooms": len(self.rooms),
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

    async def existing_room(self, name: str) -> str:
        if not _valid_room(name):
            raise web.HTTPError(400, reason="bad room name")
        if not await self.chat.room_exists(name):
            raise web.HTTPError(404, reason="no such room")
        return name

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Error pages in the chat's own layout (tracebacks only with ``debug``)."""
        if self.settings.get("serve_traceback") and "exc_info" in kwargs:
            super().write_error(status_code, **kwargs)
            return
        try:
            self.render("error.html", status_code=status_code, reason=self._reason)
        except Exception:  # the layout itself failed: the plain page still says what happened
            app_log.exception("cannot render the error page")
            self.clear()
            self.set_status(status_code)
            super().write_error(status_code, **kwargs)


class NotFoundHandler(BaseHandler):
    """Every URL no rule matches: the chat's 404 page."""

    def prepare(self) -> None:
        raise web.HTTPError(404)


class MessageModule(web.UIModule):
    def render(self, message: dict[str, Any]) -> str:
        html: str = message["html"]  # made by render_message when the message arrived
        return html


class HomeHandler(BaseHandler):
    def get(self) -> None:
        self.redirect("/room/lobby")


class RoomHandler(BaseHandler):
    @web.authenticated
    async def get(self, name: str) -> None:
        rooms = await self.chat.room_names()
        if name not in rooms:
            # Visiting a URL creates nothing: the page offers the form that does.
            self.set_status(404)
            self.render("missing.html", name=name, rooms=rooms, room_name=None)
            return
        room = self.chat.room(name)
        self.render(
            "room.html",
            room=room,
            rooms=rooms,
            room_name=name,
            messages=list(room.history),
            history_size=HISTORY_SIZE,
            transport=self.get_argument("transport", "auto"),
        )


class RoomNewHandler(BaseHandler):
    """Creates a room (a form's POST, so XSRF-checked), then shows it."""

    @web.authenticated
    async def post(self) -> None:
        name = self.get_argument("name", "").strip().lstrip("#")
        if not _valid_room(name):
            raise web.HTTPError(400, reason="bad room name")
        if not await self.chat.create_room(name):
            raise web.HTTPError(403, reason="too many rooms")
        self.redirect(f"/room/{name}")


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
        await self.existing_room(room)
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
        name = await self.existing_room(self.get_argument("room"))
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

    def on_shutdown(self) -> None:
        # The server is stopping: answer now with no news rather than after the timeout.
        if self._room is not None and self._future is not None:
            self._room.cancel_wait(self._future)


class ChatSocketHandler(websocket.WebSocketHandler, BaseHandler):
    room: Room | None = None

    async def open(self, name: str) -> None:
        if self.current_user is None:
            self.close(4001, "sign in first")
            return
        if not await self.chat.room_exists(name):
            self.close(4004, "no such room")
            return
        # A reconnecting client says the last message it has; it gets what it missed, then
        # joins the room, with nothing awaited in between so no message falls in the gap.
        room = self.room = self.chat.room(name)
        missed = room.since(self.get_argument("cursor", None))
        if missed:
            self.write_message({"type": "messages", "messages": missed})
        room.sockets.add(self)

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

    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        names = await self.chat.room_names()
        self.write(
            {
                "status": "ok",
                "pid": os.getpid(),
                "broker": type(self.chat.broker).__name__,
                "rooms": len(names),
                "room_names": names,
                **self.chat.stats(),
            }
        )


def _valid_room(name: str) -> bool:
    return _ROOM_RE.fullmatch(name) is not None


def check_broker_url(url: str) -> None:
    if url not in ("", "memory") and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"unknown broker {url!r}: use 'memory' or a redis:// URL")


def make_broker(url: str) -> Broker:
    check_broker_url(url)
    if url in ("", "memory"):
        return MemoryBroker()
    from asyncweb.pubsub import RedisBroker

    return RedisBroker(url)


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"***@{host}"))


def make_app(service: ChatService, cookie_secret: str, debug: bool = False) -> web.Application:
    locale.load_translations(os.path.join(HERE, "locale"))
    return web.Application(
        [
            (r"/", HomeHandler),
            (r"/room", RoomNewHandler),
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
        default_handler_class=NotFoundHandler,
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
define("max_rooms", default=MAX_ROOMS, help="how many rooms users may create")
define(
    "room_expiry",
    default=ROOM_EXPIRY,
    help="seconds after which a created room with no message and nobody in it is removed",
)


def application() -> web.Application:
    """The app for ``asyncweb serve app:application --app-dir examples/chat --workers N``.

    Settings come from the environment: ``CHAT_BROKER`` (``memory`` or a redis:// URL; with
    several workers use Redis, or each worker has rooms of its own), ``CHAT_COOKIE_SECRET``
    (random when unset: made here, before the workers fork, so they all share it),
    ``CHAT_MAX_ROOMS`` and ``CHAT_ROOM_EXPIRY`` (seconds).
    """
    service = ChatService(
        os.environ.get("CHAT_BROKER", "memory"),
        max_rooms=int(os.environ.get("CHAT_MAX_ROOMS", MAX_ROOMS)),
        room_expiry=float(os.environ.get("CHAT_ROOM_EXPIRY", ROOM_EXPIRY)),
    )
    secret = os.environ.get("CHAT_COOKIE_SECRET") or uuid.uuid4().hex
    return make_app(service, secret)


async def serve() -> None:
    service = ChatService(options.broker, options.max_rooms, options.room_expiry)
    starting = service.start()
    try:
        await asyncio.wait_for(asyncio.shield(starting), BROKER_PATIENCE)
    except asyncio.TimeoutError:
        app_log.warning(
            "no answer from the broker at %s (is Redis running?); the chat starts serving "
            "once it answers",
            _without_password(options.broker),
        )
        await starting
    secret = options.cookie_secret or os.environ.get("CHAT_COOKIE_SECRET") or uuid.uuid4().hex
    app = make_app(service, secret, debug=options.debug)
    app.add_shutdown_hook(service.stop)
    server = app.listen(options.port, address=options.address)
    stopped, force = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        # The first Ctrl-C stops gracefully (long polls answered), a second one at once.
        (force if stopped.is_set() else stopped).set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    print(f"Chat on http://{options.address}:{options.port}/ (Ctrl-C to stop)", flush=True)
    await stopped.wait()
    await stop_serving([server], [app], timeout=30, force=force)


def _usage_error(message: str) -> SystemExit:
    """One line and status 2, as argparse does for a bad command line."""
    hint = "" if "--help" in message else " (try --help)"
    print(f"chat: {message}{hint}", file=sys.stderr)
    return SystemExit(2)


def main() -> None:
    try:
        parse_command_line()
    except OptionsError as e:
        raise _usage_error(str(e)) from None
    if not 0 < options.port < 65536:
        raise _usage_error(f"--port must be 1 to 65535, not {options.port}")
    if options.max_rooms < 0 or options.room_expiry <= 0:
        raise _usage_error("--max_rooms must be 0 or more and --room_expiry above 0")
    try:
        check_broker_url(options.broker)
    except ValueError as e:
        raise _usage_error(str(e)) from None
    try:
        ioloop.IOLoop.current().run_sync(serve)
    except OSError as e:  # one line, no traceback
        if e.errno == errno.EADDRINUSE:
            raise SystemExit(
                f"chat: port {options.port} on {options.address} is in use by another "
                f"program; choose another with --port"
            ) from None
        raise SystemExit(f"chat: {e}") from None


if __name__ == "__main__":
    main()
