"""Fixtures of the load-balancer fault test (tests/cluster/test_nginx_failover.py):
two daphne processes behind nginx (tests.e2e.harness.Server with
`backends=2`: nginx started through scripts/services up nginx, with the
proxy rules of deploy/nginx-chat-proxy.conf), on a private Redis and a fresh
database, and a channel of people who talk through nginx."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import require_service
from tests.e2e.harness import Person, Server, share_workspace
from tests.reliability.faults import RedisProcess, server_env

PEOPLE = 10


@dataclass
class Balanced:
    server: Server  # base/ws_base: nginx; procs/backend_ports: the two daphne processes
    people: list[Person]
    channel_id: int

    def connections_per_process(self) -> list[int]:
        """chat_connections_open of each process, asked directly (from loopback)."""
        counts = []
        for port in self.server.backend_ports:
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=3).text
            except httpx.HTTPError:
                counts.append(-1)
                continue
            match = re.search(r"^chat_connections_open (\S+)$", text, re.M)
            counts.append(int(float(match.group(1))) if match else -1)
        return counts


@pytest.fixture
def balanced() -> Iterator[Balanced]:
    require_service("DATABASE_URL", os.environ.get("DATABASE_URL", ""))
    redis = RedisProcess().start()
    env = server_env(
        "nginx_failover",
        redis.url(),
        CHAT_TRUST_PROXY="1",
        # Twenty messages a second from six people: no rate limit in the way.
        CHAT_RATE_LIMIT_MESSAGES="1000",
        CHAT_RATE_LIMIT_WINDOW="1",
        CHAT_STORE_FALLBACK="0",
    )
    server = Server(env, log_name="lb", backends=2).start()
    try:
        people = [Person(server) for _ in range(PEOPLE)]
        workspace_id = share_workspace(*people)
        r = people[0].http.post(f"/api/workspaces/{workspace_id}/channels/", {"name": "failover"})
        assert r.status_code == 201, r.text
        yield Balanced(server, people, r.json()["id"])
    finally:
        server.stop()
        redis.stop()
