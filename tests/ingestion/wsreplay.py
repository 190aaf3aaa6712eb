"""A local WebSocket exchange that serves real recorded frames, for testing connectors without a network.

The recording plays on a clock that keeps running while the server is down or nobody is
connected, as a live exchange would: a client that reconnects gets what is current, and what
was sent during an outage is gone. `sent` lists every frame the server really handed to a
client, so a test can check exactly what a connector should have produced.
"""
from __future__ import annotations

import asyncio
import bisect
import threading
import time
from pathlib import Path

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ascep.services import free_port
from ingestion.recording import Connection, Received, Sent, read_recording


def recorded_frames(path: Path) -> tuple[list[float], list[str], bool]:
    """(receive times, frames) of the first connection in a recording, and whether its client subscribed."""
    times: list[float] = []
    frames: list[str] = []
    subscribed = False
    connections = 0
    for entry in read_recording(path):
        if isinstance(entry, Connection):
            connections += 1
            if connections > 1:
                break
        elif isinstance(entry, Sent):
            subscribed = True
        elif isinstance(entry, Received):
            times.append(entry.epoch)
            frames.append(entry.data)
    return times, frames, subscribed


class LiveFeed:
    """Recorded frames due at their recorded offsets (divided by `speed`) after `start()`."""

    def __init__(self, path: Path, speed: float = 1.0) -> None:
        times, self.frames, self.expects_subscription = recorded_frames(path)
        self.offsets = [(t - times[0]) / speed for t in times]
        self.origin: float | None = None

    def start(self) -> None:
        self.origin = time.monotonic()

    def current(self) -> int:
        """Index of the first frame not yet due (0 before the feed starts)."""
        if self.origin is None:
            return 0
        return bisect.bisect_left(self.offsets, time.monotonic() - self.origin)

    @property
    def finished(self) -> bool:
        return self.current() >= len(self.frames)


class ReplayServer:
    """Serves a LiveFeed on a fixed port; `stop()` drops connections without a close handshake, like a crash.

    `from_start=True` replays the recording from its first frame on every connection (a server that
    repeats itself); `ping_every_s` pings each client and counts the pongs; `silent=True` sends no data;
    `first_frames` (as many as the feed's) go to the first connection instead, e.g. with one corrupted.
    `start_on_subscription=True` starts the feed's clock at the first subscription instead of at `start()`, so the
    first client gets the recording from its first frame (a book's snapshot, say) however long it took to connect.
    """

    def __init__(self, feed: LiveFeed, *, from_start: bool = False, ping_every_s: float | None = None,
                 silent: bool = False, first_frames: list[str] | None = None,
                 start_on_subscription: bool = False) -> None:
        if first_frames is not None and len(first_frames) != len(feed.frames):
            raise ValueError(f"first_frames has {len(first_frames)} frames, the feed {len(feed.frames)}")
        self.feed = feed
        self.first_frames = first_frames
        self.start_on_subscription = start_on_subscription
        self.from_start = from_start
        self.ping_every_s = ping_every_s
        self.silent = silent
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/stream"
        self.sent: list[str] = []
        self.received: list[str] = []
        self.connections = 0
        self.pongs = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    def start(self) -> ReplayServer:
        if self.feed.origin is None and not self.start_on_subscription:
            self.feed.start()
        ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main(ready)), name="wsreplay", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"replay server did not start on port {self.port}")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
            self._loop = None

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(self._serve, "127.0.0.1", self.port, ping_interval=None) as server:
            ready.set()
            await self._stopping.wait()
            connections = list(server.connections)
            for connection in connections:
                connection.transport.close()  # flushes what was sent, then FIN: no close frame
            # Wait for the flush: a loop closed earlier would drop frames already counted as sent.
            await asyncio.wait_for(asyncio.gather(*(c.wait_closed() for c in connections)), 10)
            server.close(close_connections=False)
            await server.wait_closed()

    async def _serve(self, connection: ServerConnection) -> None:
        self.connections += 1
        pinger = asyncio.create_task(self._ping(connection)) if self.ping_every_s else None
        subscribed = asyncio.Event()
        listener = asyncio.create_task(self._listen(connection, subscribed))
        try:
            if self.feed.expects_subscription:
                await subscribed.wait()
            if self.silent:
                await connection.wait_closed()
                return
            if self.feed.origin is None:  # start_on_subscription: this client gets the very first frame
                self.feed.start()
                index = 0
            else:
                index = 0 if self.from_start else self.feed.current()
            start = time.monotonic() if self.from_start else self.feed.origin
            frames = self.first_frames if self.first_frames is not None and self.connections == 1 else self.feed.frames
            while index < len(frames):
                await asyncio.sleep(max(0.0, start + self.feed.offsets[index] - time.monotonic()))
                if self._stopping.is_set():
                    break  # the transport is closing: a write now might or might not get out
                self.sent.append(frames[index])  # once written, the close flushes it
                await connection.send(frames[index])
                index += 1
            await connection.wait_closed()
        except ConnectionClosed:
            pass
        finally:
            listener.cancel()
            if pinger is not None:
                pinger.cancel()

    async def _listen(self, connection: ServerConnection, subscribed: asyncio.Event) -> None:
        """Keep every message the client sends; the first one starts the feed, as a subscription does."""
        try:
            async for message in connection:
                self.received.append(message)
                subscribed.set()
        except ConnectionClosed:
            pass

    async def _ping(self, connection: ServerConnection) -> None:
        while True:
            await asyncio.sleep(self.ping_every_s)
            try:
                await asyncio.wait_for(await connection.ping(), self.ping_every_s)
            except (TimeoutError, ConnectionClosed):
                return
            self.pongs += 1
