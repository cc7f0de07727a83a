"""Edits and deletes on the MessagePal page in the browser (real Chromium
through playwright, real daphne): "Edit" in place (Enter saves, Escape
cancels, a server error shows under the editor), "(edited)", Delete with
confirmation, Up in the empty composer, and the other person's page following
along (PROTOCOL.md, part 2 "Message lifecycle" and "Browser UI names").
Screenshots go into test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import Tab, new_tab
from tests.e2e.pages import bubble, escape_cancels_an_edit, expect, live, post, up_arrow_edits_the_last

pytestmark = pytest.mark.e2e

PAL_KEY = re.compile(r"^conv_\d+_\d+:\d+$")






async def open_conversation(browser, room, name: str, person, other) -> Tab:
    low, high = sorted((person.id, other.id))
    tab = await new_tab(browser, room.server, name, person)
    await tab.page.goto(f"/messagepal/conv_{low}_{high}/")
    await live(tab)
    return tab


async def pair(browser, room) -> tuple[Tab, Tab]:
    """Alice and Bob (same workspace) each on their conversation's page."""
    alice = await open_conversation(browser, room, "alice", room.alice, room.bob)
    bob = await open_conversation(browser, room, "bob", room.bob, room.alice)
    return alice, bob



async def test_pal_edit_with_the_edit_button(classroom, browser):
    """Keyboard focus (and hover) shows only "Edit" and "Delete" on one's own
    message and nothing on the other person's; Enter saves, both pages show
    the new text with "(edited)"."""
    test = "pal-lifecycle-edit"
    room = classroom
    alice, bob = await pair(browser, room)
    message = await post(alice, "See you at 5", PAL_KEY)
    theirs = bubble(bob, "See you at 5")
    await expect(theirs).to_be_visible()

    await message.focus()
    await expect(message.get_by_role("button", name="Edit")).to_be_visible()
    await expect(message.get_by_role("button", name="Delete")).to_be_visible()
    await expect(message.get_by_role("button", name="Add reaction")).to_have_count(0)
    await expect(message.get_by_role("button", name="Reply in thread")).to_have_count(0)
    await theirs.hover()
    await expect(theirs.get_by_role("button")).to_have_count(0)
    await expect(theirs.get_by_role("button", name="Edit")).to_have_count(0)
    await expect(theirs.get_by_role("button", name="Delete")).to_have_count(0)
    await bob.shot(test, "no-actions-on-theirs")

    await message.hover()
    await message.get_by_role("button", name="Edit").click()
    editor = alice.page.get_by_role("textbox", name="Edit message")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("See you at 5")
    await alice.shot(test, "editing")
    await editor.fill("See you at 6")
    await editor.press("Enter")
    await expect(editor).to_have_count(0)
    await expect(message.locator(".message-body")).to_have_text("See you at 6")
    await expect(message.get_by_text("(edited)")).to_be_visible()
    await expect(message).to_be_focused()
    edited = bubble(bob, "See you at 6")
    await expect(edited.locator(".message-body")).to_have_text("See you at 6")
    await expect(edited.get_by_text("(edited)")).to_be_visible()
    await expect(bob.page.get_by_text("See you at 5")).to_have_count(0)
    # The conversation list's preview follows the edit.
    entry = bob.page.get_by_role("navigation", name="Conversations").get_by_role("link", name=re.compile("Alice S"))
    await expect(entry).to_contain_text("See you at 6")
    await alice.shot(test, "edited")
    await bob.shot(test, "edited")
    alice.assert_clean()
    bob.assert_clean()


async def test_pal_escape_cancels_an_edit(classroom, browser):
    test = "pal-lifecycle-edit-cancel"
    room = classroom
    alice, bob = await pair(browser, room)
    message = await post(alice, "Keep me as I am", PAL_KEY)
    await escape_cancels_an_edit(alice, bob, message, test)


async def test_pal_server_error_shows_under_the_editor(classroom, browser):
    """An edit the server refuses (too long here) keeps the editor open with
    the server's reason under it; nothing changes on either page."""
    test = "pal-lifecycle-edit-error"
    room = classroom
    alice, bob = await pair(browser, room)
    message = await post(alice, "short and sweet", PAL_KEY)
    await message.hover()
    await message.get_by_role("button", name="Edit").click()
    editor = alice.page.get_by_role("textbox", name="Edit message")
    await editor.fill("x" * 4001)
    await editor.press("Enter")
    error = message.get_by_role("alert")
    await expect(error).to_contain_text("at most")
    await expect(editor).to_be_focused()
    await expect(editor).to_be_editable()
    await alice.shot(test, "error")
    await editor.press("Escape")
    await expect(editor).to_have_count(0)
    await expect(message.locator(".message-body")).to_have_text("short and sweet")
    await expect(bubble(bob, "short and sweet").get_by_text("(edited)")).to_have_count(0)
    alice.assert_clean()
    bob.assert_clean()


async def test_pal_up_arrow_in_the_empty_composer_edits_the_last_message(classroom, browser):
    test = "pal-lifecycle-edit-up"
    room = classroom
    alice, bob = await pair(browser, room)
    await up_arrow_edits_the_last(alice, bob, test, PAL_KEY)


async def test_pal_delete_asks_first_and_is_gone_on_both_pages(classroom, browser):
    test = "pal-lifecycle-delete"
    room = classroom
    alice, bob = await pair(browser, room)
    message = await post(alice, "oops, wrong person", PAL_KEY)
    await post(alice, "this one stays", PAL_KEY)
    await expect(bubble(bob, "oops, wrong person")).to_be_visible()
    await expect(bubble(bob, "this one stays")).to_be_visible()

    await message.hover()
    await message.get_by_role("button", name="Delete").click()
    dialog = alice.page.get_by_role("dialog", name="Delete message?")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text("oops, wrong person")
    await alice.shot(test, "confirm")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(message).to_be_visible()
    await expect(bubble(bob, "oops, wrong person")).to_be_visible()

    await message.hover()
    await message.get_by_role("button", name="Delete").click()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(bubble(alice, "oops, wrong person")).to_have_count(0)
    await expect(bubble(bob, "oops, wrong person")).to_have_count(0)
    await expect(bubble(alice, "this one stays")).to_be_visible()
    await expect(bubble(bob, "this one stays")).to_be_visible()
    # Bob cannot delete (or edit) Alice's remaining message.
    stays = bubble(bob, "this one stays")
    await stays.hover()
    await expect(stays.get_by_role("button", name="Delete")).to_have_count(0)
    await expect(stays.get_by_role("button", name="Edit")).to_have_count(0)
    await alice.shot(test, "deleted")
    await bob.shot(test, "deleted")
    alice.assert_clean()
    bob.assert_clean()


async def test_pal_reconnect_catches_up_edits_and_deletes(classroom, browser):
    """Bob's page is offline while Alice edits one message and deletes
    another; back online, its catch-up shows the edit and drops the delete."""
    test = "pal-lifecycle-catch-up"
    room = classroom
    alice, bob = await pair(browser, room)
    edited = await post(alice, "to be edited", PAL_KEY)
    deleted = await post(alice, "to be deleted", PAL_KEY)
    await post(alice, "stays as it is", PAL_KEY)
    await expect(bubble(bob, "stays as it is")).to_be_visible()

    await bob.context.set_offline(True)
    await expect(bob.page.locator("#connection-banner")).to_be_visible()
    await edited.hover()
    await edited.get_by_role("button", name="Edit").click()
    editor = alice.page.get_by_role("textbox", name="Edit message")
    await editor.fill("edited while you were away")
    await editor.press("Enter")
    await expect(edited.get_by_text("(edited)")).to_be_visible()
    await deleted.hover()
    await deleted.get_by_role("button", name="Delete").click()
    await alice.page.get_by_role("dialog", name="Delete message?").get_by_role("button", name="Delete").click()
    await expect(deleted).to_have_count(0)

    await bob.context.set_offline(False)
    await expect(bob.page.locator("#connection-banner")).to_be_hidden(timeout=15_000)
    await live(bob)
    await expect(bubble(bob, "edited while you were away").get_by_text("(edited)")).to_be_visible()
    await expect(bubble(bob, "to be deleted")).to_have_count(0)
    await expect(bob.page.get_by_role("log").locator(".message-body")).to_have_text(["edited while you were away", "stays as it is"])
    await bob.shot(test, "caught-up")
    alice.assert_clean()
    bob.assert_clean()
