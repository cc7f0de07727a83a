"""`/metrics` on a real daphne: the counters follow real traffic."""

from __future__ import annotations

import re

import httpx

from tests.chatsite.test_metrics import value
from tests.e2e.test_chat_e2e import join, send


async def test_the_counters_follow_real_traffic(classroom):
    # Per process, from loopback: the first process itself, not a load
    # balancer in front (CHAT_E2E_VIA_NGINX), which never answers /metrics.
    base = classroom.server.direct_base
    assert httpx.get(classroom.server.base + "/metrics").status_code == 404 or classroom.server.nginx is None
    before = httpx.get(base + "/metrics").text
    a = await classroom.alice.connect()
    b = await classroom.bob.connect()
    await join(a, classroom.general)
    await join(b, classroom.general)
    await send(a, classroom.general, "counted")
    await b.expect("new_message")
    await a.send({"type": "join_channel", "channelId": 999_999_999, "requestId": "x"})
    await a.expect("error")
    after = httpx.get(base + "/metrics").text
    assert value(after, "chat_connections_open") >= 2
    assert value(after, "chat_messages_accepted_total") >= value(before, "chat_messages_accepted_total") + 1
    assert value(after, "chat_deliveries_total") >= value(before, "chat_deliveries_total") + 2
    assert value(after, "chat_send_seconds_count") >= value(before, "chat_send_seconds_count") + 1
    assert 'chat_store_seconds_count{op="append"}' in after
    assert re.search(r'^chat_errors_total\{kind="(not_found|forbidden)"\} [1-9]', after, re.M)
