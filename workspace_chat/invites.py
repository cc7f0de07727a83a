"""Class join codes (PROTOCOL.md part 2, "Class management and
safeguarding"): admins invite with any role, teachers invite students only;
a code joins whoever accepts it until it is used up, expires or is revoked."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from wire.errors import Forbidden, NotFound
from wire.jsonutil import iso
from workspace_chat import schema
from workspace_chat.models import STAFF_ROLES, Invite, Role, WorkspaceMembership
from workspace_chat.selectors import access_workspace

DEFAULT_USES = 50
MAX_USES = 1000
DEFAULT_HOURS = 168
MAX_HOURS = 24 * 90
# Open invites a workspace lists (every list is capped).
MAX_INVITES = 200


def invite_object(invite: Invite) -> schema.InviteObject:
    return schema.InviteObject(
        code=invite.code, role=invite.role, maxUses=invite.max_uses, uses=invite.uses, expiresAt=iso(invite.expires_at)  # type: ignore[typeddict-item]
    )


def _staff(actor: User, workspace_id: int) -> WorkspaceMembership:
    membership = access_workspace(actor, workspace_id)
    if membership.role not in STAFF_ROLES:
        raise Forbidden("Only admins and teachers manage invites.")
    return membership


def invite_create(*, actor: User, workspace_id: int, role: str, max_uses: int, expires_in_hours: int) -> schema.InviteObject:
    membership = _staff(actor, workspace_id)
    if membership.role != Role.ADMIN and role != Role.STUDENT:
        raise Forbidden("Teachers invite students only.")
    invite = Invite.objects.create(
        code=secrets.token_urlsafe(12),
        workspace_id=workspace_id,
        role=role,
        max_uses=max_uses,
        expires_at=timezone.now() + timedelta(hours=expires_in_hours),
        created_by=actor,
    )
    return invite_object(invite)


def invite_list(*, actor: User, workspace_id: int) -> list[schema.InviteObject]:
    """The invites that still work, newest first."""
    _staff(actor, workspace_id)
    usable = Invite.objects.filter(workspace_id=workspace_id, revoked_at__isnull=True, expires_at__gt=timezone.now(), uses__lt=F("max_uses"))
    return [invite_object(i) for i in usable.order_by("-created_at", "-id")[:MAX_INVITES]]


def invite_revoke(*, actor: User, workspace_id: int, code: str) -> None:
    _staff(actor, workspace_id)
    if not Invite.objects.filter(workspace_id=workspace_id, code=code, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        raise NotFound("No such invite.")


@transaction.atomic
def invite_accept(*, user: User, code: str) -> WorkspaceMembership:
    """Join with the invite's role (a member already keeps theirs, and uses
    nothing). Unknown, expired, revoked and used-up codes are all NotFound."""
    invite = Invite.objects.select_for_update().filter(code=code).first()
    if invite is None or invite.revoked_at is not None or invite.expires_at <= timezone.now() or invite.uses >= invite.max_uses:
        raise NotFound("This invite does not exist, has expired or has been used up.")
    existing = WorkspaceMembership.objects.select_related("workspace").filter(workspace_id=invite.workspace_id, user=user).first()
    if existing is not None:
        return existing
    Invite.objects.filter(id=invite.id).update(uses=F("uses") + 1)
    membership = WorkspaceMembership.objects.create(workspace_id=invite.workspace_id, user=user, role=invite.role)
    return WorkspaceMembership.objects.select_related("workspace").get(id=membership.id)


def invite_preview(*, code: str) -> Invite | None:
    """The invite a join page shows (its workspace's name), if it works."""
    invite = Invite.objects.select_related("workspace").filter(code=code).first()
    if invite is None or invite.revoked_at is not None or invite.expires_at <= timezone.now() or invite.uses >= invite.max_uses:
        return None
    return invite
