"""Who can reach whom over MessagePal, and blocks (PROTOCOL.md part 2, "Class
management and safeguarding")."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.selectors import user_object
from messagepal import selectors, services
from messagepal.models import Conversation
from messagepal.selectors import ConversationInaccessible
from tests.messagepal.pal import assert_nothing_broadcast_before, classmates, conv, conversations, delete, edit, history, leave_workspace, read, send, someone
from wire.errors import Forbidden, Invalid, NotFound

# Broadcasts leave on commit, so these tests run outside a wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)




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
    target_id = someone(pals, make_user, who)
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
