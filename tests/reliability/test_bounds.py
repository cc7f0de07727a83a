"""Hardening, round 2 (issue 18), the findings about unbounded work, in
process on the real database: lists with a fixed number of queries, and a
join's catch-up bounded in bytes."""

from __future__ import annotations

import pytest

from tests.reliability.record import record
from wire import jsonutil


@pytest.mark.django_db(transaction=True)
def test_lists_take_a_fixed_number_of_queries(school, make_user, django_assert_max_num_queries, settings):
    """Finding 7: the channel and conversation lists made queries per row
    (~1.3 ms per conversation). Now each list takes a fixed number of
    queries whatever its length (SQL store), and every list is capped."""
    from django.test import Client

    from messagepal import services as pal
    from workspace_chat import services
    from workspace_chat.models import ChannelKind

    settings.CHAT_RATE_LIMIT_MESSAGES = 1000
    for i in range(12):
        channel = services.channel_create(actor=school.alice, workspace_id=school.workspace.id, name=f"c{i}", kind=ChannelKind.TEXT, is_private=i % 2 == 0)
        services.message_send(user=school.alice, channel_id=channel.id, content=f"hello {i}")
    for i in range(12):
        friend = make_user(f"friend{i}")
        services.workspace_member_add(actor=school.alice, workspace_id=school.workspace.id, username=friend.username, role="student")
        pal.pal_message_send(sender=friend, recipient_id=school.alice.id, content=f"hi {i}")
    client = Client()
    client.force_login(school.alice)
    with django_assert_max_num_queries(12):
        channels = client.get(f"/api/workspaces/{school.workspace.id}/channels/")
    with django_assert_max_num_queries(10):
        conversations = client.get("/api/messagepal/conversations/")
    assert channels.status_code == 200 and len(channels.json()) >= 15
    assert conversations.status_code == 200 and len(conversations.json()) == 12
    assert all(c["unreadCount"] == 1 and c["lastMessage"]["content"].startswith("hi ") for c in conversations.json())
    record("list-queries", channels=len(channels.json()), conversations=len(conversations.json()), max_queries_channels=12, max_queries_conversations=10)


@pytest.mark.django_db(transaction=True)
def test_a_join_answers_a_bounded_catch_up_and_the_rest_pages(school, settings):
    """Finding 5: `join_channel` with `afterId: 0` answered ~1 MiB for a
    60-byte frame. Now one join answers at most about CATCH_UP_MAX_BYTES
    (256 KiB) with hasMore, and paging on from its newest id loses nothing."""
    from workspace_chat import selectors, services

    settings.CHAT_RATE_LIMIT_MESSAGES = 1000
    sent = [services.message_send(user=school.alice, channel_id=school.general.id, content=f"{i:04d}" + "x" * 3996).message["id"] for i in range(120)]
    missed, has_more, _ = selectors.catch_up(channel=school.general, after_id=0)
    size = sum(len(jsonutil.dumps(m)) for m in missed)
    assert has_more and 0 < len(missed) < len(sent)
    assert size <= selectors.CATCH_UP_MAX_BYTES + 5000, f"{size} bytes in one catch-up"
    got = [m["id"] for m in missed]
    while has_more:
        page, has_more, _ = selectors.catch_up(channel=school.general, after_id=got[-1])
        got += [m["id"] for m in page]
    assert got == sent
    record("catch-up-bytes", messages=len(sent), first_page=len(missed), first_page_bytes=size)
