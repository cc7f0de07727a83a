"""Django admin's moderation view over the store interface, on every message
store on its real server: list a channel's messages (hidden and deleted
included), search them, hide, show again and delete; members hear of it and
the audit log records it."""

from __future__ import annotations

import pytest
from django.test import Client

import messagestore
from accounts.models import AuditEntry
from messagestore import NewMessage
from tests.messagestore.stores import build_store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client(school):
    school.alice.is_staff = school.alice.is_superuser = True
    school.alice.save()
    client = Client()
    client.force_login(school.alice)
    return client


def test_list_search_hide_unhide_delete_on_the_configured_store(backend, school, admin_client, monkeypatch):
    store = build_store(*backend)
    monkeypatch.setattr(messagestore, "_store", store)
    stream = school.general.stream
    ids_ = [store.append(NewMessage(stream=stream, author_id=school.carol.id, content=text))[0].id for text in ("hello class", "buy cheap pills", "see you")]
    url = "/admin/chatcore/message/store/"
    page = admin_client.get(url, {"stream": str(school.general.id)})
    assert page.status_code == 200 and all(text in page.content.decode() for text in ("hello class", "buy cheap pills", "see you"))
    assert f"{store.name} store" in page.content.decode()
    found = admin_client.get(url, {"stream": stream, "q": "PILLS"}).content.decode()
    assert "buy cheap pills" in found and "hello class" not in found
    for action in ("hide", "unhide", "hide", "unhide"):
        assert admin_client.post(url, {"stream": stream, "message_id": ids_[1], "action": action}).status_code == 302
        assert (store.get(stream, ids_[1]) is None) == (action == "hide")
    assert admin_client.post(url, {"stream": stream, "message_id": ids_[1], "action": "delete"}).status_code == 302
    assert store.get(stream, ids_[1]) is None
    listed = admin_client.get(url, {"stream": stream}).content.decode()
    assert "deleted" in listed and "buy cheap pills" in listed, "moderators still find it"
    assert list(AuditEntry.objects.order_by("id").values_list("action", flat=True)) == ["hide", "unhide", "hide", "unhide", "delete"]
    assert admin_client.get(url, {"stream": "not a stream"}).status_code == 200
    assert Client().get(url).status_code == 302, "staff only"
