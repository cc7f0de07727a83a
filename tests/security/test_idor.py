"""Cross-user access (IDOR): a generated matrix of users x objects x actions,
over HTTP and over both WebSockets. The expected answer comes from the rules
of PROTOCOL.md, written once here, independently of the product's code."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import pytest
from django.test import Client

from messagepal import services as pal
from tests.workspace_chat.test_consumers import connect, request
from workspace_chat import services
from workspace_chat.models import ChannelKind

pytestmark = pytest.mark.django_db(transaction=True)

ROLES = {"alice": "admin", "bob": "teacher", "carol": "student", "erin": "student", "dave": None}


@dataclass
class World:
    users: dict
    workspace_id: int
    channels: dict  # name -> (channel id, member usernames or None for public)
    messages: dict  # channel name -> message id
    conversation: str
    pal_message: str
    # alice and dave (an outsider) wrote while the operator let anyone reach
    # anyone; now out of reach (PROTOCOL.md part 2, "Who can reach whom").
    stranger_conversation: str


# alice blocks erin (MessagePal); nobody else blocks anybody.
BLOCKS = {("alice", "erin")}


def can_pal(sender: str, recipient: str) -> bool:
    """MessagePal connects two people of one workspace with no block between them."""
    members = ROLES[sender] is not None and ROLES[recipient] is not None
    return sender != recipient and members and (sender, recipient) not in BLOCKS and (recipient, sender) not in BLOCKS


@pytest.fixture
def world(make_user, settings) -> World:
    settings.CHAT_RATE_LIMIT_MESSAGES = 1000
    users = {name: make_user(name) for name in ROLES}
    alice = users["alice"]
    ws = services.workspace_create(user=alice, name="W").workspace
    for name, role in ROLES.items():
        if role and name != "alice":
            services.workspace_member_add(actor=alice, workspace_id=ws.id, username=name, role=role)
    general = services.channel_create(actor=alice, workspace_id=ws.id, name="general", kind=ChannelKind.TEXT, is_private=False)
    staff = services.channel_create(actor=alice, workspace_id=ws.id, name="staff", kind=ChannelKind.TEXT, is_private=True)
    dm, _ = services.dm_get_or_create(actor=alice, workspace_id=ws.id, user_id=users["carol"].id)
    channels = {"general": (general.id, None), "staff": (staff.id, {"alice"}), "dm": (dm.id, {"alice", "carol"})}
    messages = {
        name: services.message_send(user=alice, channel_id=cid, content=f"in {name}").message["id"] for name, (cid, _) in channels.items()
    }
    message, _ = pal.pal_message_send(sender=alice, recipient_id=users["carol"].id, content="pal")
    settings.CHAT_MESSAGEPAL_SCOPE = "anyone"
    stranger, _ = pal.pal_message_send(sender=alice, recipient_id=users["dave"].id, content="from when anyone could")
    settings.CHAT_MESSAGEPAL_SCOPE = "workspace"
    for blocker, blocked in BLOCKS:
        pal.block_create(blocker=users[blocker], user_id=users[blocked].id)
    return World(users, ws.id, channels, messages, message["conversationId"], message["id"], stranger["conversationId"])


def can_read(world: World, user: str, channel: str) -> bool:
    members = world.channels[channel][1]
    return ROLES[user] is not None and (members is None or user in members)


def is_staff(user: str) -> bool:
    return ROLES[user] in ("admin", "teacher")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def call(client: Client, method: str, path: str, body=None):
    if method == "GET":
        return client.get(path)
    if method == "DELETE":
        return client.delete(path)
    if method == "PATCH":
        return client.patch(path, json.dumps(body or {}), content_type="application/json")
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def http_cases(world: World):
    """(user, description, method, path, body, expected status)."""
    ws = world.workspace_id
    for user in ROLES:
        member = ROLES[user] is not None
        yield user, "workspace detail", "GET", f"/api/workspaces/{ws}/", None, 200 if member else 404
        yield user, "channel list", "GET", f"/api/workspaces/{ws}/channels/", None, 200 if member else 404
        add_expected = 404 if not member else (201 if ROLES[user] == "admin" else 403)
        yield user, "add member", "POST", f"/api/workspaces/{ws}/members/", {"username": "erin", "role": "student"}, add_expected
        create_expected = 404 if not member else (201 if is_staff(user) else 403)
        yield user, "create channel", "POST", f"/api/workspaces/{ws}/channels/", {"name": f"c-{user}"}, create_expected
        other = "bob" if user != "bob" else "carol"
        dm_expected = 404 if not member else 201
        yield user, "open DM", "POST", f"/api/workspaces/{ws}/dms/", {"userId": world.users[other].id}, (dm_expected, 200)
        for channel, (cid, _) in world.channels.items():
            readable = can_read(world, user, channel)
            yield user, f"history {channel}", "GET", f"/api/channels/{cid}/messages/", None, 200 if readable else 404
            yield user, f"pins {channel}", "GET", f"/api/channels/{cid}/pins/", None, 200 if readable else 404
            grade_expected = 404 if not readable else (200 if is_staff(user) else 403)
            mid = world.messages[channel]
            yield user, f"grade {channel}", "POST", f"/api/channels/{cid}/messages/{mid}/grade/", {"grade": "A"}, grade_expected
            # Part 2: the message lifecycle and safeguarding (alice wrote every message).
            base = f"/api/channels/{cid}/messages/{mid}/"
            yield user, f"edit {channel}", "PATCH", base, {"content": "edited"}, 404 if not readable else (200 if user == "alice" else 403)
            # erin is muted by then (alice's "mute erin" below runs first): reactions refused.
            yield user, f"react {channel}", "POST", f"{base}reactions/", {"emoji": "👍"}, 404 if not readable else (403 if user == "erin" else 200)
            yield user, f"thread {channel}", "GET", f"{base}thread/", None, 200 if readable else 404
            yield user, f"report {channel}", "POST", f"{base}report/", {"reason": "check"}, 201 if readable else 404
            yield user, f"members of {channel}", "GET", f"/api/channels/{cid}/members/", None, 200 if readable else 404
        staff_only = 404 if not member else (200 if is_staff(user) else 403)
        yield user, "reports", "GET", f"/api/workspaces/{ws}/reports/", None, staff_only
        yield user, "invites", "GET", f"/api/workspaces/{ws}/invites/", None, staff_only
        yield user, "invite a student", "POST", f"/api/workspaces/{ws}/invites/", {}, 201 if staff_only == 200 else staff_only
        yield user, "mute erin", "POST", f"/api/workspaces/{ws}/mutes/", {"userId": world.users["erin"].id, "minutes": 1}, (
            400 if user == "erin" and member else (201 if staff_only == 200 else staff_only)
        )
        yield user, "audit log", "GET", f"/api/workspaces/{ws}/audit/", None, 404 if not member else (200 if ROLES[user] == "admin" else 403)
        yield user, "erin's role", "PATCH", f"/api/workspaces/{ws}/members/{world.users['erin'].id}/", {"role": "student"}, (
            404 if not member else (200 if ROLES[user] == "admin" else 403)
        )
        participant = user in ("alice", "carol")
        path = f"/api/messagepal/conversations/{world.conversation}/messages/"
        yield user, "pal history", "GET", path, None, 200 if participant else 404
        yield user, "pal send", "POST", path, {"content": "hi"}, 201 if participant else 404
        # Out of reach: 404 to its own participants as to everyone else.
        path = f"/api/messagepal/conversations/{world.stranger_conversation}/messages/"
        yield user, "pal history out of reach", "GET", path, None, 404
        yield user, "pal send out of reach", "POST", path, {"content": "hi"}, 404
        yield user, "user search", "GET", "/api/users/?search=", None, 200
        yield user, "block list", "GET", "/api/messagepal/blocks/", None, 200
        yield user, "block bob", "POST", "/api/messagepal/blocks/", {"userId": world.users["bob"].id}, 400 if user == "bob" else 201
        if user != "alice":  # alice's block of erin is hers alone to lift
            yield user, "unblock someone else's block", "DELETE", f"/api/messagepal/blocks/{world.users['erin'].id}/", None, 404


def test_http_access_matrix(world):
    failures = []
    cases = list(http_cases(world))
    for user, what, method, path, body, expected in cases:
        response = call(client_for(world.users[user]), method, path, body)
        allowed = expected if isinstance(expected, tuple) else (expected,)
        if response.status_code not in allowed:
            failures.append(f"{user} {what}: {response.status_code}, expected {expected}")
        if response.status_code == 404 and any(f"in {name}" in response.content.decode() for name in world.channels):
            failures.append(f"{user} {what}: a 404 leaked message content")
    assert not failures, "\n".join(failures)
    assert len(cases) >= 5 * 12
    # Nobody lifted alice's block of erin; each blocked bob for themself.
    blocked = {u["username"] for u in call(client_for(world.users["alice"]), "GET", "/api/messagepal/blocks/").json()}
    assert blocked == {"erin", "bob"}


def test_each_sees_only_their_own_blocks_and_people_they_share_a_workspace_with(world):
    for user in ROLES:
        client = client_for(world.users[user])
        blocked = {u["username"] for u in client.get("/api/messagepal/blocks/").json()}
        assert blocked == {b for a, b in BLOCKS if a == user}, user
        found = {u["username"] for u in client.get("/api/users/?search=").json()}
        assert found == {other for other in ROLES if other != user and ROLES[user] and ROLES[other]}, user


def test_anonymous_gets_403_everywhere(world):
    client = Client()
    for _, what, method, path, body, _ in http_cases(world):
        assert call(client, method, path, body).status_code == 403, (what, path)


async def test_ws_access_matrix(world):
    failures = []
    for user, channel in itertools.product(ROLES, world.channels):
        cid = world.channels[channel][0]
        readable = can_read(world, user, channel)
        comm = await connect(world.users[user])
        joined = await request(comm, {"type": "join_channel", "channelId": cid, "afterId": 1})
        if readable != (joined["type"] == "joined_channel"):
            failures.append(f"{user} join {channel}: {joined}")
        if not readable and joined.get("code") != "forbidden":
            failures.append(f"{user} join {channel}: expected forbidden, got {joined}")
        if not readable and "missed" in joined:
            failures.append(f"{user} join {channel}: leaked messages")
        read = await request(comm, {"type": "mark_read", "channelId": cid, "messageId": world.messages[channel]})
        if readable != (read["type"] == "message_read"):
            failures.append(f"{user} mark_read {channel}: {read}")
        pin = await request(comm, {"type": "pin_message", "channelId": cid, "messageId": world.messages[channel]})
        if (readable and is_staff(user)) != (pin["type"] == "message_pinned"):
            failures.append(f"{user} pin {channel}: {pin}")
        send = await request(comm, {"type": "send_message", "channelId": cid, "content": "x"})
        if readable != (send["type"] == "new_message"):
            failures.append(f"{user} send {channel}: {send}")
        await comm.disconnect()
    assert not failures, "\n".join(failures)


async def test_messagepal_ws_access_matrix(world):
    failures = []
    for user in ROLES:
        participant = user in ("alice", "carol")
        comm = await connect_pal(world.users[user])
        for event, ok in [
            ({"type": "subscribe", "conversationId": world.conversation}, "subscribed"),
            ({"type": "unsubscribe", "conversationId": world.conversation}, "unsubscribed"),
            ({"type": "fetch_history", "conversationId": world.conversation}, "history_response"),
            ({"type": "mark_read", "messageId": world.pal_message}, "message_read"),
        ]:
            answer = await pal_request(comm, event)
            if participant != (answer["type"] == ok):
                failures.append(f"{user} {event['type']}: {answer}")
            if not participant and answer.get("code") not in ("forbidden", "not_found"):
                failures.append(f"{user} {event['type']}: {answer}")
        await comm.disconnect()
    assert not failures, "\n".join(failures)


async def test_messagepal_reach_matrix(world):
    """Every sender x recipient over /ws/messagepal/: a send reaches only a
    member of the same workspace with no block between them, `forbidden`
    otherwise; typing to someone out of reach is `forbidden` (typing across a
    block is dropped without an answer); the conversation out of reach is
    `forbidden` to its own participants too."""
    failures = []
    for sender in ROLES:
        comm = await connect_pal(world.users[sender])
        for recipient in ROLES:
            if recipient == sender:
                continue
            recipient_id = world.users[recipient].id
            sent = await pal_request(comm, {"type": "send_message", "recipientId": recipient_id, "content": "hi"})
            expected = "message_received" if can_pal(sender, recipient) else "error"
            if sent["type"] != expected or (expected == "error" and sent["code"] != "forbidden"):
                failures.append(f"{sender} -> {recipient} send: {sent}")
            typed = await typing_answers(comm, recipient_id)
            reachable = ROLES[sender] is not None and ROLES[recipient] is not None
            if typed != ([] if reachable else ["forbidden"]):
                failures.append(f"{sender} -> {recipient} typing: {typed}")
        if sender in ("alice", "dave"):
            for event in (
                {"type": "subscribe", "conversationId": world.stranger_conversation},
                {"type": "fetch_history", "conversationId": world.stranger_conversation},
            ):
                answer = await pal_request(comm, event)
                if answer.get("code") != "forbidden":
                    failures.append(f"{sender} {event['type']} out of reach: {answer}")
        await comm.disconnect()
    assert not failures, "\n".join(failures)


async def typing_answers(comm, recipient_id: int) -> list[str]:
    """The error codes answering a `typing` (none when it was accepted or
    dropped): a `ping` after it marks the end of its answers."""
    from tests.pal_schemas import check_pal_event

    await comm.send_json_to({"type": "typing", "recipientId": recipient_id, "requestId": "typing"})
    await comm.send_json_to({"type": "ping", "requestId": "after"})
    codes = []
    while True:
        answer = await comm.receive_json_from(2)
        check_pal_event(answer)
        if answer.get("requestId") == "typing":
            codes.append(answer["code"])
        if answer.get("requestId") == "after":
            return codes


async def pal_request(comm, event: dict) -> dict:
    from tests.pal_schemas import check_pal_event

    await comm.send_json_to({**event, "requestId": "rq"})
    while True:
        answer = await comm.receive_json_from(2)
        check_pal_event(answer)
        if answer.get("requestId") == "rq":
            return answer


async def connect_pal(user):
    from channels.routing import URLRouter
    from channels.testing import WebsocketCommunicator

    from chatsite.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/messagepal/")
    comm.scope["user"] = user
    assert (await comm.connect())[0]
    assert (await comm.receive_json_from())["type"] == "connected"
    return comm


def test_outsider_learns_nothing_from_ids(world, make_user):
    """A private channel that exists and one that does not answer alike."""
    dave = client_for(world.users["dave"])
    real = dave.get(f"/api/channels/{world.channels['staff'][0]}/messages/")
    fake = dave.get("/api/channels/987654321/messages/")
    assert (real.status_code, real.json()) == (fake.status_code, fake.json())

