"""`GET /metrics` (PROTOCOL.md, "Operations, part 2"): Prometheus text of the
process, from loopback or with the bearer token, 404 to anyone else
(tests/e2e/test_metrics_e2e.py: the counters follow real traffic)."""

from __future__ import annotations

import re

from django.test import Client

NAMES = (
    "chat_connections_open", "chat_messages_accepted_total", "chat_deliveries_total", "chat_send_seconds", "chat_store_seconds",
    "chat_errors_total", "chat_broadcasts_reordered_total", "chat_gap_fills_total",
)


def value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} ([0-9.e+-]+)$", text, re.M)
    assert match, f"{sample} not in the metrics"
    return float(match.group(1))


def test_who_may_read_the_metrics(settings):
    settings.CHAT_METRICS_TOKEN = ""
    answer = Client().get("/metrics")  # the test client is 127.0.0.1
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/plain")
    text = answer.content.decode()
    for name in NAMES:
        assert f"# TYPE {name} " in text
    assert "process_cpu_seconds_total" in text
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 404
    assert Client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404  # proxied
    settings.CHAT_METRICS_TOKEN = "s3cret-token"
    remote = Client(REMOTE_ADDR="10.1.2.3")
    assert remote.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert remote.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 404
    assert Client().post("/metrics").status_code == 405
