from __future__ import annotations

import os
import tempfile
from urllib.parse import urlparse

import pytest

from tests.e2e.harness import Person, Server, prepare_database, server_base_env, share_workspace

pytestmark = pytest.mark.e2e


def _base_env() -> dict[str, str]:
    env = server_base_env()
    redis_url = env.get("REDIS_URL")
    if redis_url:
        # A database of its own, emptied, so old rate-limit buckets and
        # presence entries of earlier runs (same user ids) cannot leak in.
        parsed = urlparse(redis_url)
        # CHAT_E2E_REDIS_DB lets two runs of this suite share one Redis.
        env["REDIS_URL"] = parsed._replace(path="/" + os.environ.get("CHAT_E2E_REDIS_DB", "14")).geturl()
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    # Uploads go to a folder of this run's, not the project's media/.
    env["CHAT_MEDIA_ROOT"] = tempfile.mkdtemp(prefix="chat-e2e-media-")
    # Without REDIS_URL the servers run the embedded default (in-memory layer,
    # one process); tests that need Redis ask for the `redis_url` fixture.
    return env


@pytest.fixture(scope="session")
def e2e_env() -> dict[str, str]:
    return prepare_database(_base_env(), f"chat_e2e_{os.getpid()}")


@pytest.fixture(scope="module")
def pair(e2e_env):
    """Two daphne processes on one Redis (tests/e2e/test_scaleout_e2e.py)."""
    from tests.conftest import require_service
    from tests.e2e.test_scaleout_e2e import start_pair

    require_service("REDIS_URL", e2e_env.get("REDIS_URL", ""))
    a, b = start_pair(e2e_env)
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(scope="session")
def server(e2e_env):
    srv = Server(e2e_env).start()
    yield srv
    srv.stop()


class Classroom:
    """Through the HTTP API: teacher (workspace admin), two students, an
    outsider; a public channel #general."""

    def __init__(self, server: Server):
        self.server = server
        self.teacher = Person(server, display_name="Teacher T")
        self.alice = Person(server, display_name="Alice S")
        self.bob = Person(server, display_name="Bob S")
        self.outsider = Person(server)
        r = self.teacher.http.post("/api/workspaces/", {"name": "Class"})
        assert r.status_code == 201, r.text
        self.workspace_id = r.json()["id"]
        for student in (self.alice, self.bob):
            r = self.teacher.http.post(f"/api/workspaces/{self.workspace_id}/members/", {"username": student.username, "role": "student"})
            assert r.status_code == 201, r.text
        r = self.teacher.http.post(f"/api/workspaces/{self.workspace_id}/channels/", {"name": "general"})
        assert r.status_code == 201, r.text
        self.general = r.json()["id"]

    async def close(self) -> None:
        for person in (self.teacher, self.alice, self.bob, self.outsider):
            await person.close_all()


@pytest.fixture
async def classroom(server):
    room = Classroom(server)
    yield room
    await room.close()


@pytest.fixture
async def trio(server):
    """Three people of one workspace (MessagePal connects only such people)."""
    people = [Person(server) for _ in range(3)]
    share_workspace(*people)
    yield people
    for person in people:
        await person.close_all()


@pytest.fixture
async def browser():
    """Debian's Chromium through playwright (tests/e2e/browser.py)."""
    from tests.e2e.browser import launch, require_browser

    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await launch(playwright)
        yield chromium
        await chromium.close()
