"""MessagePalConsumer through channels.testing.WebsocketCommunicator
(in-memory layer, real database)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

import messagestore as store_module
from messagestore import StoreError
from messagestore.sql import SqlMessageStore
from tests.messagepal.pal import conv, send
from tests.messagepal.pal_ws import PATH, app, each_gets, quiet, receive, refused, request, sync

pytestmark = pytest.mark.django_db(transaction=True)


# --- connecting ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "inactive"])
async def test_without_a_valid_session_unauthorized_and_4001(pals, who):
    if who == "inactive":
        pals.cat.is_active = False
        await sync(pals.cat.save)()
    comm = WebsocketCommunicator(app, PATH)
    comm.scope["user"] = AnonymousUser() if who == "anonymous" else pals.cat
    await comm.connect()
    error = await receive(comm)
    assert error["type"] == "error" and error["code"] == "unauthorized"
    assert (await comm.receive_output())["code"] == 4001


async def test_connected_on_connect_also_without_the_trailing_slash(pals, connect):
    comm = await connect(pals.ann, "/ws/messagepal")
    assert await request(comm, {"type": "ping"}) == {"type": "pong", "requestId": "rq"}


async def test_deactivation_closes_messagepal_sockets(pals, connect):
    from accounts.services import user_deactivate

    comm = await connect(pals.ann)
    await sync(user_deactivate)(user=pals.ann)
    assert (await receive(comm))["code"] == "unauthorized"
    assert (await comm.receive_output())["code"] == 4001


# --- send_message ----------------------------------------------------------------------


async def test_send_reaches_every_connection_of_both_people_once(pals, connect):
    ann1, ann2, ben1, ben2, cat = [await connect(u) for u in (pals.ann, pals.ann, pals.ben, pals.ben, pals.cat)]
    answer = await request(ann1, {"type": "send_message", "recipientId": pals.ben.id, "content": " hi ben ", "clientId": "c-1"})
    message = answer["message"]
    assert answer == {"type": "message_received", "message": message, "requestId": "rq"}
    assert message["conversationId"] == conv(pals.ann, pals.ben)
    assert (message["senderId"], message["recipientId"]) == (pals.ann.id, pals.ben.id)
    assert (message["content"], message["clientId"]) == ("hi ben", "c-1")
    await each_gets((ann2, ben1, ben2), {"type": "message_received", "message": message})
    await quiet(ann1, ann2, ben1, ben2, cat)
    # A retry after a reconnect: the stored message again, to the sender only.
    retry = await request(ann2, {"type": "send_message", "recipientId": pals.ben.id, "content": "hi ben", "clientId": "c-1"})
    assert retry["message"] == message
    await quiet(ann1, ann2, ben1, ben2)
    # The reply lands in the same conversation.
    reply = await request(ben2, {"type": "send_message", "recipientId": pals.ann.id, "content": "hi ann"})
    assert reply["message"]["conversationId"] == message["conversationId"]
    await each_gets((ann1, ann2, ben1), {"type": "message_received", "message": reply["message"]})


@pytest.mark.parametrize(("recipient", "code"), [("self", "bad_request"), ("missing", "not_found"), ("inactive", "not_found")])
async def test_send_to_oneself_or_an_unknown_user_is_refused(pals, connect, recipient, code):
    if recipient == "inactive":
        pals.ben.is_active = False
        await sync(pals.ben.save)()
    recipient_id = {"self": pals.ann.id, "missing": pals.cat.id + 1000, "inactive": pals.ben.id}[recipient]
    ann = await connect(pals.ann)
    await refused(ann, {"type": "send_message", "recipientId": recipient_id, "content": "anyone?"}, code)
    await refused(ann, {"type": "typing", "recipientId": recipient_id}, code)
    await quiet(ann)


async def test_rate_limited_send_is_refused_with_retry_after(pals, connect, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 1
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    ann, ben = await connect(pals.ann), await connect(pals.ben)
    first = await request(ann, {"type": "send_message", "recipientId": pals.ben.id, "content": "one"})
    error = await refused(ann, {"type": "send_message", "recipientId": pals.ben.id, "content": "two"}, "rate_limited")
    assert error["retryAfter"] >= 1
    await each_gets((ben,), {"type": "message_received", "message": first["message"]})
    await quiet(ann, ben)


async def test_store_failure_is_server_error_and_nothing_is_delivered(pals, connect):
    class BrokenStore(SqlMessageStore):
        def append(self, new):
            raise StoreError("cluster unreachable")

    ann, ben = await connect(pals.ann), await connect(pals.ben)
    store_module._store = BrokenStore()
    try:
        await refused(ann, {"type": "send_message", "recipientId": pals.ben.id, "content": "lost?"}, "server_error")
        await quiet(ann, ben)
    finally:
        store_module.reset_store()
    back = await request(ann, {"type": "send_message", "recipientId": pals.ben.id, "content": "back"})
    await each_gets((ben,), {"type": "message_received", "message": back["message"]})
    history = await request(ben, {"type": "fetch_history", "conversationId": conv(pals.ann, pals.ben)})
    assert [m["content"] for m in history["messages"]] == ["back"]


# --- typing -------------------------------------------------------------------------------


async def test_typing_reaches_the_recipients_connections_only(pals, connect, settings):
    settings.CHAT_TYPING_EVERY = 0.3
    ann1, ann2, ben1, ben2, cat = [await connect(u) for u in (pals.ann, pals.ann, pals.ben, pals.ben, pals.cat)]
    await ann1.send_json_to({"type": "typing", "recipientId": pals.ben.id})
    expected = {"type": "user_typing", "conversationId": conv(pals.ann, pals.ben), "userId": pals.ann.id, "username": "ann"}
    await each_gets((ben1, ben2), expected)
    await ann1.send_json_to({"type": "typing", "recipientId": pals.ben.id})  # at once: coalesced (PROTOCOL.md part 2)
    await quiet(ann1, ann2, ben1, ben2, cat)
    await asyncio.sleep(0.35)
    await ann1.send_json_to({"type": "typing", "recipientId": pals.ben.id})  # later: the recipient is now cached
    await each_gets((ben1, ben2), expected)
    await quiet(ann1, ann2, ben1, ben2, cat)


# --- mark_read ------------------------------------------------------------------------------


async def test_mark_read_tells_both_people(pals, connect):
    m1, m2 = await sync(send)(pals.ann, pals.ben, "1"), await sync(send)(pals.ann, pals.ben, "2")
    ann1, ann2, ben1, ben2, cat = [await connect(u) for u in (pals.ann, pals.ann, pals.ben, pals.ben, pals.cat)]
    answer = await request(ben1, {"type": "mark_read", "messageId": m2["id"]})
    event = {k: v for k, v in answer.items() if k != "requestId"}
    assert event["type"] == "message_read" and event["conversationId"] == m2["conversationId"]
    assert (event["messageId"], event["readBy"]) == (m2["id"], pals.ben.id)
    await each_gets((ann1, ann2, ben2), event)
    await quiet(ann1, ann2, ben1, ben2, cat)
    # An older message does not move the pointer: the current one, to the caller only.
    again = await request(ben2, {"type": "mark_read", "messageId": m1["id"]})
    assert again == answer
    await quiet(ann1, ann2, ben1, ben2)
    history = await request(ann1, {"type": "fetch_history", "conversationId": m1["conversationId"]})
    assert [m["readAt"] for m in history["messages"]] == [event["readAt"]] * 2


async def test_mark_read_of_an_unknown_message_is_not_found(pals, connect):
    message = await sync(send)(pals.ann, pals.ben, "1")
    ben = await connect(pals.ben)
    missing = message["id"].rsplit(":", 1)[0] + ":" + str(int(message["id"].rsplit(":", 1)[1]) + 1)
    await refused(ben, {"type": "mark_read", "messageId": missing}, "not_found")


# --- subscribe / unsubscribe ------------------------------------------------------------------


async def test_subscribe_and_unsubscribe_answer_participants(pals, connect):
    ann = await connect(pals.ann)
    conversation_id = conv(pals.ann, pals.ben)
    for kind, answer in (("subscribe", "subscribed"), ("unsubscribe", "unsubscribed"), ("unsubscribe", "unsubscribed")):
        reply = await request(ann, {"type": kind, "conversationId": conversation_id})
        assert reply == {"type": answer, "conversationId": conversation_id, "requestId": "rq"}
    await quiet(ann)


# --- fetch_history ---------------------------------------------------------------------------


async def test_fetch_history_pages_250_messages_without_gap_or_repeat(pals, connect):
    def make_messages() -> list[str]:
        return [send(*((pals.ann, pals.ben) if i % 2 else (pals.ben, pals.ann)), f"m{i}")["id"] for i in range(250)]

    sent = await sync(make_messages)()
    conversation_id = conv(pals.ann, pals.ben)
    ann = await connect(pals.ann)
    pages: list[list[str]] = []
    before = None
    has_more = True
    while has_more:
        reply = await request(ann, {"type": "fetch_history", "conversationId": conversation_id, "before": before, "limit": 100})
        assert reply["conversationId"] == conversation_id
        ids = [m["id"] for m in reply["messages"]]
        assert ids and len(ids) <= 100
        pages.insert(0, ids)
        before, has_more = ids[0], reply["hasMore"]
    assert [len(page) for page in pages] == [50, 100, 100]
    assert [i for page in pages for i in page] == sent
    default = await request(ann, {"type": "fetch_history", "conversationId": conversation_id})
    assert [m["id"] for m in default["messages"]] == sent[-50:] and default["hasMore"] is True
    capped = await request(ann, {"type": "fetch_history", "conversationId": conversation_id, "limit": 500})
    assert [m["id"] for m in capped["messages"]] == sent[-100:]
    ben = await connect(pals.ben)
    assert (await request(ben, {"type": "fetch_history", "conversationId": conversation_id}))["messages"] == default["messages"]


# --- a third user ------------------------------------------------------------------------------


async def test_third_user_is_refused_everything_and_hears_nothing(pals, connect):
    message = await sync(send)(pals.ann, pals.ben, "private")
    conversation_id = message["conversationId"]
    ann, ben, cat = await connect(pals.ann), await connect(pals.ben), await connect(pals.cat)
    nobody = f"conv_{pals.ann.id}_{pals.cat.id + 1000}"  # not cat's, and with nobody real
    for target in (conversation_id, nobody):
        answers = [
            await refused(cat, {"type": "subscribe", "conversationId": target}, "forbidden"),
            await refused(cat, {"type": "unsubscribe", "conversationId": target}, "forbidden"),
            await refused(cat, {"type": "fetch_history", "conversationId": target}, "forbidden"),
            await refused(cat, {"type": "fetch_history", "conversationId": target, "before": f"{target}:{2**40}"}, "forbidden"),
            await refused(cat, {"type": "mark_read", "messageId": f"{target}:{message['id'].rsplit(':', 1)[1]}"}, "forbidden"),
        ]
        assert all(set(a) == {"type", "code", "message", "requestId"} for a in answers)
        assert all(conversation_id not in a["message"] and "private" not in a["message"] for a in answers)
    # The refused mark_read moved nothing, and ann-ben traffic never reaches cat.
    reply = await request(ann, {"type": "send_message", "recipientId": pals.ben.id, "content": "still private"})
    await each_gets((ben,), {"type": "message_received", "message": reply["message"]})
    await ben.send_json_to({"type": "typing", "recipientId": pals.ann.id})
    assert (await receive(ann))["type"] == "user_typing"
    await request(ben, {"type": "mark_read", "messageId": reply["message"]["id"]})
    assert (await receive(ann))["type"] == "message_read"
    await quiet(cat)
    history = await request(ann, {"type": "fetch_history", "conversationId": conversation_id})
    assert [m["readAt"] is not None for m in history["messages"]] == [True, True]


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '"send_message"',
        {"type": "shout", "requestId": "rq"},
        {"requestId": "rq", "recipientId": 2, "content": "x"},
        {"type": "send_message", "content": "x", "requestId": "rq"},
        {"type": "send_message", "recipientId": "2", "content": "x", "requestId": "rq"},
        {"type": "send_message", "recipientId": True, "content": "x", "requestId": "rq"},
        {"type": "send_message", "recipientId": "BEN", "content": "", "requestId": "rq"},
        {"type": "send_message", "recipientId": "BEN", "content": "   ", "requestId": "rq"},
        {"type": "send_message", "recipientId": "BEN", "content": "x" * 4001, "requestId": "rq"},
        {"type": "send_message", "recipientId": "BEN", "content": ["x"], "requestId": "rq"},
        {"type": "send_message", "recipientId": "BEN", "content": "x", "clientId": 5, "requestId": "rq"},
        {"type": "typing", "requestId": "rq"},
        {"type": "mark_read", "messageId": "CONV:abc", "requestId": "rq"},
        {"type": "mark_read", "messageId": 5, "requestId": "rq"},
        {"type": "edit_message", "messageId": "CONV:1", "requestId": "rq"},
        {"type": "edit_message", "messageId": "CONV:1", "content": " ", "requestId": "rq"},
        {"type": "edit_message", "messageId": "CONV:1", "content": "x" * 4001, "requestId": "rq"},
        {"type": "edit_message", "messageId": "CONV", "content": "x", "requestId": "rq"},
        {"type": "edit_message", "content": "x", "requestId": "rq"},
        {"type": "delete_message", "requestId": "rq"},
        {"type": "delete_message", "messageId": 1, "requestId": "rq"},
        {"type": "delete_message", "messageId": "CONV:0", "requestId": "rq"},
        {"type": "subscribe", "conversationId": "conv_2_1", "requestId": "rq"},
        {"type": "fetch_history", "conversationId": "CONV", "limit": 0, "requestId": "rq"},
        {"type": "fetch_history", "conversationId": "CONV", "limit": "5", "requestId": "rq"},
        {"type": "fetch_history", "conversationId": "CONV", "before": "conv_1_99999:5", "requestId": "rq"},
        b"\x01\x02",
    ],
)
async def test_bad_input_is_bad_request_and_the_connection_stays_usable(pals, connect, frame):
    # "BEN" and CONV stand for ben's id and the ann-ben conversation, known only now.
    ann, ben = await connect(pals.ann), await connect(pals.ben)
    conversation_id = conv(pals.ann, pals.ben)
    if isinstance(frame, bytes):
        await ann.send_to(bytes_data=frame)
    else:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await ann.send_to(text_data=text.replace('"BEN"', str(pals.ben.id)).replace("CONV", conversation_id))
    error = await receive(ann)
    assert error["type"] == "error" and error["code"] == "bad_request"
    assert error.get("requestId") == (frame.get("requestId") if isinstance(frame, dict) else None)
    assert await request(ann, {"type": "ping"}) == {"type": "pong", "requestId": "rq"}
    assert (await request(ann, {"type": "fetch_history", "conversationId": conversation_id}))["messages"] == []
    await quiet(ann, ben)
