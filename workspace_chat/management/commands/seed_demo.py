"""Demo data for `make run`: alice (admin), bob (teacher), carol (student) in
one workspace with two channels. Safe to run again."""

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from workspace_chat.models import Channel, ChannelKind, Role, Workspace, WorkspaceMembership

DEMO_PASSWORD = "chat-demo-2026"
DEMO_USERS = [("alice", "Alice Admin", Role.ADMIN), ("bob", "Bob Teacher", Role.TEACHER), ("carol", "Carol Student", Role.STUDENT)]


class Command(BaseCommand):
    help = "Create demo users, a workspace and two channels (idempotent)."

    @transaction.atomic
    def handle(self, *args, **options):
        users = {}
        for username, display_name, _ in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username, defaults={"display_name": display_name})
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            users[username] = user
        workspace = Workspace.objects.filter(name="Demo School").first()
        if workspace is None:
            workspace = Workspace.objects.create(name="Demo School", created_by=users["alice"])
        for username, _, role in DEMO_USERS:
            WorkspaceMembership.objects.get_or_create(workspace=workspace, user=users[username], defaults={"role": role})
        for name, kind in (("general", ChannelKind.TEXT), ("announcements", ChannelKind.ANNOUNCEMENT)):
            Channel.objects.get_or_create(workspace=workspace, name=name, kind=kind, defaults={"created_by": users["alice"]})
        self.stdout.write(
            f"Demo users: alice (admin), bob (teacher), carol (student); password: {DEMO_PASSWORD}\n"
            f"Workspace 'Demo School' (id {workspace.id}) with #general and #announcements."
        )
