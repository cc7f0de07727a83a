""""Block" / "Unblock" in the MessagePal conversation header, in the browser
(real Chromium through playwright, real daphne): each asks first (Cancel
changes nothing), a block holds across a reload, the blocker's composer is
off, the blocked person's message is not sent, and unblocking lets them
write again (PROTOCOL.md part 2, "Class management and safeguarding").
Screenshots go into test-artifacts/screenshots/."""

from __future__ import annotations

import pytest

from tests.e2e.pages import bubble, expect, live, post
from tests.e2e.test_browser_pal_lifecycle import PAL_KEY, pair

pytestmark = pytest.mark.e2e


def blocked_ids(person) -> list[int]:
    r = person.http.get("/api/messagepal/blocks/")
    assert r.status_code == 200, r.text
    return [u["id"] for u in r.json()]


async def test_block_button_asks_first_and_stops_messages_until_unblock(classroom, browser):
    test = "pal-block"
    room = classroom
    alice, bob = await pair(browser, room)
    await post(bob, "hello alice", PAL_KEY)
    await expect(bubble(alice, "hello alice")).to_be_visible()
    header = alice.page.locator(".conversation-header")
    block = header.get_by_role("button", name="Block", exact=True)
    composer = alice.page.get_by_role("textbox", name="Message", exact=True)
    await expect(block).to_be_visible()
    await expect(composer).to_be_enabled()

    # Cancel: nothing changes.
    await block.click()
    dialog = alice.page.get_by_role("dialog", name="Block Bob S?")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await alice.shot(test, "confirm-block")
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_be_hidden()
    await expect(block).to_be_visible()
    assert blocked_ids(room.alice) == []

    # Confirmed: the button turns into "Unblock", the composer is off.
    await block.click()
    await dialog.get_by_role("button", name="Block", exact=True).click()
    unblock = header.get_by_role("button", name="Unblock", exact=True)
    await expect(unblock).to_be_visible()
    await expect(unblock).to_be_focused()
    await expect(composer).to_be_disabled()
    await expect(alice.page.get_by_text("You blocked Bob S.")).to_be_visible()
    assert blocked_ids(room.alice) == [room.bob.id]
    await alice.shot(test, "blocked")

    # The block holds across a reload.
    await alice.page.reload()
    await live(alice)
    await expect(unblock).to_be_visible()
    await expect(composer).to_be_disabled()

    # Bob's message is refused, and never reaches Alice.
    bob_composer = bob.page.get_by_role("textbox", name="Message", exact=True)
    await bob_composer.fill("can you read this?")
    await bob_composer.press("Enter")
    refused = bubble(bob, "can you read this?")
    await expect(refused).to_have_attribute("data-status", "failed")
    await expect(refused).to_contain_text("not accepting your messages")
    await bob.shot(test, "refused")
    await expect(bubble(alice, "can you read this?")).to_have_count(0)

    # Unblock (asks too): both write again.
    await unblock.click()
    dialog = alice.page.get_by_role("dialog", name="Unblock Bob S?")
    await expect(dialog).to_be_visible()
    await dialog.get_by_role("button", name="Unblock", exact=True).click()
    await expect(block).to_be_visible()
    await expect(composer).to_be_enabled()
    assert blocked_ids(room.alice) == []
    await post(bob, "and now?", PAL_KEY)
    await expect(bubble(alice, "and now?")).to_be_visible()
    await post(alice, "loud and clear", PAL_KEY)
    await expect(bubble(bob, "loud and clear")).to_be_visible()
    await alice.shot(test, "unblocked")
    alice.assert_clean()
    bob.assert_clean()
