"""`/ws/chat/`: parse -> service -> reply (PROTOCOL.md, "Workspace chat WebSocket")."""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from redis.exceptions import RedisError

from chatcore.consumers import ProtocolConsumer
from chatcore.events import abroadcast, channel_group
from chatcore.errors import ChatError
from chatcore.protocol import pong_event
from assistant import services as assistant
from presence import services as presence
from workspace_chat import protocol, selectors, services

logger = logging.getLogger(__name__)


class NotJoined(ChatError):
    code = "not_joined"


class ChatConsumer(ProtocolConsumer):
    # Until on_authenticated: the hub may ask for presence entries meanwhile.
    joined: set[int] | frozenset[int] = frozenset()

    async def on_authenticated(self) -> None:
        self.joined: set[int] = set()
        # Per channel: the newest message id this connection has been given
        # (catch-up, broadcasts, own sends). Every id below it was given too,
        # so a client resuming with afterId = its newest id misses nothing.
        self.delivered: dict[int, int] = {}
        # Per channel: the newest id of the join's catch-up page.
        self.catch_up_floor: dict[int, int] = {}
        self.author = selectors.author_of(self.user)

    async def on_disconnected(self) -> None:
        for channel_id in list(self.joined):
            await self.leave(channel_id)

    def presence_entries(self) -> list[tuple[int, list[int], str]]:
        if self.user is None or not self.joined:
            return []
        return [(self.user.id, list(self.joined), self.channel_name)]

    def parse(self, text_data: str | None) -> tuple[Any, str | None]:
        return protocol.parse(text_data, max_length=settings.CHAT_MAX_MESSAGE_LENGTH)

    async def handle_command(self, command: Any, request_id: str | None) -> None:
        match command:
            case protocol.SendMessage():
                await self.send_message(command, request_id)
            case protocol.JoinChannel():
                await self.join(command, request_id)
            case protocol.LeaveChannel():
                await self.leave(command.channel_id)
                await self.reply(protocol.left_channel_event(command.channel_id), request_id)
            case protocol.Typing() | protocol.StopTyping():
                self.require_joined(command.channel_id)
                kind = "user_typing" if isinstance(command, protocol.Typing) else "user_stop_typing"
                await abroadcast(
                    channel_group(command.channel_id),
                    protocol.typing_event(kind, command.channel_id, self.author),
                    skip_user=self.user.id,
                )
            case protocol.MarkRead():
                event = await database_sync_to_async(services.read_mark)(
                    user=self.user, channel_id=command.channel_id, message_id=command.message_id, skip_channel=self.channel_name
                )
                await self.reply(event, request_id)
            case protocol.PinMessage():
                event = await database_sync_to_async(services.message_pin)(
                    user=self.user, channel_id=command.channel_id, message_id=command.message_id, skip_channel=self.channel_name
                )
                await self.reply(event, request_id)
            case protocol.Ping():
                await self.reply(pong_event(), request_id)

    def require_joined(self, channel_id: int) -> None:
        if channel_id not in self.joined:
            raise NotJoined("Join the channel first.")

    async def send_message(self, command: protocol.SendMessage, request_id: str | None) -> None:
        self.require_joined(command.channel_id)
        result = await database_sync_to_async(services.message_send)(
            user=self.user,
            channel_id=command.channel_id,
            content=command.content,
            message_type=command.message_type,
            file_url=command.file_url,
            reply_to=command.reply_to,
            client_id=command.client_id,
            skip_channel=self.channel_name,
        )
        await self.deliver_new_message(
            result.channel_id,
            result.message["id"],
            result.prev_id,
            request_id=request_id,
            direct=protocol.new_message_event(result.channel_id, result.message),
        )
        if result.created:
            assistant.schedule_answer(channel_id=result.channel_id, asker=self.user, question=result.message)

    async def join(self, command: protocol.JoinChannel, request_id: str | None) -> None:
        channel_id = command.channel_id
        access = await database_sync_to_async(selectors.access_channel)(self.user, channel_id)
        # Subscribe before reading the catch-up page, so nothing falls between
        # (events arriving meanwhile wait for this command to finish).
        await self.hub.join(channel_group(channel_id), self)
        try:
            missed, has_more, newest = await database_sync_to_async(selectors.catch_up)(
                channel=access.channel, after_id=command.after_id
            )
        except BaseException:
            if channel_id not in self.joined:
                await self.hub.leave(channel_group(channel_id), self)
            raise
        self.catch_up_floor[channel_id] = missed[-1]["id"] if missed else 0
        self.delivered[channel_id] = newest
        first_here = channel_id not in self.joined
        self.joined.add(channel_id)
        await self.reply(protocol.joined_channel_event(channel_id, missed, has_more), request_id)
        if first_here and await presence.connection_join(channel_id=channel_id, user_id=self.user.id, connection=self.channel_name):
            await abroadcast(
                channel_group(channel_id), protocol.presence_event(channel_id, self.user.id, self.user.username, "online")
            )

    async def leave(self, channel_id: int) -> None:
        if channel_id not in self.joined:
            return
        self.joined.discard(channel_id)
        self.catch_up_floor.pop(channel_id, None)
        self.delivered.pop(channel_id, None)
        await self.hub.leave(channel_group(channel_id), self)
        try:
            if await presence.connection_leave(channel_id=channel_id, user_id=self.user.id, connection=self.channel_name):
                await abroadcast(
                    channel_group(channel_id), protocol.presence_event(channel_id, self.user.id, self.user.username, "offline")
                )
        except (RedisError, OSError) as exc:  # Redis is down: the entry expires by itself (PRESENCE_TTL)
            logger.warning("presence of user %s in channel %s not cleared: %r", self.user.id, channel_id, exc)

    def should_forward(self, meta: dict[str, Any]) -> bool:
        return meta["channelId"] in self.joined  # else a broadcast that raced a leave

    def deliver_now(self, message: dict[str, Any]) -> bool:
        meta = message.get("meta")
        if meta is None or meta["type"] != "new_message" or message.get("skip_channel") == self.channel_name:
            return super().deliver_now(message)
        if self.write_frame is None:
            return False
        channel_id, message_id, prev_id = meta["channelId"], meta["messageId"], meta["prevId"]
        if channel_id not in self.joined:
            return True
        last = self.delivered.get(channel_id, 0)
        if self.already_delivered(channel_id, message_id, prev_id, last):
            return True
        if prev_id is not None and prev_id > last:
            return False  # a gap: filled from the store on the connection's turn
        self.delivered[channel_id] = max(last, message_id)
        self.write_prepared(message)
        return True

    def already_delivered(self, channel_id: int, message_id: int, prev_id: int | None, last: int) -> bool:
        if prev_id is not None:
            return message_id <= last
        return message_id <= self.catch_up_floor.get(channel_id, 0)

    async def chat_event(self, message: dict[str, Any]) -> None:
        meta = message["meta"]
        if meta["type"] != "new_message" or message.get("skip_channel") == self.channel_name:
            await super().chat_event(message)
            return
        await self.deliver_new_message(meta["channelId"], meta["messageId"], meta["prevId"], broadcast=message)

    async def deliver_new_message(
        self,
        channel_id: int,
        message_id: int,
        prev_id: int | None,
        *,
        broadcast: dict[str, Any] | None = None,
        direct: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        """Give this connection a new message (a `broadcast`, or the
        `direct` answer to its own send) in id order: when the message before it
        (`prev_id`) has not been given yet -- another broadcast is still on
        its way, or queued behind this answer -- send the gap from the store
        first. Nothing is given twice."""
        if channel_id not in self.joined:
            if direct is not None:
                await self.reply(direct, request_id)
            return
        last = self.delivered.get(channel_id, 0)
        if direct is None and self.already_delivered(channel_id, message_id, prev_id, last):
            return
        # A replayed answer (clientId retry) carries no prev_id: fill up to it
        # too, or a client resuming from it would skip what lies before it.
        unknown_gap = prev_id is None and direct is not None
        if message_id > last and (unknown_gap or (prev_id is not None and prev_id > last)):
            for missing in await database_sync_to_async(selectors.messages_between)(channel_id=channel_id, after=last, before=message_id):
                await self.send_json(protocol.new_message_event(channel_id, missing))
        self.delivered[channel_id] = max(last, message_id)
        if direct is not None:
            await self.reply(direct, request_id)
        else:
            await self.forward(broadcast)
