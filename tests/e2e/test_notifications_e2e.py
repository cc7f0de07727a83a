"""Presence snapshot, mentions and notifications over the wire (PROTOCOL.md
part 2), on real daphne processes and Redis: `joined_channel.online` across
processes, `notification` events to connections that did not join the
channel, and joins left unannounced in large channels."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server
from tests.e2e.test_chat_e2e import join, send

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]


@pytest.fixture
async def room(pair):
    node_a, node_b = pair
    classroom = Classroom(node_a)
    classroom.bob_b = classroom.bob.relogin(node_b)
    yield classroom
    await classroom.close()
    await classroom.bob_b.close_all()


async def test_joined_channel_lists_who_is_online_across_processes(room):
    teacher = await room.teacher.connect()
    assert (await join(teacher, room.general))["online"] == [room.teacher.id]
    bob = await room.bob_b.connect()  # on the other process
    assert sorted((await join(bob, room.general))["online"]) == sorted([room.teacher.id, room.bob.id])
    assert (await teacher.expect("user_presence", userId=room.bob.id))["status"] == "online"
    alice = await room.alice.connect()  # connected, but not joined to #general: not online there
    await bob.close()
    await teacher.expect("user_presence", userId=room.bob.id, status="offline")
    assert (await join(alice, room.general))["online"] == sorted([room.teacher.id, room.alice.id])


async def test_a_mention_through_one_process_notifies_every_connection_of_the_user_on_the_other(room):
    sender = await room.alice.connect()
    await join(sender, room.general)
    in_channel = await room.bob_b.connect()
    await join(in_channel, room.general)
    elsewhere = await room.bob_b.connect()  # bob's second tab, in no channel at all
    message = await send(sender, room.general, f"@{room.bob.username} the quiz is moved")
    for ws in (in_channel, elsewhere):
        note = await ws.expect("notification")
        assert note == {
            "type": "notification", "kind": "mention", "workspaceId": room.workspace_id, "channelId": room.general, "message": note["message"],
        }  # fmt: skip
        assert note["message"]["id"] == message["id"] and note["message"]["content"] == message["content"]
    await sender.expect_none("notification")  # never for one's own message
    # Listed, then read by mark_read over the socket.
    listed = room.bob_b.http.get("/api/notifications/?unread=1").json()["results"]
    assert [n["message"]["id"] for n in listed] == [message["id"]]
    channels = {c["id"]: c for c in room.bob.http.get(f"/api/workspaces/{room.workspace_id}/channels/").json()}
    assert channels[room.general]["mentionCount"] == 1
    await in_channel.request({"type": "mark_read", "channelId": room.general, "messageId": message["id"]}, "message_read")
    assert room.bob_b.http.get("/api/notifications/?unread=1").json()["results"] == []
    channels = {c["id"]: c for c in room.bob.http.get(f"/api/workspaces/{room.workspace_id}/channels/").json()}
    assert channels[room.general]["mentionCount"] == 0


async def test_a_dm_notifies_the_other_member_and_level_all_brings_every_message(room):
    r = room.alice.http.post(f"/api/workspaces/{room.workspace_id}/dms/", {"userId": room.bob.id})
    assert r.status_code in (200, 201), r.text
    dm = r.json()["id"]
    alice = await room.alice.connect()
    await join(alice, dm)
    bob = await room.bob_b.connect()
    await send(alice, dm, "are you coming?")
    assert (await bob.expect("notification"))["kind"] == "dm"
    assert room.bob.http.put(f"/api/channels/{room.general}/notifications/", {"level": "all"}).json() == {"level": "all"}
    await join(alice, room.general)
    await send(alice, room.general, "plain news")
    note = await bob.expect("notification", kind="message")
    assert note["channelId"] == room.general


async def test_a_large_channel_lists_who_is_online_but_announces_no_joins(e2e_env):
    # The classroom has three members: over a limit of 2, joins go unannounced.
    server = Server({**e2e_env, "CHAT_PRESENCE_MAX_MEMBERS": "2"}, log_name="large").start()
    try:
        room = Classroom(server)
        teacher = await room.teacher.connect()
        await join(teacher, room.general)
        alice = await room.alice.connect()
        assert sorted((await join(alice, room.general))["online"]) == sorted([room.teacher.id, room.alice.id])
        await teacher.expect_none("user_presence", wait=1.0)
        await alice.close()
        await teacher.expect_none("user_presence", wait=1.0)
        bob = await room.bob.connect()
        assert sorted((await join(bob, room.general))["online"]) == sorted([room.teacher.id, room.bob.id])
        await room.close()
    finally:
        server.stop()
