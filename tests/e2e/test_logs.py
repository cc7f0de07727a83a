"""Logs never hold session ids, passwords or message bodies, even at DEBUG."""

from __future__ import annotations

import pytest

from tests.e2e.harness import PASSWORD, Person, Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chatty_server(e2e_env):
    server = Server({**e2e_env, "LOG_LEVEL": "DEBUG"}, log_name="debug-logs").start()
    yield server
    server.stop()


async def test_logs_hold_no_secrets_or_bodies(chatty_server):
    ann = Person(chatty_server)
    ben = Person(chatty_server)
    workspace = ann.http.post("/api/workspaces/", {"name": "Logs"}).json()["id"]
    ann.http.post(f"/api/workspaces/{workspace}/members/", {"username": ben.username, "role": "student"})
    channel = ann.http.post(f"/api/workspaces/{workspace}/channels/", {"name": "c"}).json()["id"]
    body = "secret-body-7f3a9c the exam answers"
    pal_body = "pal-body-91bd2e private note"
    ws = await ann.connect()
    await ws.request({"type": "join_channel", "channelId": channel}, "joined_channel")
    sent = await ws.request({"type": "send_message", "channelId": channel, "content": body}, "new_message")
    assert sent["type"] == "new_message"
    pal = await ann.connect("/ws/messagepal/")
    answer = await pal.request({"type": "send_message", "recipientId": ben.id, "content": pal_body}, "message_received")
    assert answer["type"] == "message_received"
    await ws.send("not json " + body)  # a bad frame's text is not logged either
    await ws.expect("error")
    assert ben.http.post("/api/auth/login/", {"username": ben.username, "password": "wrong-" + PASSWORD}).status_code == 400
    await ann.close_all()
    log = chatty_server.log()
    full_log = chatty_server.log_path.read_text(errors="replace")
    assert "WSCONNECT" in full_log or "HTTP" in full_log or "GET" in full_log, "the server logged nothing at all"
    for secret in (ann.http.session_id, ben.http.session_id, PASSWORD, body, pal_body):
        assert secret and secret not in full_log, f"{secret[:12]}... found in the log: {log[-800:]}"
