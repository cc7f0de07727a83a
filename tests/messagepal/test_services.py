"""MessagePal services and selectors, with the events they broadcast (caught
by joining the people's pal groups on the in-memory channel layer)."""

from __future__ import annotations

import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from accounts.selectors import user_object
from messagepal import selectors, services
from messagepal.models import Conversation
from messagepal.selectors import ConversationInaccessible
from messagestore import get_store, moderation
from realtime.events import EVENT_TYPE, pal_user_group, payload_of
from tests.pal_schemas import check_pal_event, check_pal_message
from tests.workspace_chat.test_services import Listener
from wire.errors import Forbidden, Invalid, NotFound, RateLimited

# Broadcasts leave on commit, so these tests run outside a wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)

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


@pytest.fixture
def listen(in_memory_layer):
    """listen(*users) -> a PalListener on those users' pal groups."""
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield PalListener
    async_to_sync(layer.flush)()


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


@pytest.fixture
def pals(make_user, settings):
    return make_pals(make_user, settings)


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


# --- pal_message_send ------------------------------------------------------------------


def test_send_persists_returns_and_broadcasts_to_both_after_commit(pals, listen):
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    with transaction.atomic():
        message, created = services.pal_message_send(sender=pals.ann, recipient_id=pals.ben.id, content="hi ben")
        assert anns.silent() and bens.silent(), "broadcast before the transaction committed"
    assert created is True
    check_pal_message(message)
    conversation_id = conv(pals.ann, pals.ben)
    assert message["conversationId"] == conversation_id and message["id"].startswith(conversation_id + ":")
    assert (message["senderId"], message["senderUsername"], message["recipientId"]) == (pals.ann.id, "ann", pals.ben.id)
    assert (message["content"], message["readAt"], message["clientId"]) == ("hi ben", None, None)
    assert history(pals.ann, conversation_id) == history(pals.ben, conversation_id) == [message]
    expect_received(anns, message)  # the sender's other connections
    expect_received(bens, message)
    assert cats.silent()


def test_both_directions_share_one_conversation_in_send_order(pals):
    sent = [send(pals.ann, pals.ben, "a1"), send(pals.ben, pals.ann, "b1"), send(pals.ann, pals.ben, "a2")]
    assert {m["conversationId"] for m in sent} == {conv(pals.ann, pals.ben)}
    assert number(sent[0]) < number(sent[1]) < number(sent[2])
    assert [m["id"] for m in history(pals.ben, conv(pals.ann, pals.ben))] == [m["id"] for m in sent]
    assert Conversation.objects.count() == 1
    assert sent[1]["senderId"] == pals.ben.id and sent[1]["recipientId"] == pals.ann.id


def test_rolled_back_send_broadcasts_nothing(pals, listen):
    anns = listen(pals.ann)
    with pytest.raises(RuntimeError), transaction.atomic():
        send(pals.ben, pals.ann, "never happened")
        raise RuntimeError("roll back")
    assert history(pals.ann, conv(pals.ann, pals.ben)) == []
    assert_nothing_broadcast_before(anns, pals)


def test_same_client_id_twice_stores_one_message(pals, listen):
    anns = listen(pals.ann)
    first, created = services.pal_message_send(sender=pals.ben, recipient_id=pals.ann.id, content="once", client_id="c-1")
    again, created_again = services.pal_message_send(sender=pals.ben, recipient_id=pals.ann.id, content="retry", client_id="c-1")
    assert created is True and created_again is False
    assert again == first and again["clientId"] == "c-1" and again["content"] == "once"
    assert [m["id"] for m in history(pals.ann, conv(pals.ann, pals.ben))] == [first["id"]]
    expect_received(anns, first)
    assert_nothing_broadcast_before(anns, pals)  # the retry is not broadcast again


def test_client_id_is_per_sender(pals):
    bens = send(pals.ben, pals.ann, "from ben", client_id="same")
    anns = send(pals.ann, pals.ben, "from ann", client_id="same")
    assert bens["id"] != anns["id"]
    assert [m["content"] for m in history(pals.ann, conv(pals.ann, pals.ben))] == ["from ben", "from ann"]


def test_sending_to_oneself_is_invalid(pals, listen):
    anns = listen(pals.ann)
    with pytest.raises(Invalid):
        send(pals.ann, pals.ann, "note to self")
    assert Conversation.objects.count() == 0
    assert_nothing_broadcast_before(anns, pals)


@pytest.mark.parametrize("who", ["missing", "inactive", "ai"])
def test_sending_to_a_missing_inactive_or_ai_user_is_not_found(pals, make_user, who):
    if who == "missing":
        recipient_id = pals.cat.id + 1000
    else:
        target = make_user("target")
        if who == "inactive":
            target.is_active = False
        else:
            target.is_ai = True
        target.save()
        recipient_id = target.id
    with pytest.raises(NotFound):
        services.pal_message_send(sender=pals.ann, recipient_id=recipient_id, content="anyone?")
    assert Conversation.objects.count() == 0
    assert conversations(pals.ann) == []


def test_send_to_conversation_checks_participation(pals):
    conversation_id = conv(pals.ann, pals.ben)
    message, created = services.pal_message_send_to_conversation(sender=pals.ben, conversation_id=conversation_id, content="via id")
    assert created and message["recipientId"] == pals.ann.id
    for target in (conversation_id, "conv_2_1", "conv_bad"):
        with pytest.raises(ConversationInaccessible):
            services.pal_message_send_to_conversation(sender=pals.cat, conversation_id=target, content="let me in")
    assert history(pals.ann, conversation_id) == [message]


# --- rate limit ---------------------------------------------------------------------


def test_rate_limit_refuses_and_stores_nothing(pals, listen, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 3
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    anns = listen(pals.ann)
    sent = [send(pals.ben, pals.ann, f"m{i}", client_id=f"c{i}") for i in range(3)]
    expect_received(anns, sent[0])
    expect_received(anns, sent[1])
    expect_received(anns, sent[2])
    with pytest.raises(RateLimited) as limited:
        send(pals.ben, pals.ann, "one too many")
    assert limited.value.retry_after > 0
    retry, created = services.pal_message_send(sender=pals.ben, recipient_id=pals.ann.id, content="m1", client_id="c1")
    assert created is False and retry == sent[1]  # a safe retry costs no token
    assert [m["id"] for m in history(pals.ann, conv(pals.ann, pals.ben))] == [m["id"] for m in sent]
    assert_nothing_broadcast_before(anns, pals)  # cat has her own bucket


def test_rate_limit_is_shared_with_workspace_chat(school, settings):
    from workspace_chat.services import message_send

    settings.CHAT_RATE_LIMIT_MESSAGES = 2
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    message_send(user=school.carol, channel_id=school.general.id, content="in class")
    send(school.carol, school.bob, "in private")
    with pytest.raises(RateLimited):
        send(school.carol, school.alice, "one too many")
    with pytest.raises(RateLimited):
        message_send(user=school.carol, channel_id=school.general.id, content="one too many")
    assert send(school.bob, school.carol, "bob is not limited")["senderId"] == school.bob.id


# --- pal_read_mark ------------------------------------------------------------------------


def test_read_mark_marks_that_and_earlier_messages_and_tells_both(pals, listen):
    m1, m2, m3 = send(pals.ann, pals.ben, "1"), send(pals.ann, pals.ben, "2"), send(pals.ann, pals.ben, "3")
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    event = read(pals.ben, m2)
    check_pal_event(event)
    assert {k: v for k, v in event.items() if k != "readAt"} == {
        "type": "message_read",
        "conversationId": m2["conversationId"],
        "messageId": m2["id"],
        "readBy": pals.ben.id,
    }
    assert anns.next() == event and bens.next() == event
    assert cats.silent()
    read_at = {m["id"]: m["readAt"] for m in history(pals.ann, m1["conversationId"])}
    assert read_at == {m1["id"]: event["readAt"], m2["id"]: event["readAt"], m3["id"]: None}


def test_read_mark_moves_forward_only(pals, listen):
    m1, m2 = send(pals.ann, pals.ben, "1"), send(pals.ann, pals.ben, "2")
    first = read(pals.ben, m2)
    anns = listen(pals.ann)
    back = read(pals.ben, m1)
    assert back == first  # answers with the current pointer
    same = read(pals.ben, m2)
    assert same == first
    assert_nothing_broadcast_before(anns, pals)
    assert [m["readAt"] for m in history(pals.ann, m1["conversationId"])] == [first["readAt"]] * 2


def test_read_at_of_a_message_stays_when_later_ones_are_read(pals):
    """readAt is when the recipient's pointer passed that message; reading a
    later message must not rewrite it."""
    m1 = send(pals.ann, pals.ben, "1")
    first = read(pals.ben, m1)
    time.sleep(0.01)  # readAt has millisecond precision
    m2 = send(pals.ann, pals.ben, "2")
    second = read(pals.ben, m2)
    assert second["readAt"] > first["readAt"]
    read_at = [m["readAt"] for m in history(pals.ann, m1["conversationId"])]
    assert read_at == [first["readAt"], second["readAt"]]


def test_readers_own_messages_are_not_marked_by_their_own_pointer(pals):
    mine = send(pals.ben, pals.ann, "mine")
    theirs = send(pals.ann, pals.ben, "theirs")
    read(pals.ben, theirs)
    read_at = {m["id"]: m["readAt"] for m in history(pals.ann, mine["conversationId"])}
    assert read_at[mine["id"]] is None  # ann has not read it
    assert read_at[theirs["id"]] is not None


def test_read_mark_refuses_a_third_user_and_unknown_messages(pals, listen):
    message = send(pals.ann, pals.ben, "private")
    anns = listen(pals.ann)
    for conversation_id in (message["conversationId"], f"conv_{pals.ann.id}_{pals.cat.id + 1000}", "conv_1_1"):
        with pytest.raises(ConversationInaccessible) as refused:
            services.pal_read_mark(user=pals.cat, conversation_id=conversation_id, message_number=number(message))
        assert refused.value.code == "forbidden" and isinstance(refused.value, NotFound)
    with pytest.raises(NotFound) as missing:
        services.pal_read_mark(user=pals.ben, conversation_id=message["conversationId"], message_number=number(message) + 1)
    assert not isinstance(missing.value, ConversationInaccessible)
    assert_nothing_broadcast_before(anns, pals)
    assert history(pals.ann, message["conversationId"])[0]["readAt"] is None


def test_history_refuses_a_third_user_whether_or_not_the_conversation_exists(pals):
    send(pals.ann, pals.ben, "private")
    for conversation_id in (conv(pals.ann, pals.ben), f"conv_{pals.ann.id}_{pals.cat.id + 1000}", "conv_2_1", "nonsense"):
        with pytest.raises(ConversationInaccessible):
            selectors.conversation_history(user=pals.cat, conversation_id=conversation_id, before=None, limit=50)


# --- conversation_list ----------------------------------------------------------------------


def test_conversation_list_is_newest_first_with_other_user_and_last_message(pals):
    send(pals.ann, pals.ben, "hi ben")
    with_cat = send(pals.cat, pals.ann, "hi ann")
    last_with_ben = send(pals.ben, pals.ann, "back at you")
    listed = conversations(pals.ann)
    assert listed == [
        {"conversationId": conv(pals.ann, pals.ben), "otherUser": user_object(pals.ben), "lastMessage": last_with_ben, "unreadCount": 1},
        {"conversationId": conv(pals.ann, pals.cat), "otherUser": user_object(pals.cat), "lastMessage": with_cat, "unreadCount": 1},
    ]
    assert listed[0]["otherUser"] == {"id": pals.ben.id, "username": "ben", "displayName": "Ben B"}
    assert [c["otherUser"]["id"] for c in conversations(pals.ben)] == [pals.ann.id]
    send(pals.cat, pals.ann, "newer")
    assert [c["otherUser"]["id"] for c in conversations(pals.ann)] == [pals.cat.id, pals.ben.id]


def test_conversation_list_leaves_out_conversations_without_messages(pals):
    services.conversation_get_or_create(sender=pals.ann, recipient_id=pals.ben.id)
    assert conversations(pals.ann) == [] and conversations(pals.ben) == []


def test_unread_count_counts_the_other_persons_messages_after_the_pointer(pals):
    b1, b2, b3 = (send(pals.ben, pals.ann, f"b{i}") for i in range(3))
    send(pals.ann, pals.ben, "a1")

    def unread(user) -> int:
        (item,) = conversations(user)
        return item["unreadCount"]

    assert (unread(pals.ann), unread(pals.ben)) == (3, 1)
    read(pals.ann, b2)
    assert unread(pals.ann) == 1
    read(pals.ann, b3)
    assert unread(pals.ann) == 0
    read(pals.ben, b1)  # ben's pointer on an older message still leaves ann's a1 unread
    assert unread(pals.ben) == 1
    assert conversations(pals.cat) == []


def test_conversation_order_follows_the_last_visible_message(pals):
    send(pals.ben, pals.ann, "old")
    send(pals.cat, pals.ann, "middle")
    rude = send(pals.ben, pals.ann, "rude")
    moderation.message_moderate(stream=rude["conversationId"], message_id=number(rude), action="hide")
    listed = conversations(pals.ann)
    assert [c["lastMessage"]["content"] for c in listed] == ["middle", "old"]


@pytest.mark.parametrize("action", ["hide", "delete"])
def test_moderated_last_message_falls_back_to_the_previous_one(pals, action):
    kept = send(pals.ann, pals.ben, "fine")
    rude = send(pals.ann, pals.ben, "rude")
    assert moderation.message_moderate(stream=rude["conversationId"], message_id=number(rude), action=action) is True
    (item,) = conversations(pals.ben)
    assert item["lastMessage"] == kept and item["unreadCount"] == 1
    assert history(pals.ben, kept["conversationId"]) == [kept]
    assert get_store().get(rude["conversationId"], number(rude)) is None
    with pytest.raises(NotFound):
        read(pals.ben, rude)


# --- edit / delete (PROTOCOL.md part 2, "Message lifecycle") ------------------------------


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


def test_edit_sets_content_and_edited_at_and_tells_both(pals, listen):
    message = send(pals.ann, pals.ben, "helo", client_id="c-1")
    read(pals.ben, message)
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    with transaction.atomic():
        event = edit(pals.ann, message, "hello")
        assert anns.silent() and bens.silent(), "broadcast before the transaction committed"
    check_pal_event(event)
    updated = event["message"]
    assert event == {"type": "message_updated", "conversationId": message["conversationId"], "message": updated}
    assert updated["editedAt"] is not None and updated["editedAt"] >= message["createdAt"]
    # Everything but the text and editedAt stays, readAt included.
    assert {**updated, "content": "helo", "editedAt": None} == {**message, "readAt": updated["readAt"]}
    assert updated["readAt"] is not None and (updated["fileUrl"], updated["file"]) == (None, None)
    assert anns.next() == event and bens.next() == event
    assert cats.silent()
    assert history(pals.ben, message["conversationId"]) == [updated]
    (item,) = conversations(pals.ben)
    assert item["lastMessage"] == updated


def test_every_message_object_carries_edited_at_file_url_and_file(pals):
    message = send(pals.ann, pals.ben, "plain")
    assert (message["editedAt"], message["fileUrl"], message["file"]) == (None, None, None)
    (listed,) = conversations(pals.ann)
    assert listed["lastMessage"] == history(pals.ben, message["conversationId"])[0] == message


def test_edit_window(pals, monkeypatch, settings):
    settings.CHAT_EDIT_WINDOW = 3600
    message = send(pals.ann, pals.ben, "first")
    later(monkeypatch, 3500)
    assert edit(pals.ann, message, "within the hour")["message"]["content"] == "within the hour"
    later(monkeypatch, 3700)
    with pytest.raises(Forbidden):
        edit(pals.ann, message, "too late")
    assert history(pals.ann, message["conversationId"])[0]["content"] == "within the hour"
    settings.CHAT_EDIT_WINDOW = 0  # no limit
    later(monkeypatch, 10 * 365 * 86400)
    assert edit(pals.ann, message, "years later")["message"]["content"] == "years later"


def test_delete_is_not_limited_by_the_edit_window(pals, monkeypatch, settings):
    settings.CHAT_EDIT_WINDOW = 60
    message = send(pals.ann, pals.ben, "old")
    later(monkeypatch, 3600)
    delete(pals.ann, message)
    assert history(pals.ann, message["conversationId"]) == []


def test_only_the_sender_edits_or_deletes(pals, listen):
    message = send(pals.ann, pals.ben, "mine")
    anns = listen(pals.ann)
    with pytest.raises(Forbidden):
        edit(pals.ben, message, "yours now")
    with pytest.raises(Forbidden):
        delete(pals.ben, message)
    assert history(pals.ann, message["conversationId"]) == [message]
    assert_nothing_broadcast_before(anns, pals)


def test_missing_deleted_or_foreign_messages_are_not_found_before_any_permission_check(pals, listen):
    message = send(pals.ann, pals.ben, "private")
    gone = send(pals.ann, pals.ben, "gone")
    delete(pals.ann, gone)
    anns = listen(pals.ann)
    missing = {**message, "id": f"{message['conversationId']}:{number(gone) + 1}"}
    foreign = {**message, "conversationId": f"conv_{pals.ann.id}_{pals.cat.id + 1000}"}
    cases = [(pals.cat, message), (pals.ann, missing), (pals.ann, gone), (pals.ben, gone), (pals.ann, foreign), (pals.ben, missing)]
    for user, target in cases:
        with pytest.raises(NotFound) as refused_edit:
            edit(user, target, "x")
        with pytest.raises(NotFound) as refused_delete:
            delete(user, target)
        assert refused_edit.value.code == refused_delete.value.code == "not_found", (user.username, target)
    assert history(pals.ben, message["conversationId"]) == [message]
    assert_nothing_broadcast_before(anns, pals)


def test_delete_hides_the_message_everywhere_and_tells_both(pals, listen):
    kept = send(pals.ann, pals.ben, "kept")
    doomed = send(pals.ann, pals.ben, "oops")
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    with transaction.atomic():
        event = delete(pals.ann, doomed)
        assert anns.silent() and bens.silent(), "broadcast before the transaction committed"
    check_pal_event(event)
    assert event == {"type": "message_deleted", "conversationId": doomed["conversationId"], "messageId": doomed["id"]}
    assert anns.next() == event and bens.next() == event
    assert cats.silent()
    assert history(pals.ben, kept["conversationId"]) == [kept]
    (item,) = conversations(pals.ben)
    assert item["lastMessage"] == kept and item["unreadCount"] == 1
    with pytest.raises(NotFound):
        read(pals.ben, doomed)
    assert deleted_by(doomed) == pals.ann.id


def test_deleting_the_only_message_leaves_the_conversation_list(pals):
    only = send(pals.ann, pals.ben, "only")
    delete(pals.ann, only)
    assert conversations(pals.ann) == [] and conversations(pals.ben) == []
    again = send(pals.ben, pals.ann, "again")
    assert [c["lastMessage"] for c in conversations(pals.ann)] == [again]


def test_unread_count_skips_deleted_messages(pals):
    b1, b2 = send(pals.ben, pals.ann, "b1"), send(pals.ben, pals.ann, "b2")
    send(pals.ben, pals.ann, "b3")
    delete(pals.ben, b2)
    (item,) = conversations(pals.ann)
    assert item["unreadCount"] == 2
    read(pals.ann, b1)
    assert conversations(pals.ann)[0]["unreadCount"] == 1


def test_edit_and_delete_use_the_events_bucket(pals, settings):
    settings.CHAT_RATE_LIMIT_EVENTS = 2
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    message = send(pals.ann, pals.ben, "1")
    edit(pals.ann, message, "2")
    delete(pals.ann, message)
    with pytest.raises(RateLimited):
        edit(pals.ann, send(pals.ann, pals.ben, "still sends"), "3")
    with pytest.raises(RateLimited):
        read(pals.ann, message)  # the same bucket


@pytest.mark.parametrize("action", ["hide", "delete"])
def test_moderation_tells_both_people(pals, make_user, listen, action):
    moderator = make_user("mod")
    rude = send(pals.ann, pals.ben, "rude")
    anns, bens, cats = listen(pals.ann), listen(pals.ben), listen(pals.cat)
    done = moderation.message_moderate(stream=rude["conversationId"], message_id=number(rude), action=action, actor_id=moderator.id)
    assert done is True
    event = {"type": "message_deleted", "conversationId": rude["conversationId"], "messageId": rude["id"]}
    assert anns.next() == event and bens.next() == event
    assert cats.silent()
    if action == "delete":
        assert deleted_by(rude) == moderator.id
    # Already gone: nothing more to do, nothing more said.
    assert moderation.message_moderate(stream=rude["conversationId"], message_id=number(rude), action="delete", actor_id=moderator.id) is False
    with pytest.raises(NotFound):
        edit(pals.ann, rude, "sorry")
    assert_nothing_broadcast_before(anns, pals)


# --- who can reach whom (PROTOCOL.md part 2, "Class management and safeguarding") ---------


@pytest.fixture
def stranger(make_user):
    """dan shares no workspace with ann, ben or cat."""
    return make_user("dan", display_name="Dan D")


def test_people_reach_each_other_when_they_share_a_workspace(pals, stranger, make_user):
    assert selectors.can_reach(pals.ann, pals.ben.id) and selectors.can_reach(pals.ben, pals.ann.id)
    assert not selectors.can_reach(pals.ann, stranger.id) and not selectors.can_reach(stranger, pals.ann.id)
    assert not selectors.can_reach(pals.ann, pals.ann.id)
    assert not selectors.can_reach(pals.ann, stranger.id + 1000)
    eve = make_user("eve")
    classmates(stranger, eve)  # a workspace of their own: no bridge to ann
    assert not selectors.can_reach(pals.ann, eve.id) and selectors.can_reach(eve, stranger.id)
    assert set(selectors.reachable_users(pals.ann)) == {pals.ben, pals.cat}
    assert set(selectors.reachable_users(stranger)) == {eve}


def test_reach_and_a_recipient_take_one_query_each(pals, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert selectors.can_reach(pals.ann, pals.ben.id)
    with django_assert_num_queries(1):
        recipient = selectors.access_recipient(pals.ann, pals.ben.id)
    assert (recipient.id, recipient.blocked_by_me, recipient.blocked_me) == (pals.ben.id, False, False)
    with django_assert_num_queries(1):
        assert selectors.access_conversation(pals.ann, conv(pals.ann, pals.ben)) == tuple(sorted((pals.ann.id, pals.ben.id)))


def test_sending_to_someone_out_of_reach_is_forbidden_and_stores_nothing(pals, stranger, listen):
    dans = listen(stranger)
    for sender, recipient in ((pals.ann, stranger), (stranger, pals.ann)):
        with pytest.raises(ConversationInaccessible) as refused:
            send(sender, recipient, "hello?")
        assert refused.value.code == "forbidden"
        with pytest.raises(ConversationInaccessible):
            services.pal_message_send_to_conversation(sender=sender, conversation_id=conv(pals.ann, stranger), content="via id")
        with pytest.raises(ConversationInaccessible):
            services.conversation_get_or_create(sender=sender, recipient_id=recipient.id)
        with pytest.raises(ConversationInaccessible):
            history(sender, conv(pals.ann, stranger))
    assert Conversation.objects.count() == 0
    assert dans.silent()
    assert conversations(pals.ann) == [] and conversations(stranger) == []


def test_the_operator_may_let_anyone_reach_anyone(pals, stranger, settings):
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    assert selectors.can_reach(stranger, pals.ann.id)
    message = send(stranger, pals.ann, "hello from outside")
    assert history(pals.ann, message["conversationId"]) == [message]
    assert [c["otherUser"]["id"] for c in conversations(pals.ann)] == [stranger.id]
    # Any other value means "workspace": the conversation is out of reach again.
    settings.CHAT_MESSAGEPAL_SCOPE = "everyone"
    with pytest.raises(ConversationInaccessible):
        send(pals.ann, stranger, "still there?")
    with pytest.raises(ConversationInaccessible):
        history(pals.ann, message["conversationId"])
    assert conversations(pals.ann) == [] and conversations(stranger) == []


def test_leaving_the_shared_workspace_puts_the_conversation_out_of_reach(pals, listen):
    mine = send(pals.ann, pals.ben, "hi ben")
    theirs = send(pals.ben, pals.ann, "hi ann")
    send(pals.cat, pals.ann, "from cat")
    conversation_id = mine["conversationId"]
    leave_workspace(pals.ben, pals.workspace)
    anns = listen(pals.ann)
    for user in (pals.ann, pals.ben):
        with pytest.raises(ConversationInaccessible):
            history(user, conversation_id)
    with pytest.raises(ConversationInaccessible):
        send(pals.ann, pals.ben, "still there?")
    with pytest.raises(ConversationInaccessible):
        send(pals.ben, pals.ann, "still there?")
    with pytest.raises(ConversationInaccessible):
        read(pals.ann, theirs)
    for change in (lambda: edit(pals.ann, mine, "changed"), lambda: delete(pals.ann, mine)):
        with pytest.raises(ConversationInaccessible) as refused:
            change()
        assert refused.value.code == "forbidden"
    assert [c["otherUser"]["id"] for c in conversations(pals.ann)] == [pals.cat.id]
    assert conversations(pals.ben) == []
    assert_nothing_broadcast_before(anns, pals)
    # Sharing a workspace again (another one): reachable, the history intact.
    classmates(pals.ben, pals.ann)
    assert [m["id"] for m in history(pals.ann, conversation_id)] == [mine["id"], theirs["id"]]
    assert [c["otherUser"]["id"] for c in conversations(pals.ben)] == [pals.ann.id]


# --- blocks --------------------------------------------------------------------------------


def block(blocker, blocked) -> tuple[Any, bool]:
    return services.block_create(blocker=blocker, user_id=blocked.id)


def test_a_block_refuses_sends_and_edits_both_ways_and_keeps_the_history(pals, listen):
    before = send(pals.ben, pals.ann, "before")
    mine = send(pals.ann, pals.ben, "mine")
    anns, bens = listen(pals.ann), listen(pals.ben)
    assert block(pals.ann, pals.ben) == (pals.ben, True)
    for sender, recipient in ((pals.ben, pals.ann), (pals.ann, pals.ben)):
        with pytest.raises(Forbidden) as refused:
            send(sender, recipient, "can you hear me?")
        assert refused.value.code == "forbidden" and refused.value.http_status == 403
        with pytest.raises(Forbidden):
            services.pal_message_send_to_conversation(sender=sender, conversation_id=before["conversationId"], content="via id")
    with pytest.raises(Forbidden):
        edit(pals.ben, before, "edited after the block")
    with pytest.raises(Forbidden):
        edit(pals.ann, mine, "edited after the block")
    assert anns.silent() and bens.silent()
    # Both still read their history, mark it read and delete their own messages.
    assert history(pals.ann, before["conversationId"]) == history(pals.ben, before["conversationId"]) == [before, mine]
    read_event = read(pals.ann, before)
    assert anns.next() == read_event and bens.next() == read_event
    deleted = delete(pals.ben, before)
    assert anns.next() == deleted and bens.next() == deleted
    # Only that pair: cat still writes to both.
    assert send(pals.cat, pals.ann, "hi ann")["recipientId"] == pals.ann.id
    assert send(pals.ben, pals.cat, "hi cat")["recipientId"] == pals.cat.id
    services.block_delete(blocker=pals.ann, user_id=pals.ben.id)
    again = send(pals.ben, pals.ann, "sorry")
    assert history(pals.ann, again["conversationId"])[-1] == again


def test_a_block_by_the_recipient_refuses_too(pals):
    block(pals.ben, pals.ann)
    recipient = selectors.access_recipient(pals.ann, pals.ben.id)
    assert (recipient.blocked_by_me, recipient.blocked_me, recipient.blocked) == (False, True, True)
    with pytest.raises(Forbidden, match="not accepting"):
        send(pals.ann, pals.ben, "hello?")
    with pytest.raises(Forbidden, match="unblock"):
        send(pals.ben, pals.ann, "hello?")
    assert Conversation.objects.count() == 0


@pytest.mark.parametrize("who", ["self", "missing", "inactive", "ai"])
def test_blocking_oneself_or_no_such_user_is_invalid(pals, make_user, who):
    if who == "self":
        target_id = pals.ann.id
    elif who == "missing":
        target_id = pals.cat.id + 1000
    else:
        target = make_user("target")
        if who == "inactive":
            target.is_active = False
        else:
            target.is_ai = True
        target.save()
        target_id = target.id
    with pytest.raises(Invalid) as refused:
        services.block_create(blocker=pals.ann, user_id=target_id)
    assert refused.value.field == "userId"
    assert selectors.block_list(user=pals.ann) == []


def test_blocking_twice_is_one_block_and_unblocking_needs_a_block(pals, stranger):
    assert block(pals.ann, pals.ben) == (pals.ben, True)
    assert block(pals.ann, pals.ben) == (pals.ben, False)
    assert block(pals.ann, stranger) == (stranger, True)  # no shared workspace needed
    assert selectors.block_list(user=pals.ann) == [user_object(stranger), user_object(pals.ben)]  # newest first
    with pytest.raises(NotFound):
        services.block_delete(blocker=pals.ben, user_id=pals.ann.id)  # ben blocked nobody
    services.block_delete(blocker=pals.ann, user_id=pals.ben.id)
    with pytest.raises(NotFound):
        services.block_delete(blocker=pals.ann, user_id=pals.ben.id)
    assert selectors.block_list(user=pals.ann) == [user_object(stranger)]
    assert selectors.block_list(user=pals.ben) == []
