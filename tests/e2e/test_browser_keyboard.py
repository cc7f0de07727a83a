"""The whole chat with the keyboard alone (issue 21; PROTOCOL.md, "Browser UI
names"): Tab, Shift+Tab, Enter, Escape and the arrow keys, never a click, to
switch channels, send a message, edit it, react with the emoji picker, and on
a 390x844 phone open and close the "Channels" drawer; every stop on the way
shows a visible focus ring. New messages reach a screen reader politely and
one by one: the log is a polite live region of additions, and a new message
adds one node without redrawing the others. Message text has dir="auto"."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import Tab, channel_path
from tests.e2e.pages import bubble, by_key, expect, live
from tests.e2e.test_browser_a11y import open_tab
from tests.e2e.test_chat_e2e import join, send

pytestmark = pytest.mark.e2e

FOCUS_RING = """() => {
  const node = document.activeElement;
  // The file input is visually hidden: its label carries the ring.
  const shown = node.matches('.attach-input') ? node.nextElementSibling : node;
  const style = getComputedStyle(shown);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2;
  const shadow = style.boxShadow !== 'none';
  const name = node.getAttribute('aria-label') || node.textContent.trim().slice(0, 40) || node.tagName;
  return { visible: outline || shadow, name, tag: node.tagName };
}"""


async def assert_focus_visible(tab: Tab) -> str:
    ring = await tab.page.evaluate(FOCUS_RING)
    assert ring["tag"] != "BODY", "the focus fell back to the page"
    assert ring["visible"], f"no visible focus indicator on {ring}"
    return ring["name"]


async def tab_to(tab: Tab, target, *, back: bool = False, limit: int = 60) -> list[str]:
    """Presses Tab (Shift+Tab) until `target` has the focus; checks the focus
    ring at every stop on the way. The names of the stops."""
    stops = []
    for _ in range(limit):
        await tab.page.keyboard.press("Shift+Tab" if back else "Tab")
        try:
            stops.append(await assert_focus_visible(tab))
        except AssertionError as problem:
            raise AssertionError(f"{problem} after {stops}") from None
        if await target.evaluate("(node) => node === document.activeElement"):
            return stops
    raise AssertionError(f"never reached the target with {'Shift+Tab' if back else 'Tab'}: {stops}")


async def test_keyboard_only_channel_send_edit_react(classroom, browser):
    test = "keyboard-desktop"
    room = classroom
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/channels/", {"name": "random"})
    assert r.status_code == 201, r.text
    random = r.json()["id"]
    bob = await room.bob.connect()
    await join(bob, random)
    await send(bob, random, "Bob was here first")

    alice = await open_tab(browser, room.server, "alice", room.alice, "desktop")
    page = alice.page
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)

    # Switch channels: Tab through the page to the sidebar's "random", Enter.
    # (Bob's message makes it "random" with an unread count.)
    await tab_to(alice, page.get_by_role("link", name=re.compile(r"^random\b")))
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**{channel_path(room.workspace_id, random)}")
    await live(alice)
    await expect(page.get_by_role("heading", name="# random")).to_be_visible()

    # Send: Tab to the composer, type, Enter.
    composer = page.get_by_role("textbox", name="Message", exact=True)
    await tab_to(alice, composer)
    await page.keyboard.type("Typed without a mouse")
    await page.keyboard.press("Enter")
    sent = bubble(alice, "Typed without a mouse")
    await expect(sent).to_have_attribute("data-key", re.compile(r"^\d+$"))
    mine = by_key(alice, await sent.get_attribute("data-key"))  # found while editing too
    await expect(composer).to_be_focused()
    await alice.shot(test, "sent")

    # Edit: Shift+Tab back into the log lands on the message last focused
    # (Bob's, passed on the way to the composer: one tab stop for the whole
    # list), End moves to the newest, its tools appear on focus; Tab to
    # "Edit", Enter; Enter saves.
    await tab_to(alice, page.get_by_role("log").locator('article.message[tabindex="0"]'), back=True)
    await page.keyboard.press("End")
    await expect(mine).to_be_focused()
    edit = mine.get_by_role("button", name="Edit")
    await expect(edit).to_be_visible()
    await alice.shot(test, "message-focused")
    await tab_to(alice, edit)
    await page.keyboard.press("Enter")
    editor = mine.get_by_role("textbox", name="Edit message")
    await expect(editor).to_be_focused()
    await page.keyboard.press("ControlOrMeta+a")
    await page.keyboard.type("Edited without a mouse")
    await alice.shot(test, "editing")
    await page.keyboard.press("Enter")
    await expect(mine.locator(".message-body")).to_have_text("Edited without a mouse")
    await expect(mine.get_by_text("(edited)")).to_be_visible()
    await expect(mine).to_be_focused()

    # Up and Down move between messages.
    await page.keyboard.press("ArrowUp")
    await expect(bubble(alice, "Bob was here first")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(mine).to_be_focused()

    # React: "Add reaction", the picker's search box, Down into the grid,
    # Right to the second emoji, Enter; Escape closes the picker unchanged.
    react = mine.get_by_role("button", name="Add reaction")
    await tab_to(alice, react)
    await page.keyboard.press("Enter")
    search = page.get_by_role("searchbox", name="Search emoji")
    await expect(search).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowRight")
    emoji = await page.evaluate("() => document.activeElement.dataset.emoji")
    assert emoji, "the arrows did not reach an emoji"
    await assert_focus_visible(alice)
    await alice.shot(test, "picker")
    await page.keyboard.press("Enter")
    chip = mine.get_by_role("button", name=re.compile("^" + re.escape(emoji)))
    await expect(chip).to_have_attribute("aria-pressed", "true")
    await expect(search).to_be_hidden()
    await expect(react).to_be_focused()  # back where the picker was opened from
    await page.keyboard.press("Enter")
    await expect(search).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(search).to_be_hidden()
    await expect(react).to_be_focused()
    # The chip itself toggles with Enter: the reaction is taken back.
    await tab_to(alice, chip, back=True)
    await page.keyboard.press("Enter")
    await expect(chip).to_have_count(0)
    await alice.shot(test, "reacted")
    alice.assert_clean()


async def test_keyboard_only_drawer_on_a_phone(classroom, browser):
    test = "keyboard-phone"
    room = classroom
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/channels/", {"name": "random"})
    assert r.status_code == 201, r.text
    random = r.json()["id"]
    alice = await open_tab(browser, room.server, "alice", room.alice, "phone")
    page = alice.page
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    button = page.get_by_role("button", name="Channels", exact=True)
    stops = await tab_to(alice, button)
    assert "random" not in stops, "a link of the closed drawer took the focus"
    await page.keyboard.press("Enter")
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_role("button", name="Close channels")).to_be_focused()
    await alice.shot(test, "drawer")
    await tab_to(alice, page.get_by_role("link", name="random", exact=True))
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"**{channel_path(room.workspace_id, random)}")
    await live(alice)
    await expect(page.get_by_role("heading", name="# random")).to_be_visible()
    await tab_to(alice, button)
    await page.keyboard.press("Enter")
    link = page.get_by_role("link", name="general", exact=True)
    await expect(link).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(link).to_be_hidden()
    await expect(button).to_be_focused()
    await expect(button).to_have_attribute("aria-expanded", "false")
    await assert_focus_visible(alice)
    # And on into the conversation: the composer, type, Enter.
    composer = page.get_by_role("textbox", name="Message", exact=True)
    await tab_to(alice, composer)
    await page.keyboard.type("Sent from a phone keyboard")
    await page.keyboard.press("Enter")
    await expect(bubble(alice, "Sent from a phone keyboard")).to_have_attribute("data-key", re.compile(r"^\d+$"))
    await alice.shot(test, "sent")
    alice.assert_clean()


RECORD = """() => {
  const log = document.querySelector('[role=log]');
  for (const node of log.querySelectorAll('article.message')) node.dataset.seen = 'before';
  window.logMutations = [];
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.type !== 'childList' || r.target !== log) continue;
      for (const n of r.addedNodes) window.logMutations.push(['added', n.textContent]);
      for (const n of r.removedNodes) window.logMutations.push(['removed', n.textContent]);
    }
  }).observe(log, { childList: true });
}"""


async def test_new_messages_are_announced_politely_one_by_one(classroom, browser):
    """The log: role log, aria-live polite, aria-relevant additions,
    aria-atomic false, busy while it fills in and not once live; Bob's new
    message adds exactly one node and leaves every other message node as it
    was; message text is dir="auto" (a Hebrew line reads right to left)."""
    room = classroom
    bob = await room.bob.connect()
    await join(bob, room.general)
    for n in range(3):
        await send(bob, room.general, f"earlier message {n}")
    alice = await open_tab(browser, room.server, "alice", room.alice, "desktop")
    page = alice.page
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    log = page.get_by_role("log")
    await expect(log).to_have_attribute("aria-live", "polite")
    await expect(log).to_have_attribute("aria-relevant", "additions")
    await expect(log).to_have_attribute("aria-atomic", "false")
    await expect(log).to_have_attribute("aria-busy", "false")
    await expect(log.locator("article.message")).to_have_count(3)

    await page.evaluate(RECORD)
    await send(bob, room.general, "שלום לכולם")
    await expect(bubble(alice, "שלום לכולם")).to_be_visible()
    await page.wait_for_timeout(300)  # any redraw the message caused has happened
    mutations = await page.evaluate("() => window.logMutations")
    assert [kind for kind, _ in mutations] == ["added"], mutations
    assert "שלום לכולם" in mutations[0][1]
    assert await log.locator('article.message[data-seen="before"]').count() == 3
    body = bubble(alice, "שלום לכולם").locator(".message-body")
    await expect(body).to_have_attribute("dir", "auto")
    assert await body.evaluate("(node) => getComputedStyle(node).direction") == "rtl"
    english = bubble(alice, "earlier message 0").locator(".message-body")
    assert await english.evaluate("(node) => getComputedStyle(node).direction") == "ltr"

    # Losing the connection makes the log busy (the catch-up is not read out).
    await room.bob.close_all()
    await alice.context.set_offline(True)
    await expect(log).to_have_attribute("aria-busy", "true")
    await alice.context.set_offline(False)
    await live(alice)
    await expect(log).to_have_attribute("aria-busy", "false")
    alice.assert_clean()
