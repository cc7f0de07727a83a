"""Safeguarding end to end (PROTOCOL.md part 2): mutes and reports through
a real daphne process, websockets clients and the HTTP API."""

from __future__ import annotations

import pytest

from tests.e2e.test_chat_e2e import join, send

pytestmark = pytest.mark.e2e


async def test_a_muted_student_is_refused_over_the_websocket_until_unmuted(classroom):
    a = await classroom.alice.connect()
    await join(a, classroom.general)
    hello = await send(a, classroom.general, "hello")
    r = classroom.teacher.http.post(f"/api/workspaces/{classroom.workspace_id}/mutes/", {"userId": classroom.alice.id, "minutes": 5})
    assert r.status_code == 201, r.text
    for event in (
        {"type": "send_message", "content": "muted?"},
        {"type": "add_reaction", "messageId": hello["id"], "emoji": "👍"},
        {"type": "edit_message", "messageId": hello["id"], "content": "changed"},
    ):
        error = await a.request({**event, "channelId": classroom.general}, "none")
        assert (error["type"], error["code"]) == ("error", "forbidden"), (event, error)
    r = classroom.teacher.http.delete(f"/api/workspaces/{classroom.workspace_id}/mutes/{classroom.alice.id}/")
    assert r.status_code == 204
    assert (await send(a, classroom.general, "unmuted"))["content"] == "unmuted"


async def test_a_report_reaches_the_teacher_and_not_the_students(classroom):
    b = await classroom.bob.connect()
    await join(b, classroom.general)
    rude = await send(b, classroom.general, "go away")
    r = classroom.alice.http.post(f"/api/channels/{classroom.general}/messages/{rude['id']}/report/", {"reason": "mean"})
    assert r.status_code == 201, r.text
    listed = classroom.teacher.http.get(f"/api/workspaces/{classroom.workspace_id}/reports/").json()
    assert [(x["reason"], x["message"]["id"]) for x in listed] == [("mean", rude["id"])]
    assert classroom.bob.http.get(f"/api/workspaces/{classroom.workspace_id}/reports/").status_code == 403
    assert classroom.outsider.http.post(f"/api/channels/{classroom.general}/messages/{rude['id']}/report/", {"reason": "x"}).status_code == 404
