"""`python -m chatsite.server --workers 2`: two server processes accept on
one port (chatsite/server.py) and act as one chat over Redis, like two
separately started processes (tests/e2e/test_scaleout_e2e.py)."""

from __future__ import annotations

import os
import re

import pytest

from tests.e2e.conftest import Classroom
from tests.e2e.harness import Server
from tests.e2e.test_chat_e2e import join, send

pytestmark = [pytest.mark.e2e, pytest.mark.needs_redis]


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def established_by(pid: int, port: int) -> int:
    """Connections to `port` that process `pid` holds (its socket inodes
    among the established server ends in /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed meanwhile
            continue
        if m:
            inodes.add(m.group(1))
    count = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if parts[1].endswith(f":{port:04X}") and parts[3] == "01" and parts[9] in inodes:
                count += 1
    return count


async def test_two_workers_on_one_port_serve_one_chat(e2e_env):
    # Straight to the workers, never through nginx (CHAT_E2E_VIA_NGINX): the
    # kernel's spreading of one port's accepts is what is checked.
    server = Server(e2e_env, log_name="workers", args=("--workers", "2"), backends=0)
    try:
        server.start(timeout=120)  # two Django start-ups at once, on a busy machine
        assert server.proc is not None
        workers = children(server.proc.pid)
        assert len(workers) == 2, workers
        room = Classroom(server)
        senders = [await room.alice.connect() for _ in range(4)]
        readers = [await room.bob.connect() for _ in range(8)]
        for ws in senders + readers:
            await join(ws, room.general)
        # The kernel spreads the accepts over both processes.
        held = [established_by(pid, server.port) for pid in workers]
        assert sum(held) >= 12 and all(held), held
        for i, ws in enumerate(senders):
            await send(ws, room.general, f"from sender {i}")
        for ws in readers:
            got = [(await ws.expect("new_message", timeout=10))["message"]["content"] for _ in senders]
            assert got == [f"from sender {i}" for i in range(len(senders))]
        await room.close()
    finally:
        server.stop()
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers), "a worker outlived the launcher"
