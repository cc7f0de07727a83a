"""The index is fed by the store's write path (messagestore.listeners):
every write of any caller reaches it; `manage.py search_rebuild` rebuilds it
from the store, idempotently. And MessagePal search."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from messagepal import services as pal
from messagestore import NewMessage, get_store
from messagestore.listeners import Write, on_write
from search.models import SearchEntry
from tests.conftest import require_service
from tests.pal_schemas import check_pal_message
from workspace_chat import membership, services

pytestmark = pytest.mark.django_db


def indexed(stream: str) -> dict[int, str]:
    return dict(SearchEntry.objects.filter(stream=stream).values_list("message_id", "text"))


def test_every_store_write_reaches_the_index_whoever_calls_the_store(school):
    store, stream = get_store(), school.general.stream
    first, created = store.append(NewMessage(stream=stream, author_id=school.carol.id, content="draft one"))
    assert created and indexed(stream) == {first.id: "draft one"}
    entry = SearchEntry.objects.get(message_id=first.id)
    assert (entry.channel_id, entry.conversation_id) == (school.general.id, None)
    # A replay of a clientId stores nothing and indexes nothing new.
    replay = NewMessage(stream=stream, author_id=school.carol.id, content="client copy", client_id="c-1")
    second, _ = store.append(replay)
    again, created = store.append(replay)
    assert (again.id, created) == (second.id, False) and len(indexed(stream)) == 2
    store.edit(stream, first.id, content="draft two", mentions=())
    assert indexed(stream)[first.id] == "draft two"
    store.update_content(stream, first.id, content="draft three", edited=False)
    assert indexed(stream)[first.id] == "draft three"
    assert store.set_hidden(stream, first.id, True)
    assert first.id not in indexed(stream)
    assert store.set_hidden(stream, first.id, False)
    assert indexed(stream)[first.id] == "draft three"
    store.soft_delete(stream, first.id, by=school.alice.id)
    assert first.id not in indexed(stream)
    assert store.delete(stream, second.id)
    assert indexed(stream) == {}


def test_a_write_that_changes_nothing_tells_nothing(school):
    heard: list[Write] = []
    on_write(heard.append)
    try:
        store = get_store()
        assert store.edit(school.general.stream, 12345, content="x", mentions=()) is None
        assert store.soft_delete(school.general.stream, 12345, by=None) is None
        assert not store.set_hidden(school.general.stream, 12345, True)
        assert heard == []
    finally:
        from messagestore import listeners

        listeners._listeners.remove(heard.append)


def test_a_failing_listener_never_fails_the_write(school, caplog):
    def broken(write: Write) -> None:
        raise RuntimeError("boom")

    on_write(broken)
    try:
        stored, created = get_store().append(NewMessage(stream=school.general.stream, author_id=school.carol.id, content="still stored"))
        assert created and "boom" in caplog.text
        assert indexed(school.general.stream) == {stored.id: "still stored"}
    finally:
        from messagestore import listeners

        listeners._listeners.remove(broken)


def test_indexing_off_and_rebuild_finds_everything_idempotently(school, settings):
    settings.CHAT_SEARCH_INDEX = False
    kept = services.message_send(user=school.alice, channel_id=school.general.id, content="rebuilt later").message
    gone = services.message_send(user=school.alice, channel_id=school.staff.id, content="rebuilt never").message
    low, high = sorted((school.alice.id, school.bob.id))
    pal.pal_message_send(sender=school.alice, recipient_id=school.bob.id, content="rebuilt pal")
    assert SearchEntry.objects.count() == 0
    settings.CHAT_SEARCH_INDEX = True
    get_store().soft_delete(school.staff.stream, gone["id"], by=None)
    # A stale entry the store no longer shows goes too.
    SearchEntry.objects.create(stream=school.general.stream, message_id=1, channel_id=school.general.id, author_id=1, created_at="2020-01-01T00:00Z", text="stale")
    for _ in range(2):
        call_command("search_rebuild", "--batch", "1", verbosity=0)
        assert sorted(SearchEntry.objects.values_list("text", flat=True)) == ["rebuilt later", "rebuilt pal"]
    assert indexed(school.general.stream) == {kept["id"]: "rebuilt later"}
    pal_entry = SearchEntry.objects.get(text="rebuilt pal")
    assert (pal_entry.conversation_id, pal_entry.channel_id) == (f"conv_{low}_{high}", None)


def pal_search(user, q: str, status: int = 200, **params: Any) -> Any:
    client = Client()
    client.force_login(user)
    response = client.get("/api/messagepal/search/?" + urlencode({"q": q, **params}))
    assert response.status_code == status, response.content[:300]
    body = response.json()
    if status == 200:
        assert set(body) == {"results", "hasMore"}
        for result in body["results"]:
            check_pal_message({k: v for k, v in result.items() if k != "highlight"})
    return body


def test_messagepal_search_finds_only_the_callers_conversations(school):
    pal.pal_message_send(sender=school.alice, recipient_id=school.bob.id, content="Rendez-vous au café")
    pal.pal_message_send(sender=school.carol, recipient_id=school.bob.id, content="cafe with carol")
    pal.pal_message_send(sender=school.alice, recipient_id=school.carol.id, content="nothing to see")
    services.message_send(user=school.alice, channel_id=school.general.id, content="cafe in a channel")
    alice = pal_search(school.alice, "cafe")["results"]
    assert [r["content"] for r in alice] == ["Rendez-vous au café"] and alice[0]["highlight"] == "Rendez-vous au [[café]]"
    assert [r["content"] for r in pal_search(school.bob, "CAF")["results"]] == ["cafe with carol", "Rendez-vous au café"]
    assert [r["content"] for r in pal_search(school.carol, "café")["results"]] == ["cafe with carol"]
    assert pal_search(school.dave, "cafe")["results"] == []
    # Carol leaves the only workspace she shares with bob: out of reach, out of her results.
    membership.member_remove(actor=school.carol, workspace_id=school.workspace.id, user_id=school.carol.id)
    assert pal_search(school.carol, "cafe")["results"] == []
    assert [r["content"] for r in pal_search(school.bob, "cafe")["results"]] == ["Rendez-vous au café"]


def test_messagepal_search_pages_with_before_and_skips_edited_and_deleted(school):
    sent = [pal.pal_message_send(sender=school.alice, recipient_id=school.bob.id, content=f"note {i}")[0] for i in range(5)]
    conversation = sent[0]["conversationId"]
    number = int(sent[4]["id"].split(":")[1])
    pal.pal_message_edit(user=school.alice, conversation_id=conversation, message_number=number, content="changed")
    pal.pal_message_delete(user=school.alice, conversation_id=conversation, message_number=int(sent[3]["id"].split(":")[1]))
    first = pal_search(school.bob, "note", limit=1)
    assert [r["id"] for r in first["results"]] == [sent[2]["id"]] and first["hasMore"]
    rest = pal_search(school.bob, "note", before=first["results"][0]["id"])
    assert [r["id"] for r in rest["results"]] == [sent[1]["id"], sent[0]["id"]] and not rest["hasMore"]
    assert [r["content"] for r in pal_search(school.bob, "changed")["results"]] == ["changed"]
    assert pal_search(school.bob, "note", 400, before="not-an-id")["errors"]["before"]


@pytest.mark.needs_postgres
def test_postgres_index_is_an_unaccented_tsvector_with_a_gin_index(school):
    require_service("DATABASE_URL (PostgreSQL)", "postgresql" if connection.vendor == "postgresql" else "")
    services.message_send(user=school.alice, channel_id=school.general.id, content="Crème Brûlée at mail@example.org")
    entry = SearchEntry.objects.get()
    with connection.cursor() as cursor:
        cursor.execute("SELECT vector::text FROM search_entry WHERE id = %s", [entry.id])
        assert cursor.fetchone()[0] == "'at':3 'brulee':2 'creme':1 'example':5 'mail':4 'org':6"
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'search_entry' AND indexname = 'search_entry_vector'")
        assert "gin (vector)" in cursor.fetchone()[0]
