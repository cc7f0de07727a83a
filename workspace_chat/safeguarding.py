"""Reports of messages (PROTOCOL.md part 2, "Class management and
safeguarding"): anyone who can read a message may report it; the
workspace's admins and teachers list the open reports. The write and the
read live together here, as lifecycle.py does for edits."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from accounts.models import User
from messagestore import get_store
from realtime import ratelimit
from wire.errors import Forbidden, RateLimited
from wire.jsonutil import iso
from workspace_chat import schema
from workspace_chat.models import STAFF_ROLES, Report, ReportStatus
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
