"""The browser UI on a phone and for everyone (issue 21; PROTOCOL.md, "Browser
UI names"): axe-core (through axe-playwright-python, which ships it) finds no
serious or critical violation on the login page, a channel's page and
MessagePal at 390x844 (mobile emulation with touch) and at 1280x800; on a
phone the conversation fills the screen, the channel list is a drawer behind
"Channels", and nothing scrolls sideways at 320 px. Real Chromium against the
real daphne harness; screenshots of each page at both widths in
test-artifacts/screenshots/."""

from __future__ import annotations

import pytest

from tests.e2e.browser import Tab, channel_path
from tests.e2e.pages import expect, live, post
from tests.e2e.test_browser_files import attach, png, ready, send_button
from tests.e2e.test_chat_e2e import join, send
from tests.e2e.test_messagepal_e2e import conv

pytestmark = pytest.mark.e2e

SIZES = {
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}},
}
BLOCKING = ("serious", "critical")


async def open_tab(browser, server, name: str, person, size: str) -> Tab:
    context = await browser.new_context(base_url=server.base, **SIZES[size])
    if person is not None:
        await context.add_cookies([{"name": "sessionid", "value": person.http.session_id, "url": server.base}])
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return Tab(context, page, name)


async def no_serious_violations(tab: Tab, where: str) -> None:
    """Runs axe-core on the page; prints every violation, fails on serious or critical ones."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(tab.page)
    violations = results.response["violations"]
    for v in violations:
        targets = [node["target"] for node in v["nodes"]][:5]
        print(f"axe {where}: {v['impact']} {v['id']}: {v['help']} {targets}")
    blocking = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:5]}" for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], f"axe-core on {where}: {blocking}"


def channels_button(tab: Tab):
    return tab.page.get_by_role("button", name="Channels", exact=True)


async def no_sideways_scroll(tab: Tab) -> None:
    width = await tab.page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_axe_finds_nothing_serious(classroom, browser, size):
    """The login page, #general with messages and an image, and MessagePal
    with a conversation: 0 serious or critical axe-core violations."""
    test = f"a11y-{size}"
    room = classroom
    bob = await room.bob.connect()
    await join(bob, room.general)
    await send(bob, room.general, "Welcome to the class channel, @alice")
    r = room.bob.http.post(f"/api/messagepal/conversations/{conv(room.bob, room.alice)}/messages/", {"content": "hi from Bob", "clientId": "a11y-1"})
    assert r.status_code == 201, r.text

    visitor = await open_tab(browser, room.server, "visitor", None, size)
    await visitor.page.goto("/")
    await expect(visitor.page.get_by_role("button", name="Log in")).to_be_visible()
    await no_serious_violations(visitor, f"login at {size}")
    await visitor.shot(test, "login")

    alice = await open_tab(browser, room.server, "alice", room.alice, size)
    await alice.page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    await post(alice, "Here is my homework")
    await attach(alice, "drawing.png", "image/png", png(320, 200, "teal"))
    await ready(alice, "drawing.png")
    await send_button(alice).click()
    await expect(alice.page.get_by_role("log").locator("img")).to_have_count(1)
    await no_serious_violations(alice, f"channel at {size}")
    await alice.shot(test, "channel")

    await alice.page.goto("/messagepal/")
    await expect(alice.page.locator("#conversation-list a")).to_have_count(1)
    await no_serious_violations(alice, f"/messagepal/ at {size}")
    await alice.shot(test, "messagepal")
    await alice.page.goto(f"/messagepal/{conv(room.bob, room.alice)}/")
    await live(alice)
    await no_serious_violations(alice, f"a MessagePal conversation at {size}")
    await alice.shot(test, "messagepal-conversation")
    visitor.assert_clean()
    alice.assert_clean()


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_axe_finds_nothing_serious_on_the_other_pages(classroom, browser, size):
    """The register page, the home page (workspaces) and a workspace's
    settings page (a teacher's): 0 serious or critical axe-core violations."""
    test = f"a11y-{size}"
    room = classroom
    visitor = await open_tab(browser, room.server, "visitor", None, size)
    await visitor.page.goto("/register/")
    await expect(visitor.page.get_by_role("heading", level=1)).to_be_visible()
    await no_serious_violations(visitor, f"register at {size}")
    await visitor.shot(test, "register")

    teacher = await open_tab(browser, room.server, "teacher", room.teacher, size)
    await teacher.page.goto("/")
    await expect(teacher.page.get_by_role("link", name="Class")).to_be_visible()
    await no_serious_violations(teacher, f"home at {size}")
    await teacher.shot(test, "home")
    await teacher.page.goto(f"/workspaces/{room.workspace_id}/settings/")
    await expect(teacher.page.get_by_text("Alice S").first).to_be_visible()
    await no_serious_violations(teacher, f"settings at {size}")
    await no_sideways_scroll(teacher)
    await teacher.shot(test, "settings")
    visitor.assert_clean()
    teacher.assert_clean()


async def inside_drawer(tab: Tab) -> bool:
    return await tab.page.evaluate("() => document.getElementById('sidebar').contains(document.activeElement)")


async def assert_touch_targets(tab: Tab, scope) -> None:
    """Every visible button and link in `scope` is at least 44 px high."""
    heights = await scope.locator("button:visible, a[href]:visible").evaluate_all("(nodes) => nodes.map((n) => [n.textContent.trim() || n.getAttribute('aria-label'), n.getBoundingClientRect().height])")
    small = [(name, h) for name, h in heights if h < 44]
    assert small == [], f"touch targets under 44 px: {small}"


async def test_on_a_phone_the_conversation_fills_the_screen_and_channels_is_a_drawer(classroom, browser):
    """At 390x844 with touch: the message list is the scrolling area and the
    composer is on screen; "Channels" opens the drawer, Tab stays inside it,
    Escape closes it (focus back on the button), choosing a channel opens it
    with the drawer closed; MessagePal's conversations the same; nothing
    scrolls sideways at 320 px."""
    test = "phone-drawer"
    room = classroom
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/channels/", {"name": "random"})
    assert r.status_code == 201, r.text
    random = r.json()["id"]
    bob = await room.bob.connect()
    await join(bob, room.general)
    for n in range(40):
        await send(bob, room.general, f"line {n} of a long conversation")
    r = room.bob.http.post(f"/api/messagepal/conversations/{conv(room.bob, room.alice)}/messages/", {"content": "hi from Bob", "clientId": "phone-1"})
    assert r.status_code == 201, r.text

    alice = await open_tab(browser, room.server, "alice", room.alice, "phone")
    page = alice.page
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    composer = page.get_by_role("textbox", name="Message", exact=True)
    await expect(composer).to_be_in_viewport()
    await expect(page.get_by_role("button", name="Send", exact=True)).to_be_in_viewport()
    shape = await page.evaluate(
        """() => { const log = document.querySelector('[role=log]');
        return { page: document.documentElement.scrollHeight, window: innerHeight, log: log.scrollHeight, shown: log.clientHeight, overflow: getComputedStyle(log).overflowY }; }"""
    )
    assert shape["page"] <= shape["window"] and shape["log"] > shape["shown"] and shape["overflow"] == "auto", shape
    link = page.get_by_role("link", name="random", exact=True)
    await expect(link).to_be_hidden()
    await alice.shot(test, "channel")
    await assert_touch_targets(alice, page.locator(".conversation-header, .composer, .topbar"))

    button = channels_button(alice)
    await expect(button).to_have_attribute("aria-expanded", "false")
    await button.click()
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(link).to_be_visible()
    await expect(page.get_by_role("button", name="Close channels")).to_be_focused()
    await assert_touch_targets(alice, page.locator("#sidebar"))
    await alice.shot(test, "drawer")
    for _ in range(12):  # more than the drawer's controls: Tab wraps around inside
        await page.keyboard.press("Tab")
        assert await inside_drawer(alice)
    await page.get_by_role("button", name="Close channels").focus()
    await page.keyboard.press("Shift+Tab")
    assert await inside_drawer(alice)
    await page.keyboard.press("Escape")
    await expect(link).to_be_hidden()
    await expect(button).to_have_attribute("aria-expanded", "false")
    await expect(button).to_be_focused()

    await button.click()
    await link.click()
    await page.wait_for_url(f"**{channel_path(room.workspace_id, random)}")
    await live(alice)
    await expect(page.get_by_role("heading", name="# random")).to_be_visible()
    await expect(channels_button(alice)).to_have_attribute("aria-expanded", "false")
    await expect(page.get_by_role("link", name="general", exact=True)).to_be_hidden()

    await page.goto("/messagepal/")
    pal = page.get_by_role("link", name="Bob S")
    await expect(pal).to_be_hidden()
    await channels_button(alice).click()
    await expect(pal).to_be_visible()
    await alice.shot(test, "messagepal-drawer")
    await page.keyboard.press("Escape")
    await expect(pal).to_be_hidden()
    await expect(channels_button(alice)).to_be_focused()
    await channels_button(alice).click()
    await pal.click()
    await page.wait_for_url(f"**/messagepal/{conv(room.bob, room.alice)}/")
    await live(alice)
    await expect(pal).to_be_hidden()
    await expect(composer).to_be_in_viewport()

    await page.set_viewport_size({"width": 320, "height": 640})
    for path in (channel_path(room.workspace_id, room.general), "/messagepal/"):
        await page.goto(path)
        await live(alice)
        await no_sideways_scroll(alice)
        await channels_button(alice).click()
        await no_sideways_scroll(alice)
    await alice.shot(test, "320")
    visitor = await open_tab(browser, room.server, "visitor", None, "phone")
    await visitor.page.set_viewport_size({"width": 320, "height": 640})
    await visitor.page.goto("/")
    await no_sideways_scroll(visitor)
    alice.assert_clean()
    visitor.assert_clean()
