"""Class management in Chromium (PROTOCOL.md part 2): a newcomer joins
through a teacher's invite link and lands in the class."""

from __future__ import annotations

import pytest

from tests.e2e.browser import new_tab
from tests.e2e.harness import Person
from tests.e2e.pages import expect, live

pytestmark = pytest.mark.e2e


async def test_a_student_joins_through_an_invite_link(classroom, browser):
    test = "safeguarding-invite"
    room = classroom
    r = room.teacher.http.post(f"/api/workspaces/{room.workspace_id}/invites/", {"maxUses": 1})
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    newcomer = Person(room.server, display_name="New Pupil")
    tab = await new_tab(browser, room.server, "newcomer", newcomer)
    await tab.page.goto(f"/invite/{code}/")
    await expect(tab.page.get_by_role("heading", name="Join Class")).to_be_visible()
    await tab.shot(test, "invite")
    await tab.page.get_by_role("button", name="Join").click()
    await expect(tab.page).to_have_url(f"{room.server.base}/workspaces/{room.workspace_id}/channels/{room.general}/")
    await live(tab)
    await tab.shot(test, "joined")
    # Used up: the next visitor is told so.
    late = await new_tab(browser, room.server, "late", Person(room.server))
    response = await late.page.goto(f"/invite/{code}/")
    assert response is not None and response.status == 404
    await expect(late.page.get_by_role("heading", name="This invite does not work")).to_be_visible()
    tab.assert_clean()
    await newcomer.close_all()


async def test_a_teacher_grades_and_only_the_author_sees_it(classroom, browser):
    from tests.e2e.browser import channel_path
    from tests.e2e.pages import bubble, post

    test = "safeguarding-grade"
    room = classroom
    tabs = {}
    for name, person in (("alice", room.alice), ("bob", room.bob), ("teacher", room.teacher)):
        tabs[name] = await new_tab(browser, room.server, name, person)
        await tabs[name].page.goto(channel_path(room.workspace_id, room.general))
        await live(tabs[name])
    await post(tabs["alice"], "My essay on volcanoes")
    essay = bubble(tabs["teacher"], "My essay on volcanoes")
    await essay.hover()
    await expect(bubble(tabs["bob"], "My essay on volcanoes").get_by_role("button", name="Grade")).to_have_count(0)
    await essay.get_by_role("button", name="Grade").click()
    dialog = tabs["teacher"].page.get_by_role("dialog", name="Grade message")
    await dialog.get_by_role("textbox", name="Grade").fill("A-")
    await dialog.get_by_role("textbox", name="Feedback").fill("Cite your sources")
    await tabs["teacher"].shot(test, "grading")
    await dialog.get_by_role("button", name="Save grade").click()
    await expect(dialog).to_be_hidden()
    await expect(bubble(tabs["alice"], "My essay on volcanoes").get_by_text("Grade: A- (Cite your sources)")).to_be_visible()
    await expect(essay.get_by_text("Grade: A-", exact=False)).to_be_visible()
    await tabs["alice"].shot(test, "the author sees it")
    await tabs["bob"].page.reload()
    await live(tabs["bob"])
    await expect(bubble(tabs["bob"], "My essay on volcanoes")).to_be_visible()
    await expect(tabs["bob"].page.get_by_text("Grade: A-")).to_have_count(0)
    await tabs["bob"].shot(test, "a classmate does not")
    for tab in tabs.values():
        tab.assert_clean()
