"""Presence, mentions and notifications in the browser (PROTOCOL.md part 2,
"Presence snapshot, mentions and notifications"): online dots from the
`online` snapshot of joined_channel, mention badges told apart from unread
badges, the unread total in the tab title, the "Notifications" bell with its
panel and desktop notifications, and a channel's "Notification level". Real
Chromium against the real daphne harness; screenshots in
test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.e2e.browser import Tab, channel_path, new_tab
from tests.e2e.pages import bubble, expect, live

pytestmark = pytest.mark.e2e

# Records what the page does with the Notification API: how often it asked
# for permission and every notification it showed. The permission starts
# undecided ("default") on every page, whatever the browser context granted,
# so the page must ask through its button before it shows anything.
NOTIFICATION_SPY = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notes = { asked: 0, shown: [], permission: "default" };
  class Spy extends Real {
    constructor(title, options = {}) {
      window.__notes.shown.push({ title, body: options.body || "" });
      super(title, options);
    }
    static get permission() { return window.__notes.permission; }
    static async requestPermission() {
      window.__notes.asked += 1;
      window.__notes.permission = await Real.requestPermission();
      return window.__notes.permission;
    }
  }
  window.Notification = Spy;
})();
"""


async def join(ws, channel_id: int) -> dict:
    answer = await ws.request({"type": "join_channel", "channelId": channel_id}, "joined_channel")
    assert answer["type"] == "joined_channel", answer
    return answer


async def ws_send(ws, channel_id: int, content: str) -> dict:
    answer = await ws.request({"type": "send_message", "channelId": channel_id, "content": content}, "new_message")
    assert answer["type"] == "new_message", answer
    return answer["message"]


def add_channel(room, name: str) -> int:
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/channels/", {"name": name})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def open_channel(browser, room, name: str, person, channel_id: int, *, spy: bool = False) -> Tab:
    tab = await new_tab(browser, room.server, name, person)
    if spy:
        await tab.context.grant_permissions(["notifications"], origin=room.server.base)
        await tab.context.add_init_script(NOTIFICATION_SPY)
    await tab.page.goto(channel_path(room.workspace_id, channel_id))
    await live(tab)
    return tab


def channel_link(tab: Tab, name: str):
    return tab.page.get_by_role("navigation", name="Channels").get_by_role("link", name=re.compile(name))


def member_dot(tab: Tab, display_name: str):
    return tab.page.get_by_role("button", name=f"Direct message {display_name}").locator(".dot")


def bell(tab: Tab):
    return tab.page.get_by_role("button", name="Notifications", exact=True)


def bell_panel(tab: Tab):
    return tab.page.get_by_role("dialog", name="Notifications")


def level_menu(tab: Tab):
    return tab.page.get_by_role("combobox", name="Notification level")


def unread_notifications(person) -> list[dict]:
    r = person.http.get("/api/notifications/?unread=1")
    assert r.status_code == 200, r.text
    return r.json()["results"]


def unread_counts(person, workspace_id: int) -> dict[int, int]:
    r = person.http.get(f"/api/workspaces/{workspace_id}/channels/")
    assert r.status_code == 200, r.text
    return {c["id"]: c["unreadCount"] for c in r.json()}


async def eventually(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "the condition did not hold in time"
        await asyncio.sleep(0.1)


async def test_mention_badge_is_distinct_and_the_title_counts_unread(classroom, browser):
    """Bob posts twice in #random, once mentioning Alice, while she reads
    #general: her sidebar shows "2 unread" and, apart from it, "@1" named
    "1 mention"; the tab title is "(2) #general · Class · Chat". The counts
    come back from the channel list on reload; opening #random reads it and
    the title falls back to its base."""
    test = "mention-badges"
    room = classroom
    random = add_channel(room, "random")
    alice = await open_channel(browser, room, "alice", room.alice, room.general)
    page = alice.page
    await expect(page).to_have_title("#general · Class · Chat")

    bob = await room.bob.connect()
    await join(bob, random)
    await ws_send(bob, random, "anyone around?")
    link = channel_link(alice, "random")
    await expect(link.get_by_label("1 unread")).to_be_visible()
    await expect(link.get_by_label(re.compile("mention"))).to_have_count(0)
    await expect(page).to_have_title("(1) #general · Class · Chat")

    await ws_send(bob, random, f"@{room.alice.username} can you check the quiz?")
    mention = link.get_by_label("1 mention", exact=True)
    await expect(mention).to_be_visible()
    await expect(mention).to_have_text("@1")
    await expect(mention).to_have_class(re.compile(r"\bmentions\b"))
    unread = link.get_by_label("2 unread", exact=True)
    await expect(unread).to_have_text("2")
    await expect(unread).not_to_have_class(re.compile(r"\bmentions\b"))
    await expect(page).to_have_title("(2) #general · Class · Chat")
    # Nothing for #general itself (no mention of anyone there).
    await expect(channel_link(alice, "general").locator(".mentions, .unread")).to_have_count(0)
    await alice.shot(test, "badges")

    # From the server's channel list (mentionCount, unreadCount) on reload.
    await page.reload()
    await live(alice)
    await expect(link.get_by_label("1 mention", exact=True)).to_have_text("@1")
    await expect(link.get_by_label("2 unread", exact=True)).to_be_visible()
    await expect(page).to_have_title("(2) #general · Class · Chat")

    # A post in the open channel counts for nobody: Alice reads it.
    await join(bob, room.general)
    await ws_send(bob, room.general, "and hello here")
    await expect(bubble(alice, "and hello here")).to_be_visible()
    await expect(page).to_have_title("(2) #general · Class · Chat")
    await eventually(lambda: unread_counts(room.alice, room.workspace_id)[room.general] == 0)

    await link.click()
    await expect(page.locator("#channel-title")).to_have_text("# random")
    await expect(bubble(alice, "can you check the quiz?")).to_be_visible()
    await expect(page).to_have_title("#random · Class · Chat")
    await expect(link.locator(".mentions, .unread")).to_have_count(0)
    await page.reload()
    await live(alice)
    await expect(page).to_have_title("#random · Class · Chat")
    await expect(link.locator(".mentions, .unread")).to_have_count(0)
    await alice.shot(test, "read")
    alice.assert_clean()


async def test_the_bell_lists_a_mention_and_shows_a_desktop_notification(classroom, browser):
    """The page never asks for desktop notifications by itself; "Enable
    desktop notifications" in the bell's panel asks. A mention in another
    channel then shows a desktop notification and lands in the panel with
    sender, channel and text; Escape closes the panel; clicking the entry
    opens the channel at that message and reads the notification."""
    test = "bell"
    room = classroom
    random = add_channel(room, "random")
    alice = await open_channel(browser, room, "alice", room.alice, room.general, spy=True)
    page = alice.page
    await expect(bell(alice)).to_have_attribute("aria-expanded", "false")
    await expect(page.locator("#bell-count")).to_be_empty()
    await asyncio.sleep(0.3)
    assert await page.evaluate("() => window.__notes.asked") == 0

    await bell(alice).click()
    panel = bell_panel(alice)
    await expect(panel).to_be_visible()
    await expect(bell(alice)).to_have_attribute("aria-expanded", "true")
    await expect(panel.get_by_text("No notifications yet.")).to_be_visible()
    await panel.get_by_role("button", name="Enable desktop notifications").click()
    await expect(panel.get_by_text("Desktop notifications are on.")).to_be_visible()
    await expect(panel.get_by_role("button", name="Enable desktop notifications")).to_be_hidden()
    assert await page.evaluate("() => window.__notes.asked") == 1
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(bell(alice)).to_be_focused()

    bob = await room.bob.connect()
    await join(bob, random)
    sent = await ws_send(bob, random, f"@{room.alice.username} the quiz starts at 3")
    await expect(page.locator("#bell-count")).to_have_text("1 unread notifications")
    await expect(bell(alice)).to_have_accessible_description("1 unread notifications")
    await page.wait_for_function("() => window.__notes.shown.length > 0")
    shown = await page.evaluate("() => window.__notes.shown")
    assert shown == [{"title": "Bob S mentioned you in #random", "body": f"@{room.alice.username} the quiz starts at 3"}], shown
    await alice.shot(test, "count")

    await bell(alice).click()
    entry = panel.get_by_role("link", name=re.compile("Bob S mentioned you in #random")).filter(has_text="the quiz starts at 3")
    await expect(entry).to_contain_text("the quiz starts at 3")
    await expect(entry).to_contain_text("Unread:")
    await alice.shot(test, "panel")
    # Live: a second one is prepended while the panel is open.
    await ws_send(bob, random, f"@{room.alice.username} bring a pencil")
    entries = panel.get_by_role("listitem")
    await expect(entries).to_have_count(2)
    await expect(entries.first).to_contain_text("bring a pencil")
    await expect(page.locator("#bell-count")).to_have_text("2 unread notifications")
    await page.wait_for_function("() => window.__notes.shown.length === 2")

    await entry.click()
    await page.wait_for_url(f"**{channel_path(room.workspace_id, random)}#message-{sent['id']}")
    await live(alice)
    await expect(page.locator("#channel-title")).to_have_text("# random")
    await expect(bubble(alice, "the quiz starts at 3")).to_be_focused()
    # Reading the channel reads the other notification too; none is left.
    await eventually(lambda: unread_notifications(room.alice) == [])
    await expect(page.locator("#bell-count")).to_be_empty()
    await bell(alice).click()
    await expect(bell_panel(alice).get_by_role("listitem")).to_have_count(2)
    await expect(bell_panel(alice).get_by_text("Unread:")).to_have_count(0)
    # Here the page has not been allowed: it shows nothing and asks nothing.
    assert await page.evaluate("() => window.__notes") == {"asked": 0, "shown": [], "permission": "default"}
    await alice.shot(test, "opened")
    alice.assert_clean()


async def test_the_notification_level_persists_and_takes_effect(classroom, browser):
    """"Notification level" in the channel header reads and writes the
    caller's level: All messages survives a reload, and then any post there
    notifies; Nothing silences even a mention."""
    test = "level"
    room = classroom
    random = add_channel(room, "random")
    alice = await open_channel(browser, room, "alice", room.alice, room.general)
    page = alice.page
    menu = level_menu(alice)
    await expect(menu).to_have_value("mentions")
    await expect(menu.locator("option")).to_have_text(["All messages", "Mentions and DMs", "Nothing"])
    await menu.select_option(label="All messages")
    await expect(page.get_by_role("status").filter(has_text="Notification level: All messages.")).to_be_attached()
    assert room.alice.http.get(f"/api/channels/{room.general}/notifications/").json() == {"level": "all"}
    await page.reload()
    await live(alice)
    await expect(level_menu(alice)).to_have_value("all")
    await alice.shot(test, "all")

    # In #random (level unchanged), a plain post in #general notifies.
    await page.goto(channel_path(room.workspace_id, random))
    await live(alice)
    await expect(level_menu(alice)).to_have_value("mentions")
    bob = await room.bob.connect()
    await join(bob, room.general)
    await ws_send(bob, room.general, "plain words for everyone")
    await expect(page.locator("#bell-count")).to_have_text("1 unread notifications")
    await bell(alice).click()
    await expect(bell_panel(alice).get_by_role("link", name=re.compile("Bob S posted in #general"))).to_contain_text("plain words for everyone")
    await page.keyboard.press("Escape")

    # Nothing: not even a mention. (Opening #general reads it, and with it
    # its notification.)
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    await eventually(lambda: unread_counts(room.alice, room.workspace_id)[room.general] == 0)
    await expect(page.locator("#bell-count")).to_be_empty()
    await level_menu(alice).select_option(label="Nothing")
    await expect(page.get_by_role("status").filter(has_text="Notification level: Nothing.")).to_be_attached()
    await page.reload()
    await live(alice)
    await expect(level_menu(alice)).to_have_value("none")
    await page.goto(channel_path(room.workspace_id, random))
    await live(alice)
    await ws_send(bob, room.general, f"@{room.alice.username} are you there?")
    await join(bob, random)
    await ws_send(bob, random, "a marker after it")
    await expect(bubble(alice, "a marker after it")).to_be_visible()
    await asyncio.sleep(0.3)
    assert [(n["kind"], n["message"]["content"]) for n in unread_notifications(room.alice)] == []
    await expect(page.locator("#bell-count")).to_be_empty()
    await alice.shot(test, "nothing")
    alice.assert_clean()


async def test_online_dots_from_the_snapshot(classroom, browser):
    """Bob, connected to #general before Alice opens it, shows online at
    once (the joined_channel snapshot; he never types or posts); so does
    the teacher, connected only in #random. The teacher stays online while
    still in one channel, and goes offline when he leaves the last."""
    test = "presence"
    room = classroom
    random = add_channel(room, "random")
    bob = await room.bob.connect()
    await join(bob, room.general)
    teacher = await room.teacher.connect()
    await join(teacher, random)
    await join(teacher, room.general)

    alice = await open_channel(browser, room, "alice", room.alice, room.general)
    await expect(member_dot(alice, "Bob S")).to_have_class(re.compile("dot-online"))
    await expect(member_dot(alice, "Teacher T")).to_have_class(re.compile("dot-online"))
    await expect(member_dot(alice, "Bob S")).to_have_attribute("aria-label", "online")
    await alice.shot(test, "online")

    answer = await teacher.request({"type": "leave_channel", "channelId": room.general}, "left_channel")
    assert answer["type"] == "left_channel", answer
    await asyncio.sleep(0.5)
    await expect(member_dot(alice, "Teacher T")).to_have_class(re.compile("dot-online"))
    await teacher.close()
    await expect(member_dot(alice, "Teacher T")).not_to_have_class(re.compile("dot-online"))
    await bob.close()
    await expect(member_dot(alice, "Bob S")).not_to_have_class(re.compile("dot-online"))
    await expect(member_dot(alice, "Bob S")).to_have_attribute("aria-label", "offline")

    # A DM with Bob shows his dot in the sidebar too, from the snapshot.
    dm = room.alice.http.post(f"/api/workspaces/{room.workspace_id}/dms/", {"userId": room.bob.id})
    assert dm.status_code in (200, 201), dm.text
    bob = await room.bob.connect()
    await join(bob, room.general)
    await alice.page.reload()
    await live(alice)
    dm_link = channel_link(alice, "Bob S")
    await expect(dm_link.get_by_role("img", name="online")).to_be_visible()
    await alice.shot(test, "dm")
    alice.assert_clean()


# Lets a test hide the tab: document.hidden and visibilityState follow
# window.__hidden, and a "visibilitychange" tells the page.
HIDDEN_TAB = """
(() => {
  window.__hidden = false;
  Object.defineProperty(document, "hidden", { get: () => window.__hidden });
  Object.defineProperty(document, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible") });
  window.__setHidden = (hidden) => {
    window.__hidden = hidden;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""


async def test_a_hidden_tab_counts_the_open_channel_and_notifies(classroom, browser):
    """While the tab is hidden, a mention in the open channel is unread (the
    title says "(1)") and shows a desktop notification; back in view, the
    page reads it and the title falls."""
    test = "hidden-tab"
    room = classroom
    tab = await new_tab(browser, room.server, "alice", room.alice)
    await tab.context.grant_permissions(["notifications"], origin=room.server.base)
    await tab.context.add_init_script(NOTIFICATION_SPY)
    await tab.context.add_init_script(HIDDEN_TAB)
    page = tab.page
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(tab)
    await bell(tab).click()
    await bell_panel(tab).get_by_role("button", name="Enable desktop notifications").click()
    await expect(bell_panel(tab).get_by_text("Desktop notifications are on.")).to_be_visible()
    await page.keyboard.press("Escape")

    bob = await room.bob.connect()
    await join(bob, room.general)
    await ws_send(bob, room.general, "seen right away")
    await expect(bubble(tab, "seen right away")).to_be_visible()
    await asyncio.sleep(0.3)
    assert await page.evaluate("() => window.__notes.shown") == []
    await expect(page).to_have_title("#general · Class · Chat")

    await page.evaluate("() => window.__setHidden(true)")
    await ws_send(bob, room.general, f"@{room.alice.username} look when you are back")
    await expect(page).to_have_title("(1) #general · Class · Chat")
    await page.wait_for_function("() => window.__notes.shown.length === 1")
    assert (await page.evaluate("() => window.__notes.shown"))[0]["title"] == "Bob S mentioned you in #general"
    await expect(page.locator("#bell-count")).to_have_text("1 unread notifications")
    await tab.shot(test, "hidden")

    await page.evaluate("() => window.__setHidden(false)")
    await expect(page).to_have_title("#general · Class · Chat")
    await expect(page.locator("#bell-count")).to_be_empty()
    await eventually(lambda: unread_notifications(room.alice) == [])
    tab.assert_clean()


async def test_the_header_controls_fit_a_phone(classroom, browser):
    """At 390 by 844 px the level menu, the bell and its open panel stay on screen."""
    test = "phone"
    room = classroom
    tab = await open_channel(browser, room, "alice", room.alice, room.general)
    page = tab.page
    await page.set_viewport_size({"width": 390, "height": 844})
    await bell(tab).click()
    await expect(bell_panel(tab)).to_be_visible()
    for target in (level_menu(tab), bell(tab), bell_panel(tab)):
        box = await target.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (target, box)
    await tab.shot(test, "bell")
    tab.assert_clean()
