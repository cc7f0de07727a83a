"""MessagePalConsumer's edit_message/delete_message, who can reach whom and
blocks, through channels.testing.WebsocketCommunicator (in-memory layer, real
database)."""

from __future__ import annotations

import asyncio

import pytest

from tests.messagepal.pal import send
from tests.messagepal.pal_ws import each_gets, quiet, receive, refused, request, sync

pytestmark = pytest.mark.django_db(transaction=True)


# --- edit_message / delete_message -------------------------------------------------------------


async def test_edit_and_delete_reach_every_connection_of_both_people(pals, connect):
    message = await sync(send)(pals.ann, pals.ben, "helo")
    ann1, ann2, ben1, ben2, cat = [await connect(u) for u in (pals.ann, pals.ann, pals.ben, pals.ben, pals.cat)]
    answer = await request(ann1, {"type": "edit_message", "messageId": message["id"], "content": "  hello  "})
    updated = answer["message"]
    assert answer == {"type": "message_updated", "conversationId": message["conversationId"], "message": updated, "requestId": "rq"}
    assert updated["id"] == message["id"] and updated["content"] == "hello" and updated["editedAt"] is not None
    await each_gets((ann2, ben1, ben2), {"type": "message_updated", "conversationId": message["conversationId"], "message": updated})
    await quiet(ann1, ann2, ben1, ben2, cat)
    history = await request(ben1, {"type": "fetch_history", "conversationId": message["conversationId"]})
    assert history["messages"] == [updated]
    # The recipient may do neither; the sender deletes from another connection.
    await refused(ben1, {"type": "edit_message", "messageId": message["id"], "content": "mine now"}, "forbidden")
    await refused(ben2, {"type": "delete_message", "messageId": message["id"]}, "forbidden")
    deleted = await request(ann2, {"type": "delete_message", "messageId": message["id"]})
    event = {"type": "message_deleted", "conversationId": message["conversationId"], "messageId": message["id"]}
    assert deleted == {**event, "requestId": "rq"}
    await each_gets((ann1, ben1, ben2), event)
    await quiet(ann1, ann2, ben1, ben2, cat)
    assert (await request(ben1, {"type": "fetch_history", "conversationId": message["conversationId"]}))["messages"] == []


async def test_edit_and_delete_of_missing_deleted_or_foreign_messages_are_not_found(pals, connect):
    message = await sync(send)(pals.ann, pals.ben, "private")
    ann, ben, cat = await connect(pals.ann), await connect(pals.ben), await connect(pals.cat)
    await request(ann, {"type": "delete_message", "messageId": message["id"]})
    assert (await receive(ben))["type"] == "message_deleted"
    kept = await request(ann, {"type": "send_message", "recipientId": pals.ben.id, "content": "kept"})
    assert (await receive(ben))["message"] == kept["message"]
    conversation_id, n = kept["message"]["id"].rsplit(":", 1)
    targets = [
        (ben, message["id"]),  # deleted: not_found even for the recipient, before the sender check
        (ann, message["id"]),
        (ann, f"{conversation_id}:{int(n) + 1}"),  # never existed
        (cat, kept["message"]["id"]),  # not cat's conversation
        (ann, f"conv_{pals.ann.id}_{pals.cat.id + 1000}:{n}"),
    ]
    for comm, target in targets:
        await refused(comm, {"type": "edit_message", "messageId": target, "content": "x"}, "not_found")
        await refused(comm, {"type": "delete_message", "messageId": target}, "not_found")
    await quiet(ann, ben, cat)
    history = await request(ben, {"type": "fetch_history", "conversationId": conversation_id})
    assert history["messages"] == [kept["message"]]


async def test_bad_edit_changes_nothing_and_the_connection_stays_usable(pals, connect):
    message = await sync(send)(pals.ann, pals.ben, "as sent")
    ann, ben = await connect(pals.ann), await connect(pals.ben)
    for frame in (
        {"type": "edit_message", "messageId": message["id"], "content": ""},
        {"type": "edit_message", "messageId": message["id"], "content": "x" * 4001},
        {"type": "edit_message", "messageId": message["id"], "content": None},
        {"type": "edit_message", "messageId": message["id"], "content": ["x"]},
        {"type": "edit_message", "messageId": message["id"] + "x", "content": "x"},
        {"type": "delete_message", "messageId": message["id"] + " "},
        {"type": "delete_message", "messageId": {"id": message["id"]}},
    ):
        await refused(ann, frame, "bad_request")
    await quiet(ann, ben)
    history = await request(ann, {"type": "fetch_history", "conversationId": message["conversationId"]})
    assert history["messages"] == [message]
    edited = await request(ann, {"type": "edit_message", "messageId": message["id"], "content": "fixed"})
    assert edited["message"]["content"] == "fixed"
    assert (await receive(ben))["type"] == "message_updated"


async def test_rate_limited_edit_is_refused_and_changes_nothing(pals, connect, settings):
    settings.CHAT_RATE_LIMIT_EVENTS = 1
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    message = await sync(send)(pals.ann, pals.ben, "1")
    ann, ben = await connect(pals.ann), await connect(pals.ben)
    await request(ann, {"type": "edit_message", "messageId": message["id"], "content": "2"})
    assert (await receive(ben))["message"]["content"] == "2"
    error = await refused(ann, {"type": "edit_message", "messageId": message["id"], "content": "3"}, "rate_limited")
    assert error["retryAfter"] > 0
    await refused(ann, {"type": "delete_message", "messageId": message["id"]}, "rate_limited")
    await quiet(ann, ben)
    history = await request(ben, {"type": "fetch_history", "conversationId": message["conversationId"]})
    assert [m["content"] for m in history["messages"]] == ["2"]


# --- who can reach whom, blocks (PROTOCOL.md part 2) --------------------------------------------


@pytest.fixture
def stranger(make_user):
    """dan shares no workspace with ann, ben or cat."""
    return make_user("dan", display_name="Dan D")


async def test_everything_with_someone_out_of_reach_is_forbidden(pals, connect, stranger, settings):
    # A conversation from when the operator let anyone reach anyone.
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    theirs = await sync(send)(stranger, pals.ann, "from before")
    mine = await sync(send)(pals.ann, stranger, "mine")
    settings.CHAT_MESSAGEPAL_SCOPE = "workspace"
    conversation_id = mine["conversationId"]
    ann, dan = await connect(pals.ann), await connect(stranger)
    for comm, other in ((ann, stranger), (dan, pals.ann)):
        for event in (
            {"type": "send_message", "recipientId": other.id, "content": "hello?"},
            {"type": "typing", "recipientId": other.id},
            {"type": "typing", "recipientId": other.id},  # still refused: nothing cached
            {"type": "subscribe", "conversationId": conversation_id},
            {"type": "unsubscribe", "conversationId": conversation_id},
            {"type": "fetch_history", "conversationId": conversation_id},
            {"type": "mark_read", "messageId": (theirs if comm is ann else mine)["id"]},
        ):
            answer = await refused(comm, event, "forbidden")
            assert "from before" not in answer["message"] and "mine" not in answer["message"]
    for event in ({"type": "edit_message", "messageId": mine["id"], "content": "changed"}, {"type": "delete_message", "messageId": mine["id"]}):
        await refused(ann, event, "forbidden")
    await quiet(ann, dan)
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    assert [m["content"] for m in (await request(dan, {"type": "fetch_history", "conversationId": conversation_id}))["messages"]] == ["from before", "mine"]


async def test_a_stranger_reaches_a_student_when_the_operator_allows_anyone(pals, connect, stranger, settings):
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    settings.CHAT_TYPING_EVERY = 0.01
    ann, dan = await connect(pals.ann), await connect(stranger)
    await dan.send_json_to({"type": "typing", "recipientId": pals.ann.id})
    assert (await receive(ann))["type"] == "user_typing"
    sent = await request(dan, {"type": "send_message", "recipientId": pals.ann.id, "content": "hi from outside"})
    assert (await receive(ann)) == {"type": "message_received", "message": sent["message"]}


async def test_a_block_stops_sends_and_typing_both_ways(pals, connect, settings):
    from messagepal import services

    settings.CHAT_TYPING_EVERY = 0.05
    ann, ben, cat = await connect(pals.ann), await connect(pals.ben), await connect(pals.cat)

    async def typing_arrives(comm, recipient) -> bool:
        """Whether `recipient` hears `comm` type (the event is left to read)."""
        await asyncio.sleep(0.06)  # past the coalescing of the last one
        await comm.send_json_to({"type": "typing", "recipientId": recipient.id, "requestId": "t"})
        return not await sockets[recipient.id].receive_nothing(0.2)

    sockets = {pals.ann.id: ann, pals.ben.id: ben, pals.cat.id: cat}
    assert await typing_arrives(ben, pals.ann)
    assert (await receive(ann))["type"] == "user_typing"
    await sync(services.block_create)(blocker=pals.ann, user_id=pals.ben.id)
    # Typing is dropped both ways, silently (no answer to either).
    assert not await typing_arrives(ben, pals.ann)
    assert not await typing_arrives(ann, pals.ben)
    await quiet(ann, ben)
    for comm, other in ((ben, pals.ann), (ann, pals.ben)):
        await refused(comm, {"type": "send_message", "recipientId": other.id, "content": "hello?"}, "forbidden")
    await quiet(ann, ben, cat)
    # Others are not affected.
    assert await typing_arrives(cat, pals.ann)
    assert (await receive(ann))["userId"] == pals.cat.id
    await request(cat, {"type": "send_message", "recipientId": pals.ben.id, "content": "hi ben"})
    assert (await receive(ben))["type"] == "message_received"
    # Unblocked: both ways again.
    await sync(services.block_delete)(blocker=pals.ann, user_id=pals.ben.id)
    assert await typing_arrives(ben, pals.ann)
    assert (await receive(ann))["type"] == "user_typing"
    sent = await request(ben, {"type": "send_message", "recipientId": pals.ann.id, "content": "sorry"})
    assert await receive(ann) == {"type": "message_received", "message": sent["message"]}
