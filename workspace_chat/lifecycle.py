"""Writes of the message lifecycle (PROTOCOL.md part 2, "Message
lifecycle"): edits, deletes and reactions, each with its change in the
channel's change feed and its event to the channel. Threads grow through
services.message_send; their counts change here when a reply is deleted.

The order of checks everywhere: the channel (forbidden / 404 for one the
caller may not see), then the message (not_found for one that does not exist
or was deleted), then the caller's right to do it (forbidden)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditAction, User
from files.services import message_gone
from messagestore import get_store
from notifications import services as notifications
from realtime import ratelimit
from realtime.events import broadcast_on_commit, channel_group
from wire.errors import Forbidden, Invalid, NotFound, RateLimited
from workspace_chat import schema
from workspace_chat.selectors import access_channel, channel_message, message_objects, message_reactions
from workspace_chat.services import change_record, mentions_in, thread_changed

# A message holds at most this many different emoji (PROTOCOL.md).
MAX_EMOJI = 20


def _events_take(user: User) -> None:
    decision = ratelimit.take_event_sync(user.id)
    if not decision.allowed:
        raise RateLimited("Too many events; slow down.", decision.retry_after)


def message_edit(*, user: User, channel_id: int, message_id: int, content: str, skip_channel: str | None = None) -> schema.MessageUpdatedEvent:
    """The author's new text, within CHAT_EDIT_WINDOW of sending; mentions
    are found again. `message_updated` to the channel."""
    _events_take(user)
    access = access_channel(user, channel_id)
    message = channel_message(access.channel, message_id)
    access.require_unmuted()
    if message.author_id != user.id:
        raise Forbidden("Only the author can edit a message.")
    window = settings.CHAT_EDIT_WINDOW
    if window and timezone.now() - message.created_at > timedelta(seconds=window):
        raise Forbidden(f"Messages can be edited for {window} seconds after sending.")
    store = get_store()
    with transaction.atomic():
        edited = store.edit(access.channel.stream, message_id, content=content, mentions=mentions_in(access.channel, content))
        if edited is None:
            raise NotFound("Message not found.")  # deleted meanwhile
        # The change's number first: the reactions and counts read after it
        # include every earlier change's (on SQL its insert waits for them).
        change_id = change_record(channel_id, message_id, "updated")
        # The channel hears it without the grade; the author's answer has it.
        public = message_objects(channel_id, [edited])[0]
        broadcast_on_commit(
            channel_group(channel_id), schema.message_updated_event(channel_id, public, change_id), skip_channel=skip_channel, change_id=change_id
        )
        notifications.message_edited(channel_id=channel_id, message_id=message_id, payload=public, mentions=edited.mentions)
        own = message_objects(channel_id, [edited], viewer=access.viewer)[0]
    return schema.message_updated_event(channel_id, own, change_id)


def message_delete(*, user: User, channel_id: int, message_id: int, skip_channel: str | None = None) -> schema.MessageDeletedEvent:
    """The author, or an admin or teacher of the workspace: gone for members
    (kept for moderators). `message_deleted` to the channel, and
    `thread_updated` when it was a reply."""
    _events_take(user)
    access = access_channel(user, channel_id)
    message = channel_message(access.channel, message_id)
    if message.author_id != user.id and not access.is_staff:
        raise Forbidden("Only the author, an admin or a teacher can delete a message.")
    with transaction.atomic():
        deleted = get_store().soft_delete(access.channel.stream, message_id, by=user.id)
        if deleted is None:
            raise NotFound("Message not found.")  # deleted meanwhile
        change_id = change_record(channel_id, message_id, "deleted")
        event = schema.message_deleted_event(channel_id, message_id, change_id)
        broadcast_on_commit(channel_group(channel_id), event, skip_channel=skip_channel, change_id=change_id)
        notifications.message_removed(channel_id=channel_id, message_id=message_id)
        message_gone(stream=access.channel.stream, message_id=message_id)
        if deleted.reply_to is not None:
            thread_changed(channel_id, deleted.reply_to)
        if deleted.author_id != user.id:  # a teacher's or admin's moderation
            audit_record(
                actor_id=user.id, action=AuditAction.DELETE, target=f"message:{access.channel.stream}#{message_id}",
                workspace_id=access.channel.workspace_id, author=deleted.author_id,
            )  # fmt: skip
    return event


def reaction_set(
    *, user: User, channel_id: int, message_id: int, emoji: str, add: bool, skip_channel: str | None = None
) -> tuple[schema.ReactionUpdatedEvent, bool]:
    """Add or remove the caller's `emoji`. (event, changed): when nothing
    changed (added already, or not there), the event holds the current
    reactions and goes to the caller alone."""
    _events_take(user)
    access = access_channel(user, channel_id)
    channel_message(access.channel, message_id)
    access.require_unmuted()
    store = get_store()
    stream = access.channel.stream
    if add:
        current = store.reactions(stream, [message_id]).get(message_id, [])
        present = {r.emoji for r in current}
        if emoji not in present and len(present) >= MAX_EMOJI:
            raise Invalid("emoji", f"A message holds at most {MAX_EMOJI} different emoji.")
    with transaction.atomic():
        changed = store.add_reaction(stream, message_id, emoji=emoji, user_id=user.id) if add else (
            store.remove_reaction(stream, message_id, emoji=emoji, user_id=user.id)
        )
        if add and changed:
            # Counted again now that it is in: of two new emoji added at once
            # to a message holding 19, the later one is taken back.
            ordered = list(dict.fromkeys(r.emoji for r in store.reactions(stream, [message_id]).get(message_id, [])))
            if emoji in ordered[MAX_EMOJI:]:
                store.remove_reaction(stream, message_id, emoji=emoji, user_id=user.id)
                raise Invalid("emoji", f"A message holds at most {MAX_EMOJI} different emoji.")
        change_id = change_record(channel_id, message_id, "reaction") if changed else store.last_change_id(stream)
        event = schema.reaction_updated_event(channel_id, message_id, message_reactions(access.channel, message_id), change_id)
        if changed:
            broadcast_on_commit(channel_group(channel_id), event, skip_channel=skip_channel, change_id=change_id)
    return event, changed


__all__ = ["MAX_EMOJI", "message_delete", "message_edit", "reaction_set", "thread_changed"]
