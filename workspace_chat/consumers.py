"""`/ws/chat/`: parse -> service -> reply (PROTOCOL.md, "Workspace chat WebSocket")."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from chatcore.consumers import ProtocolConsumer
from chatcore.events import abroadcast, channel_group
from chatcore.errors import ChatError
from chatcore.protocol import pong_event
from assistant import services as assistant
from presence import services as presence
from workspace_chat import protocol, selectors, services


class NotJoined(ChatError):
    code = "not_joined"


class ChatConsumer(ProtocolConsumer):
    async def on_authenticated(self) -> None:
        self.joined: set[int] = set()
        # Per channel: the newest id sent in a catch-up, so a broadcast queued
        # during the join is not delivered twice.
        self.catch_up_floor: dict[int, int] = {}
        self.author = selectors.author_of(self.user)
        self.heartbeat: asyncio.Task | None = None
        if settings.REDIS_URL:
            self.heartbeat = asyncio.create_task(self.refresh_presence())

    async def on_disconnected(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        for channel_id in list(self.joined):
            await self.leave(channel_id)

    async def refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(presence.PRESENCE_TTL / 3)
            with contextlib.suppress(Exception):
                await presence.connections_refresh(user_id=self.user.id, channel_ids=list(self.joined), connection=self.channel_name)

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
        await self.reply(protocol.new_message_event(result.channel_id, result.message), request_id)
        if result.created:
            assistant.schedule_answer(channel_id=result.channel_id, asker=self.user, question=result.message)

    async def join(self, command: protocol.JoinChannel, request_id: str | None) -> None:
        channel_id = command.channel_id
        access = await database_sync_to_async(selectors.access_channel)(self.user, channel_id)
        # Subscribe before reading the catch-up page, so nothing falls between.
        await self.channel_layer.group_add(channel_group(channel_id), self.channel_name)
        try:
            missed, has_more = await database_sync_to_async(selectors.catch_up)(channel=access.channel, after_id=command.after_id)
        except BaseException:
            if channel_id not in self.joined:
                await self.channel_layer.group_discard(channel_group(channel_id), self.channel_name)
            raise
        self.catch_up_floor[channel_id] = missed[-1]["id"] if missed else 0
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
        await self.channel_layer.group_discard(channel_group(channel_id), self.channel_name)
        if await presence.connection_leave(channel_id=channel_id, user_id=self.user.id, connection=self.channel_name):
            await abroadcast(
                channel_group(channel_id), protocol.presence_event(channel_id, self.user.id, self.user.username, "offline")
            )

    def should_forward(self, meta: dict[str, Any]) -> bool:
        channel_id = meta["channelId"]
        if channel_id not in self.joined:
            return False  # a broadcast that raced a leave
        if meta["type"] == "new_message":
            return meta["messageId"] > self.catch_up_floor.get(channel_id, 0)
        return True
