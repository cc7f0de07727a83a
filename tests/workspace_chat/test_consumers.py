"""ChatConsumer through channels.testing.WebsocketCommunicator (in-memory
layer, real database)."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

import messagestore as store_module
from chatsite.routing import websocket_urlpatterns
from messagestore import StoreError
from messagestore.sql import SqlMessageStore
from tests.schemas import check_chat_event

pytestmark = pytest.mark.django_db(transaction=True)

app = URLRouter(websocket_urlpatterns)


async def connect(user) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(app, "/ws/chat/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    hello = await receive(comm)
    assert hello["type"] == "connected" and hello["userId"] == user.id
    return comm


async def receive(comm, timeout: float = 2) -> dict:
    event = await comm.receive_json_from(timeout)
    check_chat_event(event)
    return event


async def request(comm, event: dict) -> dict:
    await comm.send_json_to({**event, "requestId": "rq"})
    while True:
        answer = await receive(comm)
        if answer.get("requestId") == "rq":
            return answer


async def joined(user, channel) -> WebsocketCommunicator:
    comm = await connect(user)
    answer = await request(comm, {"type": "join_channel", "channelId": channel.id})
    assert answer["type"] == "joined_channel"
    return comm


async def test_anonymous_is_closed_with_4001():
    from django.contrib.auth.models import AnonymousUser

    comm = WebsocketCommunicator(app, "/ws/chat/")
    comm.scope["user"] = AnonymousUser()
    await comm.connect()
    assert (await comm.receive_json_from())["code"] == "unauthorized"
    assert (await comm.receive_output())["code"] == 4001


async def test_send_reaches_channel_and_sender_gets_request_id(school):
    a = await joined(school.alice, school.general)
    b = await joined(school.carol, school.general)
    answer = await request(a, {"type": "send_message", "channelId": school.general.id, "content": "hi"})
    assert answer["type"] == "new_message" and answer["requestId"] == "rq"
    got = await b.receive_json_from()
    while got["type"] != "new_message":
        got = await b.receive_json_from()
    assert got["message"]["id"] == answer["message"]["id"] and "requestId" not in got
    await a.disconnect()
    await b.disconnect()


async def test_inactive_user_is_refused(school):
    school.carol.is_active = False
    await database_sync_to_async(school.carol.save)()
    comm = WebsocketCommunicator(app, "/ws/chat/")
    comm.scope["user"] = school.carol
    await comm.connect()
    assert (await comm.receive_json_from())["code"] == "unauthorized"


async def test_private_channel_and_workspace_outsider(school):
    carol = await connect(school.carol)
    answer = await request(carol, {"type": "join_channel", "channelId": school.staff.id})
    assert answer["type"] == "error" and answer["code"] == "forbidden"
    dave = await connect(school.dave)
    answer = await request(dave, {"type": "join_channel", "channelId": school.general.id})
    assert answer["code"] == "forbidden"
    # The same answer for a channel that does not exist: nothing leaks.
    nothing = await request(dave, {"type": "join_channel", "channelId": 99999})
    assert {k: v for k, v in nothing.items() if k != "message"} == {k: v for k, v in answer.items() if k != "message"}
    await carol.disconnect()
    await dave.disconnect()


async def test_store_failure_is_server_error_and_nothing_is_broadcast(school):
    class BrokenStore(SqlMessageStore):
        def append(self, new):
            raise StoreError("cluster unreachable")

    a = await joined(school.alice, school.general)
    b = await joined(school.bob, school.general)
    store_module._store = BrokenStore()
    try:
        answer = await request(a, {"type": "send_message", "channelId": school.general.id, "content": "lost?"})
        assert answer["type"] == "error" and answer["code"] == "server_error"
        while not await b.receive_nothing(0.3):
            assert (await b.receive_json_from())["type"] != "new_message"
    finally:
        store_module.reset_store()
    # Service resumes when the store is back.
    answer = await request(a, {"type": "send_message", "channelId": school.general.id, "content": "back"})
    assert answer["type"] == "new_message"
    await a.disconnect()
    await b.disconnect()


async def test_typing_is_not_echoed_to_the_typist(school):
    a = await joined(school.alice, school.general)
    b = await joined(school.bob, school.general)
    await a.send_json_to({"type": "typing", "channelId": school.general.id})
    event = await b.receive_json_from()
    while event["type"] != "user_typing":
        event = await b.receive_json_from()
    assert event["userId"] == school.alice.id
    while not await a.receive_nothing(0.2):
        assert (await a.receive_json_from())["type"] != "user_typing"
    await a.disconnect()
    await b.disconnect()


async def test_leave_then_broadcasts_stop(school):
    a = await joined(school.alice, school.general)
    b = await joined(school.bob, school.general)
    left = await request(b, {"type": "leave_channel", "channelId": school.general.id})
    assert left == {"type": "left_channel", "channelId": school.general.id, "requestId": "rq"}
    await request(a, {"type": "send_message", "channelId": school.general.id, "content": "after leave"})
    while not await b.receive_nothing(0.3):
        assert (await b.receive_json_from())["type"] != "new_message"
    answer = await request(b, {"type": "send_message", "channelId": school.general.id, "content": "x"})
    assert answer["code"] == "not_joined"
    await a.disconnect()
    await b.disconnect()


async def test_binary_frame_is_bad_request(school):
    a = await connect(school.alice)
    await a.send_to(bytes_data=b"\x01\x02")
    assert (await receive(a))["code"] == "bad_request"
    await a.send_to(text_data=json.dumps({"type": "ping"}))
    assert (await receive(a)) == {"type": "pong"}
    await a.disconnect()


async def test_deactivated_user_sockets_are_closed(school):
    from accounts.services import user_deactivate

    a = await joined(school.carol, school.general)
    await database_sync_to_async(user_deactivate)(user=school.carol)
    event = await receive(a)
    while event["type"] != "error":
        event = await receive(a)
    assert event["code"] == "unauthorized"
    assert (await a.receive_output())["code"] == 4001
