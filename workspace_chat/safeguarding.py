"""Reports and mutes (PROTOCOL.md part 2, "Class management and
safeguarding"): anyone who can read a message may report it, and the
workspace's admins and teachers list the open reports; they may also mute
a student for a while (access_channel tells the send paths). The writes and
reads live together here, as lifecycle.py does for edits."""

from __future__ import annotations

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import AuditAction, AuditEntry, User
from messagestore import get_store
from realtime import ratelimit
from wire.errors import Forbidden, Invalid, NotFound, RateLimited
from wire.jsonutil import iso
from workspace_chat import lifecycle, schema
from workspace_chat.models import STAFF_ROLES, Mute, Report, ReportStatus, Role, WorkspaceMembership
from workspace_chat.selectors import Viewer, access_channel, access_workspace, channel_message, message_objects

MAX_REASON = 1000
# The open reports a workspace lists, newest first (every list is capped).
MAX_REPORTS = 200


def report_create(*, user: User, channel_id: int, message_id: int, reason: str) -> schema.ReportObject:
    """Report a message the caller can read (404 otherwise). Reporting the
    same message again answers with the report already made."""
    decision = ratelimit.take_event_sync(user.id)
    if not decision.allowed:
        raise RateLimited("Too many events; slow down.", decision.retry_after)
    access = access_channel(user, channel_id)
    message = channel_message(access.channel, message_id)
    existing = Report.objects.filter(channel_id=channel_id, message_id=message_id, reporter=user).first()
    if existing is None:
        try:
            with transaction.atomic():
                existing = Report.objects.create(
                    workspace_id=access.channel.workspace_id,
                    channel_id=channel_id,
                    message_id=message_id,
                    author_id=message.author_id,
                    content=message.content,
                    reporter=user,
                    reason=reason,
                )
        except IntegrityError:  # the same person, twice at once
            existing = Report.objects.get(channel_id=channel_id, message_id=message_id, reporter=user)
        else:
            audit_record(
                actor_id=user.id, action=AuditAction.REPORT, target=f"message:{access.channel.stream}#{message_id}",
                workspace_id=access.channel.workspace_id, reason=reason,
            )  # fmt: skip
    return _report_objects([existing], Viewer(user.id, access.is_staff))[0]


def report_list(*, user: User, workspace_id: int) -> list[schema.ReportObject]:
    """The workspace's open reports, newest first: admins and teachers."""
    membership = access_workspace(user, workspace_id)
    if membership.role not in STAFF_ROLES:
        raise Forbidden("Only admins and teachers see reports.")
    open_reports = Report.objects.filter(workspace_id=workspace_id, status=ReportStatus.OPEN).select_related("channel")
    reports = list(open_reports.order_by("-created_at", "-id")[:MAX_REPORTS])
    return _report_objects(reports, Viewer(user.id, True))


def _report_objects(reports: list[Report], viewer: Viewer) -> list[schema.ReportObject]:
    """`message` is the message as it is now, or null once it was deleted
    or hidden (its text when reported stays in the report, in admin)."""
    store = get_store()
    found = []
    for report in reports:
        stored = store.get(report.channel.stream, report.message_id)
        message = message_objects(report.channel_id, [stored], viewer=viewer)[0] if stored is not None else None
        found.append(
            schema.ReportObject(id=report.id, message=message, reason=report.reason, reporterId=report.reporter_id, createdAt=iso(report.created_at))
        )
    return found


# A mute lasts at most a week; longer is removal from the workspace.
MAX_MUTE_MINUTES = 7 * 24 * 60


def mute_set(*, actor: User, workspace_id: int, user_id: int, minutes: int, reason: str = "") -> schema.MuteObject:
    """An admin or teacher mutes a student of the workspace for `minutes`
    (muting again replaces the end)."""
    membership = access_workspace(actor, workspace_id)
    if membership.role not in STAFF_ROLES:
        raise Forbidden("Only admins and teachers can mute.")
    target = WorkspaceMembership.objects.filter(workspace_id=workspace_id, user_id=user_id).first()
    if target is None:
        raise Invalid("userId", "No such member in this workspace.")
    if target.role != Role.STUDENT:
        raise Invalid("userId", "Only students can be muted.")
    until = timezone.now() + timedelta(minutes=minutes)
    with transaction.atomic():
        Mute.objects.update_or_create(workspace_id=workspace_id, user_id=user_id, defaults={"until": until, "muted_by": actor, "reason": reason})
        audit_record(actor_id=actor.id, action=AuditAction.MUTE, target=f"user:{user_id}", workspace_id=workspace_id, reason=reason, until=iso(until))
    return schema.MuteObject(userId=user_id, until=iso(until))


def mute_clear(*, actor: User, workspace_id: int, user_id: int) -> None:
    membership = access_workspace(actor, workspace_id)
    if membership.role not in STAFF_ROLES:
        raise Forbidden("Only admins and teachers can unmute.")
    deleted, _ = Mute.objects.filter(workspace_id=workspace_id, user_id=user_id, until__gt=timezone.now()).delete()
    Mute.objects.filter(workspace_id=workspace_id, user_id=user_id).delete()  # an ended one too
    if not deleted:
        raise NotFound("That member is not muted.")
    audit_record(actor_id=actor.id, action=AuditAction.UNMUTE, target=f"user:{user_id}", workspace_id=workspace_id)


RESOLUTIONS = ("dismiss", "delete_message", "mute_author")


def report_resolve(*, actor: User, workspace_id: int, report_id: int, action: str, minutes: int = 60, reason: str = "") -> schema.ReportObject:
    """Staff close an open report: dismiss it, delete the message, or mute
    its author (a student) for `minutes`. Each is recorded in the audit log."""
    membership = access_workspace(actor, workspace_id)
    if membership.role not in STAFF_ROLES:
        raise Forbidden("Only admins and teachers handle reports.")
    report = Report.objects.select_related("channel").filter(id=report_id, workspace_id=workspace_id, status=ReportStatus.OPEN).first()
    if report is None:
        raise NotFound("No such open report.")
    if action == "delete_message":
        if get_store().get(report.channel.stream, report.message_id) is not None:
            lifecycle.message_delete(user=actor, channel_id=report.channel_id, message_id=report.message_id)
    elif action == "mute_author":
        mute_set(actor=actor, workspace_id=workspace_id, user_id=report.author_id, minutes=minutes, reason=reason or report.reason)
    with transaction.atomic():
        report.status = ReportStatus.DISMISSED if action == "dismiss" else ReportStatus.ACTIONED
        report.resolved_by = actor
        report.resolved_at = timezone.now()
        report.save(update_fields=["status", "resolved_by", "resolved_at"])
        audit_record(
            actor_id=actor.id, action=AuditAction.RESOLVE, target=f"report:{report.id}", workspace_id=workspace_id, reason=reason, outcome=action,
        )  # fmt: skip
    return _report_objects([report], Viewer(actor.id, True))[0]


# The newest audit entries a workspace admin sees (every list is capped).
MAX_AUDIT = 200


def audit_list(*, actor: User, workspace_id: int) -> list[schema.AuditObject]:
    """The workspace's moderation log, newest first: its admins only."""
    membership = access_workspace(actor, workspace_id)
    if membership.role != Role.ADMIN:
        raise Forbidden("Only workspace admins see the moderation log.")
    rows = AuditEntry.objects.filter(workspace_id=workspace_id).order_by("-created_at", "-id")[:MAX_AUDIT]
    return [
        schema.AuditObject(id=e.id, action=e.action, actorId=e.actor_id, target=e.target, reason=e.reason, createdAt=iso(e.created_at))
        for e in rows
    ]
