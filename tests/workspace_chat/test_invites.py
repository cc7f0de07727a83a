"""Class join codes (PROTOCOL.md part 2): who may invite with which role,
accepting, and every way a code stops working."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.workspace_chat.test_api import as_user, assert_field_error, call, get, post
from workspace_chat.models import Invite, WorkspaceMembership

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def invites_url(school) -> str:
    return f"/api/workspaces/{school.workspace.id}/invites/"


def test_a_teacher_invites_students_and_a_newcomer_joins(school, make_user):
    invite = post(school.bob, invites_url(school), {}, 201)
    assert (invite["role"], invite["maxUses"], invite["uses"]) == ("student", 50, 0) and invite["expiresAt"].endswith("Z")
    assert len(invite["code"]) >= 16
    newcomer = make_user("newcomer")
    joined = post(newcomer, f"/api/invites/{invite['code']}/accept/", {}, 200)
    assert joined == {"id": school.workspace.id, "name": "School", "role": "student"}
    assert post(newcomer, f"/api/invites/{invite['code']}/accept/", {}, 200)["role"] == "student", "accepting twice changes nothing"
    assert Invite.objects.get().uses == 1
    listed = get(school.alice, invites_url(school))
    assert [(i["code"], i["uses"]) for i in listed] == [(invite["code"], 1)]


def test_who_may_invite_with_which_role(school):
    post(school.bob, invites_url(school), {"role": "teacher"}, 403)  # teachers invite students only
    post(school.carol, invites_url(school), {}, 403)
    post(school.dave, invites_url(school), {}, 404)
    assert post(school.alice, invites_url(school), {"role": "teacher", "maxUses": 3, "expiresInHours": 2}, 201)["role"] == "teacher"
    for body, field in (({"role": "owner"}, "role"), ({"maxUses": 0}, "maxUses"), ({"maxUses": 1001}, "maxUses"), ({"expiresInHours": 0}, "expiresInHours"), ({"expiresInHours": 10**6}, "expiresInHours")):
        assert_field_error(post(school.alice, invites_url(school), body, 400), field)
    get(school.carol, invites_url(school), 403)
    get(school.dave, invites_url(school), 404)


def test_used_up_expired_revoked_and_unknown_codes_are_404(school, make_user):
    one = post(school.alice, invites_url(school), {"maxUses": 1}, 201)["code"]
    first, second = make_user("first"), make_user("second")
    post(first, f"/api/invites/{one}/accept/", {}, 200)
    post(second, f"/api/invites/{one}/accept/", {}, 404)
    expired = post(school.alice, invites_url(school), {}, 201)["code"]
    Invite.objects.filter(code=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
    post(second, f"/api/invites/{expired}/accept/", {}, 404)
    revoked = post(school.alice, invites_url(school), {}, 201)["code"]
    call(as_user(school.carol), "delete", f"{invites_url(school)}{revoked}/", 403)
    call(as_user(school.bob), "delete", f"{invites_url(school)}{revoked}/", 204)
    call(as_user(school.bob), "delete", f"{invites_url(school)}{revoked}/", 404)
    post(second, f"/api/invites/{revoked}/accept/", {}, 404)
    post(second, "/api/invites/nope/accept/", {}, 404)
    assert not WorkspaceMembership.objects.filter(user=second).exists()
    assert get(school.alice, invites_url(school)) == []


def test_the_join_page(school, make_user):
    code = post(school.bob, invites_url(school), {}, 201)["code"]
    visitor = Client()
    assert visitor.get(f"/invite/{code}/").status_code == 302, "log in first"
    newcomer = make_user("pupil")
    page = as_user(newcomer)
    shown = page.get(f"/invite/{code}/")
    assert shown.status_code == 200 and "Join School" in shown.content.decode()
    answer = page.post(f"/invite/{code}/")
    assert answer.status_code == 302 and answer["Location"] == f"/workspaces/{school.workspace.id}/"
    assert WorkspaceMembership.objects.get(user=newcomer).role == "student"
    assert page.get("/invite/unknown-code/").status_code == 404
