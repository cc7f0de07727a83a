"""The moderation audit log (PROTOCOL.md part 2: every moderation action is
recorded with who, what, when and why). Services call `audit_record` in the
transaction of the action, so a rolled-back action leaves no entry."""

from __future__ import annotations

from typing import Any

from accounts.models import AuditEntry


def audit_record(
    *, actor_id: int | None, action: str, target: str, workspace_id: int | None = None, reason: str = "", **detail: Any
) -> AuditEntry:
    return AuditEntry.objects.create(actor_id=actor_id, action=action, target=target, workspace_id=workspace_id, reason=reason, detail=detail)
