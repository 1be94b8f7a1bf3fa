"""WebSocket load client (run pinned to its own CPU, apart from the server).

Raw asyncio protocols on uvloop with prebuilt masked frames and a minimal frame reader, so the
client costs far less per message than any server under test. Prints one JSON line.

- ``echo``: C connections each keep DEPTH messages in flight for D seconds; every echo that
  comes back sends the next message. Result: round trips per second.
- ``fanout``: N connections join ``/fanout``; one asks for M broadcasts of SIZE bytes; timed
  until every connection has received all M. Result: deliveries per second.

Only 127.0.0.1 is contacted; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import struct
import time

import uvloop

HOST = "127.0.0.1"
MASK = b"\x37\xfa\x21\x3d"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def masked_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    body = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return head + MASK + body


def handshake(path: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


class Client(asyncio.Protocol):
    """Counts complete frames from the server; ``on_frame`` runs for each."""

    def __init__(self, request: bytes, on_frame: object = None) -> None:
        self.request = request
        self.buffer = bytearray()
        self.upgraded = False
        self.frames = 0
        self.on_frame = on_frame
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                if not self.ready.done():
                    self.ready.set_exception(RuntimeError(bytes(buffer[:80]).decode()))
                return
            del buffer[: end + 4]
            self.upgraded = True
            self.ready.set_result(None)
        frames = 0
        pos = 0
        size = len(buffer)
        while size - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = (buffer[pos + 2] << 8) | buffer[pos + 3]
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = struct.unpack_from("!Q", buffer, pos + 2)[0]
                head = 10
            if size - pos < head + length:
                break
            pos += head + length
            frames += 1
        if pos:
            del buffer[:pos]
        if frames:
            self.frames += frames
            if self.on_frame is not None:
                self.on_frame(self, frames)  # type: ignore[operator]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the handshake"))


async def connect_all(port: int, path: str, count: int, on_frame: object = None) -> list[Client]:
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(200)

    async def one() -> Client:
        async with gate:
            _, client = await loop.create_connection(
                lambda: Client(handshake(path, port), on_frame), HOST, port
            )
            await asyncio.wait_for(client.ready, 10)
            return client

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def echo(port: int, connections: int, depth: int, duration: float, size: int) -> dict:
    frame = masked_frame(b"e" * size)
    running = True

    def answer(client: Client, frames: int) -> None:
        if running:
            assert client.transport is not None
            client.transport.write(frame * frames)

    clients = await connect_all(port, "/echo", connections, answer)
    # Warm up, then measure.
    for client in clients:
        assert client.transport is not None
        client.transport.write(frame * depth)
    await asyncio.sleep(min(1.0, duration / 4))
    start_frames = sum(c.frames for c in clients)
    started = time.perf_counter()
    cpu = cpu_seconds()
    await asyncio.sleep(duration)
    frames = sum(c.frames for c in clients) - start_frames
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    running = False
    for client in clients:
        assert client.transport is not None
        client.transport.close()
    return {
        "mode": "echo",
        "round_trips_per_s": frames / elapsed,
        "messages": frames,
        "client_cpu_share": cpu / elapsed,
    }


async def fanout(port: int, clients_count: int, messages: int, size: int, timeout: float) -> dict:
    done = asyncio.get_running_loop().create_future()
    remaining = [clients_count]

    def count(client: Client, frames: int) -> None:
        if client.frames >= messages and not getattr(client, "finished", False):
            client.finished = True  # type: ignore[attr-defined]
            remaining[0] -= 1
            if remaining[0] == 0 and not done.done():
                done.set_result(None)

    clients = await connect_all(port, "/fanout", clients_count, count)
    await asyncio.sleep(0.5)  # let every open() run
    trigger = clients[0].transport
    assert trigger is not None
    started = time.perf_counter()
    cpu = cpu_seconds()
    trigger.write(masked_frame(f"broadcast {messages} {size}".encode()))
    await asyncio.wait_for(done, timeout)
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds() - cpu
    for client in clients:
        assert client.transport is not None
        client.transport.close()
    deliveries = clients_count * messages
    return {
        "mode": "fanout",
        "deliveries_per_s": deliveries / elapsed,
        "deliveries": deliveries,
        "seconds": elapsed,
        "client_cpu_share": cpu / elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["echo", "fanout"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--depth", type=int, default=1)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    uvloop.install()
    if args.mode == "echo":
        result = asyncio.run(
            echo(args.port, args.connections, args.depth, args.duration, args.size)
        )
    else:
        result = asyncio.run(
            fanout(args.port, args.clients, args.messages, args.size, args.timeout)
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
