"""Message search in the browser (PROTOCOL.md part 2, "Search", and "Browser
UI names"): the box "Search messages" in the channel page's header, its
region "Search results" grouped by channel with the matches as <mark>, "Load
more", the 400 told in words, Escape, and a result opening the channel at its
message (pages loaded around it, the message focused and highlighted). Real
Chromium against the real daphne harness; screenshots in
test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tests.e2e.browser import Tab, channel_path, new_tab
from tests.e2e.pages import by_key, expect, live
from tests.e2e.test_chat_e2e import join, send

pytestmark = pytest.mark.e2e

# More than two history pages (50 each) after the message searched for, so
# that the page must load earlier pages around it.
FILLERS = 120


def add_channel(room, name: str, *, private: bool = False) -> int:
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/channels/", {"name": name, "isPrivate": private})
    assert r.status_code == 201, r.text
    return r.json()["id"]


async def indexed(person, q: str, message_id: int, workspace_id: int) -> None:
    """The server answers the search with `message_id` (indexing may lag a
    little behind the send: PROTOCOL allows 2 s)."""
    deadline = time.monotonic() + 5
    while True:
        r = await asyncio.to_thread(person.http.get, "/api/search/", params={"q": q, "workspaceId": workspace_id, "limit": 50})
        assert r.status_code == 200, r.text
        if any(m["id"] == message_id for m in r.json()["results"]):
            return
        assert time.monotonic() < deadline, (q, r.json())
        await asyncio.sleep(0.1)


async def open_channel(browser, room, name: str, person, channel_id: int) -> Tab:
    tab = await new_tab(browser, room.server, name, person)
    await tab.page.goto(channel_path(room.workspace_id, channel_id))
    await live(tab)
    return tab


def search_box(tab: Tab):
    return tab.page.get_by_role("searchbox", name="Search messages", exact=True)


def results(tab: Tab):
    return tab.page.get_by_role("region", name="Search results", exact=True)


async def test_a_search_finds_an_old_message_and_opens_the_channel_at_it(classroom, browser):
    """Bob's "Café …" is followed by 120 more messages in #general. Alice,
    reading #random, types "cafe": one result under "#general", "Café" in a
    <mark>; clicking it opens #general at that message, loaded three pages
    back, focused and highlighted. Searching again there jumps in place."""
    test = "search-open"
    room = classroom
    random = add_channel(room, "random")
    bob = await room.bob.connect()
    await join(bob, room.general)
    target = await send(bob, room.general, "Café at 10, bring the worksheet")
    for n in range(FILLERS):
        await send(bob, room.general, f"filler message {n}")
    await indexed(room.alice, "cafe", target["id"], room.workspace_id)

    alice = await open_channel(browser, room, "alice", room.alice, random)
    page = alice.page
    await search_box(alice).fill("cafe")  # typing alone searches (debounced)
    region = results(alice)
    await expect(region).to_be_visible()
    await expect(region.get_by_role("status")).to_have_text("1 message found.")
    await expect(region.get_by_role("heading", name="#general")).to_be_visible()
    hit = region.get_by_role("link", name=re.compile("Café at 10"))
    await expect(hit).to_contain_text("Bob S")
    await expect(hit.locator("mark")).to_have_text("Café")
    await expect(hit.locator("time")).to_have_attribute("datetime", target["createdAt"])
    await alice.shot(test, "results")

    await hit.click()
    await page.wait_for_url(f"**{channel_path(room.workspace_id, room.general)}#message-{target['id']}")
    await expect(page.locator("#channel-title")).to_have_text("# general")
    message = by_key(alice, str(target["id"]))
    await expect(message).to_be_focused()
    await expect(message).to_be_in_viewport()
    await expect(message).to_have_class(re.compile(r"\bmessage-found\b"))
    await expect(page.get_by_role("log").locator("article.message.message-found")).to_have_count(1)
    await alice.shot(test, "opened")

    # The open channel, read from its newest page again: the result is
    # shown in place (no navigation), earlier pages loaded around it.
    await page.goto(channel_path(room.workspace_id, room.general))
    await live(alice)
    await expect(by_key(alice, str(target["id"]))).to_have_count(0)
    await page.evaluate("() => { window.__samePage = true; }")
    box = search_box(alice)
    await box.fill("worksheet")
    await box.press("Enter")
    await region.get_by_role("link", name=re.compile("Café at 10")).click()
    await expect(region).to_be_hidden()
    await expect(message).to_be_focused()
    await expect(message).to_be_in_viewport()
    await expect(message).to_have_class(re.compile(r"\bmessage-found\b"))
    assert await page.evaluate("() => window.__samePage === true")
    alice.assert_clean()


async def test_load_more_escape_and_a_one_character_query(classroom, browser):
    """25 matches: the first 20, "20+ messages found.", "Load more" brings the
    rest and focuses the first new one. Escape closes the region and gives
    the box its focus back. A one-character query shows the server's 400 in
    words."""
    test = "search-more"
    room = classroom
    bob = await room.bob.connect()
    await join(bob, room.general)
    sent = [await send(bob, room.general, f"quokka sighting number {n}") for n in range(25)]
    for message in (sent[0], sent[-1]):
        await indexed(room.alice, "quokka", message["id"], room.workspace_id)

    alice = await open_channel(browser, room, "alice", room.alice, room.general)
    box = search_box(alice)
    region = results(alice)
    await box.fill("quokka")
    await box.press("Enter")
    await expect(region.get_by_role("status")).to_have_text("20+ messages found.")
    hits = region.get_by_role("link")
    await expect(hits).to_have_count(20)
    await expect(hits.first).to_contain_text("quokka sighting number 24")
    more = region.get_by_role("button", name="Load more")
    await more.click()
    await expect(hits).to_have_count(25)
    await expect(region.get_by_role("status")).to_have_text("25 messages found.")
    await expect(more).to_be_hidden()
    await expect(hits.nth(20)).to_be_focused()
    await expect(hits.nth(20)).to_contain_text("quokka sighting number 4")
    await alice.shot(test, "all")

    await alice.page.keyboard.press("Escape")
    await expect(region).to_be_hidden()
    await expect(box).to_be_focused()
    await expect(box).to_have_value("quokka")

    await box.fill("x")
    await box.press("Enter")
    await expect(region).to_be_visible()
    await expect(region.get_by_role("status")).to_have_text("Could not search.")
    await expect(region.get_by_role("alert")).to_have_text("Must be at least 2 characters.")
    await expect(region.get_by_role("link")).to_have_count(0)
    await alice.shot(test, "too-short")
    await box.press("Escape")
    await expect(region).to_be_hidden()
    await expect(box).to_be_focused()
    alice.assert_clean()


async def test_a_private_channels_message_is_not_found_by_a_non_member(classroom, browser):
    """The teacher's message in a private channel: the teacher finds it in
    the browser; Alice, not a member, gets "No messages found."."""
    room = classroom
    staff = add_channel(room, "staff", private=True)
    teacher_ws = await room.teacher.connect()
    await join(teacher_ws, staff)
    secret = await send(teacher_ws, staff, "Marking rubric for the zebrafish essay")
    await indexed(room.teacher, "zebrafish", secret["id"], room.workspace_id)

    teacher = await open_channel(browser, room, "teacher", room.teacher, room.general)
    await search_box(teacher).fill("zebrafish")
    await search_box(teacher).press("Enter")
    await expect(results(teacher).get_by_role("heading", name="#staff")).to_be_visible()
    await expect(results(teacher).get_by_role("link", name=re.compile("zebrafish essay"))).to_have_count(1)

    alice = await open_channel(browser, room, "alice", room.alice, room.general)
    await search_box(alice).fill("zebrafish")
    await search_box(alice).press("Enter")
    await expect(results(alice).get_by_role("status")).to_have_text("No messages found.")
    await expect(results(alice).get_by_role("link")).to_have_count(0)
    await expect(alice.page.get_by_text("zebrafish essay")).to_have_count(0)
    await alice.shot("search-private", "not-found")
    teacher.assert_clean()
    alice.assert_clean()


async def test_the_search_fits_a_phone(classroom, browser):
    """At 390 by 844 px the box and its open results stay on screen; a
    message's markup and brackets stay text; the keyboard moves from the box
    into the results and back."""
    room = classroom
    bob = await room.bob.connect()
    await join(bob, room.general)
    sent = [await send(bob, room.general, f"Wombat {word} spotted near the library") for word in ("one", "two")]
    # Markup and brackets a person typed stay text, and only the match is marked.
    sent.append(await send(bob, room.general, "<img src=x onerror=alert(1)> [[wombat]] ]] [["))
    for message in sent:
        await indexed(room.alice, "wombat", message["id"], room.workspace_id)

    alice = await open_channel(browser, room, "alice", room.alice, room.general)
    page = alice.page
    await page.set_viewport_size({"width": 390, "height": 844})
    box = search_box(alice)
    await box.fill("wombat")
    await box.press("Enter")
    region = results(alice)
    await expect(region.get_by_role("status")).to_have_text("3 messages found.")
    odd = region.get_by_role("link").first
    await expect(odd.locator(".search-hit-text")).to_have_text("<img src=x onerror=alert(1)> [[wombat]] ]] [[")
    await expect(odd.locator("mark")).to_have_text("wombat")
    await expect(region.locator("img")).to_have_count(0)
    for target in (box, region):
        shape = await target.bounding_box()
        assert shape is not None and shape["x"] >= 0 and shape["x"] + shape["width"] <= 390, (target, shape)
    hits = region.get_by_role("link")
    await box.press("ArrowDown")
    await expect(hits.first).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(hits.nth(1)).to_be_focused()
    await page.keyboard.press("ArrowUp")
    await expect(hits.first).to_be_focused()
    await page.keyboard.press("ArrowUp")
    await expect(box).to_be_focused()
    await alice.shot("search-phone", "results")
    await region.get_by_role("button", name="Close search results").click()
    await expect(region).to_be_hidden()
    await expect(box).to_be_focused()
    alice.assert_clean()
