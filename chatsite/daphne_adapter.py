"""Everything this project changes inside daphne, autobahn and Twisted, in one
place. Each change reaches into a private part of one exact version of those
packages, so:

- importing this module checks the installed versions against `WRITTEN_FOR`
  and refuses to go on (a clear error naming both) rather than degrade
  silently, e.g. slow-reader protection quietly off after a renamed field;
- `install()` applies the patches; only the launchers call it
  (`python -m chatsite.server`, and `manage.py runserver` through
  chatsite/management/commands/runserver.py), never an AppConfig;
- tests/chatsite/test_daphne_adapter.py holds a contract test per patch that
  fails when the private it relies on moves or changes.

The patches, and why:

1. clean 1009: autobahn drops the TCP connection on a protocol error such as
   an over-size message (failByDrop); the closing handshake tells the client
   why (PROTOCOL.md).
2. server close codes: autobahn's sendClose accepts only 1000 and 3000-4999,
   so daphne raises on `websocket.close` with 1011/1012/1013 and the socket
   stays open; realtime.hub closes with 1011 when the channel layer fails.
3. guarded sends: nothing is sent to a closing socket (an exception there
   would skip the consumer's disconnect), a client that stopped reading is
   dropped past CHAT_MAX_SEND_BUFFER_BYTES instead of Twisted queueing every
   event for it, and the inbound message size limit is not applied to what
   the server sends (a large catch-up page).
4. prepared frames: each WebSocket application gets `scope["chat.write_frame"]`,
   which writes a broadcast's frame, built once per process, straight to the
   socket when nothing is queued before it (as asyncio's transports do; Twisted
   would register the socket for writing and send on the next loop turn).
   Frames written to one socket within one event-loop turn leave in one
   `send`, whole frames one after the other (Centrifugo merges its writes the
   same way, but several messages in one frame; the wire stays one event per
   frame here): when broadcasts queue up, a system call per frame becomes
   one per socket and turn. Every other write to the socket (serverSend,
   close) sends what is pending first, so nothing overtakes.
5. lighter connections: a smaller receive queue than asyncio.Queue, and the
   handshake's raw request and header dicts let go once the socket is open.
6. bounded request bodies: Twisted reads a whole request body (into memory
   or a temporary file) before daphne calls the application, so the body
   limit of chatsite.limits is applied here too, as the body arrives: a
   declared Content-Length over it, or a chunked body that passes it, gets
   413 and the connection is closed, the rest never read.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import inspect
import io
import logging
from collections.abc import Callable
from functools import partial
from typing import Any

logger = logging.getLogger("chatsite.server")

# The exact versions every patch below was written and tested against.
WRITTEN_FOR = {"daphne": "4.2.3", "autobahn": "26.11.1", "Twisted": "26.10.0"}

# Close codes RFC 6455 gives a server for its own failures: 1011 (unexpected
# condition), 1012 (restart), 1013 (try again later).
SERVER_CLOSE_CODES = frozenset({1011, 1012, 1013})


class AdapterVersionError(ImportError):
    pass


def check_versions(installed: Callable[[str], str] = importlib.metadata.version) -> None:
    found = {name: installed(name) for name in WRITTEN_FOR}
    wrong = {name: version for name, version in found.items() if version != WRITTEN_FOR[name]}
    if wrong:
        raise AdapterVersionError(
            "chatsite/daphne_adapter.py patches private parts of "
            + ", ".join(f"{name} {version}" for name, version in WRITTEN_FOR.items())
            + "; installed: "
            + ", ".join(f"{name} {version}" for name, version in found.items())
            + ". Install the pinned versions (requirements.txt), or port each patch and its"
            " contract test (tests/chatsite/test_daphne_adapter.py) to the new ones."
        )


check_versions()

from daphne.http_protocol import WebRequest  # noqa: E402  (after the version check)
from daphne.server import Server  # noqa: E402
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol  # noqa: E402
from twisted.internet import tcp  # noqa: E402
from twisted.web import http as twisted_http  # noqa: E402

from chatsite import limits  # noqa: E402

# Source digests of the daphne and Twisted methods that patches 4, 5 and 6
# replace, wrap or rely on: a change there means the code below no longer
# matches what they do.
UPSTREAM_DIGESTS = {
    "Server.create_application": "f1e300b4ecf636c8",
    "WebSocketProtocol.onOpen": "6be066589e00abb0",
    "WebSocketProtocol.serverSend": "345f21330d2a18ce",
    "WebSocketProtocol.serverClose": "8302150efac698d6",
    "Request.gotLength": "1c389b99da50b0ae",
    "Request.handleContentChunk": "6e942756afb787b4",
    "HTTPChannel.allHeadersReceived": "979a9a8410f41ad9",
    "WebRequest.process": "e9babd1c97ce710b",
}


def source_digest(function: Callable[..., Any]) -> str:
    return hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]


def upstream(name: str) -> Callable[..., Any]:
    """The unpatched daphne method `Class.method`."""
    cls_name, method = name.split(".")
    cls = {"Server": Server, "WebSocketProtocol": WebSocketProtocol, "Request": twisted_http.Request, "HTTPChannel": twisted_http.HTTPChannel,
           "WebRequest": WebRequest}[cls_name]
    function = getattr(cls, method)
    return getattr(function, "chat_original", function)


_installed = False


def install(*, send_buffer_limit: int) -> None:
    """Apply every patch (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    _clean_protocol_errors()
    _server_close_codes()
    _guarded_sends(send_buffer_limit)
    _prepared_frames_and_light_connections(send_buffer_limit)
    _bounded_bodies()


def _patch(cls: type, name: str, replacement: Callable[..., Any]) -> None:
    replacement.chat_original = getattr(cls, name)  # type: ignore[attr-defined]
    setattr(cls, name, replacement)


# -- 1. clean 1009 ---------------------------------------------------------------


def _clean_protocol_errors() -> None:
    original_init = WebSocketFactory.__init__

    def init(self: WebSocketFactory, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.setProtocolOptions(failByDrop=False)

    _patch(WebSocketFactory, "__init__", init)


# -- 2. server close codes -------------------------------------------------------


def _server_close_codes() -> None:
    original_close = WebSocketProtocol.serverClose

    def server_close(self: WebSocketProtocol, code: int | None = None) -> None:
        if frame_writer is not None:
            frame_writer.flush_one(self)
        if code in SERVER_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            original_close(self, code)

    _patch(WebSocketProtocol, "serverClose", server_close)


# -- 3. guarded sends --------------------------------------------------------------


def queued_bytes(transport: Any) -> int:
    """Bytes Twisted holds for a connection, not yet taken by the kernel:
    FileDescriptor keeps them in dataBuffer (from offset on) plus
    _tempDataBuffer (_tempDataLen bytes). No defaults: a renamed field fails
    loudly here (and in its contract test) instead of reading as 0."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def too_slow(protocol: WebSocketProtocol, limit: int, queued: int | None = None) -> bool:
    """Past `limit` queued bytes a client that stopped reading is dropped, so
    one slow reader never grows the server's memory."""
    transport = protocol.transport
    if queued is None:
        queued = queued_bytes(transport) if transport is not None else 0
    if queued <= limit:
        return False
    logger.warning("dropping a slow WebSocket reader %s: %d bytes queued", protocol.client_addr, queued)
    transport.abortConnection()
    return True


def _guarded_sends(limit: int) -> None:
    original_send = WebSocketProtocol.serverSend

    def server_send(self: WebSocketProtocol, content: Any, binary: bool = False) -> None:
        if frame_writer is not None:
            frame_writer.flush_one(self)  # prepared frames written before this stay before it
        if self.state in (self.STATE_CLOSING, self.STATE_CLOSED):
            return
        if too_slow(self, limit):
            return
        inbound_limit = self.maxMessagePayloadSize
        self.maxMessagePayloadSize = 0
        try:
            original_send(self, content, binary)
        finally:
            self.maxMessagePayloadSize = inbound_limit

    _patch(WebSocketProtocol, "serverSend", server_send)


# -- 4. prepared frames --------------------------------------------------------------


class FrameWriter:
    """The process's prepared-frame writer. `write` keeps a socket's frames
    of the current event-loop turn (the first as bytes, more as a list);
    `flush` runs once at the end of the turn (call_soon) and gives each
    socket its frames in one write."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pending: dict[WebSocketProtocol, bytes | list[bytes]] = {}
        self.scheduled = False

    def write(self, protocol: WebSocketProtocol, frame: bytes, text: str) -> None:
        pending = self.pending.get(protocol)
        if pending is not None:
            if isinstance(pending, bytes):
                self.pending[protocol] = [pending, frame]
            else:
                pending.append(frame)
            return
        if protocol.state != _OPEN or protocol.transport is None:
            return  # closing: as the guarded send
        if protocol._perMessageCompress is not None or protocol.send_state != _GROUND:
            protocol.serverSend(text)  # never the case with daphne's options; kept correct anyway
            return
        self.pending[protocol] = frame
        if not self.scheduled:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        pending, self.pending = self.pending, {}
        for protocol, frames in pending.items():
            self._send(protocol, frames if isinstance(frames, bytes) else b"".join(frames))

    def flush_one(self, protocol: WebSocketProtocol) -> None:
        """Before any other write to this socket."""
        if self.pending:
            frames = self.pending.pop(protocol, None)
            if frames is not None:
                self._send(protocol, frames if isinstance(frames, bytes) else b"".join(frames))

    def _send(self, protocol: WebSocketProtocol, data: bytes) -> None:
        """Straight to the socket when nothing is queued before it."""
        transport = protocol.transport
        if protocol.state != _OPEN or transport is None:
            return
        queued = queued_bytes(transport)
        if queued > self.limit:
            too_slow(protocol, self.limit, queued)
            return
        # Straight to the socket only for plain TCP: under TLS (daphne -e ssl:...)
        # the transport is a TLS wrapper that merely forwards `socket` & co.
        if queued or type(transport) is not tcp.Server or transport.TLS or transport.disconnecting or protocol.send_queue:
            transport.write(data)
            return
        try:
            sent = transport.socket.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = 0  # Twisted meets the error on its own write and closes the connection
        if sent < len(data):
            transport.write(data[sent:])


# Class constants read once: on every delivery a lookup through autobahn's
# long class chain cost more than the comparison (py-spy, docs/performance.md).
_OPEN = WebSocketProtocol.STATE_OPEN
_GROUND = WebSocketProtocol.SEND_STATE_GROUND

# The process's writer (install() sets it up).
frame_writer: FrameWriter | None = None


def _body_as_file(request: Any, scope: dict[str, Any]) -> None:
    """Patch 7: a body in a temporary file goes to the application as the
    file; daphne's WebRequest.process then reads the empty stand-in and
    queues one empty `http.request` (the end of the body)."""
    content = getattr(request, "content", None)
    if content is None or isinstance(content, io.BytesIO) or not hasattr(content, "fileno"):
        return  # a small body (Twisted keeps it in memory): daphne's own way
    content.seek(0)
    scope["chat.body_file"] = content
    request.content = io.BytesIO()  # Twisted closes this one; the application closes the file


# -- 5. lighter connections --------------------------------------------------------------


class ReceiveQueue:
    """What daphne hands an application as `receive`: its asyncio.Queue (four
    deques and an Event per connection) cut down to the two calls daphne and
    the application make, put_nowait and get."""

    __slots__ = ("_items", "_waiter")

    def __init__(self) -> None:
        self._items: list[Any] | None = None
        self._waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = []
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        # The item stays queued until taken: a get() cancelled after the
        # wake-up loses nothing.
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._items.pop(0)


def _prepared_frames_and_light_connections(limit: int) -> None:
    global frame_writer
    writer = frame_writer = FrameWriter(limit)
    def create_application(self: Server, protocol: Any, scope: dict[str, Any]) -> ReceiveQueue | None:
        # daphne 4.2.3's Server.create_application with ReceiveQueue, and the
        # frame writer in a WebSocket's scope (realtime.consumers uses it).
        assert "application_instance" not in self.connections[protocol]
        if scope.get("type") == "websocket":
            scope["chat.write_frame"] = partial(writer.write, protocol)
        elif scope.get("type") == "http":
            _body_as_file(protocol, scope)
        input_queue = ReceiveQueue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(scope=scope, receive=input_queue.get, send=partial(self.handle_reply, protocol))
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(application_instance)
        return input_queue

    original_open = WebSocketProtocol.onOpen

    def on_open(self: WebSocketProtocol) -> None:
        original_open(self)
        self.http_request_data = b""
        self.http_headers.clear()  # also request.headers: the same dict

    _patch(Server, "create_application", create_application)
    _patch(WebSocketProtocol, "onOpen", on_open)


# -- 6. bounded request bodies ------------------------------------------------------------


def _bounded_bodies() -> None:
    original_length = WebRequest.gotLength
    original_chunk = WebRequest.handleContentChunk
    original_process = WebRequest.process

    def got_length(self: WebRequest, length: int | None) -> None:
        # Called once the headers are in, before any of the body; the
        # request line's path is still only the channel's.
        path = self.channel._path.split(b"?", 1)[0].decode("latin-1")
        self.chat_body_limit = limits.body_limit(path)
        self.chat_body_size = 0
        self.chat_refused = False
        # Twisted would parse a multipart body itself, whole, in memory, on
        # the event loop (every socket of the process waits ~0.6 s per 10 MB
        # upload), for request.args that daphne never reads: Django parses
        # the body, in a thread. (bench/upload_bench.py, docs/files.md.)
        self._parsePOSTFormSubmission = False
        if length is not None and length > self.chat_body_limit:
            _refuse(self)
            return
        original_length(self, length)

    def handle_content_chunk(self: WebRequest, data: bytes) -> None:
        if self.chat_refused:
            return
        self.chat_body_size += len(data)
        if self.chat_body_size > self.chat_body_limit:
            _refuse(self)
            return
        original_chunk(self, data)

    def process(self: WebRequest) -> None:
        if getattr(self, "chat_refused", False):
            return  # answered 413 already
        original_process(self)

    _patch(WebRequest, "gotLength", got_length)
    _patch(WebRequest, "handleContentChunk", handle_content_chunk)
    _patch(WebRequest, "process", process)


def _refuse(request: WebRequest) -> None:
    request.chat_refused = True
    request.requestHeaders.removeHeader(b"Expect")  # no "100 Continue" after the answer
    body = limits.too_large_body(request.chat_body_limit)
    request.channel.transport.write(
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    request.channel.loseConnection()
