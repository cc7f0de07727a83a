"""What the browser tests of both chat pages (a channel, MessagePal) share:
finding a message, posting through the composer, and the edits that behave
the same on both (Escape cancels, Up arrow edits your last)."""

from __future__ import annotations

import re

from tests.e2e.browser import Tab


def expect(target):
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


async def live(tab: Tab) -> None:
    """The page's socket is connected, joined and caught up."""
    await expect(tab.page.get_by_role("log")).to_have_attribute("data-live", "true")


def bubble(tab: Tab, text: str):
    return tab.page.get_by_role("log").locator("article.message").filter(has_text=text)


def by_key(tab: Tab, key: str):
    return tab.page.get_by_role("log").locator(f'article.message[data-key="{key}"]')


async def post(tab: Tab, text: str, key: re.Pattern = re.compile(r"^\d+$")):
    """Sends through the composer; the bubble (found by its id, so that an
    edit does not lose it) once the server has it (`key`: the id's form)."""
    composer = tab.page.get_by_role("textbox", name="Message", exact=True)
    await composer.fill(text)
    await composer.press("Enter")
    sent = bubble(tab, text)
    await expect(sent).to_have_attribute("data-key", key)
    return by_key(tab, await sent.get_attribute("data-key"))


async def escape_cancels_an_edit(alice: Tab, bob: Tab, message, test: str) -> None:
    """Alice opens the editor on `message` ("Keep me as I am"), types, and
    Escape leaves everything as it was, on her page and on Bob's."""
    await message.hover()
    await message.get_by_role("button", name="Edit").click()
    editor = alice.page.get_by_role("textbox", name="Edit message")
    await editor.fill("something else entirely")
    await alice.shot(test, "editing")
    await editor.press("Escape")
    await expect(editor).to_have_count(0)
    await expect(message.locator(".message-body")).to_have_text("Keep me as I am")
    await expect(message.get_by_text("(edited)")).to_have_count(0)
    await expect(message).to_be_focused()
    await expect(bubble(bob, "Keep me as I am").get_by_text("(edited)")).to_have_count(0)
    await expect(bob.page.get_by_text("something else entirely")).to_have_count(0)
    await alice.shot(test, "cancelled")
    alice.assert_clean()
    bob.assert_clean()


async def up_arrow_edits_the_last(alice: Tab, bob: Tab, test: str, key: re.Pattern = re.compile(r"^\d+$")) -> None:
    """Up arrow in Alice's empty composer edits her newest message (not
    Bob's newer one); with text in the composer it is the caret's."""
    first = await post(alice, "first thing", key)
    second = await post(alice, "second thnig", key)
    await post(bob, "bob says hi", key)  # the newest message is not Alice's
    await expect(bubble(alice, "bob says hi")).to_be_visible()
    composer = alice.page.get_by_role("textbox", name="Message", exact=True)
    await composer.focus()
    await composer.press("ArrowUp")
    editor = second.get_by_role("textbox", name="Edit message")
    await expect(editor).to_be_focused()
    await expect(editor).to_have_value("second thnig")
    await alice.shot(test, "editing")
    await editor.fill("second thing")
    await editor.press("Enter")
    await expect(second.locator(".message-body")).to_have_text("second thing")
    await expect(second.get_by_text("(edited)")).to_be_visible()
    await expect(first.get_by_text("(edited)")).to_have_count(0)
    await expect(bubble(bob, "second thing").get_by_text("(edited)")).to_be_visible()
    await composer.fill("draft")
    await composer.press("ArrowUp")
    await expect(alice.page.get_by_role("textbox", name="Edit message")).to_have_count(0)
    await alice.shot(test, "edited")
    alice.assert_clean()
    bob.assert_clean()
