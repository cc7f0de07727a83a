"""`/ws/messagepal/`: parse -> service -> reply (PROTOCOL.md, "MessagePal WebSocket")."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from messagepal import protocol, schema, selectors, services
from realtime.consumers import ProtocolConsumer
from realtime.events import pal_user_group
from wire.metrics import SEND_SECONDS, timed
from wire.protocol import Ping, pong_event


class MessagePalConsumer(ProtocolConsumer):
    event_schemas = schema.EVENTS

    async def on_authenticated(self) -> None:
        self.subscriptions: set[str] = set()
        # Recipients already found reachable on this connection: typing to them
        # costs a query only when it would be delivered (services.pal_typing).
        self.known_recipients: set[int] = set()
        await self.hub.join(pal_user_group(self.user.id), self)

    async def on_disconnected(self) -> None:
        await self.hub.leave(pal_user_group(self.user.id), self)

    def parse(self, text_data: str | None) -> tuple[Any, str | None]:
        return protocol.parse(text_data, max_length=settings.CHAT_MAX_MESSAGE_LENGTH)

    async def handle_command(self, command: Any, request_id: str | None) -> None:
        match command:
            case protocol.SendMessage():
                with timed(SEND_SECONDS):
                    message, _ = await database_sync_to_async(services.pal_message_send)(
                        sender=self.user,
                        recipient_id=command.recipient_id,
                        content=command.content,
                        client_id=command.client_id,
                        file_url=command.file_url,
                        skip_channel=self.channel_name,
                    )
                    self.known_recipients.add(command.recipient_id)
                    await self.reply(schema.message_received_event(message), request_id)
            case protocol.Typing():
                if command.recipient_id not in self.known_recipients:
                    await database_sync_to_async(services.pal_recipient_check)(sender=self.user, recipient_id=command.recipient_id)
                    self.known_recipients.add(command.recipient_id)
                await services.pal_typing(user=self.user, recipient_id=command.recipient_id)
            case protocol.MarkRead():
                event = await database_sync_to_async(services.pal_read_mark)(
                    user=self.user,
                    conversation_id=command.conversation_id,
                    message_number=command.message_number,
                    skip_channel=self.channel_name,
                )
                await self.reply(event, request_id)
            case protocol.EditMessage():
                updated = await database_sync_to_async(services.pal_message_edit)(
                    user=self.user,
                    conversation_id=command.conversation_id,
                    message_number=command.message_number,
                    content=command.content,
                    skip_channel=self.channel_name,
                )
                await self.reply(updated, request_id)
            case protocol.DeleteMessage():
                deleted = await database_sync_to_async(services.pal_message_delete)(
                    user=self.user,
                    conversation_id=command.conversation_id,
                    message_number=command.message_number,
                    skip_channel=self.channel_name,
                )
                await self.reply(deleted, request_id)
            case protocol.Subscribe():
                await database_sync_to_async(selectors.access_conversation)(self.user, command.conversation_id)
                self.subscriptions.add(command.conversation_id)
                await self.reply(schema.subscribed_event(command.conversation_id), request_id)
            case protocol.Unsubscribe():
                await database_sync_to_async(selectors.access_conversation)(self.user, command.conversation_id)
                self.subscriptions.discard(command.conversation_id)
                await self.reply(schema.unsubscribed_event(command.conversation_id), request_id)
            case protocol.FetchHistory():
                messages, has_more = await database_sync_to_async(selectors.conversation_history)(
                    user=self.user, conversation_id=command.conversation_id, before=command.before, limit=command.limit
                )
                await self.reply(schema.history_response_event(command.conversation_id, messages, has_more), request_id)
            case Ping():
                await self.reply(pong_event(), request_id)
