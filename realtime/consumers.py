"""Base consumer of both WebSocket protocols: session auth (4001), frame
decoding, mapping of errors to `error` events, and the I/O of delivery --
the decisions are the connection's DeliverySession's (realtime.delivery).
Subclasses parse with their protocol module and call services; no business
rule lives here.

An event reaches a socket one of two ways:
- a direct answer to the connection's own command: `send_event`;
- a broadcast from the process's hub (realtime.hub): `on_broadcast`. When the
  connection is idle and the session says deliver, the prepared frame goes
  to the socket at once (no task switch); otherwise it waits in the
  connection's backlog for its turn (`_lane`), so events and command
  answers leave in order, and a gap is filled from the store first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from redis.exceptions import RedisError

from realtime.connections import CLOSE_TOO_MANY, connection_closed, connection_open
from realtime.delivery import DELIVER, SKIP, DeliverySession, FillChanges, FillGap
from realtime.events import FORCE_CLOSE_TYPE, REMOVED_TYPE, Broadcast, channel_layer, session_group, user_group
from realtime.hub import get_hub
from wire import jsonutil, schema
from wire.errors import ChatError, RateLimited
from wire.i18n import language_from_scope, translate
from wire.metrics import CONNECTIONS_OPEN, ERRORS, GAP_FILLS
from wire.protocol import ProtocolError, connected_event, error_event, with_request_id

logger = logging.getLogger(__name__)

# Events queued for one busy connection before it is closed (1011, the client
# resumes with afterId): a stuck connection never grows memory.
MAX_BACKLOG = 2000
# Queued for a connection that must reconnect and resume with afterId: 1011.
RECONNECT = {"type": "chat.reconnect"}
# How long a new connection waits for a failing channel layer before 1011.
LAYER_WAIT_SECONDS = 3.0

Queued = Broadcast | dict[str, Any]


def consumer(cls: type[ProtocolConsumer]) -> Any:
    """`cls.as_asgi()` for a URL pattern (Django's stubs type a pattern's view
    as an HTTP view; Channels' URLRouter takes ASGI applications)."""
    return cls.as_asgi()


class ProtocolConsumer(AsyncJsonWebsocketConsumer):
    """One WebSocket. Subclasses set `event_schemas` (what their protocol may
    send) and implement `parse`, `handle_command` and, if their session can
    answer FillGap, `fill_gap`."""

    event_schemas: schema.EventSchemas
    user: Any = None
    groups_joined: list[str] = []
    session_key: str | None = None
    session: DeliverySession | None = None
    write_frame: Callable[[bytes, str], None] | None = None
    # The language of this connection's error messages (wire.i18n), from its handshake.
    language: str = settings.LANGUAGE_CODE

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # Channels' AsyncConsumer.__call__ without the per-connection layer
        # channel and its receive task: the hub delivers events.
        self.scope = scope
        self.channel_layer = channel_layer()
        self.hub = get_hub()
        self.channel_name = self.hub.connection_name()
        self.base_send = send
        # Set by chatsite.daphne_adapter: writes a prepared frame straight to the socket.
        self.write_frame = scope.get("chat.write_frame")
        self.check_events = settings.CHAT_CHECK_EVENTS
        self._lane = asyncio.Lock()
        self._backlog: deque[Queued] | None = None
        self._drainer: asyncio.Future | None = None
        self._counted = False  # in the user's connection count (realtime.connections)
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
            self.on_gone()
            if self._counted:
                CONNECTIONS_OPEN.dec()
                try:
                    await connection_closed(self.user.id, self.channel_name)
                except (RedisError, OSError) as exc:  # Redis is down: the entry expires by itself
                    logger.warning("connection count of user %s not lowered: %r", self.user.id, exc)

    async def dispatch(self, message: dict[str, Any]) -> None:
        async with self._lane:
            await super().dispatch(message)
            await self._drain_backlog()

    # -- from the hub ------------------------------------------------------------

    def on_broadcast(self, event: Broadcast) -> None:
        session = self.session
        if session is None or self.write_frame is None or self._lane.locked() or self._backlog:
            self._queue(event)
            return
        answer = session.decide(event)
        if answer is DELIVER:
            session.delivered(event)
            if self.check_events:
                self._check_broadcast(event)
            self.write_frame(event.frame, event.text)  # the hot path: _write_frame inlined
        elif answer is not SKIP:
            self._queue(event)  # FillGap: the store is read on the connection's turn

    def on_control(self, message: dict[str, Any]) -> None:
        if message.get("type") == FORCE_CLOSE_TYPE and message.get("keep") not in self.groups_joined:
            self._queue(message)
        elif message.get("type") == REMOVED_TYPE:
            # In the connection's order: broadcasts that arrive after it wait
            # behind it, and find the channels left.
            self._queue(message)

    def on_layer_failed(self) -> None:
        if self._backlog:  # ahead of anything queued: broadcasts may be lost anyway
            self._backlog.clear()
        self._queue(RECONNECT)

    def _queue(self, item: Queued) -> None:
        backlog = self._backlog
        if backlog is None:
            backlog = self._backlog = deque()
        elif backlog and backlog[0] is RECONNECT:
            return  # the connection is being closed: nothing more for it
        elif len(backlog) >= MAX_BACKLOG:
            logger.warning("%s: %d events queued for a busy connection; closing it", type(self).__name__, MAX_BACKLOG)
            backlog.clear()
            item = RECONNECT
        backlog.append(item)
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
            item = self._backlog.popleft()
            try:
                await self._handle_queued(item)
            except Exception:
                logger.exception("%s: delivering %s failed", type(self).__name__, getattr(item, "kind", None) or item.get("type"))  # type: ignore[union-attr]
        self._backlog = None

    async def _handle_queued(self, item: Queued) -> None:
        if isinstance(item, Broadcast):
            await self._deliver(item)
        elif item is RECONNECT:
            await self.close(code=1011)
        elif item.get("type") == FORCE_CLOSE_TYPE:
            # The user logged out or was deactivated.
            await self.send_event({"type": "error", "code": "unauthorized", "message": item.get("reason", "Session ended.")})
            await self.close(code=4001)
        elif item.get("type") == REMOVED_TYPE:
            await self.on_removed([int(c) for c in item.get("channels", ())])

    async def _deliver(self, event: Broadcast) -> None:
        """A broadcast on the connection's turn: fill a gap first if the session asks."""
        if self.session is None:
            return
        answer = self.session.decide(event)
        if answer is SKIP:
            return
        if isinstance(answer, FillGap | FillChanges):
            GAP_FILLS.labels("messages" if isinstance(answer, FillGap) else "changes").inc()
            for missing in await self.fill_gap(answer):
                await self.send_event(missing)
        self.session.delivered(event)
        if self.write_frame is not None:
            self._write_frame(event)
        else:
            self._check_broadcast(event)
            await self.send(text_data=event.text)

    def _write_frame(self, event: Broadcast) -> None:
        if self.check_events:
            self._check_broadcast(event)
        write = self.write_frame
        assert write is not None  # only called when the server offers one
        write(event.frame, event.text)

    # -- to the client -------------------------------------------------------------

    async def send_event(self, event: Any, request_id: str | None = None) -> None:
        """Every event this connection writes itself (answers, errors, gap fills)."""
        event = with_request_id(event, request_id)
        if event.get("type") == "error" and isinstance(event.get("message"), str):
            event = {**event, "message": translate(event["message"], self.language)}
        if self.check_events:
            self._check(event)
        await self.send(text_data=jsonutil.dumps(event))

    def _check_broadcast(self, event: Broadcast) -> None:
        if self.check_events and not event.checked:
            event.checked = True
            self._check(jsonutil.loads(event.text))

    def _check(self, event: Any) -> None:
        try:
            self.event_schemas.check(event)
        except schema.SchemaError as error:
            schema.report(error, event)

    async def on_removed(self, channel_ids: list[int]) -> None:
        """The user lost access to these channels (a protocol with channels
        leaves them and says so)."""

    async def fill_gap(self, gap: FillGap | FillChanges) -> list[Any]:
        """The events of the messages (FillGap) or changes (FillChanges) a
        gap asks for, oldest first."""
        raise NotImplementedError

    # -- the connection ----------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.language = language_from_scope(self.scope)
        await self.accept()
        if user is None or not user.is_authenticated or not user.is_active:
            await self.send_event({"type": "error", "code": "unauthorized", "message": "Log in first: no valid session."})
            await self.close(code=4001)
            return
        try:
            counted = await connection_open(user.id, self.channel_name)
        except (RedisError, OSError) as exc:
            logger.warning("%s: connection not counted, closing it with 1011: %r", type(self).__name__, exc)
            await self.close(code=1011)
            return
        if not counted:
            logger.info("user %s holds %d connections already: refusing another", user.id, settings.CHAT_MAX_CONNECTIONS_PER_USER)
            await self.close(code=CLOSE_TOO_MANY)
            return
        self._counted = True
        CONNECTIONS_OPEN.inc()
        self.user = user
        self.session = self.new_session()
        session = self.scope.get("session")
        self.groups_joined = [user_group(user.id)]
        if session is not None and session.session_key:
            self.session_key = session.session_key  # realtime.sessions checks it stays alive
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
        await self.send_event(connected_event(user_id=user.id, username=user.username, display_name=user.shown_name))

    def new_session(self) -> DeliverySession:
        """The connection's delivery decisions (realtime.delivery)."""
        return DeliverySession(connection=self.channel_name, user_id=self.user.id)

    async def on_authenticated(self) -> None:
        """Subclasses set up per-connection state here, before `connected` is sent."""

    async def disconnect(self, code: int) -> None:
        if self.user is not None:
            for group in self.groups_joined:
                await self.hub.leave(group, self)
            await self.on_disconnected()

    async def on_disconnected(self) -> None:
        """Subclasses release per-connection state here."""

    def on_gone(self) -> None:
        """The connection ended, cleanly or not (no await: it may run as the task ends)."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        if self.user is None:
            return
        request_id: str | None = None
        try:
            command, request_id = self.parse(text_data)
            await self.handle_command(command, request_id)
        except ProtocolError as exc:
            ERRORS.labels(exc.code).inc()
            await self.send_event(error_event(exc, request_id))
        except RateLimited as exc:
            ERRORS.labels(exc.code).inc()
            await self.send_event(error_event(ProtocolError(exc.code, exc.message, retry_after=exc.retry_after), request_id))
        except ChatError as exc:
            ERRORS.labels(exc.code).inc()
            if exc.code == "server_error":
                logger.error("%s failed: %s", type(self).__name__, exc, exc_info=exc.__cause__)
            await self.send_event(error_event(ProtocolError(exc.code, exc.message), request_id))
        except Exception:
            ERRORS.labels("server_error").inc()
            logger.exception("unexpected error in %s", type(self).__name__)
            await self.send_event(error_event(ProtocolError("server_error", "Something went wrong; try again."), request_id))

    def parse(self, text_data: str | None) -> tuple[Any, str | None]:
        raise NotImplementedError

    async def handle_command(self, command: Any, request_id: str | None) -> None:
        raise NotImplementedError

    async def reply(self, event: Any, request_id: str | None) -> None:
        await self.send_event(event, request_id)
