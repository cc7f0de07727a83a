"""Missed-message email (PROTOCOL.md part 2) against a real SMTP server on
loopback (aiosmtpd): who gets one, what it holds, exactly one per user and
window across concurrent workers, and the unsubscribe link."""

from __future__ import annotations

import email
import re
import threading
from datetime import timedelta
from email.message import Message

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from notifications.email import email_sweep
from notifications.models import Notification
from tests.e2e.harness import free_port
from tests.workspace_chat.test_api import send
from workspace_chat import membership, services

pytestmark = pytest.mark.django_db(transaction=True)


class Inbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd calls it by this name
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def inbox(settings, fast_and_unlimited):
    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_URL = f"smtp://127.0.0.1:{port}"
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.CHAT_EMAIL_DELAY = 600
    settings.CHAT_SITE_URL = "http://chat.school.test"
    yield handler
    controller.stop()


def age(seconds: float) -> None:
    """Every notification so far was created `seconds` ago."""
    Notification.objects.update(created_at=timezone.now() - timedelta(seconds=seconds))


def with_email(user, address: str):
    user.email = address
    user.save(update_fields=["email"])
    return user


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def test_one_digest_lists_the_missed_mentions_and_dms_with_links(school, inbox):
    with_email(school.carol, "carol@school.test")
    dm, _ = services.dm_get_or_create(actor=school.alice, workspace_id=school.workspace.id, user_id=school.carol.id)
    mention = send(school.bob, school.general, "@carol the quiz moved to Friday")
    direct = send(school.alice, dm, "can you stay after class?")
    send(school.bob, school.general, "plain message, no notification")
    assert email_sweep() == 0 and inbox.messages == []  # not CHAT_EMAIL_DELAY old yet
    age(601)
    assert email_sweep() == 1
    [sent] = inbox.to("carol@school.test")
    text = body(sent)
    assert sent["Subject"] == "You have 2 unread messages"
    assert "Bob B in #general in School:" in text and "the quiz moved to Friday" in text
    assert "Alice A in a direct message in School:" in text and "can you stay after class?" in text
    assert f"http://chat.school.test/workspaces/{school.workspace.id}/channels/{school.general.id}/#message-{mention['id']}" in text
    assert f"/channels/{dm.id}/#message-{direct['id']}" in text
    assert "plain message" not in text
    unsubscribe = re.search(r"http://chat\.school\.test(/notifications/unsubscribe/[^/\s]+/)", text)
    assert unsubscribe and "".join(sent["List-Unsubscribe"].split()) == f"<http://chat.school.test{unsubscribe.group(1)}>"  # (folded)
    # Nothing twice; and at most one email per CHAT_EMAIL_DELAY.
    assert email_sweep() == 0
    send(school.bob, school.general, "@carol one more")
    age(601)
    assert email_sweep() == 0
    school.carol.__class__.objects.filter(id=school.carol.id).update(last_email_at=timezone.now() - timedelta(seconds=601))
    assert email_sweep() == 1
    assert "one more" in body(inbox.to("carol@school.test")[-1]) and "quiz" not in body(inbox.to("carol@school.test")[-1])


def test_nobody_is_emailed_who_is_connected_read_it_opted_out_or_has_no_address(school, inbox):
    with_email(school.carol, "carol@school.test")
    with_email(school.alice, "alice@school.test")
    with_email(school.bob, "bob@school.test")
    first = send(school.alice, school.general, "@carol @bob @dave hello")  # dave has no address (and is no member)
    root = send(school.carol, school.general, "a thread")
    send(school.bob, school.general, "replies are not emailed", reply_to=root["id"])
    age(601)
    services.read_mark(user=school.carol, channel_id=school.general.id, message_id=first["id"])
    school.bob.__class__.objects.filter(id=school.bob.id).update(connected_until=timezone.now() + timedelta(seconds=30))
    assert email_sweep() == 0
    school.bob.__class__.objects.filter(id=school.bob.id).update(connected_until=timezone.now() - timedelta(seconds=1), email_notifications=False)
    assert email_sweep() == 0 and inbox.messages == []


def test_a_channel_the_user_was_removed_from_is_left_out(school, inbox):
    with_email(school.bob, "bob@school.test")
    membership.channel_member_add(actor=school.alice, channel_id=school.staff.id, user_id=school.bob.id)
    send(school.alice, school.staff, "@bob private plans")
    send(school.alice, school.general, "@bob public news")
    age(601)
    membership.channel_member_remove(actor=school.alice, channel_id=school.staff.id, user_id=school.bob.id)
    assert email_sweep() == 1
    text = body(inbox.to("bob@school.test")[0])
    assert "public news" in text and "private plans" not in text


def test_concurrent_workers_send_one_email(school, inbox):
    with_email(school.carol, "carol@school.test")
    for i in range(5):
        send(school.bob, school.general, f"@carol number {i}")
    age(601)
    results: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        from django.db import connection

        barrier.wait()
        try:
            results.append(email_sweep())
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 1 and len(inbox.to("carol@school.test")) == 1
    assert all(f"number {i}" in body(inbox.messages[0]) for i in range(5))


def test_an_smtp_failure_sends_later_and_the_worker_command_sends(school, inbox, settings):
    with_email(school.carol, "carol@school.test")
    send(school.bob, school.general, "@carol hello")
    age(601)
    real_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()  # nobody listens there
    assert email_sweep() == 0
    assert Notification.objects.get().emailed_at is None
    settings.EMAIL_PORT = real_port
    call_command("chat_worker", "--once")
    assert len(inbox.to("carol@school.test")) == 1


def test_the_unsubscribe_link_works_without_logging_in(school, inbox):
    with_email(school.carol, "carol@school.test")
    send(school.bob, school.general, "@carol hi")
    age(601)
    email_sweep()
    path = re.search(r"http://chat\.school\.test(/notifications/unsubscribe/[^/\s]+/)", body(inbox.messages[0]))
    assert path
    client = Client(enforce_csrf_checks=True)  # a mail client's one-click POST has no CSRF token
    page = client.get(path.group(1))
    assert page.status_code == 200 and b"Unsubscribe" in page.content
    school.carol.refresh_from_db()
    assert school.carol.email_notifications is True  # a GET (a mail scanner following links) changes nothing
    assert client.post(path.group(1), {"List-Unsubscribe": "One-Click"}).status_code == 200
    school.carol.refresh_from_db()
    assert school.carol.email_notifications is False
    assert client.get(path.group(1)[:-5] + "xxxx/").status_code == 404
    assert client.post("/notifications/unsubscribe/12:forged/").status_code == 404
