"""Writes of workspace chat. Every rule (roles, rate limit, idempotency,
ordering) is decided here; events leave through chatcore.events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q

from accounts.models import User
from chatcore import ratelimit
from chatcore.errors import Forbidden, Invalid, NotFound, RateLimited, StoreUnavailable
from chatcore.events import broadcast_on_commit, channel_group
from chatcore.store import NewMessage, StoreError, get_store
from workspace_chat import protocol
from workspace_chat.models import Channel, ChannelKind, ChannelMembership, Role, Workspace, WorkspaceMembership
from workspace_chat.selectors import (
    access_channel,
    access_workspace,
    author_of,
    channel_message,
    message_objects,
)

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
    user = User.objects.filter(username__iexact=username, is_active=True).first()
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
    if membership.role not in (Role.ADMIN, Role.TEACHER):
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


def _mentions(channel: Channel, content: str) -> list[int]:
    # "@bob." at the end of a sentence mentions bob; usernames are unique
    # regardless of case (accounts.services.user_register), so match that way.
    names = {name.rstrip(".-").lower() for name in MENTION_RE.findall(content)} - {""}
    if not names:
        return []
    by_name = Q()
    for name in names:
        by_name |= Q(username__iexact=name)
    qs = User.objects.filter(by_name, workspace_memberships__workspace_id=channel.workspace_id)
    if channel.is_restricted:
        qs = qs.filter(channel_memberships__channel=channel)
    return sorted(set(qs.values_list("id", flat=True)))


@dataclass(frozen=True)
class SendResult:
    channel_id: int
    message: dict[str, Any]
    created: bool
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
    """Persist and broadcast `new_message`. A clientId already stored for this
    author and channel returns the stored message and stores nothing."""
    access = access_channel(user, channel_id)
    channel = access.channel
    store = get_store()
    author = author_of(user)
    try:
        if client_id:
            existing = store.find_by_client_id(channel.stream, user.id, client_id)
            if existing is not None:
                return SendResult(channel.id, message_objects(channel.id, [existing], authors={user.id: author})[0], False)
        if channel.kind == ChannelKind.ANNOUNCEMENT and not access.is_staff:
            raise Forbidden("Only admins and teachers can post in an announcement channel.")
        if message_type in ("announcement", "assignment") and not access.is_staff:
            raise Forbidden(f"Only admins and teachers can post {message_type} messages.")
        if reply_to is not None and store.get(channel.stream, reply_to) is None:
            raise Invalid("replyTo", "The message replied to is not in this channel.")
        decision = ratelimit.take(f"user:{user.id}")
        if not decision.allowed:
            raise RateLimited("Too many messages; slow down.", decision.retry_after)
        with transaction.atomic():
            stored, created = store.append(
                NewMessage(
                    stream=channel.stream,
                    author_id=user.id,
                    content=content,
                    message_type=message_type,
                    file_url=file_url,
                    reply_to=reply_to,
                    mentions=_mentions(channel, content),
                    client_id=client_id,
                )
            )
            payload = protocol.message_object(stored, channel_id=channel.id, author=author, read_by=[])
            if created:
                broadcast_on_commit(
                    channel_group(channel.id),
                    protocol.new_message_event(channel.id, payload),
                    skip_channel=skip_channel,
                    prev_id=stored.prev_id,
                )
    except StoreError as exc:
        raise StoreUnavailable("The message could not be stored; it was not sent.") from exc
    return SendResult(channel.id, payload, created, stored.prev_id if created else None)


def read_mark(*, user: User, channel_id: int, message_id: int, skip_channel: str | None = None) -> dict[str, Any]:
    """Move the caller's read pointer forward; `message_read` to the channel if it moved."""
    access = access_channel(user, channel_id)
    channel_message(access.channel, message_id)
    store = get_store()
    with transaction.atomic():
        moved = store.set_read_pointer(access.channel.stream, user.id, message_id)
        event = protocol.message_read_event(channel_id, message_id, user.id)
        if moved:
            broadcast_on_commit(channel_group(channel_id), event, skip_channel=skip_channel)
    if not moved:
        pointer = store.read_pointers(access.channel.stream).get(user.id)
        event = protocol.message_read_event(channel_id, pointer.message_id if pointer else message_id, user.id)
    return event


def message_pin(*, user: User, channel_id: int, message_id: int, skip_channel: str | None = None) -> dict[str, Any]:
    access = access_channel(user, channel_id)
    if not access.is_staff:
        raise Forbidden("Only admins and teachers can pin messages.")
    channel_message(access.channel, message_id)
    with transaction.atomic():
        if get_store().set_pinned(access.channel.stream, message_id, pinned=True, by=user.id) is None:
            raise NotFound("Message not found.")
        event = protocol.message_pinned_event(channel_id, message_id, user_id=user.id, username=user.username)
        broadcast_on_commit(channel_group(channel_id), event, skip_channel=skip_channel)
    return event


def message_grade(*, user: User, channel_id: int, message_id: int, grade: str, feedback: str | None) -> dict[str, Any]:
    access = access_channel(user, channel_id)
    if not access.is_staff:
        raise Forbidden("Only admins and teachers can grade messages.")
    channel_message(access.channel, message_id)
    with transaction.atomic():
        updated = get_store().set_grade(access.channel.stream, message_id, grade=grade, feedback=feedback, by=user.id)
        if updated is None:
            raise NotFound("Message not found.")
        payload = message_objects(channel_id, [updated])[0]
        broadcast_on_commit(channel_group(channel_id), protocol.message_updated_event(channel_id, payload))
    return payload


def message_moderate(*, channel_id: int, message_id: int, action: str) -> bool:
    """Moderators (Django admin): hide or delete a message; `message_deleted` to the channel."""
    store = get_store()
    stream = f"ch:{channel_id}"
    with transaction.atomic():
        if action == "hide":
            done = store.set_hidden(stream, message_id, True)
        elif action == "delete":
            done = store.delete(stream, message_id)
        else:
            raise ValueError(action)
        if done:
            broadcast_on_commit(channel_group(channel_id), protocol.message_deleted_event(channel_id, message_id))
    return done


def ai_message_post(*, channel_id: int, ai_user: User, content: str, streaming: bool | None = None) -> dict[str, Any]:
    """The assistant's message: stored, then `new_message` to the channel.
    Internal: the assistant answers only where the asker could post."""
    stream = f"ch:{channel_id}"
    try:
        with transaction.atomic():
            stored, _ = get_store().append(NewMessage(stream=stream, author_id=ai_user.id, content=content, is_ai=True))
            payload = protocol.message_object(stored, channel_id=channel_id, author=author_of(ai_user), read_by=[], streaming=streaming)
            broadcast_on_commit(channel_group(channel_id), protocol.new_message_event(channel_id, payload), prev_id=stored.prev_id)
    except StoreError as exc:
        raise StoreUnavailable("The assistant's answer could not be stored.") from exc
    return payload


def ai_message_finish(*, channel_id: int, message_id: int, ai_user: User, content: str) -> dict[str, Any] | None:
    """The final text of a streamed answer: stored, then the last
    `message_updated` (streaming false)."""
    with transaction.atomic():
        stored = get_store().update_content(f"ch:{channel_id}", message_id, content=content, edited=False)
        if stored is None:  # removed by a moderator meanwhile
            return None
        payload = protocol.message_object(stored, channel_id=channel_id, author=author_of(ai_user), read_by=[], streaming=False)
        broadcast_on_commit(channel_group(channel_id), protocol.message_updated_event(channel_id, payload))
    return payload
