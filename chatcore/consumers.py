"""Base consumer of both WebSocket protocols: session auth (4001), frame
decoding, mapping of errors to `error` events, and the `chat.event` handler
that forwards broadcasts. Subclasses parse with their protocol module and call
services; no business rule lives here."""

from __future__ import annotations

import logging
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from chatcore import jsonutil
from chatcore.errors import ChatError, RateLimited
from chatcore.events import session_group, user_group
from chatcore.protocol import ProtocolError, connected_event, error_event, with_request_id

logger = logging.getLogger(__name__)


class ProtocolConsumer(AsyncJsonWebsocketConsumer):
    user: Any = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Channels hops to the database thread (aclose_old_connections) before
        # every handler. Broadcasts touch no database, and one event to 1,000
        # members would be 1,000 hops queued behind everyone's writes
        # (bench/RESULTS.md); database_sync_to_async closes old connections
        # itself when a handler does use the database.
        if message["type"] == "chat.event":
            await self.chat_event(message)
            return
        await super().dispatch(message)

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
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.on_authenticated()
        await self.send_json(connected_event(user_id=user.id, username=user.username, display_name=user.shown_name))

    async def on_authenticated(self) -> None:
        """Subclasses set up per-connection state here, before `connected` is sent."""

    async def disconnect(self, code: int) -> None:
        if self.user is not None:
            for group in self.groups_joined:
                await self.channel_layer.group_discard(group, self.channel_name)
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

    async def chat_event(self, message: dict[str, Any]) -> None:
        """A broadcast from chatcore.events; the sender's own connection is skipped
        when it got the event as a direct answer."""
        if message.get("skip_channel") == self.channel_name:
            return
        if message.get("skip_user") is not None and self.user is not None and message["skip_user"] == self.user.id:
            return
        if self.should_forward(message["meta"]):
            await self.send(text_data=message["text"])

    def should_forward(self, meta: dict[str, Any]) -> bool:
        """`meta`: type, channelId, messageId of the event (chatcore.events.envelope)."""
        return True

    async def chat_force_close(self, message: dict[str, Any]) -> None:
        """The user logged out or was deactivated."""
        await self.send_json({"type": "error", "code": "unauthorized", "message": message.get("reason", "Session ended.")})
        await self.close(code=4001)
