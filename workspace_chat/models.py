"""Workspaces, their members and channels. Messages live in the message store
(messagestore), keyed by the stream `ch:{channel.id}`."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from messagestore.streams import channel_stream


class Role(models.TextChoices):
    ADMIN = "admin"
    TEACHER = "teacher"
    STUDENT = "student"


STAFF_ROLES = (Role.ADMIN, Role.TEACHER)


class ChannelKind(models.TextChoices):
    TEXT = "text"
    ANNOUNCEMENT = "announcement"
    DM = "dm"


class Workspace(models.Model):
    name = models.CharField(max_length=100)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="WorkspaceMembership", related_name="workspaces")

    def __str__(self) -> str:
        return self.name


class WorkspaceMembership(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="workspace_memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="workspace_member_once")]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class Channel(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channels")
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices, default=ChannelKind.TEXT)
    is_private = models.BooleanField(default=False)
    # For a DM: "{smaller user id}:{larger user id}", unique per workspace, so
    # get-or-create cannot make two DMs for one pair.
    dm_key = models.CharField(max_length=64, null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="ChannelMembership", related_name="chat_channels")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "dm_key"], name="one_dm_per_pair")]

    def __str__(self) -> str:
        return f"#{self.name} ({self.workspace})"

    @property
    def stream(self) -> str:
        return channel_stream(self.id)

    @property
    def is_restricted(self) -> bool:
        """Only its own members may see it (private channel or DM)."""
        return self.is_private or self.kind == ChannelKind.DM


class ChannelMembership(models.Model):
    """Members of a private channel or a DM (public channels are open to the workspace)."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="channel_memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "user"], name="channel_member_once")]

    def __str__(self) -> str:
        return f"{self.user} in {self.channel}"


class ReportStatus(models.TextChoices):
    OPEN = "open"
    DISMISSED = "dismissed"
    ACTIONED = "actioned"


class Report(models.Model):
    """A member's report of a message (PROTOCOL.md part 2, safeguarding).
    `content` keeps the message's text as it was when reported, so the
    evidence outlives an edit or a delete."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="reports")
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="reports")
    message_id = models.BigIntegerField()
    author_id = models.BigIntegerField(help_text="Who wrote the reported message.")
    content = models.TextField(help_text="The message's text when it was reported.")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reports_made")
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.OPEN)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="reports_resolved")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "message_id", "reporter"], name="report_once_per_reporter")]
        indexes = [models.Index(fields=["workspace", "status", "created_at"], name="report_open_by_workspace")]

    def __str__(self) -> str:
        return f"report {self.id} of {self.channel_id}#{self.message_id}"


class Mute(models.Model):
    """A student muted in a workspace by an admin or teacher until `until`:
    their sends, edits and reactions there are refused meanwhile."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="mutes")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mutes")
    until = models.DateTimeField()
    muted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="mutes_made")
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="mute_once_per_workspace")]

    def __str__(self) -> str:
        return f"{self.user_id} muted in {self.workspace_id} until {self.until:%Y-%m-%d %H:%M}"


class Invite(models.Model):
    """A class join code: whoever accepts it joins the workspace with its
    role, until it is used up, expires or is revoked."""

    code = models.CharField(max_length=32, unique=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="invites")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.STUDENT)
    max_uses = models.PositiveIntegerField(default=50)
    uses = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"invite to {self.workspace_id} as {self.role}"
