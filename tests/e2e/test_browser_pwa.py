"""The installable app in real Chromium (issue 21; chatsite/pwa.py): the
manifest is valid JSON with reachable icons, the service worker registers and
controls the page, offline a reload shows the offline page ("offline,
reconnecting") and the page comes back by itself once the network does, an
older deploy's cache is deleted, and the worker's caches hold the static
shell only: no API answer, no file, no page with messages. At 390x844
(mobile, touch) and 1280x800."""

from __future__ import annotations

import json

import pytest

from tests.e2e.browser import Tab, channel_path
from tests.e2e.pages import expect, live, post
from tests.e2e.test_browser_a11y import open_tab

pytestmark = pytest.mark.e2e


@pytest.fixture
async def browser(monkeypatch):
    """Chromium as in conftest.py, with the service worker's own requests
    visible to `context.route` (Playwright's experimental switch):
    `set_offline` alone leaves the worker's fetches online
    (microsoft/playwright#2311), which no real offline device does, so
    go_offline() fails them as a lost network would."""
    from tests.e2e.browser import launch, require_browser

    require_browser()
    monkeypatch.setenv("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await launch(playwright)
        yield chromium
        await chromium.close()

CACHED_URLS = """async () => {
  const found = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) found.push([name, new URL(request.url).pathname]);
  }
  return found;
}"""


async def offline_worker(route) -> None:
    if route.request.service_worker is not None:
        await route.abort("internetdisconnected")
    else:
        await route.continue_()


async def go_offline(tab: Tab, offline: bool) -> None:
    """The whole context offline: its pages, and its service worker's own
    fetches (which `set_offline` alone does not reach)."""
    await tab.context.set_offline(offline)
    if offline:
        await tab.context.route("**/*", offline_worker)
    else:
        await tab.context.unroute("**/*", offline_worker)


async def controlled(tab: Tab) -> str:
    """Waits until the service worker controls the page; its script's URL."""
    await tab.page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    return await tab.page.evaluate("() => navigator.serviceWorker.controller.scriptURL")


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_installable_and_offline(classroom, browser, size):
    test = f"pwa-{size}"
    room = classroom
    visitor = await open_tab(browser, room.server, "visitor", None, size)
    page = visitor.page
    # A cache an older deploy's worker left behind: the new one deletes it on activate.
    await visitor.context.add_init_script(
        "if (!sessionStorage.getItem('stale')) { sessionStorage.setItem('stale', '1'); caches.open('chat-shell-0123456789abcdef').then((c) => c.put('/static/js/old.js', new Response('old'))); }"
    )
    await page.goto("/")
    href = await page.locator('link[rel="manifest"]').get_attribute("href")
    answer = await page.request.get(href)
    assert answer.ok and answer.headers["content-type"] == "application/manifest+json"
    manifest = json.loads(await answer.text())
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone" and manifest["short_name"]
    assert {icon["sizes"] for icon in manifest["icons"]} == {"192x192", "512x512"}
    assert any(icon["purpose"] == "maskable" for icon in manifest["icons"])
    for icon in manifest["icons"]:
        got = await page.request.get(icon["src"])
        assert got.ok and got.headers["content-type"] == "image/png", icon
    assert (await controlled(visitor)).endswith("/sw.js")
    names = await page.evaluate("() => caches.keys()")
    assert len(names) == 1 and names[0].startswith("chat-shell-") and names[0] != "chat-shell-0123456789abcdef", names
    scope = await page.evaluate("() => navigator.serviceWorker.getRegistration().then((r) => r.scope)")
    assert scope == room.server.base + "/"
    visitor.assert_clean()

    alice = await open_tab(browser, room.server, "alice", room.alice, size)
    page = alice.page
    url = channel_path(room.workspace_id, room.general)
    await page.goto(url)
    await controlled(alice)
    await live(alice)
    await post(alice, "written before going offline")
    responses = []
    page.on("response", lambda response: responses.append(response))
    await page.reload()  # now through the worker: static files from its cache
    await live(alice)
    served = {response.url.removeprefix(room.server.base): response.from_service_worker for response in responses}
    assert served["/static/css/app.css"] and served["/static/js/chat.js"], served
    assert not any(worker for path, worker in served.items() if path.startswith("/api/")), served
    await page.request.get(f"/api/channels/{room.general}/messages/")

    cached = await page.evaluate(CACHED_URLS)
    names = {name for name, _ in cached}
    assert len(names) == 1 and names.pop().startswith("chat-shell-"), cached
    paths = [path for _, path in cached]
    assert "/static/css/app.css" in paths and "/static/js/chat.js" in paths and "/offline/" in paths
    wrong = [path for path in paths if not (path.startswith("/static/") or path == "/offline/")]
    assert wrong == [], f"the service worker cached more than the shell: {wrong}"

    await go_offline(alice, True)
    await page.reload()
    await expect(page.get_by_text("offline, reconnecting")).to_be_visible()
    await expect(page.get_by_role("log")).to_have_count(0)
    assert page.url.endswith(url)
    await alice.shot(test, "offline")
    await page.goto("/messagepal/")
    await expect(page.get_by_text("offline, reconnecting")).to_be_visible()
    await page.go_back()
    await expect(page.get_by_text("offline, reconnecting")).to_be_visible()
    await go_offline(alice, False)
    # Back online, the offline page loads the page it stands in for by itself.
    await expect(page.get_by_role("log")).to_have_attribute("data-live", "true", timeout=15_000)
    await expect(page.get_by_text("written before going offline")).to_be_visible()
    assert page.url.endswith(url)
    after = [path for _, path in await page.evaluate(CACHED_URLS)]
    assert sorted(after) == sorted(paths)
    alice.assert_clean()
