"""Notifications (PROTOCOL.md part 2, "Presence snapshot, mentions and
notifications"): who is told about which message and how, levels, the
stored list, reading, mentionCount; through the services and the HTTP API."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from notifications.models import Mention, Notification
from tests.workspace_chat.test_api import as_user, assert_field_error, call, get, post, send, ws_url
from workspace_chat import lifecycle, membership, services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_and_unlimited")]


def kinds(message_id: int) -> dict[str, str]:
    """Who was notified of the message, and how: username -> kind."""
    return dict(Notification.objects.filter(message_id=message_id).values_list("user__username", "kind"))


def level_url(channel_id: int) -> str:
    return f"/api/channels/{channel_id}/notifications/"


def put_level(user, channel_id: int, level: Any, status: int = 200) -> Any:
    return call(as_user(user), "put", level_url(channel_id), status, {"level": level})


def listed(user, query: str = "") -> dict[str, Any]:
    body = get(user, f"/api/notifications/{query}")
    assert set(body) == {"results", "hasMore"}
    for item in body["results"]:
        assert set(item) == {"id", "kind", "workspaceId", "channelId", "message", "createdAt", "read"}
    return body


def counts(user, school) -> dict[str, tuple[int, int]]:
    return {c["name"]: (c["unreadCount"], c["mentionCount"]) for c in get(user, ws_url(school, "channels/"))}


def test_a_mention_notifies_the_mentioned_member_once_and_never_the_author(school):
    message = send(school.bob, school.general, "@carol and @Carol, and @bob myself, see page 4")
    assert kinds(message["id"]) == {"carol": "mention"}
    item = listed(school.carol)["results"][0]
    assert item["kind"] == "mention" and item["channelId"] == school.general.id and item["workspaceId"] == school.workspace.id
    assert item["message"]["id"] == message["id"] and item["message"]["content"] == message["content"] and item["read"] is False
    assert listed(school.bob)["results"] == []


def test_dm_reply_and_message_kinds_in_their_order_of_precedence(school):
    dm, _ = services.dm_get_or_create(actor=school.alice, workspace_id=school.workspace.id, user_id=school.carol.id)
    assert kinds(send(school.alice, dm, "homework?")["id"]) == {"carol": "dm"}
    assert kinds(send(school.alice, dm, "@carol homework?")["id"]) == {"carol": "mention"}  # mention before dm
    root = send(school.carol, school.general, "question about the test")
    assert kinds(root["id"]) == {}  # everyone is on the default level: mentions
    first = send(school.bob, school.general, "answer", reply_to=root["id"])
    assert kinds(first["id"]) == {"carol": "reply"}
    # A reply to a reply is in the root's thread: the root's author and every replier.
    second = send(school.alice, school.general, "and more", reply_to=first["id"])
    assert kinds(second["id"]) == {"carol": "reply", "bob": "reply"}
    put_level(school.alice, school.general.id, "all")
    plain = send(school.bob, school.general, "anything at all")
    assert kinds(plain["id"]) == {"alice": "message"}
    third = send(school.bob, school.general, "@carol again", reply_to=root["id"])
    assert kinds(third["id"]) == {"carol": "mention", "alice": "reply"}  # reply before message


def test_level_none_silences_even_mentions_and_mentions_leaves_out_plain_messages(school):
    assert get(school.carol, level_url(school.general.id)) == {"level": "mentions"}
    assert put_level(school.carol, school.general.id, "none") == {"level": "none"}
    assert get(school.carol, level_url(school.general.id)) == {"level": "none"}
    mention = send(school.bob, school.general, "@carol are you there?")
    assert kinds(mention["id"]) == {}
    # mentionCount still counts it: it is a fact of the message, not a notification.
    assert counts(school.carol, school)["general"] == (1, 1)
    assert put_level(school.carol, school.general.id, "mentions") == {"level": "mentions"}
    assert kinds(send(school.bob, school.general, "@carol now?")["id"]) == {"carol": "mention"}


def test_levels_refuse_bad_input_and_channels_the_caller_cannot_see(school):
    for bad in ("loud", "", None, 3, ["all"]):
        assert_field_error(put_level(school.carol, school.general.id, bad, 400), "level")
    # As for history: a channel the caller may not see does not exist for them.
    put_level(school.carol, school.staff.id, "all", 404)  # a private channel carol is not in
    call(as_user(school.dave), "get", level_url(school.general.id), 404)  # not in the workspace
    call(as_user(school.carol), "get", level_url(999_999), 404)


def test_only_readers_are_notified(school):
    # dave is in no workspace; carol is not in the private staff channel.
    assert kinds(send(school.alice, school.staff, "@carol @dave @bob staff only")["id"]) == {}
    membership.channel_member_add(actor=school.alice, channel_id=school.staff.id, user_id=school.bob.id)
    root = send(school.bob, school.staff, "plans")
    assert kinds(send(school.alice, school.staff, "ok", reply_to=root["id"])["id"]) == {"bob": "reply"}
    membership.channel_member_remove(actor=school.alice, channel_id=school.staff.id, user_id=school.bob.id)
    # bob took part in the thread but may no longer read the channel.
    assert kinds(send(school.alice, school.staff, "more", reply_to=root["id"])["id"]) == {}


def test_mention_count_falls_as_the_channel_is_read_and_mark_read_reads_notifications(school):
    first = send(school.bob, school.general, "@carol one")
    send(school.bob, school.general, "plain")
    third = send(school.alice, school.general, "@carol three")
    assert counts(school.carol, school)["general"] == (3, 2)
    services.read_mark(user=school.carol, channel_id=school.general.id, message_id=first["id"])
    assert counts(school.carol, school)["general"] == (2, 1)
    assert [n["read"] for n in listed(school.carol)["results"]] == [False, True]
    assert [n["message"]["id"] for n in listed(school.carol, "?unread=1")["results"]] == [third["id"]]
    services.read_mark(user=school.carol, channel_id=school.general.id, message_id=third["id"])
    assert counts(school.carol, school)["general"] == (0, 0)
    assert listed(school.carol, "?unread=1")["results"] == []


def test_reading_by_ids_or_channel_touches_only_the_callers_own(school):
    dm, _ = services.dm_get_or_create(actor=school.alice, workspace_id=school.workspace.id, user_id=school.carol.id)
    send(school.alice, dm, "one")
    send(school.bob, school.general, "@carol @alice two")
    carols = {n["channelId"]: n["id"] for n in listed(school.carol)["results"]}
    alices = listed(school.alice)["results"]
    # alice names carol's notification: nothing of carol's changes.
    post(school.alice, "/api/notifications/read/", {"ids": [carols[dm.id]]}, 204)
    assert all(not n["read"] for n in listed(school.carol)["results"])
    post(school.carol, "/api/notifications/read/", {"ids": [carols[dm.id]]}, 204)
    assert {n["channelId"]: n["read"] for n in listed(school.carol)["results"]} == {dm.id: True, school.general.id: False}
    post(school.carol, "/api/notifications/read/", {"channelId": school.general.id}, 204)
    assert listed(school.carol, "?unread=1")["results"] == []
    assert [n["read"] for n in listed(school.alice)["results"]] == [n["read"] for n in alices] == [False]
    for bad, field in (({"ids": "1"}, "ids"), ({"ids": [0]}, "ids"), ({"ids": ["x"]}, "ids"), ({"channelId": -1}, "channelId"), ({"ids": list(range(1, 600))}, "ids")):
        assert_field_error(post(school.carol, "/api/notifications/read/", bad, 400), field)
    for query in ("?unread=maybe", "?before=x", "?before=-3"):
        call(as_user(school.carol), "get", f"/api/notifications/{query}", 400)


def test_the_list_pages_newest_first(school):
    sent = [send(school.bob, school.general, f"@carol {i}")["id"] for i in range(55)]
    page = listed(school.carol)
    assert page["hasMore"] is True and len(page["results"]) == 50
    assert [n["message"]["id"] for n in page["results"]] == sent[::-1][:50]
    rest = listed(school.carol, f"?before={page['results'][-1]['id']}")
    assert rest["hasMore"] is False and [n["message"]["id"] for n in rest["results"]] == sent[::-1][50:]


def test_an_edit_shows_in_the_notification_and_a_delete_removes_it(school):
    message = send(school.bob, school.general, "@carol @alice see page 4")
    lifecycle.message_edit(user=school.bob, channel_id=school.general.id, message_id=message["id"], content="@alice see page 5")
    assert listed(school.carol)["results"][0]["message"]["content"] == "@alice see page 5"
    # carol is no longer mentioned: her mention stops counting (nobody new is notified by an edit).
    assert counts(school.carol, school)["general"] == (1, 0) and counts(school.alice, school)["general"] == (1, 1)
    lifecycle.message_delete(user=school.bob, channel_id=school.general.id, message_id=message["id"])
    assert listed(school.carol)["results"] == [] and not Mention.objects.exists()
    hidden = send(school.bob, school.general, "@carol rude")
    assert services.message_moderate(channel_id=school.general.id, message_id=hidden["id"], action="hide")
    assert listed(school.carol)["results"] == [] and counts(school.carol, school)["general"][1] == 0


def test_email_settings_through_me(school):
    client = as_user(school.carol)
    assert call(client, "get", "/api/auth/me/", 200) == {"id": school.carol.id, "username": "carol", "displayName": "Carol C"}
    body = call(client, "patch", "/api/auth/me/", 200, {"email": "carol@example.org"})
    assert body["email"] == "carol@example.org" and body["emailNotifications"] is True
    body = call(client, "patch", "/api/auth/me/", 200, {"emailNotifications": False})
    assert body["email"] == "carol@example.org" and body["emailNotifications"] is False
    for bad, field in (({"email": "not an address"}, "email"), ({"emailNotifications": "sometimes"}, "emailNotifications"), ({"email": "a@b.c" * 100}, "email")):
        assert_field_error(call(client, "patch", "/api/auth/me/", 400, bad), field)
    school.carol.refresh_from_db()
    assert school.carol.email == "carol@example.org" and school.carol.email_notifications is False


async def test_a_chat_connection_marks_its_user_connected_within_a_second(school, monkeypatch):
    """The email worker's "away" (notifications.online): written for all new
    connections together, shortly after they open."""
    import asyncio

    from asgiref.sync import sync_to_async

    from notifications import online
    from tests.workspace_chat.test_consumers import connect

    def connected_until(user):
        return type(user).objects.values_list("connected_until", flat=True).get(id=user.id)

    monkeypatch.setattr(online, "FLUSH_AFTER", 0.2)
    assert await sync_to_async(connected_until)(school.carol) is None
    comms = [await connect(school.carol), await connect(school.bob)]
    for _ in range(50):
        if await sync_to_async(connected_until)(school.bob):
            break
        await asyncio.sleep(0.1)
    now = timezone.now()
    assert await sync_to_async(connected_until)(school.carol) > now and await sync_to_async(connected_until)(school.bob) > now
    for comm in comms:
        await comm.disconnect()
