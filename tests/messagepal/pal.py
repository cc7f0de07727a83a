"""Shared pieces of the MessagePal tests: a listener on the people's pal
groups, a pair of classmates, and short forms of the services they call."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from asgiref.sync import async_to_sync
from django.utils import timezone

from messagepal import selectors, services
from messagestore import get_store
from realtime.events import EVENT_TYPE, pal_user_group, payload_of
from tests.pal_schemas import check_pal_event, check_pal_message
from tests.workspace_chat.test_services import Listener

CONVERSATION_KEYS = {"conversationId", "otherUser", "lastMessage", "unreadCount"}


class PalListener(Listener):
    """A stand-in for every MessagePal connection of some users: joins their
    pal groups on the channel layer and reads what is broadcast there."""

    def __init__(self, *users: Any) -> None:
        super().__init__()
        for user in users:
            async_to_sync(self.layer.group_add)(pal_user_group(user.id), self.name)

    def next(self, timeout: float = 2.0) -> dict[str, Any]:
        envelope = async_to_sync(self._receive)(timeout)
        assert envelope is not None and envelope["type"] == EVENT_TYPE, "no event was broadcast"
        payload = payload_of(envelope)
        check_pal_event(payload)
        return payload


def classmates(admin, *others) -> int:
    """A workspace of `admin` with `others` as students (MessagePal connects
    people who share one): its id."""
    from workspace_chat import services as chat

    workspace = chat.workspace_create(user=admin, name=f"{admin.username}'s class").workspace
    for other in others:
        chat.workspace_member_add(actor=admin, workspace_id=workspace.id, username=other.username, role="student")
    return workspace.id


def leave_workspace(user, workspace_id: int) -> None:
    """`user` is no longer a member (there is no removal service yet)."""
    from workspace_chat.models import WorkspaceMembership

    assert WorkspaceMembership.objects.filter(user=user, workspace_id=workspace_id).delete()[0] == 1


def make_pals(make_user, settings) -> Any:
    """ann, ben and cat share a workspace (`workspace`); ann and ben talk, cat
    is a third user; ids ascend in that order. The rate limit is lifted (the
    rate-limit tests lower it again). A plain function so that the other
    MessagePal test modules share it."""
    settings.CHAT_RATE_LIMIT_MESSAGES = 100_000

    class Pals:
        ann = make_user("ann", display_name="Ann A")
        ben = make_user("ben", display_name="Ben B")
        cat = make_user("cat", display_name="Cat C")
        workspace = classmates(ann, ben, cat)

    return Pals


def send(sender, recipient, content: str = "hello", **kw: Any) -> dict[str, Any]:
    message, _ = services.pal_message_send(sender=sender, recipient_id=recipient.id, content=content, **kw)
    return message


def conv(a, b) -> str:
    low, high = sorted((a.id, b.id))
    return f"conv_{low}_{high}"


def number(message: dict[str, Any]) -> int:
    return int(message["id"].rsplit(":", 1)[1])


def history(user, conversation_id: str, limit: int = 100) -> list[dict[str, Any]]:
    messages, _ = selectors.conversation_history(user=user, conversation_id=conversation_id, before=None, limit=limit)
    return messages


def read(user, message: dict[str, Any]) -> dict[str, Any]:
    return services.pal_read_mark(user=user, conversation_id=message["conversationId"], message_number=number(message))


def expect_received(listener: PalListener, message: dict[str, Any], copies: int = 1) -> None:
    for _ in range(copies):
        assert listener.next() == {"type": "message_received", "message": message}


def assert_nothing_broadcast_before(listener: PalListener, pals) -> None:
    """cat writes ann a marker; it must be the very next event ann's connections get."""
    marker = send(pals.cat, pals.ann, "marker")
    expect_received(listener, marker)


def conversations(user) -> list[dict[str, Any]]:
    listed = selectors.conversation_list(user=user)
    for item in listed:
        assert set(item) == CONVERSATION_KEYS
        if item["lastMessage"] is not None:
            check_pal_message(item["lastMessage"])
    return listed


def edit(user, message: dict[str, Any], content: str) -> dict[str, Any]:
    return services.pal_message_edit(user=user, conversation_id=message["conversationId"], message_number=number(message), content=content)


def delete(user, message: dict[str, Any]) -> dict[str, Any]:
    return services.pal_message_delete(user=user, conversation_id=message["conversationId"], message_number=number(message))


def later(monkeypatch, seconds: float) -> None:
    """The services' clock runs `seconds` ahead (the store's does not)."""
    real_now = timezone.now
    monkeypatch.setattr(services, "timezone", SimpleNamespace(now=lambda: real_now() + timedelta(seconds=seconds)))


def deleted_by(message: dict[str, Any]) -> int | None:
    """Who deleted it, as moderators see it (any store: its moderation page)."""
    page, _ = get_store().moderation_page(message["conversationId"], before=number(message) + 1, limit=1)
    (row,) = page
    assert row.id == number(message) and row.deleted_at is not None and row.hidden
    return row.deleted_by


def someone(pals: Any, make_user: Any, who: str) -> int:
    """The id of a user MessagePal must refuse, as `who` says: "self" (ann),
    "missing" (no such user), "inactive" or "ai"."""
    if who == "self":
        return pals.ann.id
    if who == "missing":
        return pals.cat.id + 1000
    target = make_user("target")
    if who == "inactive":
        target.is_active = False
    else:
        target.is_ai = True
    target.save()
    return target.id
