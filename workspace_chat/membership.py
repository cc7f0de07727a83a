"""Who belongs where (PROTOCOL.md part 2, "Class management and
safeguarding"): workspace roles and removal, and the members of private
channels. A removal takes effect at once: the removed user's connections,
on every process, leave the channels they lost (`removed_from_channel`)."""

from __future__ import annotations

from django.db import transaction

from accounts.audit import audit_record
from accounts.models import AuditAction, User
from realtime.events import removed_on_commit
from wire.errors import Forbidden, Invalid, NotFound
from workspace_chat.models import Channel, ChannelKind, ChannelMembership, Role, WorkspaceMembership
from workspace_chat.selectors import MAX_MEMBERS, ChannelInaccessible, access_channel, access_workspace


def _admins_left(workspace_id: int, without: int) -> int:
    return WorkspaceMembership.objects.filter(workspace_id=workspace_id, role=Role.ADMIN).exclude(user_id=without).count()


@transaction.atomic
def member_role_set(*, actor: User, workspace_id: int, user_id: int, role: str) -> WorkspaceMembership:
    """Admins change a member's role; the last admin stays an admin."""
    membership = access_workspace(actor, workspace_id)
    if membership.role != Role.ADMIN:
        raise Forbidden("Only workspace admins can change roles.")
    target = WorkspaceMembership.objects.select_for_update().select_related("user").filter(workspace_id=workspace_id, user_id=user_id).first()
    if target is None:
        raise NotFound("No such member.")
    if target.role == Role.ADMIN and role != Role.ADMIN and not _admins_left(workspace_id, user_id):
        raise Invalid("role", "A workspace keeps at least one admin.")
    if target.role != role:
        audit_record(actor_id=actor.id, action=AuditAction.ROLE, target=f"user:{user_id}", workspace_id=workspace_id, before=target.role, after=role)
        target.role = role
        target.save(update_fields=["role"])
    return target


@transaction.atomic
def member_remove(*, actor: User, workspace_id: int, user_id: int) -> None:
    """Admins remove a member; a member may leave. The last admin cannot."""
    membership = access_workspace(actor, workspace_id)
    if actor.id != user_id and membership.role != Role.ADMIN:
        raise Forbidden("Only workspace admins can remove members.")
    target = WorkspaceMembership.objects.select_for_update().filter(workspace_id=workspace_id, user_id=user_id).first()
    if target is None:
        raise NotFound("No such member.")
    if target.role == Role.ADMIN and not _admins_left(workspace_id, user_id):
        raise Invalid("userId", "The last admin cannot leave; make someone else admin first.")
    target.delete()
    action = AuditAction.LEAVE if actor.id == user_id else AuditAction.REMOVE
    audit_record(actor_id=actor.id, action=action, target=f"user:{user_id}", workspace_id=workspace_id, role=target.role)
    # Private channels go with it (a DM stays, unreadable without the workspace).
    ChannelMembership.objects.filter(channel__workspace_id=workspace_id, user_id=user_id).exclude(channel__kind=ChannelKind.DM).delete()
    removed_on_commit(user_id, list(Channel.objects.filter(workspace_id=workspace_id).values_list("id", flat=True)))


def channel_members(*, user: User, channel_id: int) -> list[WorkspaceMembership]:
    """The members of a private channel (or a DM), or the workspace's for a
    public one, each with their workspace role."""
    access = access_channel(user, channel_id)
    channel = access.channel
    memberships = WorkspaceMembership.objects.filter(workspace_id=channel.workspace_id).select_related("user")
    if channel.is_restricted:
        memberships = memberships.filter(user__channel_memberships__channel=channel)
    return list(memberships.order_by("user__username")[:MAX_MEMBERS])


def _private_channel_manager(actor: User, channel_id: int, *, or_self: int | None = None) -> Channel:
    """A private channel the caller may manage: workspace admins, its creator,
    and its teachers (`or_self`: a member removing themself)."""
    try:
        access = access_channel(actor, channel_id)
        channel, role = access.channel, access.role
    except ChannelInaccessible:
        # A workspace admin manages private channels they are not in.
        managed = Channel.objects.filter(id=channel_id, workspace__memberships__user_id=actor.id, workspace__memberships__role=Role.ADMIN).first()
        if managed is None:
            raise
        channel, role = managed, Role.ADMIN
    if channel.kind == ChannelKind.DM or not channel.is_private:
        raise Invalid("channelId", "Only private channels have their own members.")
    allowed = role in (Role.ADMIN, Role.TEACHER) or channel.created_by_id == actor.id or or_self == actor.id
    if not allowed:
        raise Forbidden("Only admins, the channel's creator and its teachers manage its members.")
    return channel


@transaction.atomic
def channel_member_add(*, actor: User, channel_id: int, user_id: int) -> WorkspaceMembership:
    channel = _private_channel_manager(actor, channel_id)
    member = WorkspaceMembership.objects.select_related("user").filter(workspace_id=channel.workspace_id, user_id=user_id, user__is_active=True).first()
    if member is None:
        raise Invalid("userId", "Only members of the workspace can join its channels.")
    ChannelMembership.objects.get_or_create(channel=channel, user_id=user_id)
    return member


@transaction.atomic
def channel_member_remove(*, actor: User, channel_id: int, user_id: int) -> None:
    channel = _private_channel_manager(actor, channel_id, or_self=user_id)
    deleted, _ = ChannelMembership.objects.filter(channel=channel, user_id=user_id).delete()
    if not deleted:
        raise NotFound("No such member of this channel.")
    action = AuditAction.LEAVE if actor.id == user_id else AuditAction.REMOVE
    audit_record(actor_id=actor.id, action=action, target=f"user:{user_id}", workspace_id=channel.workspace_id, channel=channel.id)
    removed_on_commit(user_id, [channel.id])
