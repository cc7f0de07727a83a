"""The moderation audit log (PROTOCOL.md part 2): every moderation action
is one entry with who, what, whom and why; read-only in Django admin."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import AuditEntry
from accounts.services import user_deactivate
from messagepal import services as pal
from workspace_chat import lifecycle, membership, safeguarding, services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_and_unlimited")]


def entries() -> list[tuple]:
    return [(e.action, e.actor_id, e.target) for e in AuditEntry.objects.order_by("id")]


def test_every_moderation_action_is_one_entry(school):
    ws, general = school.workspace.id, school.general.id
    rude = services.message_send(user=school.carol, channel_id=general, content="rude").message
    other = services.message_send(user=school.carol, channel_id=general, content="also rude").message
    mine = services.message_send(user=school.bob, channel_id=general, content="my own").message
    safeguarding.report_create(user=school.bob, channel_id=general, message_id=rude["id"], reason="rude")
    services.message_moderate(channel_id=general, message_id=rude["id"], action="hide", actor_id=school.alice.id)
    services.message_moderate(channel_id=general, message_id=rude["id"], action="unhide", actor_id=school.alice.id)
    lifecycle.message_delete(user=school.bob, channel_id=general, message_id=other["id"])  # a teacher's moderation
    lifecycle.message_delete(user=school.bob, channel_id=general, message_id=mine["id"])  # one's own: not moderation
    safeguarding.mute_set(actor=school.bob, workspace_id=ws, user_id=school.carol.id, minutes=5, reason="spamming")
    safeguarding.mute_clear(actor=school.bob, workspace_id=ws, user_id=school.carol.id)
    membership.member_role_set(actor=school.alice, workspace_id=ws, user_id=school.carol.id, role="teacher")
    pal.block_create(blocker=school.carol, user_id=school.bob.id)
    pal.block_delete(blocker=school.carol, user_id=school.bob.id)
    membership.member_remove(actor=school.alice, workspace_id=ws, user_id=school.carol.id)
    membership.member_remove(actor=school.bob, workspace_id=ws, user_id=school.bob.id)
    user_deactivate(user=school.dave, actor=school.alice, reason="spam account")
    stream = school.general.stream
    assert entries() == [
        ("report", school.bob.id, f"message:{stream}#{rude['id']}"),
        ("hide", school.alice.id, f"message:{stream}#{rude['id']}"),
        ("unhide", school.alice.id, f"message:{stream}#{rude['id']}"),
        ("delete", school.bob.id, f"message:{stream}#{other['id']}"),
        ("mute", school.bob.id, f"user:{school.carol.id}"),
        ("unmute", school.bob.id, f"user:{school.carol.id}"),
        ("role", school.alice.id, f"user:{school.carol.id}"),
        ("block", school.carol.id, f"user:{school.bob.id}"),
        ("unblock", school.carol.id, f"user:{school.bob.id}"),
        ("remove", school.alice.id, f"user:{school.carol.id}"),
        ("leave", school.bob.id, f"user:{school.bob.id}"),
        ("deactivate", school.alice.id, f"user:{school.dave.id}"),
    ]
    mute = AuditEntry.objects.get(action="mute")
    assert (mute.workspace_id, mute.reason) == (ws, "spamming") and mute.detail["until"].endswith("Z")
    assert AuditEntry.objects.get(action="role").detail == {"before": "student", "after": "teacher"}


def test_a_refused_action_leaves_no_entry(school):
    from wire.errors import Invalid

    with pytest.raises(Invalid):
        membership.member_remove(actor=school.alice, workspace_id=school.workspace.id, user_id=school.alice.id)  # the last admin
    assert not AuditEntry.objects.exists()


def test_the_log_is_read_only_in_admin(school):
    user_deactivate(user=school.dave, actor=school.alice)
    school.alice.is_staff = school.alice.is_superuser = True
    school.alice.save()
    client = Client()
    client.force_login(school.alice)
    listing = client.get("/admin/accounts/auditentry/?action__exact=deactivate")
    assert listing.status_code == 200 and f"user:{school.dave.id}" in listing.content.decode()
    entry = AuditEntry.objects.get()
    assert client.get("/admin/accounts/auditentry/add/").status_code == 403
    assert client.post(f"/admin/accounts/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.count() == 1


def test_workspace_admins_read_their_workspace_log(school):
    from tests.workspace_chat.test_api import get

    get(school.dave, f"/api/workspaces/{school.workspace.id}/audit/", 404)  # an outsider
    safeguarding.mute_set(actor=school.bob, workspace_id=school.workspace.id, user_id=school.carol.id, minutes=5, reason="noise")
    user_deactivate(user=school.dave, actor=school.alice)  # not a workspace's row
    (row,) = get(school.alice, f"/api/workspaces/{school.workspace.id}/audit/")
    assert (row["action"], row["actorId"], row["target"], row["reason"]) == ("mute", school.bob.id, f"user:{school.carol.id}", "noise")
    get(school.bob, f"/api/workspaces/{school.workspace.id}/audit/", 403)
    get(school.carol, f"/api/workspaces/{school.workspace.id}/audit/", 403)
