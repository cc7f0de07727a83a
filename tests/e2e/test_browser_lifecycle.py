"""The message lifecycle in the browser UI (real Chromium through playwright,
real daphne): edit in place, delete with confirmation, reactions through the
emoji picker and chips, threads in their panel, and the change catch-up after
a reconnect. Every test drives the UI by the binding accessible names
(PROTOCOL.md, "Browser UI names") and saves screenshots into
test-artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from tests.e2e.browser import Tab, channel_path, new_tab
from tests.e2e.pages import bubble, escape_cancels_an_edit, expect, live, post, up_arrow_edits_the_last

pytestmark = pytest.mark.e2e





def chip(scope, emoji: str):
    return scope.get_by_role("button", name=re.compile(f"^{re.escape(emoji)}"))


async def open_channel(browser, room, name: str, person) -> Tab:
    tab = await new_tab(browser, room.server, name, person)
    await tab.page.goto(channel_path(room.workspace_id, room.general))
    await live(tab)
    return tab




async def ws_message(ws, channel_id: int, content: str, **extra) -> dict:
    answer = await ws.request({"type": "send_message", "channelId": channel_id, "content": content, **extra}, "new_message")
    assert answer["type"] == "new_message", answer
    return answer["message"]


async def joined_socket(person, channel_id: int):
    ws = await person.connect()
    answer = await ws.request({"type": "join_channel", "channelId": channel_id}, "joined_channel")
    assert answer["type"] == "joined_channel", answer
    return ws


async def test_edit_with_the_edit_button(classroom, browser):
    """Hover shows "Edit" on one's own message (keyboard focus too); Enter
    saves, the message shows "(edited)", on the other person's page too."""
    test = "lifecycle-edit"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)
    message = await post(alice, "Helo everyone")
    await expect(bubble(bob, "Helo everyone")).to_be_visible()

    # Keyboard focus shows the buttons as hover does; another's message has no Edit.
    await message.focus()
    await expect(message.get_by_role("button", name="Edit")).to_be_visible()
    await expect(message.get_by_role("button", name="Add reaction")).to_be_visible()
    await expect(message.get_by_role("button", name="Reply in thread")).to_be_visible()
    await expect(message.get_by_role("button", name="Delete")).to_be_visible()
    theirs = bubble(bob, "Helo everyone")
    await theirs.hover()
    await expect(theirs.get_by_role("button", name="Add reaction")).to_be_visible()
    await expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)
    await expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)

    await message.hover()
    await message.get_by_role("button", name="Edit").click()
    editor = alice.page.get_by_role("textbox", name="Edit message")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("Helo everyone")
    await alice.shot(test, "editing")
    await editor.fill("Hello everyone")
    await editor.press("Enter")
    await expect(editor).to_have_count(0)
    await expect(message.locator(".message-body")).to_have_text("Hello everyone")
    await expect(message.get_by_text("(edited)")).to_be_visible()
    await expect(message).to_be_focused()
    edited = bubble(bob, "Hello everyone")
    await expect(edited.locator(".message-body")).to_have_text("Hello everyone")
    await expect(edited.get_by_text("(edited)")).to_be_visible()
    await alice.shot(test, "edited")
    await bob.shot(test, "edited")
    alice.assert_clean()
    bob.assert_clean()


async def test_escape_cancels_an_edit(classroom, browser):
    test = "lifecycle-edit-cancel"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)
    message = await post(alice, "Keep me as I am")
    await escape_cancels_an_edit(alice, bob, message, test)


async def test_up_arrow_in_the_empty_composer_edits_the_last_message(classroom, browser):
    test = "lifecycle-edit-up"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)
    await up_arrow_edits_the_last(alice, bob, test)


async def test_delete_asks_first_and_is_gone_for_everyone(classroom, browser):
    """The author deletes after confirming (Cancel keeps it); a teacher may
    delete anyone's message; both pages lose it."""
    test = "lifecycle-delete"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    teacher = await open_channel(browser, room, "teacher", room.teacher)
    message = await post(alice, "oops, wrong channel")
    await post(alice, "this one stays")
    await expect(bubble(teacher, "oops, wrong channel")).to_be_visible()

    await message.hover()
    await message.get_by_role("button", name="Delete").click()
    dialog = alice.page.get_by_role("dialog", name="Delete message?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("oops, wrong channel")
    await alice.shot(test, "confirm")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(message).to_be_visible()

    await message.hover()
    await message.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(bubble(alice, "oops, wrong channel")).to_have_count(0)
    await expect(bubble(teacher, "oops, wrong channel")).to_have_count(0)
    await expect(bubble(teacher, "this one stays")).to_be_visible()

    # A teacher deletes a student's message.
    other = bubble(teacher, "this one stays")
    await other.hover()
    await expect(other.get_by_role("button", name="Edit")).to_have_count(0)
    await other.get_by_role("button", name="Delete").click()
    await teacher.page.get_by_role("dialog", name="Delete message?").get_by_role("button", name="Delete").click()
    await expect(bubble(alice, "this one stays")).to_have_count(0)
    await expect(bubble(teacher, "this one stays")).to_have_count(0)
    await alice.shot(test, "deleted")
    await teacher.shot(test, "deleted")
    alice.assert_clean()
    teacher.assert_clean()


async def test_react_with_the_picker_and_toggle_chips(classroom, browser):
    test = "lifecycle-react"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)
    message = await post(alice, "Lunch at noon?")
    theirs = bubble(bob, "Lunch at noon?")
    await expect(theirs).to_be_visible()

    await message.hover()
    await message.get_by_role("button", name="Add reaction").click()
    picker = alice.page.get_by_role("dialog", name="Choose a reaction")
    await expect(picker).to_be_visible()
    await expect(picker.get_by_role("button")).to_have_count(16)
    await alice.shot(test, "picker")
    await picker.get_by_role("button", name="👍", exact=True).click()
    await expect(picker).to_be_hidden()
    mine = chip(message, "👍")
    await expect(mine).to_have_accessible_name("👍 1")
    await expect(mine).to_have_attribute("aria-pressed", "true")
    await expect(chip(theirs, "👍")).to_have_accessible_name("👍 1")
    await expect(chip(theirs, "👍")).to_have_attribute("aria-pressed", "false")

    # Bob joins in with the chip, then takes it back.
    await chip(theirs, "👍").click()
    await expect(chip(theirs, "👍")).to_have_accessible_name("👍 2")
    await expect(chip(theirs, "👍")).to_have_attribute("aria-pressed", "true")
    await expect(mine).to_have_accessible_name("👍 2")
    await bob.shot(test, "two")
    await chip(theirs, "👍").click()
    await expect(chip(theirs, "👍")).to_have_accessible_name("👍 1")
    await expect(chip(theirs, "👍")).to_have_attribute("aria-pressed", "false")
    await expect(mine).to_have_accessible_name("👍 1")

    # A second emoji by keyboard: focus the message, Tab to the button.
    await theirs.focus()
    await theirs.get_by_role("button", name="Add reaction").focus()
    await bob.page.keyboard.press("Enter")
    bob_picker = bob.page.get_by_role("dialog", name="Choose a reaction")
    await expect(bob_picker.get_by_role("searchbox", name="Search emoji")).to_be_focused()
    await bob_picker.get_by_role("button", name="🎉", exact=True).click()
    await expect(chip(message, "🎉")).to_have_accessible_name("🎉 1")

    # Alice un-reacts: her 👍 chip disappears everywhere.
    await mine.click()
    await expect(chip(message, "👍")).to_have_count(0)
    await expect(chip(theirs, "👍")).to_have_count(0)
    await expect(chip(theirs, "🎉")).to_have_attribute("aria-pressed", "true")
    await alice.shot(test, "chips")
    await bob.shot(test, "chips")
    alice.assert_clean()
    bob.assert_clean()


async def test_emoji_search_filters_by_name(classroom, browser):
    test = "lifecycle-emoji-search"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    message = await post(alice, "We won the match!")
    await message.hover()
    await message.get_by_role("button", name="Add reaction").click()
    picker = alice.page.get_by_role("dialog", name="Choose a reaction")
    search = picker.get_by_role("searchbox", name="Search emoji")
    await expect(search).to_be_focused()
    await search.fill("party")
    await expect(picker.get_by_role("button", name="🎉", exact=True)).to_be_visible()
    await expect(picker.get_by_role("button", name="🥳", exact=True)).to_be_visible()
    await expect(picker.get_by_role("button", name="👍", exact=True)).to_have_count(0)
    await alice.shot(test, "party")
    await search.fill("zzqx")
    await expect(picker.get_by_role("button")).to_have_count(0)
    await expect(picker.get_by_role("status")).to_have_text("No emoji found.")
    await search.press("Escape")
    await expect(picker).to_be_hidden()
    await expect(message.get_by_role("button", name="Add reaction")).to_be_focused()

    # Enter in the search box takes the first match.
    await alice.page.keyboard.press("Enter")
    await search.fill("troph")
    await search.press("Enter")
    await expect(chip(message, "🏆")).to_have_accessible_name("🏆 1")
    await alice.shot(test, "picked")
    alice.assert_clean()


async def test_thread_reply_in_the_panel(classroom, browser):
    """"Reply in thread" opens the panel with the root; a reply sent there
    shows in the panel, the root's count updates on the other page, whose
    own panel then gets the next reply live; Escape closes it."""
    test = "lifecycle-thread"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)
    root = await post(bob, "Which pages for homework?")
    theirs = bubble(alice, "Which pages for homework?")
    await theirs.hover()
    await theirs.get_by_role("button", name="Reply in thread").click()
    panel = alice.page.get_by_role("complementary", name="Thread")
    await expect(panel).to_be_visible()
    await expect(panel.locator("article.message").first).to_contain_text("Which pages for homework?")
    reply_box = panel.get_by_role("textbox", name="Reply")
    await expect(reply_box).to_be_focused()
    await reply_box.fill("Pages 12 to 14")
    await panel.get_by_role("button", name="Post reply").click()
    await expect(panel.locator("article.message").filter(has_text="Pages 12 to 14")).to_have_attribute("data-key", re.compile(r"^\d+$"))
    await expect(theirs.get_by_role("button", name="1 reply")).to_be_visible()
    await alice.shot(test, "panel")

    # Bob's page: the count on his message, and the thread opens from it.
    count = root.get_by_role("button", name="1 reply")
    await expect(count).to_be_visible()
    await bob.shot(test, "count")
    await count.click()
    bob_panel = bob.page.get_by_role("complementary", name="Thread")
    await expect(bob_panel.locator("article.message").filter(has_text="Pages 12 to 14")).to_be_visible()
    await reply_box.fill("and exercise 3")
    await reply_box.press("Enter")
    await expect(bob_panel.locator("article.message").filter(has_text="and exercise 3")).to_be_visible()
    await expect(root.get_by_role("button", name="2 replies")).to_be_visible()
    await expect(bob_panel.locator(".thread-count")).to_have_text("2 replies")
    # Replies show compactly in the channel's list.
    await expect(bubble(bob, "and exercise 3").get_by_role("button", name="View thread")).to_be_visible()
    await bob.shot(test, "live")

    await bob_panel.get_by_role("textbox", name="Reply").press("Escape")
    await expect(bob_panel).to_be_hidden()
    # The focus goes back to the count that opened it (redrawn meanwhile).
    await expect(root.get_by_role("button", name="2 replies")).to_be_focused()
    alice.assert_clean()
    bob.assert_clean()


async def test_reconnect_catches_up_edits_deletes_reactions_and_threads(classroom, browser):
    """Bob's page goes offline; meanwhile Alice edits, deletes, reacts,
    replies in a thread and posts, and the teacher pins. Back online, the page
    rejoins with afterId and changesAfter and shows exactly the new state."""
    test = "lifecycle-catch-up"
    room = classroom
    bob = await open_channel(browser, room, "bob", room.bob)
    ws = await joined_socket(room.alice, room.general)
    teacher_ws = await joined_socket(room.teacher, room.general)
    sent = {}
    for text in ("to be edited", "to be deleted", "to be liked", "to be answered", "stays as it is"):
        sent[text] = await ws_message(ws, room.general, text)
        await expect(bubble(bob, text)).to_be_visible()
    liked = sent["to be liked"]["id"]
    answer = await ws.request({"type": "add_reaction", "channelId": room.general, "messageId": liked, "emoji": "👀"}, "reaction_updated")
    assert answer["type"] == "reaction_updated", answer
    await expect(chip(bubble(bob, "to be liked"), "👀")).to_have_accessible_name("👀 1")

    # The page's join frames, to see the rejoin ask for both kinds of catch-up.
    joins: list[dict] = []

    def watch(socket) -> None:
        def sent(payload) -> None:
            event = json.loads(payload) if isinstance(payload, str) else {}
            if event.get("type") == "join_channel" and event.get("channelId") == room.general:
                joins.append(event)

        socket.on("framesent", sent)

    bob.page.on("websocket", watch)
    await bob.context.set_offline(True)
    banner = bob.page.locator("#connection-banner")
    await expect(banner).to_be_visible()
    await expect(bob.page.get_by_role("log")).to_have_attribute("data-live", "false")

    async def do(event: dict, answer_type: str) -> dict:
        reply = await ws.request({"channelId": room.general, **event}, answer_type)
        assert reply["type"] == answer_type, reply
        return reply

    await do({"type": "edit_message", "messageId": sent["to be edited"]["id"], "content": "edited while you were away"}, "message_updated")
    await do({"type": "delete_message", "messageId": sent["to be deleted"]["id"]}, "message_deleted")
    await do({"type": "add_reaction", "messageId": liked, "emoji": "👍"}, "reaction_updated")
    await do({"type": "remove_reaction", "messageId": liked, "emoji": "👀"}, "reaction_updated")
    reacted = await teacher_ws.request({"type": "add_reaction", "channelId": room.general, "messageId": liked, "emoji": "👍"}, "reaction_updated")
    assert reacted["type"] == "reaction_updated", reacted
    await ws_message(ws, room.general, "an answer in the thread", replyTo=sent["to be answered"]["id"])
    pinned = await teacher_ws.request({"type": "pin_message", "channelId": room.general, "messageId": sent["stays as it is"]["id"]}, "message_pinned")
    assert pinned["type"] == "message_pinned", pinned
    await ws_message(ws, room.general, "posted while you were away")
    await expect(banner).to_be_visible()
    await bob.shot(test, "offline")

    await bob.context.set_offline(False)
    await expect(banner).to_be_hidden(timeout=15_000)
    await live(bob)
    edited = bubble(bob, "edited while you were away")
    await expect(edited.locator(".message-body")).to_have_text("edited while you were away")
    await expect(edited.get_by_text("(edited)")).to_be_visible()
    await expect(bubble(bob, "to be edited")).to_have_count(0)
    await expect(bubble(bob, "to be deleted")).to_have_count(0)
    liked_bubble = bubble(bob, "to be liked")
    await expect(chip(liked_bubble, "👍")).to_have_accessible_name("👍 2")
    await expect(chip(liked_bubble, "👀")).to_have_count(0)
    await expect(bubble(bob, "to be answered").get_by_role("button", name="1 reply")).to_be_visible()
    await expect(bubble(bob, "stays as it is").locator(".badge-pin")).to_have_text("Pinned")
    await expect(bubble(bob, "posted while you were away")).to_have_count(1)
    bodies = await bob.page.get_by_role("log").locator(".message-body").all_inner_texts()
    assert bodies == [
        "edited while you were away",
        "to be liked",
        "to be answered",
        "stays as it is",
        "an answer in the thread",
        "posted while you were away",
    ], bodies
    await bob.shot(test, "caught-up")
    assert joins and "afterId" in joins[0] and isinstance(joins[0].get("changesAfter"), int), joins

    # And live again.
    await do({"type": "edit_message", "messageId": sent["stays as it is"]["id"], "content": "stays, edited live"}, "message_updated")
    await expect(bubble(bob, "stays, edited live").get_by_text("(edited)")).to_be_visible()
    bob.assert_clean()


async def test_catch_up_reads_every_page_of_changes(classroom, browser):
    """When joined_channel says changesHasMore, the page joins again from the
    last change it applied until it has them all. The server pages at 500
    changes; here the page's socket goes through a route that cuts the first
    catch-up after its first change, so the real server answers the rest."""
    test = "lifecycle-catch-up-pages"
    room = classroom
    connections: list = []
    release = asyncio.Event()
    joins: list[dict] = []
    cut: list[dict] = []

    async def route(page_side) -> None:
        connections.append(page_side)
        if len(connections) > 1:
            await release.wait()  # the page stays "connecting" meanwhile
        server_side = page_side.connect_to_server()

        def to_server(message) -> None:
            event = json.loads(message)
            if event.get("type") == "join_channel" and event.get("channelId") == room.general:
                joins.append(event)
            server_side.send(message)

        def to_page(message) -> None:
            event = json.loads(message)
            changes = event.get("changes") or []
            if event.get("type") == "joined_channel" and len(changes) > 1 and not cut:
                cut.append(event)
                event = {**event, "changes": changes[:1], "changesHasMore": True}
                message = json.dumps(event)
            page_side.send(message)

        page_side.on_message(to_server)
        server_side.on_message(to_page)

    bob = await new_tab(browser, room.server, "bob", room.bob)
    await bob.page.route_web_socket(re.compile(r"/ws/chat/?$"), route)
    await bob.page.goto(channel_path(room.workspace_id, room.general))
    await live(bob)
    ws = await joined_socket(room.alice, room.general)
    first = await ws_message(ws, room.general, "first version")
    second = await ws_message(ws, room.general, "will vanish")
    third = await ws_message(ws, room.general, "react to me")
    await expect(bubble(bob, "react to me")).to_be_visible()

    await connections[0].close(code=1001)
    await expect(bob.page.locator("#connection-banner")).to_be_visible()
    joins.clear()
    for event, answer_type in (
        ({"type": "edit_message", "messageId": first["id"], "content": "second version"}, "message_updated"),
        ({"type": "delete_message", "messageId": second["id"]}, "message_deleted"),
        ({"type": "add_reaction", "messageId": third["id"], "emoji": "🎉"}, "reaction_updated"),
    ):
        answer = await ws.request({"channelId": room.general, **event}, answer_type)
        assert answer["type"] == answer_type, answer
    release.set()

    await expect(bob.page.locator("#connection-banner")).to_be_hidden(timeout=15_000)
    await live(bob)
    await expect(bubble(bob, "second version").get_by_text("(edited)")).to_be_visible()
    await expect(bubble(bob, "will vanish")).to_have_count(0)
    await expect(chip(bubble(bob, "react to me"), "🎉")).to_have_accessible_name("🎉 1")
    assert len(cut) == 1 and len(cut[0]["changes"]) == 3, cut
    assert len(joins) == 2, joins
    assert joins[1]["changesAfter"] == cut[0]["changes"][0]["changeId"], (joins, cut)
    await bob.shot(test, "caught-up")
    bob.assert_clean()


async def test_a_teacher_pins_and_unpins(classroom, browser):
    test = "lifecycle-unpin"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    teacher = await open_channel(browser, room, "teacher", room.teacher)
    await post(alice, "homework is page 12")
    message = bubble(teacher, "homework is page 12")
    await message.hover()
    await expect(bubble(alice, "homework is page 12").get_by_role("button", name="Pin")).to_have_count(0)
    await message.get_by_role("button", name="Pin").click()
    await expect(bubble(alice, "homework is page 12").get_by_text("Pinned", exact=True)).to_be_visible()
    await expect(alice.page.locator("#pin-count")).to_have_text("1")
    await teacher.shot(test, "pinned")
    await message.hover()
    await message.get_by_role("button", name="Unpin").click()
    await expect(bubble(alice, "homework is page 12").get_by_text("Pinned", exact=True)).to_have_count(0)
    await expect(alice.page.locator("#pin-count")).to_have_text("0")
    await expect(message.get_by_text("Pinned", exact=True)).to_have_count(0)
    await teacher.shot(test, "unpinned")
    alice.assert_clean()
    teacher.assert_clean()


async def test_report_a_message_and_a_teacher_sees_it(classroom, browser):
    test = "lifecycle-report"
    room = classroom
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)
    await post(alice, "my own words")
    await post(bob, "nobody likes you alice")
    own = bubble(alice, "my own words")
    await own.hover()
    await expect(own.get_by_role("button", name="Report")).to_have_count(0)
    message = bubble(alice, "nobody likes you alice")
    await message.hover()
    await message.get_by_role("button", name="Report").click()
    dialog = alice.page.get_by_role("dialog", name="Report message")
    await expect(dialog).to_contain_text("nobody likes you alice")
    await dialog.get_by_role("button", name="Send report").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("Say what is wrong")
    await dialog.get_by_role("textbox", name="Reason").fill("bullying")
    await alice.shot(test, "reason")
    await dialog.get_by_role("button", name="Send report").click()
    await expect(dialog).to_be_hidden()
    await expect(alice.page.get_by_text("The report was sent")).to_be_visible()
    await alice.shot(test, "sent")
    reports = room.teacher.http.get(f"/api/workspaces/{room.workspace_id}/reports/").json()
    assert [(r["reason"], r["reporterId"], r["message"]["content"]) for r in reports] == [("bullying", room.alice.id, "nobody likes you alice")]
    alice.assert_clean()
    bob.assert_clean()
