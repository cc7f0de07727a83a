"""Workspace chat end to end: a real daphne process, real websockets clients,
real Redis and PostgreSQL in `make test`."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from tests.e2e.harness import Person, Server

pytestmark = pytest.mark.e2e


async def join(ws, channel_id: int, after_id: int | None = None) -> dict:
    event = {"type": "join_channel", "channelId": channel_id}
    if after_id is not None:
        event["afterId"] = after_id
    answer = await ws.request(event, "joined_channel")
    assert answer["type"] == "joined_channel", answer
    return answer


async def send(ws, channel_id: int, content: str, **extra) -> dict:
    answer = await ws.request({"type": "send_message", "channelId": channel_id, "content": content, **extra}, "new_message")
    assert answer["type"] == "new_message", answer
    return answer["message"]


async def test_two_users_chat_and_broadcast(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    sent = await send(a, classroom.general, "hello @" + classroom.bob.username, clientId="c-1")
    got = await b.expect("new_message")
    assert got["message"] == sent
    assert sent["authorId"] == classroom.alice.id and sent["authorUsername"] == classroom.alice.username
    assert sent["content"].startswith("hello") and sent["mentions"] == [classroom.bob.id]
    # The sender hears its message once: as the direct answer, not again as a broadcast.
    await a.expect_none("new_message")


async def test_typing_reaches_others_not_self(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    await a.send({"type": "typing", "channelId": classroom.general})
    typing = await b.expect("user_typing")
    assert typing == {
        "type": "user_typing",
        "channelId": classroom.general,
        "userId": classroom.alice.id,
        "username": classroom.alice.username,
        "displayName": "Alice S",
    }
    await a.send({"type": "stop_typing", "channelId": classroom.general})
    stop = await b.expect("user_stop_typing")
    assert stop["userId"] == classroom.alice.id
    await a.expect_none("user_typing")


async def test_read_receipts(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    m1 = await send(a, classroom.general, "one")
    m2 = await send(a, classroom.general, "two")
    answer = await b.request({"type": "mark_read", "channelId": classroom.general, "messageId": m1["id"]}, "message_read")
    assert answer["messageId"] == m1["id"] and answer["userId"] == classroom.bob.id
    receipt = await a.expect("message_read")
    assert receipt == {"type": "message_read", "channelId": classroom.general, "messageId": m1["id"], "userId": classroom.bob.id}
    page = classroom.alice.http.get(f"/api/channels/{classroom.general}/messages/").json()["results"]
    read_by = {m["id"]: m["readBy"] for m in page}
    assert read_by[m1["id"]] == [classroom.bob.id] and read_by[m2["id"]] == []
    unread = {c["id"]: c["unreadCount"] for c in classroom.bob.http.get(f"/api/workspaces/{classroom.workspace_id}/channels/").json()}
    assert unread[classroom.general] == 1


async def test_presence_counts_connections_per_user(classroom):
    watcher = await classroom.teacher.connect()
    await join(watcher, classroom.general)
    tab1 = await classroom.alice.connect()
    tab2 = await classroom.alice.connect()
    await join(tab1, classroom.general)
    online = await watcher.expect("user_presence", userId=classroom.alice.id)
    assert online["status"] == "online" and online["username"] == classroom.alice.username
    await join(tab2, classroom.general)
    await watcher.expect_none("user_presence", userId=classroom.alice.id)
    await tab1.close()
    await watcher.expect_none("user_presence", userId=classroom.alice.id)
    await tab2.request({"type": "leave_channel", "channelId": classroom.general}, "left_channel")
    offline = await watcher.expect("user_presence", userId=classroom.alice.id)
    assert offline["status"] == "offline"


async def test_closing_the_last_connection_is_offline(classroom):
    watcher = await classroom.teacher.connect()
    await join(watcher, classroom.general)
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    await watcher.expect("user_presence", userId=classroom.alice.id, status="online")
    await a.close()
    await watcher.expect("user_presence", userId=classroom.alice.id, status="offline")


async def test_catch_up_after_id_misses_nothing_repeats_nothing(classroom):
    sender = await classroom.alice.connect()
    await join(sender, classroom.general)
    first = [await send(sender, classroom.general, f"before {i}") for i in range(3)]
    reader = await classroom.bob.connect()
    await join(reader, classroom.general)
    await reader.close()
    offline = [await send(sender, classroom.general, f"while away {i}") for i in range(12)]

    async def keep_sending():
        return [await send(sender, classroom.general, f"during join {i}") for i in range(8)]

    back = await classroom.bob.connect()
    sending = asyncio.create_task(keep_sending())
    joined = await join(back, classroom.general, after_id=first[-1]["id"])
    during = await sending
    seen = [m["id"] for m in joined["missed"]]
    assert seen[: len(offline)] == [m["id"] for m in offline]
    assert seen == sorted(seen)
    live = []
    while len(seen) + len(live) < len(offline) + len(during):
        live.append((await back.expect("new_message"))["message"]["id"])
    everything = seen + live
    assert everything == [m["id"] for m in offline + during], "a gap or a repeat"
    await back.expect_none("new_message")
    assert joined["hasMore"] is False


async def test_join_without_after_id_has_empty_missed(classroom):
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    await send(a, classroom.general, "x")
    b = await classroom.bob.connect()
    joined = await join(b, classroom.general)
    assert joined["missed"] == [] and joined["hasMore"] is False


async def test_client_id_is_idempotent(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    first = await send(a, classroom.general, "only once", clientId="retry-me")
    await b.expect("new_message")
    # A reconnecting client resends on a new connection.
    a2 = await classroom.alice.connect()
    await join(a2, classroom.general)
    again = await send(a2, classroom.general, "only once", clientId="retry-me")
    assert again["id"] == first["id"]
    await b.expect_none("new_message")
    page = classroom.bob.http.get(f"/api/channels/{classroom.general}/messages/").json()["results"]
    assert [m["id"] for m in page].count(first["id"]) == 1 and len(page) == 1


async def test_ping_answers_pong_with_request_id(classroom):
    a = await classroom.alice.connect()
    await a.send({"type": "ping", "requestId": "hb-1"})
    assert await a.expect("pong") == {"type": "pong", "requestId": "hb-1"}


@pytest.fixture(scope="module")
def fast_ping_server(e2e_env):
    srv = Server({**e2e_env, "CHAT_PING_INTERVAL": "1", "CHAT_PING_TIMEOUT": "2"}, log_name="fastping").start()
    yield srv
    srv.stop()


def test_client_that_stops_answering_pings_is_closed(fast_ping_server):
    """A raw socket that completes the handshake, then never reads or answers
    pings, is disconnected by the server's heartbeat."""
    import base64
    import os
    import socket
    import time

    person = Person(fast_ping_server)
    sock = socket.create_connection(("127.0.0.1", fast_ping_server.port), timeout=15)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1:{fast_ping_server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {fast_ping_server.base}\r\nCookie: sessionid={person.http.session_id}\r\n\r\n"
        ).encode()
    )
    started = time.monotonic()
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # the server aborted the connection: closed too
            break
        if not chunk:
            break
        received += chunk
    elapsed = time.monotonic() - started
    assert b"101 Switching Protocols" in received
    assert b'"connected"' in received
    assert b"\x89" in received, "the server never pinged"
    assert elapsed < 12, f"still open after {elapsed:.1f}s (interval 1s + timeout 2s)"


BAD_FRAMES = [
    "not json",
    "[1, 2]",
    '"a string"',
    "null",
    "{}",
    '{"type": 5}',
    '{"type": "no_such_event"}',
    '{"type": "join_channel"}',
    '{"type": "join_channel", "channelId": "1"}',
    '{"type": "join_channel", "channelId": true}',
    '{"type": "join_channel", "channelId": -1}',
    '{"type": "join_channel", "channelId": 1.5}',
    '{"type": "join_channel", "channelId": 9007199254740993}',
    '{"type": "send_message", "channelId": 1}',
    '{"type": "send_message", "channelId": 1, "content": 42}',
    '{"type": "send_message", "channelId": 1, "content": "   "}',
    '{"type": "send_message", "channelId": 1, "content": "x", "messageType": "html"}',
    '{"type": "send_message", "channelId": 1, "content": "x", "fileUrl": "javascript:alert(1)"}',
    '{"type": "send_message", "channelId": 1, "content": "x", "fileUrl": "data:text/html,hi"}',
    '{"type": "send_message", "channelId": 1, "content": "x", "clientId": 7}',
    '{"type": "mark_read", "channelId": 1, "messageId": "2"}',
    '{"type": "ping", "requestId": 12}',
]


async def test_bad_input_gets_bad_request_and_connection_stays_usable(classroom):
    a = await classroom.alice.connect()
    for frame in BAD_FRAMES:
        await a.send(frame)
        error = await a.expect("error")
        assert error["code"] == "bad_request", (frame, error)
    await a.send({"type": "send_message", "channelId": classroom.general, "content": "y" * 4001, "requestId": "big"})
    error = await a.expect("error")
    assert error == {**error, "code": "bad_request", "requestId": "big"}
    await a.conn.send(b"\x00binary")
    assert (await a.expect("error"))["code"] == "bad_request"
    assert (await a.request({"type": "ping"}, "pong"))["type"] == "pong"
    await join(a, classroom.general)
    # Nothing of the bad frames was stored.
    assert classroom.alice.http.get(f"/api/channels/{classroom.general}/messages/").json()["results"] == []


async def test_error_codes(classroom):
    a = await classroom.alice.connect()
    # not_joined: sending to a channel this connection has not joined
    err = await a.request({"type": "send_message", "channelId": classroom.general, "content": "x"}, "new_message")
    assert err["type"] == "error" and err["code"] == "not_joined"
    err = await a.request({"type": "typing", "channelId": classroom.general}, "user_typing")
    assert err["code"] == "not_joined"
    await join(a, classroom.general)
    # not_found: a message that is not in the channel
    err = await a.request({"type": "mark_read", "channelId": classroom.general, "messageId": 12345}, "message_read")
    assert err["code"] == "not_found"
    # forbidden: a student pinning
    m = await send(a, classroom.general, "pin me")
    err = await a.request({"type": "pin_message", "channelId": classroom.general, "messageId": m["id"]}, "message_pinned")
    assert err["code"] == "forbidden"
    # a teacher may pin: everyone hears message_pinned
    t = await classroom.teacher.connect()
    await join(t, classroom.general)
    pinned = await t.request({"type": "pin_message", "channelId": classroom.general, "messageId": m["id"]}, "message_pinned")
    assert pinned["pinnedBy"] == {"userId": classroom.teacher.id, "username": classroom.teacher.username}
    assert (await a.expect("message_pinned"))["messageId"] == m["id"]
    pins = classroom.alice.http.get(f"/api/channels/{classroom.general}/pins/").json()
    assert [p["id"] for p in pins] == [m["id"]] and pins[0]["isPinned"] is True
    # forbidden/not_found: a channel that does not exist looks like one we may not see
    err = await a.request({"type": "join_channel", "channelId": 987654321}, "joined_channel")
    assert err["code"] in ("forbidden", "not_found")


async def test_no_session_is_closed_with_4001(server):
    async with websockets.connect(server.ws_base + "/ws/chat/", additional_headers={"Origin": server.base}) as conn:
        event = json.loads(await conn.recv())
        assert event["type"] == "error" and event["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.recv()
        assert closed.value.rcvd.code == 4001


async def test_bad_session_cookie_is_closed_with_4001(server):
    headers = {"Origin": server.base, "Cookie": "sessionid=forged-session-value"}
    async with websockets.connect(server.ws_base + "/ws/chat/", additional_headers=headers) as conn:
        assert json.loads(await conn.recv())["code"] == "unauthorized"
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await conn.recv()
        assert closed.value.rcvd.code == 4001


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_foreign_or_missing_origin_is_refused(classroom, origin):
    headers = {"Cookie": f"sessionid={classroom.alice.http.session_id}"}
    if origin:
        headers["Origin"] = origin
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(classroom.server.ws_base + "/ws/chat/", additional_headers=headers, open_timeout=5)
    assert refused.value.response.status_code == 403


async def test_path_without_trailing_slash(classroom):
    ws = await classroom.alice.connect("/ws/chat")
    await join(ws, classroom.general)


async def test_non_member_and_dm_outsider_are_refused_over_ws_and_http(classroom):
    outsider = await classroom.outsider.connect()
    err = await outsider.request({"type": "join_channel", "channelId": classroom.general}, "joined_channel")
    assert err["code"] in ("forbidden", "not_found")
    assert classroom.outsider.http.get(f"/api/channels/{classroom.general}/messages/").status_code == 404
    assert classroom.outsider.http.get(f"/api/workspaces/{classroom.workspace_id}/").status_code == 404
    # A DM of alice and bob; the teacher is in the workspace but not in the DM.
    r = classroom.alice.http.post(f"/api/workspaces/{classroom.workspace_id}/dms/", {"userId": classroom.bob.id})
    assert r.status_code == 201 and sorted(r.json()["memberIds"]) == sorted([classroom.alice.id, classroom.bob.id])
    dm = r.json()["id"]
    assert classroom.bob.http.post(f"/api/workspaces/{classroom.workspace_id}/dms/", {"userId": classroom.alice.id}).json()["id"] == dm
    a = await classroom.alice.connect()
    await join(a, dm)
    await send(a, dm, "secret")
    t = await classroom.teacher.connect()
    err = await t.request({"type": "join_channel", "channelId": dm}, "joined_channel")
    assert err["code"] in ("forbidden", "not_found")
    err = await t.request({"type": "mark_read", "channelId": dm, "messageId": 1}, "message_read")
    assert err["code"] in ("forbidden", "not_found")
    assert classroom.teacher.http.get(f"/api/channels/{dm}/messages/").status_code == 404
    assert classroom.teacher.http.get(f"/api/channels/{dm}/pins/").status_code == 404
    listed = [c["id"] for c in classroom.teacher.http.get(f"/api/workspaces/{classroom.workspace_id}/channels/").json()]
    assert dm not in listed and classroom.general in listed


async def test_frame_over_limit_closes_with_1009(classroom):
    a = await classroom.alice.connect()
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await a.conn.send("x" * (70 * 1024))
        await a.conn.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_announcement_channel_students_cannot_post(classroom):
    r = classroom.teacher.http.post(f"/api/workspaces/{classroom.workspace_id}/channels/", {"name": "news", "kind": "announcement"})
    news = r.json()["id"]
    s = await classroom.alice.connect()
    t = await classroom.teacher.connect()
    await join(s, news)
    await join(t, news)
    err = await s.request({"type": "send_message", "channelId": news, "content": "hi"}, "new_message")
    assert err["code"] == "forbidden"
    await send(t, news, "Exam on Friday", messageType="announcement")
    assert (await s.expect("new_message"))["message"]["messageType"] == "announcement"


@pytest.fixture(scope="module")
def limited_server(e2e_env):
    srv = Server({**e2e_env, "CHAT_RATE_LIMIT_MESSAGES": "3", "CHAT_RATE_LIMIT_WINDOW": "60"}, log_name="limited").start()
    yield srv
    srv.stop()


async def test_rate_limit_is_per_user_across_connections(limited_server):
    from tests.e2e.conftest import Classroom

    room = Classroom(limited_server)
    try:
        tab1 = await room.alice.connect()
        tab2 = await room.alice.connect()
        await join(tab1, room.general)
        await join(tab2, room.general)
        await send(tab1, room.general, "1")
        await send(tab2, room.general, "2")
        await send(tab1, room.general, "3")
        err = await tab2.request({"type": "send_message", "channelId": room.general, "content": "4"}, "new_message")
        assert err["code"] == "rate_limited" and err["retryAfter"] >= 1
        # Another user has a bucket of their own.
        b = await room.bob.connect()
        await join(b, room.general)
        await send(b, room.general, "bob's")
        page = room.alice.http.get(f"/api/channels/{room.general}/messages/").json()["results"]
        assert [m["content"] for m in page] == ["1", "2", "3", "bob's"]
    finally:
        await room.close()


async def test_logout_closes_that_sessions_sockets(classroom):
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    other_device = classroom.alice.relogin(classroom.server)
    b = await other_device.connect()
    assert classroom.alice.http.post("/api/auth/logout/").status_code == 204
    assert (await a.expect("error"))["code"] == "unauthorized"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await a.conn.recv()
    assert closed.value.rcvd.code == 4001
    # The other login session stays connected.
    assert (await b.request({"type": "ping"}, "pong"))["type"] == "pong"
    assert classroom.alice.http.get("/api/auth/me/").status_code == 403
