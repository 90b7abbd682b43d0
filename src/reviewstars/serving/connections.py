"""Connections that cannot hold the server: a deadline for every request, and idle
connections closed to make room at the cap.

uvicorn counts every open connection against its `limit_concurrency`, idle ones too, and
gives a connection that has not yet sent a whole request no deadline: 255 silent
connections (or half-sent headers) made it answer 503 to everyone for as long as they
stayed open. Here a connection must send a whole request within `request_timeout_s` of
opening (or of its last answer, which also covers a keep-alive connection that starts a
request and stalls); one still sending when the deadline comes is closed, one whose
request the model is working on is not. Past `max_connections` a new connection takes the
place of the one that has waited on its client longest: idle, or still sending its request
(headers or body, however slowly: 300 half-sent bodies held every slot until their deadline,
and a client that reconnected held them for good). Only connections whose whole request is
at the model keep their place; when every one is, the new connection is closed. What
happened is counted for /metrics. A request whose client goes away, or that is still
queued when the server stops, hears it through its scope (`batcher.WATCH`) and leaves the
model's queue.

An answer given before its request's body has all arrived (a 413 on the declared length)
to a client that asked to close (`Connection: close`: urllib, HTTP/1.0) is not followed by
a close at once: with the rest of the body unread, the kernel resets the connection and the
client sees "connection reset" instead of the 413. The answer goes out with the write side
shut (`write_eof`), and what the client still sends is read and dropped until it closes,
or the request's deadline or uvicorn's keep-alive timeout closes it (nginx's lingering close).
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .batcher import WATCH, Watch
from .endpoint import ONE_WRITE
from .limits import ServeLimits
from .metrics import ConnectionCounts


def guarded_protocol(limits: ServeLimits, counts: ConnectionCounts) -> type:
    """An httptools protocol class for uvicorn (its `http=`) that keeps `limits` and updates `counts`."""

    class GuardedConnection(HttpToolsProtocol):
        _deadline = None
        _active = 0.0  # when it last opened, or last finished an answer
        _whole = 0     # its whole requests not yet answered (pipelined ones too): at the model, never shed
        _lingering = False  # answered before its body ended, and closing: reading what is left, to drop it
        _watching: list = []  # (cycle, Watch) of its requests not yet answered (replaced, never mutated in place)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            counts.open, counts.opened = len(self.connections), counts.opened + 1
            self._arm()
            if len(self.connections) > limits.max_connections:
                waiting = [c for c in self.connections if c is not self and c._waiting_on_client()]
                oldest = min(waiting, key=lambda c: (c._sending(), c._active), default=None)  # idle ones first
                if oldest is not None:
                    counts.shed += 1
                    oldest.transport.close()
                else:
                    counts.refused += 1
                    transport.close()

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            transport = self.cycle.transport = _LingeringClose(self.transport, self)  # what the cycle writes to and closes
            extensions = self.cycle.scope.setdefault("extensions", {})  # (its task has not run yet)
            extensions[ONE_WRITE] = transport.hold_head
            watch = extensions[WATCH] = Watch()
            # every request of the connection not yet answered, pipelined ones too (`self.cycle` is the newest)
            self._watching = [(cycle, w) for cycle, w in self._watching if not cycle.response_complete] + [(self.cycle, watch)]

        def data_received(self, data: bytes) -> None:
            if not self._lingering:  # else: the answer is out and the connection is closing; the rest is dropped
                super().data_received(data)

        def _linger(self) -> None:
            self._lingering = True
            self.transport.write_eof()
            self.flow.resume_reading()

        def connection_lost(self, exc) -> None:
            self._disarm()
            self._tell(stopping=False)  # a request still queued for the model leaves the queue
            super().connection_lost(exc)
            counts.open = len(self.connections)

        def on_message_complete(self) -> None:
            answered = self.cycle is None or self.cycle.response_complete  # already answered (a 413 before the body ended)
            super().on_message_complete()
            if not answered:
                self._whole += 1
            self._disarm()  # the request is whole: the app has it

        def on_response_complete(self) -> None:
            self._whole = max(self._whole - 1, 0)
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request, if it starts, must end in time too

        def shutdown(self) -> None:
            """The server is stopping: a request still queued is answered 503 now (not at its queue
            deadline), one still sending its body is closed (it cannot be answered); one at the
            model is answered, then closed."""
            if not counts.stopping:
                counts.stopping = True
                if any(c._whole for c in self.connections):
                    from ..progress import note

                    note("stopping: answering the requests at the model first (Ctrl-C again stops at once)")
            self._tell(stopping=True)
            if self._sending() and self.cycle.more_body:
                self.transport.close()
            super().shutdown()

        def _tell(self, stopping: bool) -> None:
            """Every request of the connection not yet answered hears it (`batcher.Watch`)."""
            for cycle, watch in self._watching:
                if not cycle.response_complete:
                    watch.tell(stopping)
            self._watching = []

        def _waiting_on_client(self) -> bool:
            """No whole request of its own at the model: idle, or still sending one."""
            return self._whole == 0

        def _sending(self) -> bool:
            """Part of a request is in (headers or body): shed after the idle ones."""
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            self._active = self.loop.time()
            self._disarm()
            self._deadline = self.loop.call_later(limits.request_timeout_s, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            in_flight = self.cycle is not None and not self.cycle.more_body and not self.cycle.response_complete
            if not in_flight and not self.transport.is_closing():
                counts.timed_out += 1
                self.transport.close()

    return GuardedConnection


class _LingeringClose:
    """The transport a request's cycle writes to, whose `close` lingers while the request's
    body is still arriving (see the module's docstring), and that can send an answer's head
    and body in one write (`hold_head`); everything else is the transport's."""

    def __init__(self, transport, connection):
        self._transport, self._connection = transport, connection
        self._holding = False
        self._held: bytes | None = None

    def hold_head(self) -> None:
        """Keep the next write (an answer's head) to go out with the one after it (its body).
        uvicorn writes each at once, and with Nagle's algorithm off each is a packet: two
        sends, and two wake-ups of the client, for an answer of a few hundred bytes."""
        self._holding = True

    def write(self, data) -> None:
        if self._holding:
            self._holding, self._held = False, bytes(data)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def close(self) -> None:
        if self._held is not None:  # a head whose body never came (the client went away): out first, in order
            self.write(b"")
        cycle = self._connection.cycle
        body_unread = cycle is not None and cycle.more_body
        if body_unread and not self._transport.is_closing() and self._transport.can_write_eof():
            self._connection._linger()
        else:
            self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)
