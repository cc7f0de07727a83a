"""Base consumer of both WebSocket protocols: session auth (4001), frame
decoding, mapping of errors to `error` events, and the delivery of the
broadcasts that the process's hub (chatcore.hub) hands it. Subclasses parse
with their protocol module and call services; no business rule lives here."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from chatcore import jsonutil
from chatcore.errors import ChatError, RateLimited
from chatcore.events import EVENT_TYPE, session_group, user_group
from chatcore.hub import get_hub, prepared_frame
from chatcore.protocol import ProtocolError, connected_event, error_event, with_request_id

logger = logging.getLogger(__name__)

# Events queued for one busy connection before it is closed (1011, the client
# resumes with afterId): a stuck connection never grows memory.
MAX_BACKLOG = 2000
# Queued for a connection that must reconnect and resume with afterId: 1011.
RECONNECT = "chat.reconnect"
# How long a new connection waits for a failing channel layer before 1011.
LAYER_WAIT_SECONDS = 3.0


class ProtocolConsumer(AsyncJsonWebsocketConsumer):
    """One WebSocket. Broadcasts reach it through the process's hub
    (chatcore.hub) rather than a channel-layer channel of its own: `hub_event`
    handles an event at once when the connection is idle, else queues it for
    the connection's own turn (`_lane`), so events and command answers leave
    in order."""

    user: Any = None
    write_frame: Callable[[bytes, str], None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        # Channels' AsyncConsumer.__call__ without the per-connection layer
        # channel and its receive task: the hub delivers events.
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.hub = get_hub()
        self.channel_name = self.hub.connection_name()
        self.base_send = send
        # Set by chatsite.server: writes a prepared frame straight to the socket.
        self.write_frame = scope.get("chat.write_frame")
        self._lane = asyncio.Lock()
        self._backlog: deque[dict[str, Any]] | None = None
        self._drainer: asyncio.Future | None = None
        self.hub.register(self)
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            self.hub.forget(self)
            if self._drainer is not None:
                self._drainer.cancel()

    async def dispatch(self, message: dict[str, Any]) -> None:
        async with self._lane:
            await super().dispatch(message)
            await self._drain_backlog()

    # -- events from the hub -------------------------------------------------

    def hub_event(self, message: dict[str, Any]) -> None:
        if self._lane.locked() or self._backlog or not self.deliver_now(message):
            self._queue(message)

    def deliver_now(self, message: dict[str, Any]) -> bool:
        """Handle a hub event without awaiting, if it can be; False leaves it
        to `handle_event` on the connection's turn."""
        if message["type"] != EVENT_TYPE or self.write_frame is None:
            return False
        if self.skips(message) or not self.should_forward(message["meta"]):
            return True
        self.write_prepared(message)
        return True

    def _queue(self, message: dict[str, Any]) -> None:
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = deque()
        elif backlog and backlog[0]["type"] == RECONNECT:
            return  # the connection is being closed: nothing more for it
        elif len(backlog) >= MAX_BACKLOG:
            logger.warning("%s: %d events queued for a busy connection; closing it", type(self).__name__, MAX_BACKLOG)
            backlog.clear()
            message = {"type": RECONNECT}
        backlog.append(message)
        if not self._lane.locked() and self._drainer is None:
            self._drainer = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        try:
            async with self._lane:
                await self._drain_backlog()
        finally:
            self._drainer = None

    async def _drain_backlog(self) -> None:
        while self._backlog:
            message = self._backlog.popleft()
            try:
                await self.handle_event(message)
            except Exception:
                logger.exception("%s: delivering %s failed", type(self).__name__, message.get("type"))
        self._backlog = None

    async def handle_event(self, message: dict[str, Any]) -> None:
        if message["type"] == EVENT_TYPE:
            await self.chat_event(message)
        elif message["type"] == "chat.force_close":
            await self.chat_force_close(message)
        elif message["type"] == RECONNECT:
            await self.chat_reconnect()

    def hub_layer_failed(self) -> None:
        if self._backlog:  # ahead of anything queued: broadcasts may be lost anyway
            self._backlog.clear()
        self._queue({"type": RECONNECT})

    def presence_entries(self) -> list[tuple[int, list[int], str]]:
        """(user_id, channel_ids, connection) whose presence the hub refreshes."""
        return []

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return jsonutil.dumps(content)

    async def connect(self) -> None:
        user = self.scope.get("user")
        await self.accept()
        if user is None or not user.is_authenticated or not user.is_active:
            await self.send_json({"type": "error", "code": "unauthorized", "message": "Log in first: no valid session."})
            await self.close(code=4001)
            return
        self.user = user
        session = self.scope.get("session")
        self.groups_joined = [user_group(user.id)]
        if session is not None and session.session_key:
            self.groups_joined.append(session_group(session.session_key))
        # Without the layer this connection would miss broadcasts: while it
        # fails (or the hub re-adds its groups after an outage) the client
        # waits, then is told to come back (1011) and resumes with afterId.
        try:
            if not await self.hub.wait_ready(LAYER_WAIT_SECONDS):
                raise ConnectionError("the channel layer is failing")
            for group in self.groups_joined:
                await self.hub.join(group, self)
            await self.on_authenticated()
        except Exception as exc:
            # A layer or Redis failure is expected in an outage; anything else is a bug.
            expected = isinstance(exc, RedisError | OSError)
            logger.warning("%s: connection not set up, closing it with 1011: %r", type(self).__name__, exc, exc_info=not expected)
            await self.close(code=1011)
            return
        await self.send_json(connected_event(user_id=user.id, username=user.username, display_name=user.shown_name))

    async def on_authenticated(self) -> None:
        """Subclasses set up per-connection state here, before `connected` is sent."""

    async def disconnect(self, code: int) -> None:
        if self.user is not None:
            for group in self.groups_joined:
                await self.hub.leave(group, self)
            await self.on_disconnected()

    async def on_disconnected(self) -> None:
        """Subclasses release per-connection state here."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return
        request_id: str | None = None
        try:
            command, request_id = self.parse(text_data)
            await self.handle_command(command, request_id)
        except ProtocolError as exc:
            await self.send_json(error_event(exc, request_id))
        except RateLimited as exc:
            await self.send_json(error_event(ProtocolError(exc.code, exc.message, retry_after=exc.retry_after), request_id))
        except ChatError as exc:
            if exc.code == "server_error":
                logger.error("%s failed: %s", type(self).__name__, exc, exc_info=exc.__cause__)
            await self.send_json(error_event(ProtocolError(exc.code, exc.message), request_id))
        except Exception:
            logger.exception("unexpected error in %s", type(self).__name__)
            await self.send_json(error_event(ProtocolError("server_error", "Something went wrong; try again."), request_id))

    def parse(self, text_data: str | None) -> tuple[Any, str | None]:
        raise NotImplementedError

    async def handle_command(self, command: Any, request_id: str | None) -> None:
        raise NotImplementedError

    async def reply(self, event: dict[str, Any], request_id: str | None) -> None:
        await self.send_json(with_request_id(event, request_id))

    def skips(self, message: dict[str, Any]) -> bool:
        """The sender's own connection got the event as a direct answer (or,
        for typing, the sender's user needs no copy)."""
        if message.get("skip_channel") == self.channel_name:
            return True
        return message.get("skip_user") is not None and self.user is not None and message["skip_user"] == self.user.id

    async def chat_event(self, message: dict[str, Any]) -> None:
        """A broadcast from chatcore.events, on the connection's turn."""
        if self.skips(message) or not self.should_forward(message["meta"]):
            return
        await self.forward(message)

    async def forward(self, message: dict[str, Any]) -> None:
        """A broadcast's text to this socket: its prepared frame where the
        server offers a frame writer, else through Channels' send."""
        if self.write_frame is not None:
            self.write_prepared(message)
        else:
            await self.send(text_data=message["text"])

    def write_prepared(self, message: dict[str, Any]) -> None:
        """The broadcast's frame, built once per process, straight to the socket."""
        self.write_frame(prepared_frame(message), message["text"])

    def should_forward(self, meta: dict[str, Any]) -> bool:
        """`meta`: type, channelId, messageId of the event (chatcore.events.envelope)."""
        return True

    async def chat_reconnect(self) -> None:
        await self.close(code=1011)

    async def chat_force_close(self, message: dict[str, Any]) -> None:
        """The user logged out or was deactivated."""
        await self.send_json({"type": "error", "code": "unauthorized", "message": message.get("reason", "Session ended.")})
        await self.close(code=4001)
