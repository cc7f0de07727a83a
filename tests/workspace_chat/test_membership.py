"""Roles, removal and private-channel members over HTTP (PROTOCOL.md part 2,
"Class management and safeguarding")."""

from __future__ import annotations

import pytest

from tests.workspace_chat.test_api import as_user, assert_field_error, call, get, post
from workspace_chat.models import ChannelMembership, WorkspaceMembership

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def member_url(school, user_id: int) -> str:
    return f"/api/workspaces/{school.workspace.id}/members/{user_id}/"


def patch(user, url: str, body, status: int):
    return call(as_user(user), "patch", url, status, body)


def delete(user, url: str, status: int):
    return call(as_user(user), "delete", url, status)


def test_admins_change_roles_but_keep_one_admin(school):
    changed = patch(school.alice, member_url(school, school.carol.id), {"role": "teacher"}, 200)
    assert changed == {"user": {"id": school.carol.id, "username": "carol", "displayName": "Carol C"}, "role": "teacher"}
    patch(school.bob, member_url(school, school.carol.id), {"role": "student"}, 403)
    patch(school.dave, member_url(school, school.carol.id), {"role": "student"}, 404)
    patch(school.alice, member_url(school, school.dave.id), {"role": "student"}, 404)
    assert_field_error(patch(school.alice, member_url(school, school.carol.id), {"role": "owner"}, 400), "role")
    assert_field_error(patch(school.alice, member_url(school, school.alice.id), {"role": "teacher"}, 400), "role")
    patch(school.alice, member_url(school, school.bob.id), {"role": "admin"}, 200)
    patch(school.alice, member_url(school, school.alice.id), {"role": "teacher"}, 200)  # bob is admin now


def test_removal_and_leaving(school):
    ChannelMembership.objects.create(channel=school.staff, user=school.carol)
    delete(school.bob, member_url(school, school.carol.id), 403)  # a teacher removes nobody
    delete(school.alice, member_url(school, school.carol.id), 204)
    assert not WorkspaceMembership.objects.filter(workspace=school.workspace, user=school.carol).exists()
    assert not ChannelMembership.objects.filter(channel=school.staff, user=school.carol).exists()
    get(school.carol, f"/api/channels/{school.general.id}/messages/", 404)
    delete(school.alice, member_url(school, school.carol.id), 404)
    delete(school.bob, member_url(school, school.bob.id), 204)  # leaving
    assert_field_error(delete(school.alice, member_url(school, school.alice.id), 400), "userId")  # the last admin


def test_private_channel_members(school):
    url = f"/api/channels/{school.staff.id}/members/"
    assert [m["user"]["id"] for m in get(school.alice, url)] == [school.alice.id]
    get(school.carol, url, 404)
    added = post(school.alice, url, {"userId": school.bob.id}, 201)
    assert added["user"]["id"] == school.bob.id and added["role"] == "teacher"
    post(school.bob, url, {"userId": school.carol.id}, 201)  # a teacher of the channel
    assert [m["user"]["username"] for m in get(school.carol, url)] == ["alice", "bob", "carol"]
    post(school.carol, url, {"userId": school.bob.id}, 403)  # a student adds nobody
    assert_field_error(post(school.alice, url, {"userId": school.dave.id}, 400), "userId")  # not in the workspace
    assert_field_error(post(school.alice, url, {"userId": "x"}, 400), "userId")
    public = f"/api/channels/{school.general.id}/members/"
    assert len(get(school.carol, public)) == 3, "a public channel's members are the workspace's"
    assert_field_error(post(school.alice, public, {"userId": school.bob.id}, 400), "channelId")
    delete(school.carol, f"/api/channels/{school.staff.id}/members/{school.bob.id}/", 403)
    delete(school.carol, f"/api/channels/{school.staff.id}/members/{school.carol.id}/", 204)  # leaves
    get(school.carol, url, 404)
    delete(school.alice, f"/api/channels/{school.staff.id}/members/{school.carol.id}/", 404)
    delete(school.dave, f"/api/channels/{school.staff.id}/members/{school.alice.id}/", 404)


def test_an_admin_manages_a_private_channel_she_is_not_in(school, make_user):
    from workspace_chat import services
    from workspace_chat.models import ChannelKind

    hidden = services.channel_create(actor=school.bob, workspace_id=school.workspace.id, name="teachers", kind=ChannelKind.TEXT, is_private=True)
    post(school.alice, f"/api/channels/{hidden.id}/members/", {"userId": school.carol.id}, 201)
    post(school.carol, f"/api/channels/{hidden.id}/members/", {"userId": school.alice.id}, 403)
