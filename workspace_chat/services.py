"""Writes of workspace chat, and every event it sends: messages, read
pointers, pins, grades, moderation, the assistant's answers, typing and
presence. Every rule (roles, rate limit, idempotency) is decided here or in
the selectors' access checks; events leave through realtime.events."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction
from redis.exceptions import RedisError

from accounts.audit import audit_record
from accounts.models import User
from accounts.names import name_key
from files.services import file_for_message, file_used, message_gone
from messagestore import NewMessage, StoredMessage, get_store
from messagestore.services import message_append
from messagestore.streams import channel_stream
from notifications import services as notifications
from presence import services as presence
from realtime import ratelimit
from realtime.events import abroadcast, broadcast_on_commit, channel_group, user_group
from wire.errors import Forbidden, Invalid, NotFound, RateLimited
from wire.protocol import ProtocolError, error_event
from workspace_chat import schema
from workspace_chat.hooks import MessageCreated, message_created_on_commit
from workspace_chat.models import STAFF_ROLES, Channel, ChannelKind, ChannelMembership, Role, Workspace, WorkspaceMembership
from workspace_chat.selectors import access_channel, access_workspace, author_of, channel_message, message_objects

logger = logging.getLogger(__name__)

MENTION_RE = re.compile(r"(?<![\w@.])@([\w.+-]{1,150})")


@transaction.atomic
def workspace_create(*, user: User, name: str) -> WorkspaceMembership:
    workspace = Workspace.objects.create(name=name.strip(), created_by=user)
    return WorkspaceMembership.objects.create(workspace=workspace, user=user, role=Role.ADMIN)


@transaction.atomic
def workspace_member_add(*, actor: User, workspace_id: int, username: str, role: str) -> WorkspaceMembership:
    membership = access_workspace(actor, workspace_id)
    if membership.role != Role.ADMIN:
        raise Forbidden("Only workspace admins can add members.")
    user = User.objects.filter(username_key=name_key(username), is_active=True).first()
    if user is None:
        raise Invalid("username", "No such user.")
    existing = WorkspaceMembership.objects.filter(workspace_id=workspace_id, user=user).first()
    if existing is not None:
        if existing.role != role:
            existing.role = role
            existing.save(update_fields=["role"])
        return existing
    return WorkspaceMembership.objects.create(workspace_id=workspace_id, user=user, role=role)


@transaction.atomic
def channel_create(*, actor: User, workspace_id: int, name: str, kind: str, is_private: bool) -> Channel:
    membership = access_workspace(actor, workspace_id)
    if membership.role not in STAFF_ROLES:
        raise Forbidden("Only admins and teachers can create channels.")
    if kind == ChannelKind.DM:
        raise Invalid("kind", "DMs are created through the DM endpoint.")
    channel = Channel.objects.create(workspace_id=workspace_id, name=name.strip(), kind=kind, is_private=is_private, created_by=actor)
    if is_private:
        ChannelMembership.objects.create(channel=channel, user=actor)
    return channel


def dm_get_or_create(*, actor: User, workspace_id: int, user_id: int) -> tuple[Channel, bool]:
    access_workspace(actor, workspace_id)
    if user_id == actor.id:
        raise Invalid("userId", "A DM needs another member.")
    other = WorkspaceMembership.objects.filter(workspace_id=workspace_id, user_id=user_id, user__is_active=True).select_related("user").first()
    if other is None:
        raise Invalid("userId", "No such member in this workspace.")
    low, high = sorted((actor.id, user_id))
    key = f"{low}:{high}"
    existing = Channel.objects.filter(workspace_id=workspace_id, dm_key=key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            channel = Channel.objects.create(
                workspace_id=workspace_id,
                name=f"{actor.username}, {other.user.username}",
                kind=ChannelKind.DM,
                is_private=True,
                dm_key=key,
                created_by=actor,
            )
            ChannelMembership.objects.bulk_create(
                [ChannelMembership(channel=channel, user_id=low), ChannelMembership(channel=channel, user_id=high)]
            )
            return channel, True
    except IntegrityError:  # the other side created it at the same moment
        return Channel.objects.get(workspace_id=workspace_id, dm_key=key), False


def mentions_in(channel: Channel, content: str) -> list[int]:
    # "@bob." at the end of a sentence mentions bob; usernames are unique
    # regardless of case (accounts.services.user_register), so match that way.
    keys = {name_key(name.rstrip(".-")) for name in MENTION_RE.findall(content)} - {""}
    if not keys:
        return []
    qs = User.objects.filter(username_key__in=keys, workspace_memberships__workspace_id=channel.workspace_id)
    if channel.is_restricted:
        qs = qs.filter(channel_memberships__channel=channel)
    return sorted(set(qs.values_list("id", flat=True)))


@dataclass(frozen=True)
class SendResult:
    channel_id: int
    message: schema.MessageObject
    created: bool
    # The stream's message before this one, when the store can tell (realtime.delivery).
    prev_id: int | None = None


def message_send(
    *,
    user: User,
    channel_id: int,
    content: str,
    message_type: str = "text",
    file_url: str | None = None,
    reply_to: int | None = None,
    client_id: str | None = None,
    skip_channel: str | None = None,
) -> SendResult:
    """Persist and broadcast `new_message` (the sending connection,
    `skip_channel`, gets it as its direct answer instead). A clientId already
    stored for this author and channel returns the stored message and stores
    nothing."""
    access = access_channel(user, channel_id)
    channel = access.channel
    author = author_of(user)
    store = get_store()
    if reply_to is not None:
        if client_id and (stored := store.find_by_client_id(channel.stream, user.id, client_id)) is not None:
            # A retry of a stored reply: answered as stored, whatever happened to its thread since.
            return SendResult(channel.id, message_objects(channel.id, [stored], viewer=access.viewer, authors={user.id: author})[0], False)
        # A reply to a reply continues the root's thread (PROTOCOL.md, "Threads").
        replied = store.get(channel.stream, reply_to)
        root = replied if replied is None or replied.reply_to is None else store.get(channel.stream, replied.reply_to)
        if replied is None or root is None:
            raise NotFound("The message replied to (or its thread) does not exist or was deleted.")
        reply_to = root.id

    def check() -> None:
        access.require_unmuted()
        if channel.kind == ChannelKind.ANNOUNCEMENT and not access.is_staff:
            raise Forbidden("Only admins and teachers can post in an announcement channel.")
        if message_type in ("announcement", "assignment") and not access.is_staff:
            raise Forbidden(f"Only admins and teachers can post {message_type} messages.")

    # A file of this site's must have been uploaded for this channel.
    attached = file_for_message(url=file_url, channel_id=channel.id)
    created: list[schema.MessageObject] = []

    def on_created(stored: StoredMessage) -> None:
        payload = schema.message_object(stored, channel_id=channel.id, author=author, read_by=[], file=attached)
        created.append(payload)
        if attached is not None:
            file_used(file=attached, stream=stored.stream, message_id=stored.id)
        broadcast_on_commit(channel_group(channel.id), schema.new_message_event(channel.id, payload), skip_channel=skip_channel, prev_id=stored.prev_id)
        if stored.reply_to is not None:
            thread_changed(channel.id, stored.reply_to)
        notifications.message_notify(channel=channel, message=stored, payload=payload)
        message_created_on_commit(MessageCreated(channel_id=channel.id, author=user, message=payload))

    new = NewMessage(
        stream=channel.stream,
        author_id=user.id,
        content=content,
        message_type=message_type,
        file_url=file_url,
        reply_to=reply_to,
        mentions=mentions_in(channel, content),
        client_id=client_id,
    )
    sent = message_append(new=new, check=check, on_created=on_created)
    if not sent.created:  # a replay: the stored message, as history shows it
        return SendResult(channel.id, message_objects(channel.id, [sent.message], viewer=access.viewer, authors={user.id: author})[0], False)
    return SendResult(channel.id, created[0], True, sent.message.prev_id)


# -- the change feed: every change event carries the channel's next changeId -----


def change_record(channel_id: int, message_id: int, kind: str) -> int:
    """The next change id of the channel's feed for this change (its state
    is written already: a reader of the feed builds the event from it)."""
    return get_store().record_change(channel_stream(channel_id), message_id, kind)


def thread_changed(channel_id: int, root_id: int) -> None:
    """A reply came or went: `thread_updated` with the root's live counts
    (once the transaction commits)."""
    store = get_store()
    stream = channel_stream(channel_id)
    change_id = change_record(channel_id, root_id, "thread")
    stats = store.thread_stats(stream, [root_id]).get(root_id)
    broadcast_on_commit(channel_group(channel_id), schema.thread_updated_event(channel_id, root_id, stats, change_id), change_id=change_id)


def read_mark(*, user: User, channel_id: int, message_id: int, skip_channel: str | None = None) -> schema.MessageReadEvent:
    """Move the caller's read pointer forward; `message_read` to the channel if it moved."""
    _limited(ratelimit.take_event_sync(user.id))
    access = access_channel(user, channel_id)
    channel_message(access.channel, message_id)
    store = get_store()
    with transaction.atomic():
        moved = store.set_read_pointer(access.channel.stream, user.id, message_id)
        notifications.channel_read(user_id=user.id, channel_id=channel_id, message_id=message_id)
        event = schema.message_read_event(channel_id, message_id, user.id)
        if moved:
            broadcast_on_commit(channel_group(channel_id), event, skip_channel=skip_channel)
    if not moved:
        pointer = store.read_pointers(access.channel.stream).get(user.id)
        event = schema.message_read_event(channel_id, pointer.message_id if pointer else message_id, user.id)
    return event


def message_pin(*, user: User, channel_id: int, message_id: int, skip_channel: str | None = None) -> schema.MessagePinnedEvent:
    access = access_channel(user, channel_id)
    channel_message(access.channel, message_id)
    if not access.is_staff:
        raise Forbidden("Only admins and teachers can pin messages.")
    with transaction.atomic():
        if get_store().set_pinned(access.channel.stream, message_id, pinned=True, by=user.id) is None:
            raise NotFound("Message not found.")
        change_id = change_record(channel_id, message_id, "pinned")
        event = schema.message_pinned_event(channel_id, message_id, user_id=user.id, username=user.username, change_id=change_id)
        broadcast_on_commit(channel_group(channel_id), event, skip_channel=skip_channel, change_id=change_id)
    return event


def message_unpin(*, user: User, channel_id: int, message_id: int, skip_channel: str | None = None) -> tuple[schema.MessageUnpinnedEvent, bool]:
    """Admins and teachers: `message_unpinned` to the channel. (event,
    changed): a message that was not pinned changes nothing and the answer
    goes to the caller alone."""
    access = access_channel(user, channel_id)
    message = channel_message(access.channel, message_id)
    if not access.is_staff:
        raise Forbidden("Only admins and teachers can unpin messages.")
    store = get_store()
    if not message.is_pinned:
        return schema.message_unpinned_event(channel_id, message_id, store.last_change_id(access.channel.stream)), False
    with transaction.atomic():
        if store.set_pinned(access.channel.stream, message_id, pinned=False, by=None) is None:
            raise NotFound("Message not found.")
        change_id = change_record(channel_id, message_id, "pinned")
        event = schema.message_unpinned_event(channel_id, message_id, change_id)
        broadcast_on_commit(channel_group(channel_id), event, skip_channel=skip_channel, change_id=change_id)
    return event, True


def message_grade(*, user: User, channel_id: int, message_id: int, grade: str, feedback: str | None) -> schema.MessageObject:
    access = access_channel(user, channel_id)
    channel_message(access.channel, message_id)
    if not access.is_staff:
        raise Forbidden("Only admins and teachers can grade messages.")
    store = get_store()
    with transaction.atomic():
        updated = store.set_grade(access.channel.stream, message_id, grade=grade, feedback=feedback, by=user.id)
        if updated is None:
            raise NotFound("Message not found.")
        payload = message_objects(channel_id, [updated], viewer=access.viewer)[0]
        # Grades are private: the grading reaches the author and the
        # workspace's admins and teachers only, so it is not a change of the
        # channel's feed (whose events every member gets); it carries the
        # feed's newest id.
        event = schema.message_updated_event(channel_id, payload, store.last_change_id(access.channel.stream))
        for user_id in grade_audience(access.channel.workspace_id, updated.author_id):
            broadcast_on_commit(user_group(user_id), event)
    return payload


def grade_audience(workspace_id: int, author_id: int) -> list[int]:
    """Who sees a grade: the author and the workspace's admins and teachers."""
    staff = WorkspaceMembership.objects.filter(workspace_id=workspace_id, role__in=STAFF_ROLES).values_list("user_id", flat=True)
    return sorted({author_id, *staff})


def message_moderate(*, channel_id: int, message_id: int, action: str, actor_id: int | None = None) -> bool:
    """Moderators (Django admin): hide or (soft) delete a message:
    `message_deleted` to the channel, and its thread's new counts; `unhide`
    shows a hidden one again (`message_updated`)."""
    store = get_store()
    stream = channel_stream(channel_id)
    with transaction.atomic():
        if action == "unhide":
            if store.get(stream, message_id) is not None or not store.set_hidden(stream, message_id, False):
                return False  # shown already, not there, or deleted (deleted stays deleted)
            _audit_moderation(actor_id, action, channel_id, message_id)
            return _shown_again(channel_id, message_id)
        message = store.get(stream, message_id)
        if message is None:
            return False
        if action == "hide":
            done = store.set_hidden(stream, message_id, True)
        elif action == "delete":
            done = store.soft_delete(stream, message_id, by=actor_id) is not None
            if done:
                message_gone(stream=stream, message_id=message_id)
        else:
            raise ValueError(action)
        if done:
            _audit_moderation(actor_id, action, channel_id, message_id)
            notifications.message_removed(channel_id=channel_id, message_id=message_id)
            change_id = change_record(channel_id, message_id, "deleted")
            broadcast_on_commit(channel_group(channel_id), schema.message_deleted_event(channel_id, message_id, change_id), change_id=change_id)
            if message.reply_to is not None:
                thread_changed(channel_id, message.reply_to)
    return done


def _audit_moderation(actor_id: int | None, action: str, channel_id: int, message_id: int) -> None:
    audit_record(
        actor_id=actor_id, action=action, target=f"message:{channel_stream(channel_id)}#{message_id}", workspace_id=channel_workspace_id(channel_id=channel_id)
    )


def _shown_again(channel_id: int, message_id: int) -> bool:
    shown = get_store().get(channel_stream(channel_id), message_id)
    if shown is None:
        return False
    change_id = change_record(channel_id, message_id, "updated")
    payload = message_objects(channel_id, [shown])[0]
    broadcast_on_commit(channel_group(channel_id), schema.message_updated_event(channel_id, payload, change_id), change_id=change_id)
    if shown.reply_to is not None:
        thread_changed(channel_id, shown.reply_to)
    return True


# -- the @AI assistant's answers (assistant.services calls these) -----------------


def ai_message_post(*, channel_id: int, ai_user: User, content: str, streaming: bool | None = None) -> schema.MessageObject:
    """The assistant's message: stored, then `new_message` to the channel.
    Internal: the assistant answers only where the asker could post."""
    author = author_of(ai_user)

    created: list[schema.MessageObject] = []

    def on_created(stored: StoredMessage) -> None:
        created.append(schema.message_object(stored, channel_id=channel_id, author=author, read_by=[], streaming=streaming))
        broadcast_on_commit(channel_group(channel_id), schema.new_message_event(channel_id, created[0]), prev_id=stored.prev_id)

    new = NewMessage(stream=channel_stream(channel_id), author_id=ai_user.id, content=content, is_ai=True)
    message_append(new=new, on_created=on_created, rate_limited=False)
    return created[0]


async def ai_message_stream(*, channel_id: int, message: schema.MessageObject, text: str) -> schema.MessageObject:
    """The growing text of a streamed answer: `message_updated` (streaming
    true) to the channel, not stored (only the final text is)."""
    updated = schema.MessageObject(**{**message, "content": text, "streaming": True})
    # Not stored, so no change of its own: the feed's newest id, which a
    # client that resumes from it keeps (the final text is a change).
    change_id = await database_sync_to_async(channel_change_id)(channel_id)
    await abroadcast(channel_group(channel_id), schema.message_updated_event(channel_id, updated, change_id))
    return updated


def channel_change_id(channel_id: int) -> int:
    """The channel's newest change id."""
    return get_store().last_change_id(channel_stream(channel_id))


def channel_workspace_id(*, channel_id: int) -> int:
    return Channel.objects.values_list("workspace_id", flat=True).get(id=channel_id)


async def ai_refusal(*, asker: User, text: str, retry_after: float) -> None:
    """The assistant will not answer now: an `error` (rate_limited) to the
    asker's connections alone, not a message in the channel."""
    event = error_event(ProtocolError("rate_limited", text, retry_after=retry_after))
    await abroadcast(user_group(asker.id), event)


def ai_message_finish(*, channel_id: int, message_id: int, ai_user: User, content: str) -> schema.MessageObject | None:
    """The final text of a streamed answer: stored, then the last
    `message_updated` (streaming false)."""
    with transaction.atomic():
        stored = get_store().update_content(channel_stream(channel_id), message_id, content=content, edited=False)
        if stored is None:  # removed by a moderator meanwhile
            return None
        change_id = change_record(channel_id, message_id, "updated")
        # As history shows it (reactions and read marks made while it streamed).
        payload = schema.MessageObject(**message_objects(channel_id, [stored], authors={ai_user.id: author_of(ai_user)})[0], streaming=False)
        broadcast_on_commit(channel_group(channel_id), schema.message_updated_event(channel_id, payload, change_id), change_id=change_id)
    return payload


# -- ephemeral: typing and presence (no transaction) ------------------------------------


def _limited(decision: ratelimit.Decision) -> None:
    if not decision.allowed:
        raise RateLimited("Too many events; slow down.", decision.retry_after)


async def event_take(*, user: User) -> None:
    """One token of the user's events bucket (joins, leaves), or RateLimited."""
    _limited(await ratelimit.take_event(user.id))


async def channel_typing(*, user: User, channel_id: int, typing: bool) -> None:
    """`user_typing` / `user_stop_typing` to the others in the channel; the
    consumer checked that the connection joined it. A flood of `typing`
    reaches the others as one `user_typing` per CHAT_TYPING_EVERY seconds."""
    _limited(await ratelimit.take_event(user.id))
    key = f"typing:{channel_id}:{user.id}"
    if typing:
        if not await ratelimit.once_per(key, settings.CHAT_TYPING_EVERY):
            return
    else:
        await ratelimit.once_per_clear(key)  # the next `typing` is news again
    await abroadcast(channel_group(channel_id), schema.typing_event(typing, channel_id, author_of(user)), skip_user=user.id)


async def channel_presence_join(*, user: User, channel_id: int, connection: str, announce: bool = True) -> list[int]:
    """A connection joined the channel: `user_presence` online if it is the
    user's first there (and the channel announces joins: `announce`, see
    selectors.JoinState). Answers who is online there now (`joined_channel.online`)."""
    first, online = await presence.connection_join(channel_id=channel_id, user_id=user.id, connection=connection)
    if first and announce:
        await abroadcast(channel_group(channel_id), schema.presence_event(channel_id, user.id, user.username, online=True))
    return online


async def channel_presence_leave(*, user: User, channel_id: int, connection: str, announce: bool = True) -> None:
    """A connection left the channel (or closed): `user_presence` offline if it was the user's last."""
    try:
        if await presence.connection_leave(channel_id=channel_id, user_id=user.id, connection=connection) and announce:
            await abroadcast(channel_group(channel_id), schema.presence_event(channel_id, user.id, user.username, online=False))
    except (RedisError, OSError) as exc:  # Redis is down: the entry expires by itself (presence.PRESENCE_TTL)
        logger.warning("presence of user %s in channel %s not cleared: %r", user.id, channel_id, exc)
