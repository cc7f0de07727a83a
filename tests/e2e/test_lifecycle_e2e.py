"""The message lifecycle end to end (PROTOCOL.md part 2): edits, deletes,
reactions, threads and the change catch-up, through a real daphne process,
real websockets clients and the HTTP API."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.e2e.test_chat_e2e import join, send

pytestmark = pytest.mark.e2e


class View:
    """What a client shows of one channel, built only from the events it was
    sent (the way a careful client applies them)."""

    def __init__(self) -> None:
        self.messages: dict[int, dict[str, Any]] = {}
        self.change_id = 0

    def apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "joined_channel":
            for message in event["missed"]:
                self.messages[message["id"]] = dict(message)
            for change in event.get("changes", []):
                self.apply(change)
            self.change_id = max(self.change_id, event["changeId"])
            return
        if kind in ("new_message", "message_updated"):
            self.messages[event["message"]["id"]] = dict(event["message"])
        elif kind == "message_deleted":
            self.messages.pop(event["messageId"], None)
        elif kind == "reaction_updated" and event["messageId"] in self.messages:
            self.messages[event["messageId"]]["reactions"] = event["reactions"]
        elif kind == "thread_updated" and event["messageId"] in self.messages:
            self.messages[event["messageId"]].update(replyCount=event["replyCount"], lastReplyAt=event["lastReplyAt"])
        elif kind == "message_pinned" and event["messageId"] in self.messages:
            self.messages[event["messageId"]]["isPinned"] = True
        if "changeId" in event:
            self.change_id = max(self.change_id, event["changeId"])

    def newest_id(self) -> int:
        return max(self.messages, default=0)

    def state(self) -> dict[int, tuple]:
        return {
            mid: (m["content"], m["editedAt"], json.dumps(m["reactions"]), m["replyCount"], m["lastReplyAt"], m["isPinned"], m["mentions"])
            for mid, m in sorted(self.messages.items())
        }


async def drain(ws, view: View, wait: float = 0.4) -> None:
    """Apply every event that arrives within `wait` seconds of the last."""
    while True:
        try:
            view.apply(await ws.recv(timeout=wait))
        except TimeoutError:
            return


def history_state(person, channel_id: int) -> dict[int, tuple]:
    view = View()
    for message in person.http.get(f"/api/channels/{channel_id}/messages/?limit=100").json()["results"]:
        view.messages[message["id"]] = message
    return view.state()


async def test_author_edits_and_everyone_sees_it(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    sent = await send(a, classroom.general, "helo")
    await b.expect("new_message")
    answer = await a.request({"type": "edit_message", "channelId": classroom.general, "messageId": sent["id"], "content": f"  hello @{classroom.bob.username} "}, "message_updated")
    assert answer["type"] == "message_updated", answer
    edited = answer["message"]
    assert edited["content"] == f"hello @{classroom.bob.username}" and edited["editedAt"] is not None
    assert edited["mentions"] == [classroom.bob.id], "mentions are found again"
    assert edited["createdAt"] == sent["createdAt"] and edited["id"] == sent["id"]
    got = await b.expect("message_updated")
    assert got["message"] == edited and got["changeId"] == answer["changeId"] >= 1
    await a.expect_none("message_updated")
    # Only the author.
    refused = await b.request({"type": "edit_message", "channelId": classroom.general, "messageId": sent["id"], "content": "mine now"}, "message_updated")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    teacher = classroom.teacher.http.patch(f"/api/channels/{classroom.general}/messages/{sent['id']}/", {"content": "teacher edit"})
    assert teacher.status_code == 403
    # Over HTTP too, with the same content rules.
    r = classroom.alice.http.patch(f"/api/channels/{classroom.general}/messages/{sent['id']}/", {"content": "hello again"})
    assert r.status_code == 200 and r.json()["content"] == "hello again"
    assert (await b.expect("message_updated"))["message"]["content"] == "hello again"
    r = classroom.alice.http.patch(f"/api/channels/{classroom.general}/messages/{sent['id']}/", {"content": "   "})
    assert r.status_code == 400 and "content" in r.json()["errors"]
    assert history_state(classroom.bob, classroom.general)[sent["id"]][0] == "hello again"


async def test_delete_by_author_or_teacher_and_gone_everywhere(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    first = await send(a, classroom.general, "first")
    second = await send(a, classroom.general, "second")
    third = await send(a, classroom.general, "third")
    teacher = await classroom.teacher.connect()
    await join(teacher, classroom.general)
    await teacher.request({"type": "pin_message", "channelId": classroom.general, "messageId": second["id"]}, "message_pinned")
    refused = await b.request({"type": "delete_message", "channelId": classroom.general, "messageId": first["id"]}, "message_deleted")
    assert (refused["type"], refused["code"]) == ("error", "forbidden"), "a student deletes only their own"
    answer = await a.request({"type": "delete_message", "channelId": classroom.general, "messageId": first["id"]}, "message_deleted")
    assert answer["type"] == "message_deleted" and answer["messageId"] == first["id"]
    assert (await b.expect("message_deleted", messageId=first["id"]))["changeId"] == answer["changeId"]
    r = classroom.teacher.http.delete(f"/api/channels/{classroom.general}/messages/{second['id']}/")
    assert r.status_code == 204
    await b.expect("message_deleted", messageId=second["id"])
    # Gone from history, catch-up, pins and unread counts.
    assert list(history_state(classroom.bob, classroom.general)) == [third["id"]]
    late = await classroom.bob.connect()
    joined = await join(late, classroom.general, after_id=0)
    assert [m["id"] for m in joined["missed"]] == [third["id"]]
    assert classroom.bob.http.get(f"/api/channels/{classroom.general}/pins/").json() == []
    unread = {c["id"]: c["unreadCount"] for c in classroom.bob.http.get(f"/api/workspaces/{classroom.workspace_id}/channels/").json()}
    assert unread[classroom.general] == 1
    # A later edit, delete, reaction or reply: not_found, before any permission check.
    for event in (
        {"type": "edit_message", "messageId": first["id"], "content": "x"},
        {"type": "delete_message", "messageId": first["id"]},
        {"type": "add_reaction", "messageId": first["id"], "emoji": "👍"},
        {"type": "send_message", "replyTo": first["id"], "content": "re"},
    ):
        error = await b.request({**event, "channelId": classroom.general}, "none")
        assert (error["type"], error["code"]) == ("error", "not_found"), event
    assert classroom.alice.http.delete(f"/api/channels/{classroom.general}/messages/{first['id']}/").status_code == 404
    assert classroom.outsider.http.delete(f"/api/channels/{classroom.general}/messages/{third['id']}/").status_code == 404
    assert classroom.outsider.http.patch(f"/api/channels/{classroom.general}/messages/{third['id']}/", {"content": "x"}).status_code == 404


async def test_reactions_toggle_and_the_rules(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    sent = await send(a, classroom.general, "react to me")
    target = {"channelId": classroom.general, "messageId": sent["id"]}
    added = await b.request({"type": "add_reaction", **target, "emoji": "👍🏽"}, "reaction_updated")
    assert added["reactions"] == [{"emoji": "👍🏽", "count": 1, "userIds": [classroom.bob.id]}]
    assert (await a.expect("reaction_updated"))["reactions"] == added["reactions"]
    await a.request({"type": "add_reaction", **target, "emoji": "❤️"}, "reaction_updated")
    both = await a.request({"type": "add_reaction", **target, "emoji": "👍🏽"}, "reaction_updated")
    assert both["reactions"] == [
        {"emoji": "👍🏽", "count": 2, "userIds": sorted([classroom.alice.id, classroom.bob.id])},
        {"emoji": "❤️", "count": 1, "userIds": [classroom.alice.id]},
    ], "ordered by first use; emoji kept exactly as sent (variation selector included)"
    await b.expect("reaction_updated", changeId=both["changeId"])
    # Adding again, or removing one never added, changes nothing and tells the caller alone.
    again = await a.request({"type": "add_reaction", **target, "emoji": "❤️"}, "reaction_updated")
    assert again["reactions"] == both["reactions"] and again["changeId"] == both["changeId"]
    nothing = await b.request({"type": "remove_reaction", **target, "emoji": "🎉"}, "reaction_updated")
    assert nothing["reactions"] == both["reactions"]
    await a.expect_none("reaction_updated", wait=0.3)
    # Bad emoji: bad_request, nothing changes.
    for bad in ("x", ":smile:", "👍👍", "<b>", "", " 👍", 5, None):
        error = await a.request({"type": "add_reaction", **target, "emoji": bad}, "reaction_updated")
        assert (error["type"], error["code"]) == ("error", "bad_request"), bad
    # HTTP: the emoji percent-encoded in the path.
    base = f"/api/channels/{classroom.general}/messages/{sent['id']}/reactions/"
    r = classroom.bob.http.delete(base + quote("👍🏽") + "/")
    # First use among the reactions there now: Alice's ❤️ came before her 👍🏽.
    assert r.status_code == 200 and r.json()["reactions"] == [
        {"emoji": "❤️", "count": 1, "userIds": [classroom.alice.id]},
        {"emoji": "👍🏽", "count": 1, "userIds": [classroom.alice.id]},
    ]
    r = classroom.bob.http.post(base, {"emoji": "🎉"})
    assert r.status_code == 200 and [x["emoji"] for x in r.json()["reactions"]] == ["❤️", "👍🏽", "🎉"]
    assert classroom.bob.http.post(base, {"emoji": "nope"}).status_code == 400
    assert classroom.outsider.http.post(base, {"emoji": "🎉"}).status_code == 404
    history = classroom.alice.http.get(f"/api/channels/{classroom.general}/messages/").json()["results"]
    assert [x["emoji"] for x in history[-1]["reactions"]] == ["❤️", "👍🏽", "🎉"]


async def test_twenty_emoji_at_most(classroom):
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    sent = await send(a, classroom.general, "many")
    emoji = "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗😚😙"
    assert len(emoji) == 20
    for e in emoji:
        answer = await a.request({"type": "add_reaction", "channelId": classroom.general, "messageId": sent["id"], "emoji": e}, "reaction_updated")
        assert answer["type"] == "reaction_updated", answer
    error = await a.request({"type": "add_reaction", "channelId": classroom.general, "messageId": sent["id"], "emoji": "🤔"}, "reaction_updated")
    assert (error["type"], error["code"]) == ("error", "bad_request")
    b = await classroom.bob.connect()
    await join(b, classroom.general)
    ok = await b.request({"type": "add_reaction", "channelId": classroom.general, "messageId": sent["id"], "emoji": "😀"}, "reaction_updated")
    assert ok["reactions"][0]["count"] == 2, "one of the 20 may still be added by others"


async def test_threads_normalise_to_the_root_and_count_live_replies(classroom):
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    root = await send(a, classroom.general, "question")
    first = await send(b, classroom.general, "answer", replyTo=root["id"])
    assert first["replyTo"] == root["id"]
    thread = await a.expect("thread_updated")
    assert (thread["messageId"], thread["replyCount"], thread["lastReplyAt"]) == (root["id"], 1, first["createdAt"])
    second = await send(a, classroom.general, "follow-up", replyTo=first["id"])
    assert second["replyTo"] == root["id"], "a reply to a reply joins the root's thread"
    await b.expect("new_message", message=second)
    assert (await b.expect("thread_updated", replyCount=2))["lastReplyAt"] == second["createdAt"]
    page = classroom.bob.http.get(f"/api/channels/{classroom.general}/messages/{first['id']}/thread/").json()
    assert page["root"]["id"] == root["id"] and page["root"]["replyCount"] == 2
    assert [m["id"] for m in page["results"]] == [first["id"], second["id"]] and page["hasMore"] is False
    page = classroom.bob.http.get(f"/api/channels/{classroom.general}/messages/{root['id']}/thread/?limit=1").json()
    assert [m["id"] for m in page["results"]] == [first["id"]] and page["hasMore"] is True
    page = classroom.bob.http.get(f"/api/channels/{classroom.general}/messages/{root['id']}/thread/?after={first['id']}").json()
    assert [m["id"] for m in page["results"]] == [second["id"]]
    # Deleting a reply: the root's counts follow.
    await a.request({"type": "delete_message", "channelId": classroom.general, "messageId": second["id"]}, "message_deleted")
    after = await b.expect("thread_updated", replyCount=1)
    assert after["lastReplyAt"] == first["createdAt"]
    assert history_state(classroom.alice, classroom.general)[root["id"]][3] == 1
    assert classroom.outsider.http.get(f"/api/channels/{classroom.general}/messages/{root['id']}/thread/").status_code == 404
    assert classroom.bob.http.get(f"/api/channels/{classroom.general}/messages/{second['id']}/thread/").status_code == 404


async def test_offline_client_catches_up_changes_to_the_online_state(classroom):
    """A client offline during two edits, a delete, reactions, a reply and a
    pin rejoins with afterId and changesAfter and shows exactly what a client
    that stayed online shows (and what history says)."""
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    online = await classroom.bob.connect()
    online_view, offline_view = View(), View()
    online_view.apply(await join(online, classroom.general))
    m1 = await send(a, classroom.general, "one")
    m2 = await send(a, classroom.general, "two")
    m3 = await send(a, classroom.general, "three")
    await a.request({"type": "add_reaction", "channelId": classroom.general, "messageId": m1["id"], "emoji": "👍"}, "reaction_updated")
    offline = await classroom.bob.connect()
    offline_view.apply(await join(offline, classroom.general, after_id=0))
    await offline.close()

    target = {"channelId": classroom.general}
    await a.request({**target, "type": "edit_message", "messageId": m1["id"], "content": "one (fixed)"}, "message_updated")
    await a.request({**target, "type": "edit_message", "messageId": m1["id"], "content": "one (fixed twice)"}, "message_updated")
    await a.request({**target, "type": "edit_message", "messageId": m3["id"], "content": "three (fixed)"}, "message_updated")
    await a.request({**target, "type": "delete_message", "messageId": m2["id"]}, "message_deleted")
    await a.request({**target, "type": "add_reaction", "messageId": m3["id"], "emoji": "🎉"}, "reaction_updated")
    await a.request({**target, "type": "remove_reaction", "messageId": m1["id"], "emoji": "👍"}, "reaction_updated")
    r = classroom.teacher.http.post(f"/api/channels/{classroom.general}/messages/{m3['id']}/reactions/", {"emoji": "🎉"})
    assert r.status_code == 200
    reply = await send(a, classroom.general, "a reply", replyTo=m1["id"])
    teacher = await classroom.teacher.connect()
    await join(teacher, classroom.general)
    await teacher.request({**target, "type": "pin_message", "messageId": m3["id"]}, "message_pinned")
    await drain(online, online_view)

    back = await classroom.bob.connect()
    event = {"type": "join_channel", "channelId": classroom.general, "afterId": offline_view.newest_id(), "changesAfter": offline_view.change_id}
    joined = await back.request(event, "joined_channel")
    assert joined["changesHasMore"] is False and joined["changes"], joined
    assert [c["changeId"] for c in joined["changes"]] == sorted(c["changeId"] for c in joined["changes"])
    assert [m["id"] for m in joined["missed"]] == [reply["id"]]
    offline_view.apply(joined)
    assert offline_view.state() == online_view.state() == history_state(classroom.bob, classroom.general)
    assert offline_view.change_id == online_view.change_id == joined["changeId"]
    assert offline_view.messages[m1["id"]]["content"] == "one (fixed twice)" and m2["id"] not in offline_view.messages
    # Nothing new since: an empty change list.
    again = await back.request({**event, "afterId": offline_view.newest_id(), "changesAfter": joined["changeId"]}, "joined_channel")
    assert again["changes"] == [] and again["missed"] == []


async def test_malformed_lifecycle_events_are_bad_requests_and_change_nothing(classroom):
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    sent = await send(a, classroom.general, "keep me")
    target = {"channelId": classroom.general, "messageId": sent["id"]}
    bad = [
        {"type": "edit_message", **target},
        {"type": "edit_message", **target, "content": ""},
        {"type": "edit_message", **target, "content": 7},
        {"type": "edit_message", **target, "content": "x" * 4001},
        {"type": "edit_message", "channelId": classroom.general, "messageId": "1", "content": "x"},
        {"type": "delete_message", "channelId": classroom.general},
        {"type": "delete_message", "channelId": classroom.general, "messageId": -1},
        {"type": "add_reaction", **target},
        {"type": "remove_reaction", **target, "emoji": ["👍"]},
        {"type": "join_channel", "channelId": classroom.general, "changesAfter": "3"},
        {"type": "join_channel", "channelId": classroom.general, "changesAfter": -1},
    ]
    for event in bad:
        error = await a.request(event, "none")
        assert (error["type"], error["code"]) == ("error", "bad_request"), event
    other = await classroom.bob.connect()
    error = await other.request({"type": "edit_message", **target, "content": "x"}, "none")
    assert (error["type"], error["code"]) == ("error", "not_joined")
    assert history_state(classroom.alice, classroom.general)[sent["id"]][:3] == ("keep me", None, "[]")
    assert (await a.request({"type": "ping"}, "pong"))["type"] == "pong"


async def test_staff_unpin_and_the_change_is_caught_up(classroom):
    a = await classroom.alice.connect()
    teacher = await classroom.teacher.connect()
    await join(a, classroom.general)
    await join(teacher, classroom.general)
    sent = await send(a, classroom.general, "pin then unpin me")
    target = {"channelId": classroom.general, "messageId": sent["id"]}
    pinned = await teacher.request({"type": "pin_message", **target}, "message_pinned")
    await a.expect("message_pinned")
    refused = await a.request({"type": "unpin_message", **target}, "message_unpinned")
    assert (refused["type"], refused["code"]) == ("error", "forbidden")
    unpinned = await teacher.request({"type": "unpin_message", **target}, "message_unpinned")
    assert unpinned == {"type": "message_unpinned", **target, "changeId": pinned["changeId"] + 1, "requestId": unpinned["requestId"]}
    assert (await a.expect("message_unpinned"))["changeId"] == unpinned["changeId"]
    assert classroom.alice.http.get(f"/api/channels/{classroom.general}/pins/").json() == []
    # Unpinning what is not pinned changes nothing: the caller alone hears.
    again = await teacher.request({"type": "unpin_message", **target}, "message_unpinned")
    assert again["type"] == "message_unpinned" and again["changeId"] == unpinned["changeId"]
    await a.expect_none("message_unpinned")
    # A client that was away sees the pin go.
    back = await classroom.bob.connect()
    joined = await back.request({"type": "join_channel", "channelId": classroom.general, "changesAfter": pinned["changeId"] - 1}, "joined_channel")
    assert [(c["type"], c["changeId"]) for c in joined["changes"]] == [("message_unpinned", unpinned["changeId"])]
    gone = await teacher.request({"type": "unpin_message", "channelId": classroom.general, "messageId": sent["id"] + 1}, "message_unpinned")
    assert (gone["type"], gone["code"]) == ("error", "not_found")


async def test_grades_are_private_to_the_author_and_staff(classroom):
    """Through daphne: the grading reaches the author and the teacher only;
    a classmate's history, catch-up and later events never carry it."""
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    teacher = await classroom.teacher.connect()
    for ws in (a, b, teacher):
        await join(ws, classroom.general)
    essay = await send(a, classroom.general, "my essay")
    r = classroom.teacher.http.post(f"/api/channels/{classroom.general}/messages/{essay['id']}/grade/", {"grade": "A", "feedback": "Well argued"})
    assert r.status_code == 200, r.text
    grade = r.json()["grade"]
    assert (grade["value"], grade["feedback"], grade["gradedBy"]) == ("A", "Well argued", classroom.teacher.id)
    assert (await a.expect("message_updated"))["message"]["grade"] == grade
    assert (await teacher.expect("message_updated"))["message"]["grade"] == grade
    await b.expect_none("message_updated")
    for person, seen in ((classroom.alice, grade), (classroom.teacher, grade), (classroom.bob, None)):
        page = person.http.get(f"/api/channels/{classroom.general}/messages/").json()["results"]
        assert page[-1]["grade"] == seen, person.username
    late = await classroom.bob.connect()
    assert (await join(late, classroom.general, after_id=0))["missed"][-1]["grade"] is None
    # The author edits: the channel hears the edit without the grade; the author's answer keeps it.
    answer = await a.request({"type": "edit_message", "channelId": classroom.general, "messageId": essay["id"], "content": "my essay, v2"}, "message_updated")
    assert answer["message"]["grade"] == grade
    assert (await b.expect("message_updated"))["message"]["grade"] is None
