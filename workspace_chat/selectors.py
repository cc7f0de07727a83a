"""Reads of workspace chat, and every access check (`access_*` raise)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from django.conf import settings
from django.db import connection
from django.db.models import Field, Model, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from files.selectors import file_objects
from messagestore import StoredMessage, get_store
from messagestore.base import Change
from messagestore.streams import channel_stream
from notifications.selectors import mention_counts
from wire import jsonutil
from wire.errors import Forbidden, NotFound
from workspace_chat import schema
from workspace_chat.models import STAFF_ROLES, Channel, ChannelKind, ChannelMembership, Mute, Workspace, WorkspaceMembership

HISTORY_MAX = 100
CATCH_UP_MAX = 500
# A join answers at most this much catch-up (PROTOCOL.md: at most 500
# messages); the rest is paged with hasMore. Joins are rate-limited too.
CATCH_UP_MAX_BYTES = 256 * 1024


class ChannelInaccessible(NotFound):
    """404 over HTTP; `forbidden` over the WebSocket, for a channel that does
    not exist as for one the caller may not see, so nothing leaks."""

    code = "forbidden"


@dataclass(frozen=True)
class ChannelAccess:
    channel: Channel
    role: str
    user_id: int
    # Until when the caller is muted in the channel's workspace (None: not).
    muted_until: datetime | None = None

    def require_unmuted(self) -> None:
        """Forbidden while a teacher's mute lasts (sends, edits, reactions)."""
        if self.muted_until is not None and self.muted_until > timezone.now():
            raise Forbidden(f"You are muted in this workspace until {self.muted_until:%H:%M} UTC.")

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def viewer(self) -> Viewer:
        return Viewer(self.user_id, self.is_staff)


@dataclass(frozen=True)
class Viewer:
    """Who a message object is built for: grades are shown to their
    message's author and to the workspace's admins and teachers only."""

    user_id: int
    is_staff: bool

    def sees_grade_of(self, message: StoredMessage) -> bool:
        return self.is_staff or message.author_id == self.user_id


def access_workspace(user: User, workspace_id: int) -> WorkspaceMembership:
    membership = (
        WorkspaceMembership.objects.select_related("workspace").filter(workspace_id=workspace_id, user_id=user.id).first()
    )
    if membership is None:
        raise NotFound("Workspace not found.")
    return membership


@functools.cache
def _access_sql(vendor: str) -> str:
    """access_channel's query, written out: it runs before every message sent,
    and building it through the ORM (a Subquery and an Exists) cost several
    times the query itself (docs/scaling.md)."""
    quote = connection.ops.quote_name

    def table(model: type[Model]) -> str:
        return quote(model._meta.db_table)

    def col(model: type[Model], name: str) -> str:
        field = model._meta.get_field(name)
        assert isinstance(field, Field) and field.column
        return quote(field.column)

    fields = ", ".join(f"c.{quote(f.column)}" for f in Channel._meta.concrete_fields if f.column)
    wm, cm, mute = WorkspaceMembership, ChannelMembership, Mute
    return (
        f"SELECT {fields},"
        f" (SELECT w.{col(wm, 'role')} FROM {table(wm)} w WHERE w.{col(wm, 'workspace')} = c.{col(Channel, 'workspace')}"
        f" AND w.{col(wm, 'user')} = %s) AS caller_role,"
        f" EXISTS (SELECT 1 FROM {table(cm)} m WHERE m.{col(cm, 'channel')} = c.{col(Channel, 'id')}"
        f" AND m.{col(cm, 'user')} = %s) AS caller_is_member,"
        f" (SELECT u.{col(mute, 'until')} FROM {table(mute)} u WHERE u.{col(mute, 'workspace')} = c.{col(Channel, 'workspace')}"
        f" AND u.{col(mute, 'user')} = %s) AS caller_muted_until"
        f" FROM {table(Channel)} c WHERE c.{col(Channel, 'id')} = %s"
    )


def _aware(value: datetime | str | None) -> datetime | None:
    # A raw query's timestamp: SQLite hands back text, naive in UTC.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def access_channel(user: User, channel_id: int) -> ChannelAccess:
    """One query: the channel, the caller's workspace role and channel membership."""
    channel = next(iter(Channel.objects.raw(_access_sql(connection.vendor), [user.id, user.id, user.id, channel_id])), None)
    # The raw query's extra columns arrive as attributes of the instance.
    role = getattr(channel, "caller_role", None)
    if channel is None or role is None or (channel.is_restricted and not getattr(channel, "caller_is_member", False)):
        raise ChannelInaccessible("Channel not found.")
    return ChannelAccess(channel=channel, role=role, user_id=user.id, muted_until=_aware(getattr(channel, "caller_muted_until", None)))


def workspace_list(user: User) -> QuerySet[WorkspaceMembership]:
    return WorkspaceMembership.objects.filter(user_id=user.id).select_related("workspace").order_by("workspace_id")


# A workspace's detail lists at most this many members (every list is capped).
MAX_MEMBERS = 1000


def workspace_members(workspace: Workspace) -> QuerySet[WorkspaceMembership]:
    return workspace.memberships.select_related("user").order_by("user__username")[:MAX_MEMBERS]


def visible_channels(user: User, workspace: Workspace) -> QuerySet[Channel]:
    return (
        Channel.objects.filter(workspace=workspace)
        .filter(Q(is_private=False, kind__in=[ChannelKind.TEXT, ChannelKind.ANNOUNCEMENT]) | Q(memberships__user_id=user.id))
        .distinct()
        .order_by("kind", "name", "id")
    )


def channel_member_ids(channel: Channel) -> list[int]:
    return sorted(channel.memberships.values_list("user_id", flat=True))


def channel_object(channel: Channel, member_ids: list[int] | None = None) -> schema.ChannelObject:
    obj = schema.ChannelObject(
        id=channel.id,
        workspaceId=channel.workspace_id,
        name=channel.name,
        kind=cast(schema.ChannelKindName, channel.kind),
        isPrivate=channel.is_restricted,
    )
    if channel.is_restricted:
        obj["memberIds"] = member_ids if member_ids is not None else channel_member_ids(channel)
    return obj


# The channel list holds at most this many (PROTOCOL.md: every list is capped).
MAX_CHANNELS = 500


def channel_list(user: User, workspace: Workspace) -> list[schema.ChannelListItem]:
    """The channels the caller may see, with unread counts and newest ids, in
    a fixed number of queries whatever their number."""
    channels = list(visible_channels(user, workspace)[:MAX_CHANNELS])
    restricted = [c.id for c in channels if c.is_restricted]
    members: dict[int, list[int]] = {}
    for channel_id, user_id in ChannelMembership.objects.filter(channel_id__in=restricted).order_by("user_id").values_list("channel_id", "user_id"):
        members.setdefault(channel_id, []).append(user_id)
    store = get_store()
    streams = [c.stream for c in channels]
    pointers = store.read_pointers_of(user.id, streams)
    unread = store.counts_after({s: pointers[s].message_id if s in pointers else None for s in streams}, exclude_author=user.id)
    latest = store.latest(streams)
    mentions = mention_counts(user_id=user.id, channel_ids=[c.id for c in channels])
    return [
        schema.ChannelListItem(
            **channel_object(c, members.get(c.id, [])),
            unreadCount=unread.get(c.stream, 0),
            mentionCount=mentions.get(c.id, 0),
            lastMessageId=latest[c.stream].id if c.stream in latest else None,
        )
        for c in channels
    ]


def author_of(user: User) -> schema.Author:
    return schema.Author(id=user.id, username=user.username, display_name=user.shown_name)


def authors_by_id(user_ids: Iterable[int]) -> dict[int, schema.Author]:
    wanted = set(user_ids)
    if not wanted:
        return {}
    return {u.id: author_of(u) for u in User.objects.filter(id__in=wanted)}


UNKNOWN_AUTHOR = schema.Author(id=0, username="deleted", display_name="Deleted user")


def message_objects(
    channel_id: int, messages: list[StoredMessage], *, viewer: Viewer | None = None, authors: dict[int, schema.Author] | None = None
) -> list[schema.MessageObject]:
    """Message objects with authors, readBy, reactions and thread counts:
    four reads for a whole page, whatever its length. Built for `viewer`
    (None: for everyone, as a channel broadcast is: no grades)."""
    if not messages:
        return []
    stream = messages[0].stream
    store = get_store()
    authors = authors if authors is not None else authors_by_id(m.author_id for m in messages)
    pointers = store.read_pointers(stream)
    ids = [m.id for m in messages]
    reactions = store.reactions(stream, ids)
    # Only a root has replies: a reply's own replyCount is 0.
    threads = store.thread_stats(stream, [m.id for m in messages if m.reply_to is None])
    files = file_objects(m.file_url for m in messages)
    return [
        schema.message_object(
            m,
            channel_id=channel_id,
            author=authors.get(m.author_id, UNKNOWN_AUTHOR),
            read_by=sorted(uid for uid, p in pointers.items() if p.message_id >= m.id),
            reactions=reactions.get(m.id),
            thread=threads.get(m.id),
            show_grade=viewer is not None and viewer.sees_grade_of(m),
            file=files.get(m.file_url) if m.file_url else None,
        )
        for m in messages
    ]


def message_history(*, user: User, channel_id: int, before: int | None, after: int | None, limit: int) -> tuple[list[schema.MessageObject], bool]:
    access = access_channel(user, channel_id)
    limit = max(1, min(limit, HISTORY_MAX))
    messages, has_more = get_store().page(access.channel.stream, before=before, after=after, limit=limit)
    return message_objects(channel_id, messages, viewer=access.viewer), has_more


def catch_up(*, channel: Channel, after_id: int | None, viewer: Viewer | None = None) -> tuple[list[schema.MessageObject], bool, int]:
    """(missed, hasMore, the newest id the client now has or may page to over
    HTTP). At most CATCH_UP_MAX messages and about CATCH_UP_MAX_BYTES."""
    store = get_store()
    if after_id is None:
        return [], False, store.last_id(channel.stream) or 0
    messages, has_more = store.page(channel.stream, after=after_id, limit=CATCH_UP_MAX)
    missed = message_objects(channel.id, messages, viewer=viewer)
    size = 0
    for i, message in enumerate(missed):
        size += len(jsonutil.dumps(message))
        if size > CATCH_UP_MAX_BYTES and i > 0:
            missed, has_more = missed[:i], True
            break
    if has_more:
        return missed, True, store.last_id(channel.stream) or 0
    return missed, False, missed[-1]["id"] if missed else after_id


def messages_between(*, channel_id: int, after: int, before: int, viewer: Viewer | None = None) -> list[schema.MessageObject]:
    """Messages a connection has not been sent yet (a broadcast overtook them)."""
    messages, _ = get_store().page(channel_stream(channel_id), after=after, before=before, limit=CATCH_UP_MAX)
    return message_objects(channel_id, messages, viewer=viewer)


# The newest pins shown (every list is capped).
MAX_PINS = 100


def channel_pins(*, user: User, channel_id: int) -> list[schema.MessageObject]:
    access = access_channel(user, channel_id)
    return message_objects(channel_id, get_store().pinned(access.channel.stream)[-MAX_PINS:], viewer=access.viewer)


def channel_message(channel: Channel, message_id: int) -> StoredMessage:
    """A visible message of the channel; NotFound (not_found / 404) for one
    that does not exist or was deleted, before any permission check."""
    message = get_store().get(channel.stream, message_id)
    if message is None:
        raise NotFound("Message not found.")
    return message


THREAD_MAX = 100


def message_thread(*, user: User, channel_id: int, message_id: int, after: int | None, limit: int) -> schema.ThreadPage:
    """The root of `message_id`'s thread (a reply's root) and its replies, oldest first."""
    access = access_channel(user, channel_id)
    message = channel_message(access.channel, message_id)
    root = channel_message(access.channel, message.reply_to) if message.reply_to is not None else message
    replies, has_more = get_store().thread_page(access.channel.stream, root.id, after=after, limit=max(1, min(limit, THREAD_MAX)))
    root_object, *results = message_objects(channel_id, [root, *replies], viewer=access.viewer)
    return schema.ThreadPage(root=root_object, results=results, hasMore=has_more)


# A join answers at most this many changes (PROTOCOL.md); the rest follow
# with changesHasMore (rejoin from the last one's changeId).
CHANGES_MAX = 500


def change_catch_up(*, channel: Channel, after: int, viewer: Viewer | None = None) -> tuple[list[schema.ChangeEvent], bool]:
    """The change events after `after`, oldest first, each message's
    changes of one kind collapsed into its latest, built from the
    messages as they are now."""
    raw = get_store().changes(channel.stream, after=after, limit=CHANGES_MAX + 1)
    return change_events(channel.id, raw[:CHANGES_MAX], viewer), len(raw) > CHANGES_MAX


def changes_between(*, channel_id: int, after: int, before: int, viewer: Viewer | None = None) -> list[schema.ChangeEvent]:
    """Change events a connection has not been given yet (one overtook them)."""
    limit = max(0, min(before - after - 1, CHANGES_MAX))
    return change_events(channel_id, get_store().changes(channel_stream(channel_id), after=after, limit=limit), viewer) if limit else []


def change_events(channel_id: int, raw: list[Change], viewer: Viewer | None = None) -> list[schema.ChangeEvent]:
    """The events of `raw` changes, built from the messages as they are now:
    each message's changes of one kind collapse into the latest, and a
    message that is gone is one `message_deleted`. Never empty when `raw` is
    not (a client pages on from the last event's changeId)."""
    stream = channel_stream(channel_id)
    store = get_store()
    latest = {(c.message_id, c.kind): c for c in raw}
    messages = {m: store.get(stream, m) for m in {c.message_id for c in raw}}
    gone: dict[int, Change] = {}
    for change in latest.values():
        best = gone.get(change.message_id)
        if messages[change.message_id] is None and (best is None or change.change_id > best.change_id):
            gone[change.message_id] = change
    live = sorted((m for m in messages.values() if m is not None), key=lambda m: m.id)
    objects = {o["id"]: o for o in message_objects(channel_id, live, viewer=viewer)}
    pinners = authors_by_id(m.pinned_by for m in live if m.is_pinned and m.pinned_by)
    events: list[schema.ChangeEvent] = []
    for change in sorted(latest.values(), key=lambda c: c.change_id):
        message = messages[change.message_id]
        if message is None:
            if gone[change.message_id] is change:
                events.append(schema.message_deleted_event(channel_id, change.message_id, change.change_id))
            continue
        obj = objects[message.id]
        if change.kind == "reaction":
            events.append(schema.reaction_updated_event(channel_id, message.id, obj["reactions"], change.change_id))
        elif change.kind == "thread":
            events.append(
                schema.ThreadUpdatedEvent(
                    type="thread_updated",
                    channelId=channel_id,
                    messageId=message.id,
                    replyCount=obj["replyCount"],
                    lastReplyAt=obj["lastReplyAt"],
                    changeId=change.change_id,
                )
            )
        elif change.kind == "pinned" and message.is_pinned and message.pinned_by in pinners:
            pinner = pinners[message.pinned_by]
            events.append(schema.message_pinned_event(channel_id, message.id, user_id=pinner.id, username=pinner.username, change_id=change.change_id))
        elif change.kind == "pinned" and not message.is_pinned:
            events.append(schema.message_unpinned_event(channel_id, message.id, change.change_id))
        else:
            # An edit, or a change its own event cannot tell any more (a
            # pinner since gone): the message as it is now.
            events.append(schema.message_updated_event(channel_id, obj, change.change_id))
    return events


@dataclass(frozen=True)
class JoinState:
    """What `joined_channel` tells (see catch_up and change_catch_up)."""

    missed: list[schema.MessageObject]
    has_more: bool
    newest: int
    change_id: int
    changes: list[schema.ChangeEvent] | None
    changes_has_more: bool
    # Whether first joins and last leaves are announced (`user_presence`):
    # not in channels with more than CHAT_PRESENCE_MAX_MEMBERS members.
    announce_presence: bool = True


def join_state(*, channel: Channel, after_id: int | None, changes_after: int | None, viewer: Viewer | None = None) -> JoinState:
    # The feed's head first: a change made during these reads is in the
    # pages below or arrives as an event; either way none is missed.
    change_id = get_store().last_change_id(channel.stream)
    missed, has_more, newest = catch_up(channel=channel, after_id=after_id, viewer=viewer)
    changes, changes_has_more = (None, False) if changes_after is None else change_catch_up(channel=channel, after=changes_after, viewer=viewer)
    announce = channel_member_count(channel) <= settings.CHAT_PRESENCE_MAX_MEMBERS
    return JoinState(missed, has_more, newest, change_id, changes, changes_has_more, announce)


# channel id -> (when counted, count): a join storm of 1,000 counts once.
_member_counts: dict[int, tuple[float, int]] = {}
MEMBER_COUNT_TTL = 10.0


def channel_member_count(channel: Channel) -> int:
    """Who may read the channel: its members if private or a DM, else the
    workspace's active members (counted at most every 10 s per process)."""
    now = time.monotonic()
    cached = _member_counts.get(channel.id)
    if cached is not None and now - cached[0] < MEMBER_COUNT_TTL:
        return cached[1]
    if channel.is_restricted:
        count = ChannelMembership.objects.filter(channel=channel, user__is_active=True).count()
    else:
        count = WorkspaceMembership.objects.filter(workspace_id=channel.workspace_id, user__is_active=True).count()
    if len(_member_counts) > 10_000:
        _member_counts.clear()
    _member_counts[channel.id] = (now, count)
    return count


def message_reactions(channel: Channel, message_id: int) -> list[schema.ReactionObject]:
    return schema.reaction_objects(get_store().reactions(channel.stream, [message_id]).get(message_id))
