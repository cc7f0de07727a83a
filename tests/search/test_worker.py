"""The asynchronous indexer (search.worker): writes applied after their
transaction commits, in batches where each message's last write wins."""

from __future__ import annotations

import pytest
from django.db import connection

from messagestore import NewMessage, get_store
from messagestore.listeners import Write
from search import worker
from search.models import SearchEntry
from tests.conftest import require_service
from workspace_chat import services


@pytest.mark.django_db
def test_a_batch_applies_each_messages_last_write(school):
    store, stream = get_store(), school.general.stream
    kept, _ = store.append(NewMessage(stream=stream, author_id=school.carol.id, content="first text"))
    SearchEntry.objects.all().delete()
    gone = kept.__class__(**{**kept.__dict__, "id": kept.id + 1, "content": "gone soon"})
    edited = kept.__class__(**{**kept.__dict__, "content": "second text"})
    worker.apply([
        Write("append", stream, kept.id, kept),
        Write("append", stream, gone.id, gone),
        Write("edit", stream, kept.id, edited),
        Write("removed", stream, gone.id),
    ])
    assert dict(SearchEntry.objects.values_list("message_id", "text")) == {kept.id: "second text"}


@pytest.mark.needs_postgres
@pytest.mark.django_db(transaction=True)
def test_async_mode_indexes_after_commit_and_never_a_rolled_back_write(school, settings):
    require_service("DATABASE_URL (PostgreSQL)", "postgresql" if connection.vendor == "postgresql" else "")
    settings.CHAT_SEARCH_INDEX_MODE = "async"
    sent = services.message_send(user=school.alice, channel_id=school.general.id, content="indexed after commit").message
    assert worker.indexer.flush(5)
    assert list(SearchEntry.objects.values_list("message_id", "text")) == [(sent["id"], "indexed after commit")]
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        get_store().append(NewMessage(stream=school.general.stream, author_id=school.alice.id, content="rolled back"))
        raise RuntimeError("abort")
    assert worker.indexer.flush(5)
    assert SearchEntry.objects.filter(text="rolled back").count() == 0


def test_the_indexer_thread_outlives_a_failing_batch(monkeypatch, caplog):
    calls: list[int] = []

    def flaky(writes: list[Write]) -> None:
        calls.append(len(writes))
        if len(calls) == 1:
            raise RuntimeError("boom")

    monkeypatch.setattr(worker, "apply", flaky)
    monkeypatch.setattr(worker, "close_old_connections", lambda: None)
    indexer = worker.Indexer()
    indexer.submit(Write("removed", "ch:1", 1))
    assert indexer.flush(5)
    indexer.submit(Write("removed", "ch:1", 2))
    assert indexer.flush(5)
    assert calls == [1, 1] and "boom" in caplog.text


def test_the_indexer_waits_out_a_database_outage(monkeypatch):
    """A restarting database (OperationalError) is waited for, past ATTEMPTS
    tries, instead of the batch being dropped."""
    from django.db import OperationalError

    calls: list[int] = []

    def down_then_up(writes: list[Write]) -> None:
        calls.append(len(writes))
        if len(calls) <= worker.ATTEMPTS + 1:
            raise OperationalError("connection refused")

    monkeypatch.setattr(worker, "apply", down_then_up)
    monkeypatch.setattr(worker, "close_old_connections", lambda: None)
    monkeypatch.setattr(worker, "RETRY_AFTER", 0.01)
    indexer = worker.Indexer()
    indexer.submit(Write("removed", "ch:1", 1))
    assert indexer.flush(5)
    assert len(calls) == worker.ATTEMPTS + 2
