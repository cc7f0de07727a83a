"""Search end to end: messages sent, edited and deleted over the WebSocket of
a real daphne process are found (or no longer found) over HTTP within 2
seconds, on whichever message store the server runs (`make test` runs this
on sql, cassandra and mongodb)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import pytest

from tests.e2e.harness import Person, share_workspace
from tests.e2e.test_chat_e2e import join, send

pytestmark = pytest.mark.e2e

WITHIN = 2.0


async def eventually(person: Person, path: str, q: str, want: list[str], **params: Any) -> dict[str, Any]:
    """Poll the search until its contents are `want`, for at most WITHIN s."""
    deadline = time.monotonic() + WITHIN
    while True:
        r = await asyncio.to_thread(person.http.get, path, params={"q": q, **params})
        assert r.status_code == 200, r.text
        body = r.json()
        if [m["content"] for m in body["results"]] == want or time.monotonic() > deadline:
            assert [m["content"] for m in body["results"]] == want, (q, body)
            return body
        await asyncio.sleep(0.05)


def test_the_server_serves_from_the_configured_store(server):
    """So the tests below search what the store under test holds (no silent fallback)."""
    body = Person(server).http.get("/healthz").json()
    assert body["checks"]["messageStore"] == os.environ.get("CHAT_MESSAGE_STORE", "sql"), body


async def test_sent_edited_and_deleted_messages_are_searchable_within_two_seconds(classroom):
    word = "kw" + uuid.uuid4().hex[:10]
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    first = await send(a, classroom.general, f"Homework {word} due Friday")
    second = await send(a, classroom.general, f"Café {word} at noon")
    body = await eventually(classroom.bob, "/api/search/", f"{word} cafe", [second["content"]])
    assert body["results"][0]["id"] == second["id"] and "[[Café]]" in body["results"][0]["highlight"]
    await eventually(classroom.bob, "/api/search/", word[:-3], [second["content"], first["content"]], workspaceId=classroom.workspace_id)
    await eventually(classroom.outsider, "/api/search/", word, [])
    edited = await a.request({"type": "edit_message", "channelId": classroom.general, "messageId": first["id"], "content": f"Essay {word} due Monday"}, "message_updated")
    assert edited["type"] == "message_updated", edited
    await eventually(classroom.bob, "/api/search/", f"{word} friday", [])
    await eventually(classroom.bob, "/api/search/", f"{word} monday", [f"Essay {word} due Monday"])
    deleted = await a.request({"type": "delete_message", "channelId": classroom.general, "messageId": second["id"]}, "message_deleted")
    assert deleted["type"] == "message_deleted", deleted
    await eventually(classroom.bob, "/api/search/", word, [f"Essay {word} due Monday"])


async def test_messagepal_messages_are_searchable_by_the_two_people_only(server):
    ann, ben, cid = Person(server), Person(server), Person(server)
    share_workspace(ann, ben, cid)
    word = "kw" + uuid.uuid4().hex[:10]
    ws = await ann.connect("/ws/messagepal/")
    answer = await ws.request({"type": "send_message", "recipientId": ben.id, "content": f"see you at the crèche {word}"}, "message_received")
    assert answer["type"] == "message_received", answer
    for person in (ann, ben):
        await eventually(person, "/api/messagepal/search/", f"creche {word}", [f"see you at the crèche {word}"])
    await eventually(cid, "/api/messagepal/search/", word, [])
    await ann.close_all()
