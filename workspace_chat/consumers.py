"""`/ws/chat/`: parse -> service -> reply (PROTOCOL.md, "Workspace chat
WebSocket"). What this connection is given, and in which order, is its
ChannelSession's decision (realtime.delivery); writing is the base
consumer's (realtime.consumers)."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from notifications import online
from presence import services as presence
from realtime.consumers import ProtocolConsumer
from realtime.delivery import ChannelSession, FillChanges, FillGap
from realtime.events import channel_group, notify_group
from wire.errors import ChatError
from wire.metrics import SEND_SECONDS, timed
from wire.protocol import Ping, pong_event
from workspace_chat import lifecycle, protocol, schema, selectors, services


class NotJoined(ChatError):
    code = "not_joined"


class ChatConsumer(ProtocolConsumer):
    event_schemas = schema.EVENTS
    session: ChannelSession
    # Per joined channel: who this connection's message objects are built for.
    viewers: dict[int, selectors.Viewer]
    # Per joined channel: whether its joins and leaves are announced.
    announce_presence: dict[int, bool]

    def new_session(self) -> ChannelSession:
        self.viewers = {}
        self.announce_presence = {}
        return ChannelSession(connection=self.channel_name, user_id=self.user.id)

    async def on_authenticated(self) -> None:
        # Notifications reach /ws/chat/ connections only (not MessagePal's).
        group = notify_group(self.user.id)
        self.groups_joined.append(group)
        await self.hub.join(group, self)
        online.user_connected_soon(self.user.id)  # not away: no missed-message email

    async def on_disconnected(self) -> None:
        for channel_id in self.session.joined():
            await self.leave(channel_id)

    def on_gone(self) -> None:
        presence.connection_gone(self.channel_name)

    def parse(self, text_data: str | None) -> tuple[Any, str | None]:
        return protocol.parse(text_data, max_length=settings.CHAT_MAX_MESSAGE_LENGTH)

    async def handle_command(self, command: Any, request_id: str | None) -> None:
        match command:
            case protocol.SendMessage():
                with timed(SEND_SECONDS):
                    await self.send_message(command, request_id)
            case protocol.JoinChannel():
                await services.event_take(user=self.user)
                await self.join(command, request_id)
            case protocol.LeaveChannel():
                await services.event_take(user=self.user)
                await self.leave(command.channel_id)
                await self.reply(schema.left_channel_event(command.channel_id), request_id)
            case protocol.Typing() | protocol.StopTyping():
                self.require_joined(command.channel_id)
                await services.channel_typing(user=self.user, channel_id=command.channel_id, typing=isinstance(command, protocol.Typing))
            case protocol.MarkRead():
                event = await database_sync_to_async(services.read_mark)(
                    user=self.user, channel_id=command.channel_id, message_id=command.message_id, skip_channel=self.channel_name
                )
                await self.reply(event, request_id)
            case protocol.PinMessage():
                pinned = await database_sync_to_async(services.message_pin)(
                    user=self.user, channel_id=command.channel_id, message_id=command.message_id, skip_channel=self.channel_name
                )
                await self.reply_change(pinned, request_id)
            case protocol.UnpinMessage():
                unpinned, changed = await database_sync_to_async(services.message_unpin)(
                    user=self.user, channel_id=command.channel_id, message_id=command.message_id, skip_channel=self.channel_name
                )
                if changed:
                    await self.reply_change(unpinned, request_id)
                else:
                    await self.reply_unchanged(unpinned, request_id)
            case protocol.EditMessage():
                self.require_joined(command.channel_id)
                edited = await database_sync_to_async(lifecycle.message_edit)(
                    user=self.user, channel_id=command.channel_id, message_id=command.message_id, content=command.content, skip_channel=self.channel_name
                )
                await self.reply_change(edited, request_id)
            case protocol.DeleteMessage():
                self.require_joined(command.channel_id)
                deleted = await database_sync_to_async(lifecycle.message_delete)(
                    user=self.user, channel_id=command.channel_id, message_id=command.message_id, skip_channel=self.channel_name
                )
                await self.reply_change(deleted, request_id)
            case protocol.SetReaction():
                self.require_joined(command.channel_id)
                reactions, changed = await database_sync_to_async(lifecycle.reaction_set)(
                    user=self.user,
                    channel_id=command.channel_id,
                    message_id=command.message_id,
                    emoji=command.emoji,
                    add=command.add,
                    skip_channel=self.channel_name,
                )
                if changed:
                    await self.reply_change(reactions, request_id)
                else:
                    await self.reply_unchanged(reactions, request_id)
            case Ping():
                await self.reply(pong_event(), request_id)

    async def reply_change(self, event: Any, request_id: str | None) -> None:
        """The direct answer to this connection's own change: in the
        channel's change order, after the changes it has not been given yet."""
        channel_id, change_id = event["channelId"], event["changeId"]
        answer = self.session.decide_own_change(channel_id, change_id)
        if isinstance(answer, FillChanges):
            for missing in await self.fill_gap(answer):
                await self.send_event(missing)
        self.session.given_change(channel_id, change_id)
        await self.reply(event, request_id)

    async def reply_unchanged(self, event: Any, request_id: str | None) -> None:
        """The answer to a change that changed nothing: the state as it is, at
        the change this connection has reached (not past changes still on their way)."""
        at = self.session.changes_given(event["channelId"])
        await self.reply({**event, "changeId": min(event["changeId"], at if at is not None else 0)}, request_id)

    def require_joined(self, channel_id: int) -> None:
        if not self.session.is_joined(channel_id):
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
        # The answer takes its place in the channel's order on this
        # connection: what lies before it and has not been given yet first.
        answer = self.session.decide_own(result.channel_id, result.message["id"], result.prev_id)
        if isinstance(answer, FillGap):
            for missing in await self.fill_gap(answer):
                await self.send_event(missing)
        self.session.given(result.channel_id, result.message["id"])
        await self.reply(schema.new_message_event(result.channel_id, result.message), request_id)

    async def join(self, command: protocol.JoinChannel, request_id: str | None) -> None:
        channel_id = command.channel_id
        access = await database_sync_to_async(selectors.access_channel)(self.user, channel_id)
        # Subscribe before reading the catch-up page, so nothing falls between
        # (events arriving meanwhile wait for this command to finish).
        await self.hub.join(channel_group(channel_id), self)
        try:
            state = await database_sync_to_async(selectors.join_state)(
                channel=access.channel, after_id=command.after_id, changes_after=command.changes_after, viewer=access.viewer
            )
        except BaseException:
            if not self.session.is_joined(channel_id):
                await self.hub.leave(channel_group(channel_id), self)
            raise
        self.viewers[channel_id] = access.viewer  # what gap fills are built for
        missed = state.missed
        first_here = self.session.join(channel_id, newest=state.newest, floor=missed[-1]["id"] if missed else 0, changes=state.change_id)
        if first_here:
            self.announce_presence[channel_id] = state.announce_presence
            # The joiner's own `user_presence` (if announced) arrives after
            # this answer: broadcasts wait for the command to finish.
            online = await services.channel_presence_join(
                user=self.user, channel_id=channel_id, connection=self.channel_name, announce=state.announce_presence
            )
        else:
            online = await presence.online_users(channel_id)
        joined = schema.joined_channel_event(
            channel_id, missed, state.has_more, change_id=state.change_id, online=online, changes=state.changes, changes_has_more=state.changes_has_more
        )
        await self.reply(joined, request_id)

    async def on_removed(self, channel_ids: list[int]) -> None:
        for channel_id in channel_ids:
            if self.session.is_joined(channel_id):
                await self.leave(channel_id)
                await self.send_event(schema.removed_from_channel_event(channel_id))

    async def leave(self, channel_id: int) -> None:
        if not self.session.leave(channel_id):
            return
        await self.hub.leave(channel_group(channel_id), self)
        announce = self.announce_presence.pop(channel_id, True)
        await services.channel_presence_leave(user=self.user, channel_id=channel_id, connection=self.channel_name, announce=announce)

    async def fill_gap(self, gap: FillGap | FillChanges) -> list[Any]:
        viewer = self.viewers.get(gap.channel_id)
        if isinstance(gap, FillChanges):
            return await database_sync_to_async(selectors.changes_between)(channel_id=gap.channel_id, after=gap.after, before=gap.before, viewer=viewer)
        missing = await database_sync_to_async(selectors.messages_between)(
            channel_id=gap.channel_id, after=gap.after, before=gap.before, viewer=viewer
        )
        return [schema.new_message_event(gap.channel_id, message) for message in missing]
