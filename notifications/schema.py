"""What notifications send and answer (PROTOCOL.md part 2)."""

from __future__ import annotations

from typing import Any, TypedDict, cast

from workspace_chat.schema import MessageObject, NotificationEvent, NotificationKind

Id = int


class NotificationObject(TypedDict):
    id: Id
    kind: str
    workspaceId: Id
    channelId: Id
    message: dict[str, Any]
    createdAt: str
    read: bool


class NotificationPage(TypedDict):
    results: list[NotificationObject]
    hasMore: bool


class LevelObject(TypedDict):
    level: str


def notification_event(*, kind: str, workspace_id: int, channel_id: int, message: MessageObject) -> NotificationEvent:
    return NotificationEvent(type="notification", kind=cast(NotificationKind, kind), workspaceId=workspace_id, channelId=channel_id, message=message)
