"""Mutes (PROTOCOL.md part 2): admins and teachers mute a student for a
while; the student's sends, edits and reactions in that workspace are
refused meanwhile, over HTTP and WebSocket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.workspace_chat.test_api import as_user, assert_field_error, call, post, send
from wire.errors import Forbidden
from workspace_chat import lifecycle, services
from workspace_chat.models import Mute

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_and_unlimited")]


def mutes_url(school, user_id: int | None = None) -> str:
    return f"/api/workspaces/{school.workspace.id}/mutes/" + (f"{user_id}/" if user_id else "")


def test_a_muted_student_cannot_send_edit_or_react_until_unmuted(school):
    mine = send(school.carol, school.general.id, "before the mute")
    other = send(school.alice, school.general.id, "hello class")
    muted = post(school.bob, mutes_url(school), {"userId": school.carol.id, "minutes": 10, "reason": "spamming"}, 201)
    assert muted["userId"] == school.carol.id and muted["until"].endswith("Z")
    for attempt in (
        lambda: send(school.carol, school.general.id, "let me talk"),
        lambda: lifecycle.message_edit(user=school.carol, channel_id=school.general.id, message_id=mine["id"], content="edited"),
        lambda: lifecycle.reaction_set(user=school.carol, channel_id=school.general.id, message_id=other["id"], emoji="👍", add=True),
    ):
        with pytest.raises(Forbidden):
            attempt()
    post(school.carol, f"/api/channels/{school.general.id}/messages/{other['id']}/reactions/", {"emoji": "👍"}, 403)
    # Deleting one's own message stays possible; other people are not muted.
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=mine["id"])
    send(school.alice, school.general.id, "still talking")
    call(as_user(school.alice), "delete", mutes_url(school, school.carol.id), 204)
    call(as_user(school.alice), "delete", mutes_url(school, school.carol.id), 404)
    send(school.carol, school.general.id, "back again")


def test_a_mute_ends_by_itself(school):
    post(school.alice, mutes_url(school), {"userId": school.carol.id, "minutes": 1}, 201)
    with pytest.raises(Forbidden):
        send(school.carol, school.general.id, "hi")
    Mute.objects.filter(user=school.carol).update(until=timezone.now() - timedelta(seconds=1))
    send(school.carol, school.general.id, "the minute is over")


def test_who_may_mute_whom(school):
    post(school.carol, mutes_url(school), {"userId": school.carol.id, "minutes": 5}, 400)  # herself
    post(school.carol, mutes_url(school), {"userId": school.alice.id, "minutes": 5}, 403)  # a student mutes nobody
    post(school.dave, mutes_url(school), {"userId": school.carol.id, "minutes": 5}, 404)  # outsider
    assert_field_error(post(school.bob, mutes_url(school), {"userId": school.alice.id, "minutes": 5}, 400), "userId")  # an admin
    assert_field_error(post(school.alice, mutes_url(school), {"userId": school.bob.id, "minutes": 5}, 400), "userId")  # a teacher
    assert_field_error(post(school.bob, mutes_url(school), {"userId": school.dave.id, "minutes": 5}, 400), "userId")  # not a member
    for minutes in (0, -1, 10081, "ten", None):
        assert_field_error(post(school.bob, mutes_url(school), {"userId": school.carol.id, "minutes": minutes}, 400), "minutes")
    call(as_user(school.carol), "delete", mutes_url(school, school.carol.id), 403)
    assert not Mute.objects.exists()
    services.message_send(user=school.carol, channel_id=school.general.id, content="not muted")
