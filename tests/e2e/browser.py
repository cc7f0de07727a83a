"""Real Chromium for the browser tests: Debian's /usr/bin/chromium driven by
the playwright package (never `playwright install`). See
../shared/SERVICES.md, "Chromium for browser tests"."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI
from tests.e2e.harness import ROOT, Person, Server

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"


def require_browser() -> None:
    """Like require_service: in CI a missing browser fails the test, outside
    CI it is skipped with the reason printed."""
    problems = []
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing (pip install -r requirements.txt)")
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"{CHROMIUM} is missing (run scripts/ensure_chromium)")
    if not problems:
        return
    message = "browser tests cannot run: " + " and ".join(problems)
    if IN_CI:
        pytest.fail(message)
    print(f"SKIP: {message}", file=sys.stderr)
    pytest.skip(message)


async def launch(playwright: Any) -> Any:
    return await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


class Tab:
    """One browser context (one person) with one page. Records dialogs (none
    may ever open: they would mean injected script ran) and page errors."""

    def __init__(self, context: Any, page: Any, name: str):
        self.context = context
        self.page = page
        self.name = name
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self._dismissing: set[asyncio.Future] = set()
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        task = asyncio.ensure_future(dialog.dismiss())
        self._dismissing.add(task)
        task.add_done_callback(self._dismissing.discard)

    def _console(self, message: Any) -> None:
        # The Content-Security-Policy (chatsite.headers) must never have to refuse anything.
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.errors.append(f"CSP: {message.text}")

    async def shot(self, test: str, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{test}--{self.name}-{re.sub(r'[^a-z0-9]+', '-', label.lower()).strip('-')}.png"
        await self.page.screenshot(path=str(path), full_page=False)
        return path

    def assert_clean(self) -> None:
        assert self.dialogs == [], f"a dialog opened in {self.name}'s page: {self.dialogs}"
        assert self.errors == [], f"JavaScript errors or CSP violations in {self.name}'s page: {self.errors}"


async def new_tab(browser: Any, server: Server, name: str, person: Person | None = None) -> Tab:
    """A fresh context; logged in as `person` by giving it that person's
    session cookie (the login form itself is tested once, in the UI)."""
    context = await browser.new_context(base_url=server.base, viewport={"width": 1200, "height": 760})
    if person is not None:
        await context.add_cookies([{"name": "sessionid", "value": person.http.session_id, "url": server.base}])
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return Tab(context, page, name)


def channel_path(workspace_id: int, channel_id: int) -> str:
    return f"/workspaces/{workspace_id}/channels/{channel_id}/"
