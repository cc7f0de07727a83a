"""Two daphne processes on one Redis act as one chat."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Person, Server, share_workspace
from tests.e2e.test_chat_e2e import join, send

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]


def start_pair(env: dict[str, str], **extra: str) -> tuple[Server, Server]:
    first = Server({**env, **extra}, log_name="node-a").start()
    try:
        second = Server({**env, **extra}, log_name="node-b").start()
    except BaseException:
        first.stop()
        raise
    return first, second


@pytest.fixture
async def room(pair):
    node_a, node_b = pair
    classroom = Classroom(node_a)
    # The same people, logged in on the other process too.
    classroom.bob_b = classroom.bob.relogin(node_b)
    classroom.teacher_b = classroom.teacher.relogin(node_b)
    yield classroom
    await classroom.close()
    await classroom.bob_b.close_all()
    await classroom.teacher_b.close_all()


async def test_message_sent_on_one_process_reaches_members_on_the_other(room):
    a = await room.alice.connect()
    b = await room.bob_b.connect()
    await join(a, room.general)
    await join(b, room.general)
    sent = await send(a, room.general, "across processes")
    assert (await b.expect("new_message"))["message"] == sent


async def test_presence_and_typing_cross_processes(room):
    watcher = await room.teacher_b.connect()
    await join(watcher, room.general)
    a = await room.alice.connect()
    await join(a, room.general)
    assert (await watcher.expect("user_presence", userId=room.alice.id))["status"] == "online"
    # A second connection of alice on the other process: still one "online".
    a_other = await room.alice.relogin(room.bob_b.server).connect()
    await join(a_other, room.general)
    await watcher.expect_none("user_presence", userId=room.alice.id)
    await a.send({"type": "typing", "channelId": room.general})
    assert (await watcher.expect("user_typing"))["userId"] == room.alice.id
    await a.close()
    await watcher.expect_none("user_presence", userId=room.alice.id, status="offline")
    await a_other.close()
    assert (await watcher.expect("user_presence", userId=room.alice.id, status="offline"))["status"] == "offline"


async def test_catch_up_across_processes(room):
    a = await room.alice.connect()
    await join(a, room.general)
    first = await send(a, room.general, "seen")
    later = [await send(a, room.general, f"missed {i}") for i in range(5)]
    b = await room.bob_b.connect()
    joined = await join(b, room.general, after_id=first["id"])
    assert [m["id"] for m in joined["missed"]] == [m["id"] for m in later]


async def test_messagepal_crosses_processes(pair):
    node_a, node_b = pair
    ann = Person(node_a)
    ben = Person(node_a).relogin(node_b)
    share_workspace(Person(node_a), ann, ben)  # MessagePal connects people who share a workspace
    try:
        a = await ann.connect("/ws/messagepal/")
        b = await ben.connect("/ws/messagepal/")
        answer = await a.request({"type": "send_message", "recipientId": ben.id, "content": "hi from A"}, "message_received")
        assert (await b.expect("message_received"))["message"] == answer["message"]
        await a.send({"type": "typing", "recipientId": ben.id})
        assert (await b.expect("user_typing"))["userId"] == ann.id
    finally:
        await ann.close_all()
        await ben.close_all()


@pytest.fixture(scope="module")
def limited_pair(e2e_env, pair):
    a, b = start_pair(e2e_env, CHAT_RATE_LIMIT_MESSAGES="3", CHAT_RATE_LIMIT_WINDOW="60")
    yield a, b
    a.stop()
    b.stop()


async def test_rate_limit_is_shared_across_processes(limited_pair):
    node_a, node_b = limited_pair
    room = Classroom(node_a)
    alice_b = room.alice.relogin(node_b)
    try:
        on_a = await room.alice.connect()
        on_b = await alice_b.connect()
        await join(on_a, room.general)
        await join(on_b, room.general)
        await send(on_a, room.general, "1")
        await send(on_b, room.general, "2")
        await send(on_a, room.general, "3")
        err = await on_b.request({"type": "send_message", "channelId": room.general, "content": "4"}, "new_message")
        assert err["code"] == "rate_limited"
    finally:
        await room.close()
        await alice_b.close_all()


async def test_reactions_added_at_once_on_both_processes_all_count(room):
    """Lifecycle across processes: many people react to one message at the
    same moment, half through each daphne; every reaction counts, and both
    processes' members see the final counts."""
    a = await room.alice.connect()
    b = await room.bob_b.connect()
    await join(a, room.general)
    await join(b, room.general)
    sent = await send(a, room.general, "react from everywhere")
    people = [Person(node, display_name=f"Reactor {i}") for i, node in enumerate([room.server, room.bob_b.server] * 6)]
    for person in people:
        r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/members/", {"username": person.username, "role": "student"})
        assert r.status_code == 201, r.text
    sockets = [await person.connect() for person in people]
    for ws in sockets:
        await join(ws, room.general)

    async def react(ws) -> None:
        for emoji in ("👍", "🎉"):
            answer = await ws.request({"type": "add_reaction", "channelId": room.general, "messageId": sent["id"], "emoji": emoji}, "reaction_updated")
            assert answer["type"] == "reaction_updated", answer

    await asyncio.gather(*(react(ws) for ws in sockets))
    expected = [{"emoji": e, "count": len(people), "userIds": sorted(p.id for p in people)} for e in ("👍", "🎉")]
    final = room.alice.http.get(f"/api/channels/{room.general}/messages/").json()["results"][-1]["reactions"]
    assert sorted(final, key=lambda r: r["emoji"]) == sorted(expected, key=lambda r: r["emoji"])
    for watcher in (a, b):
        # Every change once, in changeId order, on both processes' connections.
        seen = [await watcher.expect("reaction_updated") for _ in range(2 * len(people))]
        assert [e["changeId"] for e in seen] == list(range(1, 2 * len(people) + 1))
        assert sorted(seen[-1]["reactions"], key=lambda r: r["emoji"]) == sorted(expected, key=lambda r: r["emoji"])
    for person in people:
        await person.close_all()


async def test_a_removed_member_hears_nothing_more_on_the_other_process(room):
    """Removal from the workspace (HTTP on node a) reaches Bob's connection on
    node b at once: `removed_from_channel`, and no later message of it."""
    a = await room.alice.connect()
    b = await room.bob_b.connect()
    await join(a, room.general)
    await join(b, room.general)
    await send(a, room.general, "before")
    await b.expect("new_message")
    r = room.teacher.http.delete(f"/api/workspaces/{room.workspace_id}/members/{room.bob.id}/")
    assert r.status_code == 204, r.text
    assert await b.expect("removed_from_channel") == {"type": "removed_from_channel", "channelId": room.general}
    await send(a, room.general, "after")
    await b.expect_none("new_message", wait=1.0)
    refused = await b.request({"type": "join_channel", "channelId": room.general}, "joined_channel")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    typing = await b.request({"type": "typing", "channelId": room.general}, "none")
    assert (typing["type"], typing["code"]) == ("error", "not_joined")
