"""Seed the benchmark database straight through the ORM (run as a subprocess
with the bench DATABASE_URL): thousands of HTTP registrations would take
minutes and measure the password hasher, not the chat.

    python bench/seed.py --users 5000 --members 1000 --out seed.json

Creates one workspace holding every user, a private channel whose members are
the publisher plus the first `--members` users (the fan-out channel), and one
logged-in database session per user. Writes the session keys and the channel
id as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")

import django

django.setup()

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from accounts.models import User
from accounts.names import look_alike_key, name_key
from workspace_chat.models import (
    Channel,
    ChannelMembership,
    Role,
    Workspace,
    WorkspaceMembership,
)

BATCH = 1000
# The backend login() would record: sessions naming another are anonymous.
AUTH_BACKEND = settings.AUTHENTICATION_BACKENDS[0]


def seed(users: int, members: int) -> dict:
    # The sessions are created directly, so no password is ever checked:
    # an unusable one costs no hashing (and still keys get_session_auth_hash).
    unusable = make_password(None)
    with transaction.atomic():
        people = User.objects.bulk_create(
            # bulk_create skips User.save(), which derives the unique name keys.
            [
                User(username=name, username_key=name_key(name), username_look_alike=look_alike_key(name), display_name=f"Bench {i}", password=unusable)
                for i, name in ((i, f"bench{i:05d}") for i in range(users + 1))
            ],
            batch_size=BATCH,
        )
        if people[0].pk is None:  # backends without RETURNING (none of ours today)
            people = list(User.objects.filter(username__startswith="bench").order_by("username"))
        publisher, others = people[0], people[1:]
        workspace = Workspace.objects.create(name="Bench", created_by=publisher)
        WorkspaceMembership.objects.bulk_create(
            [WorkspaceMembership(workspace=workspace, user=u, role=Role.ADMIN if u is publisher else Role.STUDENT) for u in people],
            batch_size=BATCH,
        )
        channel = Channel.objects.create(workspace=workspace, name="fanout", is_private=True, created_by=publisher)
        ChannelMembership.objects.bulk_create(
            [ChannelMembership(channel=channel, user=u) for u in [publisher, *others[:members]]], batch_size=BATCH
        )
        store = SessionStore()
        expire = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE)
        keys = [get_random_string(32) for _ in people]
        Session.objects.bulk_create(
            [
                Session(
                    session_key=key,
                    session_data=store.encode(
                        {SESSION_KEY: str(u.pk), BACKEND_SESSION_KEY: AUTH_BACKEND, HASH_SESSION_KEY: u.get_session_auth_hash()}
                    ),
                    expire_date=expire,
                )
                for key, u in zip(keys, people, strict=True)
            ],
            batch_size=BATCH,
        )
    return {
        "channelId": channel.id,
        "publisher": keys[0],
        "publisherId": publisher.pk,
        "users": keys[1:],
        "userIds": [u.pk for u in others],
        "members": members,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5000, help="users besides the publisher")
    parser.add_argument("--members", type=int, default=1000, help="of them, members of the fan-out channel")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    started = time.monotonic()
    data = seed(args.users, min(args.members, args.users))
    Path(args.out).write_text(json.dumps(data))
    print(f"seeded {args.users + 1} users, {data['members'] + 1} channel members, sessions in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
