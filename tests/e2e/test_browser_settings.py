"""Class management in the browser (PROTOCOL.md part 2, "Class management
and safeguarding"; docs/safeguarding.md): the workspace settings page
(/workspaces/{id}/settings/: "Members", "Invites", "Reports", "Moderation
log"), the chat page's "Settings" link, "Mute {name}" on a student in the
member list, and a private channel's "Channel members" panel. Real Chromium
against the real daphne harness; screenshots in test-artifacts/screenshots/."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import Tab, channel_path, new_tab
from tests.e2e.harness import Person
from tests.e2e.pages import bubble, expect, live, post

pytestmark = pytest.mark.e2e


def settings_path(workspace_id: int) -> str:
    return f"/workspaces/{workspace_id}/settings/"


def add_teacher(room) -> Person:
    """A member with the role `teacher` (the classroom's own "Teacher T" is
    the workspace's admin, its creator)."""
    teacher = Person(room.server, display_name="Tess Teacher")
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/members/", {"username": teacher.username, "role": "teacher"})
    assert r.status_code == 201, r.text
    return teacher


async def open_channel(browser, room, name: str, person: Person, channel_id: int | None = None) -> Tab:
    tab = await new_tab(browser, room.server, name, person)
    await tab.page.goto(channel_path(room.workspace_id, channel_id or room.general))
    await live(tab)
    return tab


async def open_settings(browser, room, name: str, person: Person) -> Tab:
    tab = await new_tab(browser, room.server, name, person)
    await tab.page.goto(settings_path(room.workspace_id))
    await expect(tab.page.get_by_role("heading", name="Members")).to_be_visible()
    return tab


def section(tab: Tab, heading: str):
    return tab.page.get_by_role("region", name=heading)


def report_with(tab: Tab, text: str):
    return section(tab, "Reports").get_by_role("listitem").filter(has_text=text)


async def report_through_the_ui(tab: Tab, text: str, reason: str) -> None:
    message = bubble(tab, text)
    await message.hover()
    await message.get_by_role("button", name="Report").click()
    dialog = tab.page.get_by_role("dialog", name="Report message")
    await dialog.get_by_role("textbox", name="Reason").fill(reason)
    await dialog.get_by_role("button", name="Send report").click()
    await expect(dialog).to_be_hidden()
    await expect(tab.page.get_by_text("The report was sent")).to_be_visible()


async def test_a_teacher_invites_and_a_student_joins_through_the_link(classroom, browser):
    """The "Settings" link, an invite made on the page (teachers: students
    only), its link copied, a newcomer joining with it and appearing in
    Members; students get no settings page, outsiders a 404."""
    test = "settings-invite"
    room = classroom
    tess = add_teacher(room)
    chat = await open_channel(browser, room, "teacher", tess)
    await chat.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=room.server.base)
    await chat.page.get_by_role("link", name="Settings").click()
    page = chat.page
    await expect(page).to_have_url(f"{room.server.base}{settings_path(room.workspace_id)}")
    for heading in ("Members", "Invites", "Reports"):
        await expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    # Teachers: no moderation log, no role changes, student invites only.
    await expect(page.get_by_role("heading", name="Moderation log")).to_have_count(0)
    await expect(page.get_by_role("combobox", name=re.compile("^Role of"))).to_have_count(0)
    await expect(page.get_by_label("Role", exact=True).locator("option")).to_have_count(1)
    await expect(page.get_by_role("link", name=re.compile("Back to Class"))).to_have_attribute("href", f"/workspaces/{room.workspace_id}/")

    invites = section(chat, "Invites")
    await invites.get_by_label("Max uses").fill("3")
    await invites.get_by_label("Valid for (hours)").fill("24")
    await invites.get_by_role("button", name="Create invite").click()
    row = invites.get_by_role("listitem").filter(has_text="0 of 3 uses")
    await expect(row).to_have_count(1)
    link_box = row.get_by_role("textbox", name="Join link")
    await expect(link_box).to_have_value(re.compile(rf"^{re.escape(room.server.base)}/invite/[^/]+/$"))
    link = await link_box.input_value()
    await row.get_by_role("button", name="Copy link").click()
    await expect(page.get_by_role("status").filter(has_text="Link copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == link
    await chat.shot(test, "invite-created")

    newcomer = Person(room.server, display_name="Nina New")
    joiner = await new_tab(browser, room.server, "newcomer", newcomer)
    await joiner.page.goto(link)
    await expect(joiner.page.get_by_role("heading", name="Join Class")).to_be_visible()
    await joiner.page.get_by_role("button", name="Join").click()
    await expect(joiner.page).to_have_url(f"{room.server.base}{channel_path(room.workspace_id, room.general)}")
    await live(joiner)

    await page.reload()
    members = section(chat, "Members")
    await expect(members.get_by_role("listitem").filter(has_text="Nina New")).to_contain_text("Student")
    await expect(invites.get_by_role("listitem").filter(has_text="1 of 3 uses")).to_have_count(1)
    await chat.shot(test, "joined")

    # Revoke: the link stops working.
    await invites.get_by_role("button", name="Revoke").click()
    confirm = page.get_by_role("dialog", name="Revoke this invite?")
    await confirm.get_by_role("button", name="Revoke").click()
    await expect(invites.get_by_text("No usable invites.")).to_be_visible()
    late = await new_tab(browser, room.server, "late", Person(room.server))
    response = await late.page.goto(link)
    assert response is not None and response.status == 404

    # A student is told the page is not theirs; an outsider learns nothing.
    student = await new_tab(browser, room.server, "student", newcomer)
    response = await student.page.goto(settings_path(room.workspace_id))
    assert response is not None and response.status == 403
    await expect(student.page.get_by_text("Only teachers and admins can manage this workspace.")).to_be_visible()
    await student.page.goto(channel_path(room.workspace_id, room.general))
    await live(student)
    await expect(student.page.get_by_role("link", name="Settings")).to_be_hidden()
    outsider = await new_tab(browser, room.server, "outsider", room.outsider)
    response = await outsider.page.goto(settings_path(room.workspace_id))
    assert response is not None and response.status == 404
    for tab in (chat, joiner, student):
        tab.assert_clean()
    await newcomer.close_all()
    await tess.close_all()


async def test_a_report_handled_with_mute_author(classroom, browser):
    """Bob reports Alice's message in the channel; a teacher mutes its author
    from the Reports section; Alice's next message is refused."""
    test = "settings-report-mute"
    room = classroom
    tess = add_teacher(room)
    alice = await open_channel(browser, room, "alice", room.alice)
    bob = await open_channel(browser, room, "bob", room.bob)
    await post(alice, "everyone look at this rude thing")
    await expect(bubble(bob, "everyone look at this rude thing")).to_be_visible()
    await report_through_the_ui(bob, "everyone look at this rude thing", "Unkind to classmates")

    staff = await open_settings(browser, room, "teacher", tess)
    report = report_with(staff, "everyone look at this rude thing")
    await expect(report).to_contain_text("Unkind to classmates")
    await expect(report).to_contain_text("reported by Bob S")
    await expect(report).to_contain_text("by Alice S")
    await expect(report.get_by_role("button", name="Dismiss")).to_be_visible()
    await expect(report.get_by_role("button", name="Delete message")).to_be_visible()
    await report.scroll_into_view_if_needed()
    await staff.shot(test, "open-report")
    await report.get_by_role("button", name="Mute author").click()
    await expect(staff.page.get_by_role("status").filter(has_text="Alice S is muted for 1 hour")).to_be_visible()
    await expect(section(staff, "Reports").get_by_text("No open reports.")).to_be_visible()
    await section(staff, "Reports").scroll_into_view_if_needed()
    await staff.shot(test, "handled")

    # Alice's send is refused, in her page and over HTTP.
    composer = alice.page.get_by_role("textbox", name="Message", exact=True)
    await composer.fill("can I still talk?")
    await composer.press("Enter")
    await expect(bubble(alice, "can I still talk?").get_by_text(re.compile("^Not sent"))).to_be_visible()
    await expect(bubble(bob, "can I still talk?")).to_have_count(0)
    await alice.shot(test, "refused")
    history = room.alice.http.get(f"/api/channels/{room.general}/messages/").json()["results"]
    r = room.alice.http.post(f"/api/channels/{room.general}/messages/{history[-1]['id']}/reactions/", {"emoji": "👍"})
    assert r.status_code == 403, r.text
    # The teacher's list is empty for the others too, and there is no audit for teachers.
    assert room.teacher.http.get(f"/api/workspaces/{room.workspace_id}/reports/").json() == []
    for tab in (alice, bob, staff):
        tab.assert_clean()
    await tess.close_all()


async def test_reports_dismissed_or_deleted(classroom, browser):
    """"Dismiss" closes a report and changes nothing else; "Delete message"
    asks first, then the message is gone for everyone."""
    test = "settings-report-dismiss"
    room = classroom
    tess = add_teacher(room)
    alice = await open_channel(browser, room, "alice", room.alice)
    await post(alice, "a harmless joke")
    await post(alice, "something really mean")
    bob = await open_channel(browser, room, "bob", room.bob)
    await report_through_the_ui(bob, "a harmless joke", "Not sure about this")
    await report_through_the_ui(bob, "something really mean", "Mean")

    staff = await open_settings(browser, room, "teacher", tess)
    joke = report_with(staff, "a harmless joke")
    mean = report_with(staff, "something really mean")
    await expect(joke).to_be_visible()
    await expect(mean).to_be_visible()
    await joke.get_by_role("button", name="Dismiss").click()
    await expect(staff.page.get_by_role("status").filter(has_text="The report was dismissed.")).to_be_visible()
    await expect(joke).to_have_count(0)

    await mean.get_by_role("button", name="Delete message").click()
    confirm = staff.page.get_by_role("dialog", name="Delete this message?")
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(mean).to_be_visible()
    await mean.get_by_role("button", name="Delete message").click()
    await confirm.get_by_role("button", name="Delete message").click()
    await expect(section(staff, "Reports").get_by_text("No open reports.")).to_be_visible()
    await expect(bubble(alice, "something really mean")).to_have_count(0)
    await expect(bubble(bob, "something really mean")).to_have_count(0)
    await section(staff, "Reports").scroll_into_view_if_needed()
    await staff.shot(test, "handled")

    # Dismissing muted nobody: Alice still posts.
    await post(alice, "still here")
    await expect(bubble(bob, "still here")).to_be_visible()
    for tab in (alice, bob, staff):
        tab.assert_clean()
    await tess.close_all()


async def test_an_admin_changes_a_role_removes_a_member_and_reads_the_log(classroom, browser):
    test = "settings-admin"
    room = classroom
    admin = await open_settings(browser, room, "admin", room.teacher)
    page = admin.page
    members = section(admin, "Members")
    await expect(page.get_by_role("heading", name="Moderation log")).to_be_visible()
    await expect(members.get_by_role("listitem").filter(has_text="Teacher T")).to_contain_text(re.compile(r"Admin\s*\(you\)"))

    # Arrow keys only step the choice; Enter applies it.
    alice_role = members.get_by_role("combobox", name="Role of Alice S")
    await alice_role.focus()
    await page.keyboard.press("ArrowUp")
    await expect(alice_role).to_have_value("teacher")
    await expect(page.get_by_role("status")).to_have_text("")
    await expect(members.get_by_role("button", name="Save role of Alice S")).to_be_visible()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_have_text("Alice S is now teacher.")
    await expect(alice_role).to_be_focused()

    await members.get_by_role("combobox", name="Role of Bob S").select_option("teacher")
    await expect(page.get_by_role("status")).to_have_text("Bob S is now teacher.")
    log = section(admin, "Moderation log")
    row = log.get_by_role("row").filter(has_text="Role changed").filter(has_text="Bob S")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Teacher T")
    await row.scroll_into_view_if_needed()
    await admin.shot(test, "role-changed")
    assert {m["user"]["id"]: m["role"] for m in room.bob.http.get(f"/api/workspaces/{room.workspace_id}/").json()["members"]}[room.bob.id] == "teacher"

    # Remove asks first; the removal is logged; Bob loses access.
    await members.get_by_role("button", name="Remove Bob S").click()
    confirm = page.get_by_role("dialog", name="Remove Bob S?")
    await expect(confirm).to_be_visible()
    await admin.shot(test, "confirm-remove")
    await confirm.get_by_role("button", name="Remove").click()
    await expect(page.get_by_role("status")).to_have_text("Bob S was removed from the workspace.")
    await expect(members.get_by_role("listitem").filter(has_text="Bob S")).to_have_count(0)
    await expect(log.get_by_role("row").filter(has_text="Removed").filter(has_text="Bob S")).to_have_count(1)
    assert room.bob.http.get(f"/api/workspaces/{room.workspace_id}/").status_code == 404
    await admin.shot(test, "removed")
    admin.assert_clean()


async def test_a_teacher_manages_a_private_channel_and_mutes_from_the_member_list(classroom, browser):
    test = "settings-channel-members"
    room = classroom
    tess = add_teacher(room)
    r = tess.http.post(f"/api/workspaces/{room.workspace_id}/channels/", {"name": "project-group", "isPrivate": True})
    assert r.status_code == 201, r.text
    private = r.json()["id"]
    assert room.alice.http.get(f"/api/channels/{private}/messages/").status_code == 404

    teacher = await open_channel(browser, room, "teacher", tess, private)
    page = teacher.page
    members_button = page.get_by_role("button", name="Members", exact=True)
    await members_button.click()
    await expect(members_button).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("complementary", name="Channel members")
    await expect(panel).to_be_visible()
    await expect(panel.get_by_role("listitem")).to_have_count(1)
    await expect(panel.get_by_role("listitem")).to_contain_text("Tess Teacher (you)")
    await panel.get_by_role("combobox", name="Add member").select_option(label="Alice S (student)")
    await panel.get_by_role("button", name="Add", exact=True).click()
    await expect(panel.get_by_role("status")).to_have_text("Alice S was added to the channel.")
    await expect(panel.get_by_role("listitem").filter(has_text="Alice S")).to_have_count(1)
    await teacher.shot(test, "added")
    assert room.alice.http.get(f"/api/channels/{private}/messages/").status_code == 200
    alice = await open_channel(browser, room, "alice", room.alice, private)
    await alice.page.get_by_role("button", name="Members", exact=True).click()
    alice_panel = alice.page.get_by_role("complementary", name="Channel members")
    await expect(alice_panel.get_by_role("listitem")).to_have_count(2)
    await expect(alice_panel.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
    await expect(alice_panel.get_by_role("combobox", name="Add member")).to_be_hidden()
    await alice.page.keyboard.press("Escape")
    await expect(alice_panel).to_be_hidden()

    # Removal is immediate, also for Alice's open page.
    await panel.get_by_role("button", name="Remove Alice S").click()
    await expect(panel.get_by_role("status")).to_have_text("Alice S was removed from the channel.")
    await expect(panel.get_by_role("listitem").filter(has_text="Alice S")).to_have_count(0)
    await expect(alice.page.get_by_text("You no longer have access to this channel.")).to_be_visible()
    # Escape closes the panel and gives the focus back to "Members".
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(members_button).to_be_focused()

    # "Mute Bob S" in the member list: a length, then a note.
    await expect(page.get_by_role("button", name="Mute Tess Teacher")).to_have_count(0)
    await expect(page.get_by_role("button", name="Mute Teacher T")).to_have_count(0)
    await page.get_by_role("button", name="Mute Bob S").click()
    dialog = page.get_by_role("dialog", name="Mute Bob S")
    await expect(dialog.get_by_role("radio", name="10 minutes")).to_be_checked()
    await dialog.get_by_role("radio", name="1 day").check()
    await teacher.shot(test, "mute-dialog")
    await dialog.get_by_role("button", name="Mute", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(page.get_by_text(re.compile("^Bob S is muted until"))).to_be_visible()
    await expect(page.get_by_role("button", name="Mute Bob S")).to_be_focused()
    bob = await open_channel(browser, room, "bob", room.bob)
    composer = bob.page.get_by_role("textbox", name="Message", exact=True)
    await composer.fill("am I muted?")
    await composer.press("Enter")
    await expect(bubble(bob, "am I muted?").get_by_text(re.compile("^Not sent"))).to_be_visible()
    await teacher.shot(test, "muted")
    for tab in (teacher, alice, bob):
        tab.assert_clean()
    await tess.close_all()
