"""The index on every message store: each store's writes reach it through
the one wrapper get_store() hands out, and `search_rebuild` rebuilds it from
each store (each on its real server: needs_cassandra / needs_mongodb)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

import messagestore
from messagestore import NewMessage, get_store
from search.models import SearchEntry
from tests.messagestore.stores import backend, build_store, cassandra_config, mongodb_config
from tests.search.test_api import found

__all__ = ["backend", "cassandra_config", "mongodb_config"]
pytestmark = pytest.mark.django_db


def test_writes_of_each_store_are_searchable_and_a_rebuild_restores_them(backend, school, monkeypatch, settings):
    monkeypatch.setattr(messagestore, "_store", build_store(*backend))
    store, stream = get_store(), school.general.stream
    kept, _ = store.append(NewMessage(stream=stream, author_id=school.alice.id, content="Déjà vu on every store"))
    edited, _ = store.append(NewMessage(stream=stream, author_id=school.alice.id, content="first draft on every store"))
    gone, _ = store.append(NewMessage(stream=stream, author_id=school.alice.id, content="gone on every store"))
    store.edit(stream, edited.id, content="final text on every store", mentions=())
    store.soft_delete(stream, gone.id, by=school.alice.id)
    expected = ["final text on every store", "Déjà vu on every store"]
    assert found(school.carol, "every stor") == expected
    assert found(school.carol, "deja") == ["Déjà vu on every store"]
    SearchEntry.objects.all().delete()
    assert found(school.carol, "every") == []
    call_command("search_rebuild", verbosity=0)
    assert found(school.carol, "every stor") == expected
    assert kept.id in set(SearchEntry.objects.values_list("message_id", flat=True))
