"""MessagePal services and selectors, with the events they broadcast (caught
by joining the people's pal groups on the in-memory channel layer)."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from accounts.selectors import user_object
from messagepal import selectors, services
from messagepal.models import Conversation
from messagepal.selectors import ConversationInaccessible
from messagestore import get_store, moderation
from tests.messagepal.pal import assert_nothing_broadcast_before, conv, conversations, expect_received, history, number, read, send, someone
from tests.pal_schemas import check_pal_event, check_pal_message
from wire.errors import Invalid, NotFound, RateLimited

# Broadcasts leave on commit, so these tests run outside a wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)




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
    recipient_id = someone(pals, make_user, who)
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


