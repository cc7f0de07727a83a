"""Dark mode and reduced motion (issue 21; static/css/app.css): with
`prefers-color-scheme: dark` every page is dark through the same custom
properties and axe-core finds no serious or critical violation (contrast
included) on the login page, a channel's page and /messagepal/ (and the
other pages) at 390x844 (mobile, touch) and 1280x800; with
`prefers-reduced-motion: reduce` nothing animates or transitions.
Screenshots of each page at both widths, light and dark, in
test-artifacts/screenshots/."""

from __future__ import annotations

import pytest

from tests.e2e.browser import Tab, channel_path
from tests.e2e.pages import bubble, expect, live, post
from tests.e2e.test_browser_a11y import SIZES, no_serious_violations
from tests.e2e.test_chat_e2e import join, send
from tests.e2e.test_messagepal_e2e import conv

pytestmark = pytest.mark.e2e


async def themed_tab(browser, server, name: str, person, size: str, **options) -> Tab:
    context = await browser.new_context(base_url=server.base, **SIZES[size], **options)
    if person is not None:
        await context.add_cookies([{"name": "sessionid", "value": person.http.session_id, "url": server.base}])
    page = await context.new_page()
    page.set_default_timeout(10_000)
    return Tab(context, page, name)


async def background(tab: Tab) -> str:
    return await tab.page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")


def is_dark(rgb: str) -> bool:
    parts = [int(float(p)) for p in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    return sum(parts) / 3 < 60


@pytest.mark.parametrize("size", ["phone", "desktop"])
@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_every_page_in_light_and_dark(classroom, browser, size, scheme):
    """Six pages per width and scheme, screenshotted; in dark mode each is
    dark and axe-core finds nothing serious or critical."""
    test = f"theme-{scheme}-{size}"
    room = classroom
    bob = await room.bob.connect()
    await join(bob, room.general)
    await send(bob, room.general, "Good morning @alice, the homework is on page 12")
    r = room.bob.http.post(f"/api/messagepal/conversations/{conv(room.bob, room.alice)}/messages/", {"content": "hi from Bob", "clientId": f"theme-{scheme}-{size}"})
    assert r.status_code == 201, r.text

    async def check(tab: Tab, where: str) -> None:
        if scheme == "dark":
            assert is_dark(await background(tab)), f"{where} is not dark: {await background(tab)}"
            await no_serious_violations(tab, f"{where} at {size} in dark mode")
        else:
            assert not is_dark(await background(tab))
        await tab.shot(test, where)

    visitor = await themed_tab(browser, room.server, "visitor", None, size, color_scheme=scheme)
    await visitor.page.goto("/")
    await expect(visitor.page.get_by_role("button", name="Log in")).to_be_visible()
    await check(visitor, "login")
    await visitor.page.goto("/register/")
    await expect(visitor.page.get_by_role("heading", level=1)).to_be_visible()
    await check(visitor, "register")

    teacher = await themed_tab(browser, room.server, "teacher", room.teacher, size, color_scheme=scheme)
    await teacher.page.goto("/")
    await expect(teacher.page.get_by_role("link", name="Class")).to_be_visible()
    await check(teacher, "home")
    await teacher.page.goto(f"/workspaces/{room.workspace_id}/settings/")
    await expect(teacher.page.get_by_text("Alice S").first).to_be_visible()
    await check(teacher, "settings")

    alice = await themed_tab(browser, room.server, "alice", room.alice, size, color_scheme=scheme)
    await alice.page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    await expect(bubble(alice, "homework is on page 12")).to_be_visible()
    await post(alice, "Thanks, I am on it")
    await check(alice, "channel")
    await alice.page.goto("/messagepal/")
    await expect(alice.page.locator("#conversation-list a")).to_have_count(1)
    await check(alice, "messagepal")
    for tab in (visitor, teacher, alice):
        tab.assert_clean()


MOTION = """() => {
  const message = document.querySelector('[role=log] article.message');
  const button = document.querySelector('button');
  return {
    running: document.getAnimations().map((a) => a.animationName || a.transitionProperty || 'animation'),
    messageAnimation: getComputedStyle(message).animationName,
    buttonTransition: getComputedStyle(button).transitionDuration,
    scrollBehavior: getComputedStyle(document.querySelector('[role=log]')).scrollBehavior,
  };
}"""


@pytest.mark.parametrize("size", ["phone", "desktop"])
async def test_reduced_motion_turns_every_animation_off(classroom, browser, size):
    """A message arriving, hovering and focusing buttons, the drawer or the
    emoji picker opening: with reduced motion no CSS animation or transition
    runs at any point. Without it the same page does animate (so the check
    can see motion when there is some)."""
    room = classroom
    bob = await room.bob.connect()
    await join(bob, room.general)
    moving = await themed_tab(browser, room.server, "alice-moving", room.alice, size)
    calm = await themed_tab(browser, room.server, "alice-calm", room.alice, size, reduced_motion="reduce")
    for tab in (moving, calm):
        await tab.page.goto(channel_path(room.workspace_id, room.general))
        await live(tab)
    await send(bob, room.general, "does this slide in?")
    for tab in (moving, calm):
        await expect(bubble(tab, "does this slide in?")).to_be_visible()

    motion = await moving.page.evaluate(MOTION)
    assert motion["messageAnimation"] == "message-in" and motion["buttonTransition"] != "0s", motion

    page = calm.page
    seen = [await page.evaluate(MOTION)]
    await send(bob, room.general, "and this one?")
    await expect(bubble(calm, "and this one?")).to_be_visible()
    seen.append(await page.evaluate(MOTION))
    await page.get_by_role("button", name="Send").hover()
    seen.append(await page.evaluate(MOTION))
    if size == "phone":
        await page.get_by_role("button", name="Channels", exact=True).click()
        seen.append(await page.evaluate(MOTION))
        await page.keyboard.press("Escape")
    message = bubble(calm, "and this one?")
    await message.hover()
    await message.get_by_role("button", name="Add reaction").click()
    seen.append(await page.evaluate(MOTION))
    for state in seen:
        assert state["running"] == [] and state["messageAnimation"] == "none" and state["buttonTransition"] == "0s", seen
        assert state["scrollBehavior"] == "auto", seen
    moving.assert_clean()
    calm.assert_clean()
