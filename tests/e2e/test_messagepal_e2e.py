"""MessagePal end to end: a real daphne process and real websockets clients."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.harness import Person

pytestmark = pytest.mark.e2e

PAL = "/ws/messagepal/"


def conv(a: Person, b: Person) -> str:
    low, high = sorted((a.id, b.id))
    return f"conv_{low}_{high}"


async def pal_send(ws, recipient: Person, content: str, **extra) -> dict:
    answer = await ws.request({"type": "send_message", "recipientId": recipient.id, "content": content, **extra}, "message_received")
    assert answer["type"] == "message_received", answer
    return answer["message"]


async def test_message_reaches_sender_and_both_recipient_tabs_with_one_id(trio):
    ann, ben, _ = trio
    a = await ann.connect(PAL)
    a2 = await ann.connect(PAL)
    b1 = await ben.connect(PAL)
    b2 = await ben.connect(PAL)
    sent = await pal_send(a, ben, "hello ben", clientId="p-1")
    assert sent["conversationId"] == conv(ann, ben) and sent["senderId"] == ann.id and sent["recipientId"] == ben.id
    assert sent["readAt"] is None and sent["clientId"] == "p-1" and isinstance(sent["id"], str)
    for ws in (a2, b1, b2):
        assert (await ws.expect("message_received"))["message"] == sent
    await a.expect_none("message_received")


async def test_typing_reaches_the_recipient(trio):
    ann, ben, _ = trio
    a = await ann.connect(PAL)
    b = await ben.connect(PAL)
    await a.send({"type": "typing", "recipientId": ben.id})
    assert await b.expect("user_typing") == {"type": "user_typing", "conversationId": conv(ann, ben), "userId": ann.id, "username": ann.username}
    await a.expect_none("user_typing")


async def test_read_receipts_reach_both(trio):
    ann, ben, _ = trio
    a = await ann.connect(PAL)
    b = await ben.connect(PAL)
    m1 = await pal_send(a, ben, "one")
    m2 = await pal_send(a, ben, "two")
    m3 = await pal_send(a, ben, "three")
    await b.expect("message_received", timeout=5)
    answer = await b.request({"type": "mark_read", "messageId": m2["id"]}, "message_read")
    assert answer["messageId"] == m2["id"] and answer["readBy"] == ben.id and answer["readAt"].endswith("Z")
    receipt = await a.expect("message_read")
    assert receipt["messageId"] == m2["id"] and receipt["conversationId"] == conv(ann, ben)
    history = await a.request({"type": "fetch_history", "conversationId": conv(ann, ben)}, "history_response")
    read = {m["id"]: m["readAt"] for m in history["messages"]}
    assert read[m1["id"]] and read[m2["id"]] and read[m3["id"]] is None


async def test_history_pages_250_messages_without_gap_or_repeat(trio):
    ann, ben, _ = trio
    http_sent = []
    cid = conv(ann, ben)
    for i in range(250):
        r = ann.http.post(f"/api/messagepal/conversations/{cid}/messages/", {"content": f"m{i}"})
        assert r.status_code == 201, r.text
        http_sent.append(r.json()["id"])
    b = await ben.connect(PAL)
    seen: list[str] = []
    before = None
    while True:
        event = {"type": "fetch_history", "conversationId": cid, "limit": 40}
        if before:
            event["before"] = before
        page = await b.request(event, "history_response")
        seen = [m["id"] for m in page["messages"]] + seen
        if not page["hasMore"]:
            break
        before = page["messages"][0]["id"]
    assert seen == http_sent
    # The same over HTTP, default page size 50.
    r = ben.http.get(f"/api/messagepal/conversations/{cid}/messages/")
    assert [m["id"] for m in r.json()["results"]] == http_sent[-50:] and r.json()["hasMore"] is True


async def test_http_send_arrives_on_the_websocket(trio):
    ann, ben, _ = trio
    b = await ben.connect(PAL)
    r = ann.http.post(f"/api/messagepal/conversations/{conv(ann, ben)}/messages/", {"content": "over http", "clientId": "h-1"})
    assert r.status_code == 201
    got = await b.expect("message_received")
    assert got["message"] == r.json()
    listed = ben.http.get("/api/messagepal/conversations/").json()
    assert listed[0]["conversationId"] == conv(ann, ben) and listed[0]["unreadCount"] == 1
    assert listed[0]["otherUser"] == {"id": ann.id, "username": ann.username, "displayName": ann.username.title()}


async def test_third_user_is_refused_everything(trio):
    ann, ben, eve = trio
    a = await ann.connect(PAL)
    sent = await pal_send(a, ben, "private")
    e = await eve.connect(PAL)
    cid = conv(ann, ben)
    for event, answer in [
        ({"type": "subscribe", "conversationId": cid}, "subscribed"),
        ({"type": "unsubscribe", "conversationId": cid}, "unsubscribed"),
        ({"type": "fetch_history", "conversationId": cid}, "history_response"),
        ({"type": "mark_read", "messageId": sent["id"]}, "message_read"),
    ]:
        err = await e.request(event, answer)
        assert err["type"] == "error" and err["code"] in ("forbidden", "not_found"), (event, err)
    assert eve.http.get(f"/api/messagepal/conversations/{cid}/messages/").status_code == 404
    assert eve.http.post(f"/api/messagepal/conversations/{cid}/messages/", {"content": "x"}).status_code == 404
    assert eve.http.get("/api/messagepal/conversations/").json() == []
    await e.expect_none("message_received")


async def test_idempotent_client_id(trio):
    ann, ben, _ = trio
    a = await ann.connect(PAL)
    b = await ben.connect(PAL)
    first = await pal_send(a, ben, "once", clientId="same")
    await b.expect("message_received")
    a_again = await ann.connect(PAL)
    again = await pal_send(a_again, ben, "once", clientId="same")
    assert again["id"] == first["id"]
    await b.expect_none("message_received")


async def test_bad_input_keeps_connection_usable(trio):
    ann, ben, _ = trio
    a = await ann.connect(PAL)
    for frame in [
        "nope",
        "[]",
        '{"type": "send_message"}',
        '{"type": "send_message", "recipientId": "2", "content": "x"}',
        '{"type": "send_message", "recipientId": 2, "content": ""}',
        '{"type": "mark_read", "messageId": 5}',
        '{"type": "fetch_history", "conversationId": "conv_2_1"}',
        '{"type": "subscribe"}',
        '{"type": "what"}',
    ]:
        await a.send(frame)
        assert (await a.expect("error"))["code"] == "bad_request", frame
    await a.send({"type": "send_message", "recipientId": ben.id, "content": "z" * 4001})
    assert (await a.expect("error"))["code"] == "bad_request"
    assert (await a.request({"type": "ping"}, "pong"))["type"] == "pong"
    assert ann.http.get("/api/messagepal/conversations/").json() == []


async def test_sender_edits_and_deletes_and_both_people_see_it(trio):
    ann, ben, cid = trio
    a = await ann.connect(PAL)
    b = await ben.connect(PAL)
    c = await cid.connect(PAL)
    sent = await pal_send(a, ben, "helo ben")
    assert sent["editedAt"] is None and sent["fileUrl"] is None and sent["file"] is None
    await b.expect("message_received")
    edited = await a.request({"type": "edit_message", "messageId": sent["id"], "content": " hello ben "}, "message_updated")
    assert edited["type"] == "message_updated" and edited["conversationId"] == conv(ann, ben)
    assert edited["message"]["content"] == "hello ben" and edited["message"]["editedAt"] is not None
    assert (await b.expect("message_updated"))["message"] == edited["message"]
    for ws, code in ((b, "forbidden"), (c, "not_found")):
        for event in ({"type": "edit_message", "messageId": sent["id"], "content": "x"}, {"type": "delete_message", "messageId": sent["id"]}):
            error = await ws.request(event, "none")
            assert (error["type"], error["code"]) == ("error", code), (event, error)
    deleted = await a.request({"type": "delete_message", "messageId": sent["id"]}, "message_deleted")
    assert deleted == {"type": "message_deleted", "conversationId": conv(ann, ben), "messageId": sent["id"], "requestId": deleted["requestId"]}
    assert (await b.expect("message_deleted"))["messageId"] == sent["id"]
    history = ben.http.get(f"/api/messagepal/conversations/{conv(ann, ben)}/messages/").json()["results"]
    assert sent["id"] not in [m["id"] for m in history]
    again = await a.request({"type": "edit_message", "messageId": sent["id"], "content": "back"}, "none")
    assert (again["type"], again["code"]) == ("error", "not_found")


# --- who can reach whom, blocks (PROTOCOL.md part 2) ------------------------------------


async def test_a_stranger_cannot_reach_a_student(trio, server):
    teacher, student, _ = trio
    stranger = Person(server)
    try:
        s = await stranger.connect(PAL)
        b = await student.connect(PAL)
        cid = conv(stranger, student)
        for event, answer in [
            ({"type": "send_message", "recipientId": student.id, "content": "hi, I am new here"}, "message_received"),
            ({"type": "typing", "recipientId": student.id}, "user_typing"),
            ({"type": "subscribe", "conversationId": cid}, "subscribed"),
            ({"type": "fetch_history", "conversationId": cid}, "history_response"),
        ]:
            err = await s.request(event, answer)
            assert (err["type"], err["code"]) == ("error", "forbidden"), (event, err)
        assert stranger.http.get(f"/api/messagepal/conversations/{cid}/messages/").status_code == 404
        assert stranger.http.post(f"/api/messagepal/conversations/{cid}/messages/", {"content": "hi"}).status_code == 404
        assert stranger.http.get(f"/api/users/?search={student.username}").json() == []
        assert student.http.get(f"/api/users/?search={stranger.username}").json() == []
        assert [u["id"] for u in student.http.get(f"/api/users/?search={teacher.username}").json()] == [teacher.id]
        await b.expect_none("message_received")
        await b.expect_none("user_typing")
        assert student.http.get("/api/messagepal/conversations/").json() == []
        # The student's own teacher reaches them.
        t = await teacher.connect(PAL)
        sent = await pal_send(t, student, "homework is on page 12")
        assert (await b.expect("message_received"))["message"] == sent
    finally:
        await stranger.close_all()


async def test_a_block_stops_sends_and_typing_both_ways(trio):
    ann, ben, _ = trio
    a = await ann.connect(PAL)
    b = await ben.connect(PAL)
    first = await pal_send(b, ann, "hi ann")
    await a.expect("message_received")
    r = ann.http.post("/api/messagepal/blocks/", {"userId": ben.id})
    assert r.status_code == 201 and r.json()["id"] == ben.id, r.text
    assert [u["id"] for u in ann.http.get("/api/messagepal/blocks/").json()] == [ben.id]
    for ws, other in ((b, ann), (a, ben)):
        err = await ws.request({"type": "send_message", "recipientId": other.id, "content": "are you there?"}, "message_received")
        assert (err["type"], err["code"]) == ("error", "forbidden"), err
        await ws.send({"type": "typing", "recipientId": other.id})
    cid = conv(ann, ben)
    for person in (ann, ben):
        assert person.http.post(f"/api/messagepal/conversations/{cid}/messages/", {"content": "over http"}).status_code == 403
    await a.expect_none("user_typing")
    await b.expect_none("user_typing")
    await a.expect_none("message_received")
    await b.expect_none("message_received")
    history = ben.http.get(f"/api/messagepal/conversations/{cid}/messages/").json()["results"]
    assert [m["id"] for m in history] == [first["id"]]
    assert ann.http.delete(f"/api/messagepal/blocks/{ben.id}/").status_code == 204
    assert ann.http.delete(f"/api/messagepal/blocks/{ben.id}/").status_code == 404
    sent = await pal_send(b, ann, "sorry")
    assert (await a.expect("message_received"))["message"] == sent
    await asyncio.sleep(2.1)  # past the typing coalescing (CHAT_TYPING_EVERY) of the refused ones
    await b.send({"type": "typing", "recipientId": ann.id})
    assert (await a.expect("user_typing"))["userId"] == ben.id
