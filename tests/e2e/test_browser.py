"""The browser UI in real Chromium (playwright) against a real daphne process.

Every test writes screenshots of the pages it visits into
test-artifacts/screenshots/. The restart test runs its own server process, so
the session's shared `server` is never stopped."""

from __future__ import annotations

import asyncio
import os
import re
import time

import pytest

from tests.e2e.browser import Tab, channel_path, new_tab
from tests.e2e.harness import PASSWORD, Person, Server, share_workspace

pytestmark = pytest.mark.e2e

HOSTILE = [
    "<img src=x onerror=window.__pwned=1;alert(1)>",
    "<script>window.__pwned=2;alert(2)</script>",
    "[click me](javascript:window.__pwned=3)",
    "javascript:alert(4)",
    '<a href="javascript:alert(5)">x</a>',
]


@pytest.fixture(scope="module")
def own_server(e2e_env):
    """A server process of this module's own, which the restart test stops
    and starts again on the same port."""
    srv = Server(e2e_env, log_name="daphne-browser").start()
    yield srv
    srv.stop()


def expect(target):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


async def join(ws, channel_id: int) -> None:
    answer = await ws.request({"type": "join_channel", "channelId": channel_id}, "joined_channel")
    assert answer["type"] == "joined_channel", answer


async def ws_send(ws, channel_id: int, content: str, **extra) -> dict:
    answer = await ws.request({"type": "send_message", "channelId": channel_id, "content": content, **extra}, "new_message")
    assert answer["type"] == "new_message", answer
    return answer["message"]


async def live(tab: Tab) -> None:
    """The page's socket is connected, joined and caught up."""
    await expect(tab.page.get_by_role("log")).to_have_attribute("data-live", "true")


def bubble(tab: Tab, text: str):
    return tab.page.get_by_role("log").locator("article.message").filter(has_text=text)


def own_bubble(tab: Tab, text: str):
    return tab.page.get_by_role("log").locator("article.message-own").filter(has_text=text)


def member_dot(tab: Tab, display_name: str):
    return tab.page.get_by_role("button", name=f"Direct message {display_name}").locator(".dot")


async def test_two_people_chat_typing_read_receipts_and_dm(classroom, browser):
    """Login through the form; two browsers chat in #general: presence, the
    typing line (shown, cleared on send, on blur, and by itself), optimistic
    sending -> sent -> read, Shift+Enter, a failed send with Retry, a DM, and
    logout in another place closing the page's socket (4001 -> `/`)."""
    test = "chat"
    room = classroom
    general = channel_path(room.workspace_id, room.general)

    alice = await new_tab(browser, room.server, "alice")
    page = alice.page
    await page.goto("/")
    await expect(page.get_by_role("button", name="Log in")).to_be_visible()
    await alice.shot(test, "login")
    await page.get_by_label("Username").fill(room.alice.username)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Invalid username or password")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Your workspaces")).to_be_visible()
    await expect(page.get_by_role("link", name=re.compile("^Class"))).to_be_visible()
    await expect(page.get_by_role("link", name="Open MessagePal")).to_be_visible()
    await alice.shot(test, "home")
    await page.get_by_role("link", name=re.compile("^Class")).click()
    await page.wait_for_url(f"**{general}")
    await expect(page.locator("#channel-title")).to_have_text("# general")
    await live(alice)
    composer = page.get_by_role("textbox", name="Message")

    # Alone in the channel: the message is sent, and nobody has read it.
    await composer.fill("Anyone here?")
    await page.get_by_role("button", name="Send").click()
    first = own_bubble(alice, "Anyone here?")
    await expect(first).to_have_attribute("data-status", "sent")
    await expect(first.get_by_role("img", name="Sent")).to_be_visible()
    await asyncio.sleep(0.5)
    await expect(first).to_have_attribute("data-status", "sent")

    # Bob opens the channel (session cookie): it is visible, so he reads it.
    bob = await new_tab(browser, room.server, "bob", room.bob)
    await bob.page.goto(general)
    await live(bob)
    await expect(bubble(bob, "Anyone here?")).to_be_visible()
    await expect(first).to_have_attribute("data-status", "read")
    await expect(member_dot(alice, "Bob S")).to_have_class(re.compile("dot-online"))

    # Typing shows on Bob's side, then clears when Alice sends with Enter.
    await composer.press_sequentially("Hello Bob")
    await expect(bob.page.locator("#typing")).to_have_text("Alice S is typing…")
    await bob.shot(test, "typing")
    await composer.press("Enter")
    await expect(bubble(bob, "Hello Bob")).to_be_visible()
    await expect(bob.page.locator("#typing")).to_have_text("")
    hello = own_bubble(alice, "Hello Bob")
    await expect(hello).to_have_count(1)
    await expect(hello).to_have_attribute("data-status", "read")
    await expect(composer).to_have_value("")

    # Shift+Enter is a new line; Enter sends both lines as one message.
    bob_composer = bob.page.get_by_role("textbox", name="Message")
    await bob_composer.press_sequentially("line one")
    await expect(page.locator("#typing")).to_have_text("Bob S is typing…")
    await bob_composer.press("Shift+Enter")
    await bob_composer.press_sequentially("line two")
    await bob_composer.press("Enter")
    two_lines = bubble(alice, "line one")
    await expect(two_lines.locator(".message-body")).to_have_text("line one\nline two")
    await expect(page.locator("#typing")).to_have_text("")

    # Leaving the composer sends stop_typing: cleared well before the 5 s timeout.
    await bob_composer.press_sequentially("hmm")
    await expect(page.locator("#typing")).to_have_text("Bob S is typing…")
    await bob_composer.blur()
    await expect(page.locator("#typing")).to_have_text("", timeout=2500)

    # Someone who starts typing and goes quiet: the line clears by itself.
    teacher_ws = await room.teacher.connect()
    await join(teacher_ws, room.general)
    await teacher_ws.send({"type": "typing", "channelId": room.general})
    await expect(page.locator("#typing")).to_have_text("Teacher T is typing…")
    await alice.shot(test, "chat")
    await expect(page.locator("#typing")).to_have_text("", timeout=8000)

    # The server refuses an over-long message: failed, with a Retry button.
    await composer.fill("x" * 4001)
    await composer.press("Enter")
    failed = page.get_by_role("log").locator("article.message-pending")
    await expect(failed).to_have_attribute("data-status", "failed")
    await expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    await failed.get_by_role("button", name="Retry").click()
    await expect(failed).to_have_attribute("data-status", "failed")
    await alice.shot(test, "failed")
    await bob.shot(test, "chat")

    # Start a DM with Bob from the member list.
    await page.get_by_role("button", name="Direct message Bob S").click()
    await page.wait_for_url(lambda url: re.search(r"/channels/\d+/$", url) is not None and not url.endswith(general))
    await expect(page.locator("#channel-title")).to_have_text("Bob S")
    await page.get_by_role("textbox", name="Message").fill("just between us")
    await page.get_by_role("textbox", name="Message").press("Enter")
    await expect(own_bubble(alice, "just between us")).to_have_attribute("data-status", "sent")
    await alice.shot(test, "dm")
    # Bob's sidebar did not know the DM yet; on load it has it, unread.
    await bob.page.goto(general)
    await live(bob)
    dm_link = bob.page.get_by_role("navigation", name="Channels").get_by_role("link", name=re.compile("Alice S"))
    await expect(dm_link.get_by_label("1 unread")).to_be_visible()
    # The sidebar re-renders on every presence change; the nodes under the
    # pointer are patched in place, never swapped (a node swapped between
    # mousedown and mouseup loses the click: CI saw this one fail).
    # A fresh page shows who is online from joined_channel.online at once;
    # then the teacher goes offline and comes back.
    await expect(member_dot(bob, "Teacher T")).to_have_class(re.compile("dot-online"))
    link_node = await dm_link.element_handle()
    teacher_button = await bob.page.get_by_role("button", name="Direct message Teacher T").element_handle()
    # The server must have seen the old socket go before the new one joins,
    # or the join is not the teacher's first connection there (no event).
    observer = await room.alice.connect()
    await join(observer, room.general)
    await teacher_ws.close()
    await observer.expect("user_presence", userId=room.teacher.id, status="offline")
    await expect(member_dot(bob, "Teacher T")).not_to_have_class(re.compile("dot-online"))
    teacher_ws = await room.teacher.connect()
    await join(teacher_ws, room.general)
    await expect(member_dot(bob, "Teacher T")).to_have_class(re.compile("dot-online"))
    assert await link_node.evaluate("node => node.isConnected")
    assert await teacher_button.evaluate("node => node.isConnected")
    await dm_link.click()
    await expect(bubble(bob, "just between us")).to_be_visible()
    await expect(own_bubble(alice, "just between us")).to_have_attribute("data-status", "read")

    # Bob logs out elsewhere with the same session: his socket gets 4001 and
    # the page goes to the login form instead of reconnecting.
    assert room.bob.http.post("/api/auth/logout/").status_code == 204
    await bob.page.wait_for_url(room.server.base + "/")
    await expect(bob.page.get_by_role("button", name="Log in")).to_be_visible()

    alice.assert_clean()
    bob.assert_clean()


async def test_hostile_content_is_inert_text(classroom, browser):
    """Markup, scripts and javascript: links arrive live and from history as
    literal text: no dialog, no element injected, no script run. Mentions,
    links and attachments (only http(s) and same-site URLs) render safely."""
    test = "hostile"
    room = classroom
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/channels/", {"name": "news", "kind": "announcement"})
    assert r.status_code == 201, r.text
    news = r.json()["id"]
    alice = await new_tab(browser, room.server, "alice", room.alice)
    page = alice.page
    await page.goto(channel_path(room.workspace_id, room.general))
    await expect(page.locator("#channel-title")).to_have_text("# general")
    await live(alice)
    log = page.get_by_role("log")

    teacher = await room.teacher.connect()
    await join(teacher, room.general)
    await expect(member_dot(alice, "Teacher T")).to_have_class(re.compile("dot-online"))
    sent = [await ws_send(teacher, room.general, text) for text in HOSTILE]
    await ws_send(teacher, room.general, f"hey @{room.alice.username}, read https://example.org/page?a=1 please")
    await ws_send(teacher, room.general, "today's diagram", messageType="image", fileUrl="/static/img/logo.svg")
    await ws_send(teacher, room.general, "the worksheet", messageType="file", fileUrl="https://example.org/files/worksheet.pdf")
    # A "same-site path" that browsers resolve to another host: the server
    # may refuse it; if it stores it, the page must not turn it into a link.
    sneaky = await teacher.request(
        {"type": "send_message", "channelId": room.general, "content": "sneaky", "messageType": "file", "fileUrl": "/\\evil.example/x.pdf"},
        "new_message",
    )
    await ws_send(teacher, room.general, "@AI is <b>this</b> bold?")
    pin = await teacher.request({"type": "pin_message", "channelId": room.general, "messageId": sent[0]["id"]}, "message_pinned")
    assert pin["type"] == "message_pinned", pin

    # Alice types markup herself, too.
    composer = page.get_by_role("textbox", name="Message")
    await composer.fill("<b>not bold</b> <img src=x onerror=alert(6)>")
    await composer.press("Enter")
    await expect(own_bubble(alice, "<b>not bold</b>")).to_have_attribute("data-status", re.compile("sent|read"))

    async def check(phase: str) -> None:
        for text in HOSTILE:
            await expect(log.locator(".message-body").filter(has_text=text)).to_have_text(text)
        await expect(log.locator(".message-body").filter(has_text="not bold")).to_have_text("<b>not bold</b> <img src=x onerror=alert(6)>")
        assert await page.locator("img[src='x']").count() == 0
        assert await log.locator("script, b, iframe, [onerror]").count() == 0
        assert await page.locator("a[href^='javascript' i]").count() == 0
        assert await page.evaluate("() => window.__pwned") is None
        mention = log.locator(".mention-me")
        await expect(mention).to_have_text(f"@{room.alice.username}")
        link = log.get_by_role("link", name="https://example.org/page?a=1")
        await expect(link).to_have_attribute("href", "https://example.org/page?a=1")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        image = log.locator("img[src='/static/img/logo.svg']")
        await expect(image).to_be_visible()
        assert await image.evaluate("img => img.complete && img.naturalWidth > 0")
        await expect(log.get_by_role("link", name=re.compile("worksheet.pdf"))).to_have_attribute("href", "https://example.org/files/worksheet.pdf")
        if sneaky["type"] == "new_message":
            await expect(bubble(alice, "sneaky").locator(".attachment-unsafe")).to_contain_text("/\\evil.example/x.pdf")
        assert await page.locator("a[href*='evil.example']").count() == 0
        await expect(page.locator("#pins")).to_be_visible()
        await expect(page.locator("#pin-list")).to_contain_text(HOSTILE[0])
        await expect(bubble(alice, HOSTILE[0]).locator(".badge-pin")).to_have_text("Pinned")
        # The assistant's answer (or its "not set up" notice) is marked as AI.
        await expect(log.locator("article.message-ai .badge-ai")).to_have_text("AI", timeout=25_000)
        await expect(log.locator(".message-body").filter(has_text="@AI is")).to_have_text("@AI is <b>this</b> bold?")
        await alice.shot(test, phase)
        alice.assert_clean()

    await check("live")
    await page.reload()  # the same messages again, rendered from HTTP history
    await expect(page.locator("#channel-title")).to_have_text("# general")
    await check("history")

    # A post in another channel counts as unread there, live; in the
    # announcement channel a student reads but cannot write.
    await live(alice)
    await join(teacher, news)
    await ws_send(teacher, news, "No school tomorrow <script>")
    news_link = page.get_by_role("navigation", name="Channels").get_by_role("link", name=re.compile("news"))
    await expect(news_link.get_by_label("1 unread")).to_be_visible()
    await alice.shot(test, "unread")
    await news_link.click()
    await expect(bubble(alice, "No school tomorrow <script>")).to_be_visible()
    await expect(page.get_by_role("textbox", name="Message")).to_be_disabled()
    await expect(page.locator("#composer-note")).to_have_text("Only teachers and admins can post in announcement channels.")
    await expect(news_link.get_by_label("1 unread")).to_have_count(0)
    await alice.shot(test, "announcements")
    alice.assert_clean()


async def test_reconnect_after_server_restart_catches_up(own_server, browser):
    """The server process stops: the page shows "Reconnecting…"; a message
    written meanwhile waits as "sending". The server comes back while the page
    is kept offline, another member posts; when the page is back online it
    rejoins with afterId and shows those messages once each, in order, and
    resends the waiting message once (clientId)."""
    test = "reconnect"
    teacher = Person(own_server, display_name="Teacher R")
    alice = Person(own_server, display_name="Alice R")
    workspace_id = teacher.http.post("/api/workspaces/", {"name": "Restart class"}).json()["id"]
    assert teacher.http.post(f"/api/workspaces/{workspace_id}/members/", {"username": alice.username, "role": "student"}).status_code == 201
    channel_id = teacher.http.post(f"/api/workspaces/{workspace_id}/channels/", {"name": "lab"}).json()["id"]

    tab = await new_tab(browser, own_server, "alice", alice)
    page = tab.page
    banner = page.locator("#connection-banner")
    try:
        await page.goto(channel_path(workspace_id, channel_id))
        await live(tab)
        ws = await teacher.connect()
        await join(ws, channel_id)
        await ws_send(ws, channel_id, "before the restart")
        await expect(bubble(tab, "before the restart")).to_be_visible()
        await expect(banner).to_be_hidden()
        await teacher.close_all()

        own_server.stop()
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text("Reconnecting…")
        composer = page.get_by_role("textbox", name="Message")
        await composer.fill("written while offline")
        await composer.press("Enter")
        waiting = own_bubble(tab, "written while offline")
        await expect(waiting).to_have_attribute("data-status", "sending")
        await tab.shot(test, "reconnecting")

        # Keep the page off the network while the server restarts and the
        # teacher posts, so those messages can only arrive by catch-up.
        await tab.context.set_offline(True)
        own_server.start()
        ws = await teacher.connect()
        await join(ws, channel_id)
        for n in (1, 2, 3):
            await ws_send(ws, channel_id, f"missed message {n}")
        await expect(banner).to_be_visible()
        await tab.context.set_offline(False)

        await expect(banner).to_be_hidden(timeout=15_000)
        for n in (1, 2, 3):
            await expect(bubble(tab, f"missed message {n}")).to_have_count(1)
        bodies = await page.get_by_role("log").locator(".message-body").all_inner_texts()
        missed = [b for b in bodies if b.startswith("missed message")]
        assert missed == ["missed message 1", "missed message 2", "missed message 3"], bodies
        await expect(waiting).to_have_count(1)
        await expect(waiting).to_have_attribute("data-status", re.compile("sent|read"))
        await expect(page.get_by_role("log").locator("article.message-pending")).to_have_count(0)
        history = teacher.http.get(f"/api/channels/{channel_id}/messages/").json()["results"]
        assert [m["content"] for m in history].count("written while offline") == 1

        # Live again: a new message arrives without a reload.
        await ws_send(ws, channel_id, "after the restart")
        await expect(bubble(tab, "after the restart")).to_be_visible()
        await tab.shot(test, "reconnected")
        tab.assert_clean()
    finally:
        await teacher.close_all()
        if own_server.proc is None or own_server.proc.poll() is not None:
            own_server.start()


async def test_messagepal_search_send_typing_and_read(server, browser):
    """MessagePal: find a person, send (sending -> sent -> read), the other
    side's conversation list gains it with an unread count, typing shows,
    replies arrive live, and markup stays text."""
    test = "messagepal"
    ann = Person(server, display_name="Ann P")
    ben = Person(server, display_name="Ben P")
    share_workspace(Person(server), ann, ben)  # MessagePal connects people who share a workspace
    a = await new_tab(browser, server, "ann", ann)
    b = await new_tab(browser, server, "ben", ben)
    await a.page.goto("/messagepal/")
    await b.page.goto("/messagepal/")
    await live(a)
    await live(b)
    await expect(b.page.get_by_text("No conversations yet")).to_be_visible()

    await a.page.get_by_label("Find a person").fill(ben.username)
    await a.page.get_by_role("link", name="Message Ben P").click()
    low, high = sorted((ann.id, ben.id))
    await a.page.wait_for_url(f"**/messagepal/conv_{low}_{high}/")
    await expect(a.page.locator("#channel-title")).to_have_text("Ben P")
    await live(a)
    composer = a.page.get_by_role("textbox", name="Message")
    await composer.press_sequentially("Hi Ben")
    await composer.press("Enter")
    hi = own_bubble(a, "Hi Ben")
    await expect(hi).to_have_attribute("data-status", "sent")
    await a.shot(test, "sent")

    # Ben's list shows the new conversation, unread, without a reload.
    entry = b.page.get_by_role("navigation", name="Conversations").get_by_role("link", name=re.compile("Ann P"))
    await expect(entry.get_by_label("1 unread")).to_be_visible()
    await expect(entry).to_contain_text("Hi Ben")
    await b.shot(test, "list")
    await entry.click()
    await live(b)
    await expect(bubble(b, "Hi Ben")).to_be_visible()
    await expect(hi).to_have_attribute("data-status", "read")

    ben_composer = b.page.get_by_role("textbox", name="Message")
    await ben_composer.press_sequentially("Hello Ann")
    await expect(a.page.locator("#typing")).to_have_text("Ben P is typing…")
    await a.shot(test, "typing")
    await ben_composer.press("Enter")
    await expect(bubble(a, "Hello Ann")).to_be_visible()
    await expect(a.page.locator("#typing")).to_have_text("")
    await expect(own_bubble(b, "Hello Ann")).to_have_attribute("data-status", "read")

    await ben_composer.fill(HOSTILE[0])
    await ben_composer.press("Enter")
    await expect(bubble(a, "onerror").locator(".message-body")).to_have_text(HOSTILE[0])
    assert await a.page.locator("img[src='x']").count() == 0
    assert await a.page.evaluate("() => window.__pwned") is None
    await a.shot(test, "thread")
    await b.shot(test, "thread")
    a.assert_clean()
    b.assert_clean()


async def test_register_logout_and_login_redirect(server, browser):
    """Logged out, a page redirects to the login form with ?next=; the
    register page shows field errors, creates the account and logs in;
    Log out returns to the form; logging in again honours ?next=."""
    test = "register"
    tab = await new_tab(browser, server, "newcomer")
    page = tab.page
    username = f"newcomer{os.getpid()}_{int(time.time() * 1000) % 10**6}"

    await page.goto("/messagepal/")
    await page.wait_for_url("**/?next=/messagepal/")
    await page.get_by_role("link", name="Create an account").click()
    await page.wait_for_url("**/register/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Display name").fill("New <i>Comer</i>")
    await page.get_by_label("Password").fill("short")
    await page.get_by_role("button", name="Create account").click()
    await expect(page.locator("[data-error-for=password]")).not_to_be_empty()
    await tab.shot(test, "register-error")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", name="Your workspaces")).to_be_visible()
    await expect(page.get_by_text("You are not in a workspace yet")).to_be_visible()
    await expect(page.locator(".whoami-name")).to_have_text("New <i>Comer</i>")
    await tab.shot(test, "home-empty")

    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("button", name="Log in")).to_be_visible()
    await page.goto("/?next=/messagepal/")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/messagepal/")
    await expect(page.get_by_role("heading", name="MessagePal")).to_be_visible()
    tab.assert_clean()
