"""What workspace chat sends: the message object, every `/ws/chat/` event and
the HTTP objects (PROTOCOL.md, "Workspaces, channels, roles" and "Workspace
chat WebSocket"), one TypedDict each, and their builders. Pure.

wire.schema explains how these are checked and documented."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NotRequired, TypedDict, cast

from accounts.schema import UserObject
from files.schema import FileObject
from messagestore import StoredMessage
from messagestore.base import Reaction, ThreadStats
from wire.jsonutil import iso
from wire.protocol import SHARED_EVENTS
from wire.schema import EventSchemas, Id, Positive, Timestamp

MessageType = Literal["text", "file", "image", "announcement", "assignment"]
MESSAGE_TYPES: tuple[str, ...] = MessageType.__args__  # type: ignore[attr-defined]
RoleName = Literal["admin", "teacher", "student"]
ROLES: tuple[str, ...] = RoleName.__args__  # type: ignore[attr-defined]
ChannelKindName = Literal["text", "announcement", "dm"]
CHANNEL_KINDS: tuple[str, ...] = ChannelKindName.__args__  # type: ignore[attr-defined]


class GradeObject(TypedDict):
    value: str
    feedback: str | None
    gradedBy: Id
    gradedAt: Timestamp


class ReactionObject(TypedDict):
    emoji: str
    count: Positive
    userIds: list[Id]


class MessageObject(TypedDict):
    id: Id
    channelId: Id
    authorId: Id
    authorUsername: str
    authorDisplayName: str
    content: str
    messageType: MessageType
    fileUrl: str | None
    # The uploaded file's object (PROTOCOL.md "Files"): null for a link or no file.
    file: FileObject | None
    replyTo: Id | None
    replyCount: int
    lastReplyAt: Timestamp | None
    mentions: list[Id]
    createdAt: Timestamp
    editedAt: Timestamp | None
    isPinned: bool
    isAI: bool
    clientId: str | None
    # The message's author and the workspace's admins and teachers see it;
    # everyone else sees null (PROTOCOL.md part 2: grades are private).
    grade: GradeObject | None
    readBy: list[Id]
    reactions: list[ReactionObject]
    # Only on the @AI assistant's streamed answer and its updates.
    streaming: NotRequired[bool]


# -- events of /ws/chat/ -------------------------------------------------------


class JoinedChannelEvent(TypedDict):
    type: Literal["joined_channel"]
    channelId: Id
    missed: list[MessageObject]
    hasMore: bool
    # The channel's newest change id at the join (0: none yet).
    changeId: int
    # Who has a connection joined to the channel now, the joiner included.
    online: list[Id]
    # With `changesAfter`: the change events after it (ChangeEvent, below).
    changes: NotRequired[list[ChangeEvent]]
    changesHasMore: NotRequired[bool]


class LeftChannelEvent(TypedDict):
    type: Literal["left_channel"]
    channelId: Id


class NewMessageEvent(TypedDict):
    type: Literal["new_message"]
    channelId: Id
    message: MessageObject


class MessageUpdatedEvent(TypedDict):
    type: Literal["message_updated"]
    channelId: Id
    message: MessageObject
    changeId: int


class MessageDeletedEvent(TypedDict):
    type: Literal["message_deleted"]
    channelId: Id
    messageId: Id
    changeId: int


class ReactionUpdatedEvent(TypedDict):
    type: Literal["reaction_updated"]
    channelId: Id
    messageId: Id
    reactions: list[ReactionObject]
    changeId: int


class ThreadUpdatedEvent(TypedDict):
    type: Literal["thread_updated"]
    channelId: Id
    messageId: Id
    replyCount: int
    lastReplyAt: Timestamp | None
    changeId: int


class UserTypingEvent(TypedDict):
    type: Literal["user_typing"]
    channelId: Id
    userId: Id
    username: str
    displayName: str


class UserStopTypingEvent(TypedDict):
    type: Literal["user_stop_typing"]
    channelId: Id
    userId: Id
    username: str
    displayName: str


class MessageReadEvent(TypedDict):
    type: Literal["message_read"]
    channelId: Id
    messageId: Id
    userId: Id


class UserPresenceEvent(TypedDict):
    type: Literal["user_presence"]
    channelId: Id
    userId: Id
    username: str
    status: Literal["online", "offline"]


class PinnedBy(TypedDict):
    userId: Id
    username: str


class MessagePinnedEvent(TypedDict):
    type: Literal["message_pinned"]
    channelId: Id
    messageId: Id
    pinnedBy: PinnedBy
    changeId: int


class RemovedFromChannelEvent(TypedDict):
    type: Literal["removed_from_channel"]
    channelId: Id


class MessageUnpinnedEvent(TypedDict):
    type: Literal["message_unpinned"]
    channelId: Id
    messageId: Id
    changeId: int


# What `joined_channel.changes` holds: the change events.
ChangeEvent = MessageUpdatedEvent | MessageDeletedEvent | ReactionUpdatedEvent | ThreadUpdatedEvent | MessagePinnedEvent | MessageUnpinnedEvent


NotificationKind = Literal["mention", "dm", "reply", "message"]


class NotificationEvent(TypedDict):
    """To every `/ws/chat/` connection of the user, joined to the channel or not."""

    type: Literal["notification"]
    kind: NotificationKind
    workspaceId: Id
    channelId: Id
    message: MessageObject


EVENTS = EventSchemas(
    (
        *SHARED_EVENTS,
        JoinedChannelEvent,
        LeftChannelEvent,
        NewMessageEvent,
        MessageUpdatedEvent,
        MessageDeletedEvent,
        UserTypingEvent,
        UserStopTypingEvent,
        MessageReadEvent,
        UserPresenceEvent,
        MessagePinnedEvent,
        ReactionUpdatedEvent,
        ThreadUpdatedEvent,
        MessageUnpinnedEvent,
        RemovedFromChannelEvent,
        NotificationEvent,
    )
)

# -- HTTP objects ----------------------------------------------------------------


class WorkspaceObject(TypedDict):
    id: Id
    name: str
    role: RoleName


class Member(TypedDict):
    user: UserObject
    role: RoleName


class WorkspaceDetail(WorkspaceObject):
    members: list[Member]


class ChannelObject(TypedDict):
    id: Id
    workspaceId: Id
    name: str
    kind: ChannelKindName
    isPrivate: bool
    memberIds: NotRequired[list[Id]]


class ChannelListItem(ChannelObject):
    unreadCount: int
    mentionCount: int
    lastMessageId: Id | None


class MessagePage(TypedDict):
    results: list[MessageObject]
    hasMore: bool


class ThreadPage(TypedDict):
    root: MessageObject
    results: list[MessageObject]
    hasMore: bool


class ReportObject(TypedDict):
    id: Id
    # The message as it is now; null once it was deleted or hidden.
    message: MessageObject | None
    reason: str
    reporterId: Id
    createdAt: Timestamp


class InviteObject(TypedDict):
    code: str
    role: RoleName
    maxUses: int
    uses: int
    expiresAt: Timestamp


class AuditObject(TypedDict):
    id: Id
    action: str
    actorId: Id | None
    target: str
    reason: str
    createdAt: Timestamp


class MuteObject(TypedDict):
    userId: Id
    until: Timestamp


class ReactionsAnswer(TypedDict):
    reactions: list[ReactionObject]


# -- builders ----------------------------------------------------------------------


@dataclass(frozen=True)
class Author:
    id: int
    username: str
    display_name: str


def grade_object(msg: StoredMessage) -> GradeObject | None:
    if msg.grade is None or msg.graded_by is None:
        return None
    return GradeObject(value=msg.grade, feedback=msg.feedback, gradedBy=msg.graded_by, gradedAt=iso(msg.graded_at or msg.created_at))


def reaction_objects(reactions: list[Reaction] | None) -> list[ReactionObject]:
    """One entry per emoji, in the order of each emoji's first use."""
    by_emoji: dict[str, list[int]] = {}
    for reaction in reactions or ():
        by_emoji.setdefault(reaction.emoji, []).append(reaction.user_id)
    return [ReactionObject(emoji=emoji, count=len(users), userIds=sorted(users)) for emoji, users in by_emoji.items()]


def message_object(
    msg: StoredMessage,
    *,
    channel_id: int,
    author: Author,
    read_by: list[int],
    streaming: bool | None = None,
    reactions: list[Reaction] | None = None,
    thread: ThreadStats | None = None,
    show_grade: bool = False,
    file: FileObject | None = None,
) -> MessageObject:
    obj = MessageObject(
        id=msg.id,
        channelId=channel_id,
        authorId=msg.author_id,
        authorUsername=author.username,
        authorDisplayName=author.display_name,
        content=msg.content,
        messageType=cast(MessageType, msg.message_type),
        fileUrl=msg.file_url,
        file=file,
        replyTo=msg.reply_to,
        replyCount=thread.reply_count if thread else 0,
        lastReplyAt=iso(thread.last_reply_at) if thread else None,
        mentions=list(msg.mentions),
        createdAt=iso(msg.created_at),
        editedAt=iso(msg.edited_at),
        isPinned=msg.is_pinned,
        isAI=msg.is_ai,
        clientId=msg.client_id,
        grade=grade_object(msg) if show_grade else None,
        readBy=read_by,
        reactions=reaction_objects(reactions),
    )
    if streaming is not None:
        obj["streaming"] = streaming
    return obj


def joined_channel_event(
    channel_id: int,
    missed: list[MessageObject],
    has_more: bool,
    *,
    change_id: int,
    online: list[int],
    changes: list[ChangeEvent] | None = None,
    changes_has_more: bool = False,
) -> JoinedChannelEvent:
    event = JoinedChannelEvent(type="joined_channel", channelId=channel_id, missed=missed, hasMore=has_more, changeId=change_id, online=online)
    if changes is not None:
        event["changes"] = changes
        event["changesHasMore"] = changes_has_more
    return event


def left_channel_event(channel_id: int) -> LeftChannelEvent:
    return LeftChannelEvent(type="left_channel", channelId=channel_id)


def new_message_event(channel_id: int, message: MessageObject) -> NewMessageEvent:
    return NewMessageEvent(type="new_message", channelId=channel_id, message=message)


def message_updated_event(channel_id: int, message: MessageObject, change_id: int) -> MessageUpdatedEvent:
    return MessageUpdatedEvent(type="message_updated", channelId=channel_id, message=message, changeId=change_id)


def message_deleted_event(channel_id: int, message_id: int, change_id: int) -> MessageDeletedEvent:
    return MessageDeletedEvent(type="message_deleted", channelId=channel_id, messageId=message_id, changeId=change_id)


def reaction_updated_event(channel_id: int, message_id: int, reactions: list[ReactionObject], change_id: int) -> ReactionUpdatedEvent:
    return ReactionUpdatedEvent(type="reaction_updated", channelId=channel_id, messageId=message_id, reactions=reactions, changeId=change_id)


def thread_updated_event(channel_id: int, root_id: int, thread: ThreadStats | None, change_id: int) -> ThreadUpdatedEvent:
    return ThreadUpdatedEvent(
        type="thread_updated",
        channelId=channel_id,
        messageId=root_id,
        replyCount=thread.reply_count if thread else 0,
        lastReplyAt=iso(thread.last_reply_at) if thread else None,
        changeId=change_id,
    )


def typing_event(typing: bool, channel_id: int, author: Author) -> UserTypingEvent | UserStopTypingEvent:
    if typing:
        return UserTypingEvent(type="user_typing", channelId=channel_id, userId=author.id, username=author.username, displayName=author.display_name)
    return UserStopTypingEvent(
        type="user_stop_typing", channelId=channel_id, userId=author.id, username=author.username, displayName=author.display_name
    )


def message_read_event(channel_id: int, message_id: int, user_id: int) -> MessageReadEvent:
    return MessageReadEvent(type="message_read", channelId=channel_id, messageId=message_id, userId=user_id)


def presence_event(channel_id: int, user_id: int, username: str, online: bool) -> UserPresenceEvent:
    return UserPresenceEvent(
        type="user_presence", channelId=channel_id, userId=user_id, username=username, status="online" if online else "offline"
    )


def message_pinned_event(channel_id: int, message_id: int, *, user_id: int, username: str, change_id: int) -> MessagePinnedEvent:
    return MessagePinnedEvent(
        type="message_pinned",
        channelId=channel_id,
        messageId=message_id,
        pinnedBy=PinnedBy(userId=user_id, username=username),
        changeId=change_id,
    )



def message_unpinned_event(channel_id: int, message_id: int, change_id: int) -> MessageUnpinnedEvent:
    return MessageUnpinnedEvent(type="message_unpinned", channelId=channel_id, messageId=message_id, changeId=change_id)


def removed_from_channel_event(channel_id: int) -> RemovedFromChannelEvent:
    return RemovedFromChannelEvent(type="removed_from_channel", channelId=channel_id)
