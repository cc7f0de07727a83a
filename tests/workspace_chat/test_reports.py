"""Reports of messages over HTTP (PROTOCOL.md part 2, "Class management and
safeguarding"): who may report, who may list, what a report keeps."""

from __future__ import annotations

import pytest

from tests.workspace_chat.test_api import assert_field_error, get, post, send
from workspace_chat import lifecycle
from workspace_chat.models import Report

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_and_unlimited")]


def report_url(channel_id: int, message_id: int) -> str:
    return f"/api/channels/{channel_id}/messages/{message_id}/report/"


def test_a_member_reports_and_staff_list_it(school):
    rude = send(school.alice, school.general.id, "you are all idiots")
    report = post(school.carol, report_url(school.general.id, rude["id"]), {"reason": "  insulting  "}, 201)
    assert report["reason"] == "insulting" and report["reporterId"] == school.carol.id and report["createdAt"].endswith("Z")
    assert report["message"]["id"] == rude["id"] and report["message"]["content"] == "you are all idiots"
    again = post(school.carol, report_url(school.general.id, rude["id"]), {"reason": "still insulting"}, 201)
    assert again["id"] == report["id"], "one report per person and message"
    for staff in (school.alice, school.bob):
        listed = get(staff, f"/api/workspaces/{school.workspace.id}/reports/")
        assert [r["id"] for r in listed] == [report["id"]] and listed[0]["message"]["id"] == rude["id"]
    get(school.carol, f"/api/workspaces/{school.workspace.id}/reports/", 403)
    get(school.dave, f"/api/workspaces/{school.workspace.id}/reports/", 404)


def test_only_readers_report_and_bad_reasons_are_400(school):
    message = send(school.alice, school.general.id, "hello")
    secret = send(school.alice, school.staff.id, "staff only")
    post(school.dave, report_url(school.general.id, message["id"]), {"reason": "x"}, 404)
    post(school.carol, report_url(school.staff.id, secret["id"]), {"reason": "x"}, 404)
    post(school.carol, report_url(school.general.id, message["id"] + 1), {"reason": "x"}, 404)
    for body in ({}, {"reason": ""}, {"reason": "   "}, {"reason": "a\x00b"}, {"reason": "x" * 1001}, {"reason": None}, {"reason": ["x"]}):
        assert_field_error(post(school.carol, report_url(school.general.id, message["id"]), body, 400), "reason")
    assert not Report.objects.exists()


def test_a_report_keeps_the_text_after_the_author_deletes_it(school):
    message = send(school.carol, school.general.id, "something I regret")
    post(school.bob, report_url(school.general.id, message["id"]), {"reason": "unkind"}, 201)
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=message["id"])
    (listed,) = get(school.alice, f"/api/workspaces/{school.workspace.id}/reports/")
    assert listed["message"] is None and listed["reason"] == "unkind"
    row = Report.objects.get()
    assert (row.content, row.author_id) == ("something I regret", school.carol.id), "the evidence stays (admin shows it)"


def resolve_url(school, report_id: int) -> str:
    return f"/api/workspaces/{school.workspace.id}/reports/{report_id}/resolve/"


def test_staff_dismiss_delete_or_mute_and_it_is_recorded(school):
    from accounts.models import AuditEntry
    from workspace_chat.models import Mute

    reports = []
    for text in ("one", "two", "three"):
        message = send(school.carol, school.general.id, text)
        reports.append(post(school.bob, report_url(school.general.id, message["id"]), {"reason": f"about {text}"}, 201))
    post(school.carol, resolve_url(school, reports[0]["id"]), {"action": "dismiss"}, 403)
    post(school.dave, resolve_url(school, reports[0]["id"]), {"action": "dismiss"}, 404)
    assert_field_error(post(school.bob, resolve_url(school, reports[0]["id"]), {"action": "ban"}, 400), "action")
    assert post(school.bob, resolve_url(school, reports[0]["id"]), {"action": "dismiss"}, 200)["id"] == reports[0]["id"]
    post(school.bob, resolve_url(school, reports[0]["id"]), {"action": "dismiss"}, 404)  # closed
    assert post(school.alice, resolve_url(school, reports[1]["id"]), {"action": "delete_message"}, 200)["message"] is None
    post(school.alice, resolve_url(school, reports[2]["id"]), {"action": "mute_author", "minutes": 30}, 200)
    assert Mute.objects.get().user_id == school.carol.id
    assert get(school.alice, f"/api/workspaces/{school.workspace.id}/reports/") == []
    assert [r.status for r in Report.objects.order_by("id")] == ["dismissed", "actioned", "actioned"]
    outcomes = list(AuditEntry.objects.filter(action="resolve").order_by("id").values_list("detail__outcome", flat=True))
    assert outcomes == ["dismiss", "delete_message", "mute_author"]
