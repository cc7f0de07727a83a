"""One contract for every message store backend, each on its real server:
`sql` on the test database, `cassandra` and `mongodb` on the servers of
scripts/services (CASSANDRA_HOSTS, MONGODB_URI). A run uses a keyspace and a
database of its own, dropped at the end, so runs never see each other's data.

Also here: the start-up fallback (cassandra -> mongodb -> sql) and what a
store outage during a send looks like to the sender and to the channel.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from typing import Any
from urllib.parse import urlparse

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

import messagestore as store_module
from messagestore import MessageStore, NewMessage, StoreError, get_store, ids, reset_store
from tests import ferretdb
from tests.conftest import require_service
from tests.messagestore.stores import REAL_SERVERS, RUN, _mongodb_uri, add, build_store, in_two_processes, walk_back, walk_forward
from tests.schemas import check_chat_event

pytestmark = pytest.mark.django_db(transaction=True)

# -- the contract ---------------------------------------------------------------


def test_append_and_get(store, stream):
    msg, created = store.append(
        NewMessage(stream=stream, author_id=7, content="<i>hi</i>", message_type="image", file_url="/x.png", mentions=[3], client_id="c1")
    )
    assert created and 0 < msg.id < 2**53
    assert msg.created_at.tzinfo is not None
    got = store.get(stream, msg.id)
    assert got is not None
    assert (got.content, got.author_id, got.message_type, got.file_url, got.mentions, got.client_id) == ("<i>hi</i>", 7, "image", "/x.png", [3], "c1")
    assert got.created_at == msg.created_at and got.created_at.tzinfo is not None
    assert (got.is_pinned, got.hidden, got.grade, got.edited_at) == (False, False, None, None)
    assert store.get(stream, msg.id + 1) is None
    assert store.get("ch:other", msg.id) is None
    assert store.page("ch:never-written", limit=10) == ([], False)
    assert store.last_id("ch:never-written") is None


def test_pages_hold_every_field_as_get_does(store, stream):
    # Pages are read on a path of their own (raw SQL, prepared CQL, bucket
    # documents): every field must come back as `get` returns it.
    plain, _ = store.append(NewMessage(stream=stream, author_id=1, content="plain"))
    rich, _ = store.append(
        NewMessage(
            stream=stream, author_id=2, content='"quoted"\nline é', message_type="file", file_url="/f.pdf",
            reply_to=plain.id, mentions=[1, 3], is_ai=True, client_id="rich-1",
        )
    )  # fmt: skip
    store.update_content(stream, rich.id, content="edited", edited=True)
    store.set_pinned(stream, rich.id, pinned=True, by=9)
    store.set_grade(stream, rich.id, grade="B+", feedback="ok", by=9)
    expected = [store.get(stream, plain.id), store.get(stream, rich.id)]
    for page, _ in (store.page(stream, limit=10), store.page(stream, after=0, limit=10), store.page(stream, before=rich.id + 1, limit=10)):
        assert page == expected
        assert all(m.created_at.tzinfo is not None for m in page) and page[1].edited_at.tzinfo is not None
    assert (expected[1].mentions, expected[1].is_ai, expected[1].is_pinned, expected[1].reply_to) == ([1, 3], True, True, plain.id)
    assert expected[0].mentions == [] and expected[0].edited_at is None


def test_append_tells_the_previous_id(store, stream):
    first, _ = store.append(NewMessage(stream=stream, author_id=1, content="a", client_id="p1"))
    second, _ = store.append(NewMessage(stream=stream, author_id=1, content="b"))
    again, created = store.append(NewMessage(stream=stream, author_id=1, content="a", client_id="p1"))
    assert not created and again.id == first.id
    assert (first.prev_id, second.prev_id) == (0, first.id)
    third, _ = store.append(NewMessage(stream=stream, author_id=1, content="c"))
    assert third.prev_id == second.id, "a replayed clientId takes no place in the chain"


def test_pages_before_and_after_have_no_gap_or_repeat(store, stream):
    ids_ = add(store, stream, 57)
    assert ids_ == sorted(ids_)
    page, more = store.page(stream, limit=20)
    assert [m.id for m in page] == ids_[-20:] and more
    assert walk_back(store, stream, 10) == ids_
    assert walk_forward(store, stream, 13) == ids_
    page, more = store.page(stream, after=ids_[10], before=ids_[20], limit=50)
    assert [m.id for m in page] == ids_[11:20] and not more
    assert store.last_id(stream) == ids_[-1]
    assert store.count_after(stream, ids_[49]) == 7
    assert store.count_after(stream, None) == 57
    assert store.count_after(stream, None, cap=5) == 5
    assert store.count_after(stream, None, exclude_author=1) == 0


def test_pages_cross_buckets_and_accept_any_cursor(store, stream, fast_clock):
    ids_ = add(store, stream, 150)  # 300 days of ids: 30 Cassandra buckets, 3 MongoDB buckets
    assert ids_ == sorted(ids_)
    assert walk_back(store, stream, 50) == ids_
    assert walk_forward(store, stream, 50) == ids_
    # Cursors that are not ids of the stream still cut at the right place.
    page, more = store.page(stream, before=ids_[100] + 1, limit=3)
    assert [m.id for m in page] == ids_[98:101] and more
    page, more = store.page(stream, after=ids_[70] - 1, limit=2)
    assert [m.id for m in page] == ids_[70:72] and more
    assert store.page(stream, before=ids_[0], limit=5) == ([], False)
    assert store.page(stream, after=ids_[-1], limit=5) == ([], False)
    assert [m.id for m in store.page(stream, before=2**53 - 1, limit=2)[0]] == ids_[-2:]
    assert store.count_after(stream, ids_[60], exclude_author=2) == 89


def test_newest_page_sees_what_another_process_added(backend, stream, fast_clock):
    # Two store instances stand for two processes; with the fast clock the
    # writer's messages open Cassandra buckets that the reader has not seen.
    reader, writer = build_store(*backend), build_store(*backend)
    first = add(reader, stream, 3)
    assert [m.id for m in reader.page(stream, limit=10)[0]] == first
    later = add(writer, stream, 7)
    assert reader.page(stream, limit=10) == writer.page(stream, limit=10)
    assert [m.id for m in reader.page(stream, limit=10)[0]] == first + later
    assert reader.last_id(stream) == later[-1]


def test_client_id_idempotency(store, stream):
    first, created = store.append(NewMessage(stream=stream, author_id=1, content="a", client_id="k"))
    again, created_again = store.append(NewMessage(stream=stream, author_id=1, content="a (retry)", client_id="k"))
    assert created and not created_again and again.id == first.id and again.content == "a"
    other, created_other = store.append(NewMessage(stream=stream, author_id=2, content="b", client_id="k"))
    assert created_other and other.id != first.id
    assert store.find_by_client_id(stream, 1, "k").id == first.id
    assert store.find_by_client_id(stream, 1, "nope") is None
    assert [m.id for m in store.page(stream, limit=10)[0]] == [first.id, other.id]


def test_read_pointers_only_move_forward(store, stream):
    ids_ = add(store, stream, 3)
    assert store.set_read_pointer(stream, 5, ids_[1])
    assert not store.set_read_pointer(stream, 5, ids_[0])
    assert not store.set_read_pointer(stream, 5, ids_[1])
    assert store.set_read_pointer(stream, 6, ids_[0])
    assert store.set_read_pointer(stream, 6, ids_[2])
    pointers = store.read_pointers(stream)
    assert set(pointers) == {5, 6}
    assert pointers[5].message_id == ids_[1] and pointers[6].message_id == ids_[2]
    assert pointers[5].read_at.tzinfo is not None
    assert store.read_pointers("ch:never-read") == {}


def test_pins_and_grades(store, stream):
    ids_ = add(store, stream, 3)
    pinned = store.set_pinned(stream, ids_[1], pinned=True, by=9)
    assert pinned.is_pinned and pinned.pinned_by == 9
    assert store.set_pinned(stream, ids_[2], pinned=True, by=9).is_pinned
    assert [m.id for m in store.pinned(stream)] == [ids_[1], ids_[2]]
    unpinned = store.set_pinned(stream, ids_[2], pinned=False, by=9)
    assert not unpinned.is_pinned and unpinned.pinned_by is None
    assert [m.id for m in store.pinned(stream)] == [ids_[1]]
    graded = store.set_grade(stream, ids_[2], grade="A-", feedback="good", by=9)
    assert (graded.grade, graded.feedback, graded.graded_by) == ("A-", "good", 9) and graded.graded_at is not None
    again = store.get(stream, ids_[2])
    assert (again.grade, again.graded_at) == ("A-", graded.graded_at)
    assert store.page(stream, limit=10)[0][2].graded_at == graded.graded_at, "pages hold it as get does"
    assert store.set_grade(stream, 12345, grade="B", feedback=None, by=9) is None
    assert store.set_pinned(stream, 12345, pinned=True, by=9) is None


def test_hide_and_delete(store, stream):
    ids_ = add(store, stream, 3)
    assert store.set_pinned(stream, ids_[0], pinned=True, by=9)
    assert store.set_hidden(stream, ids_[0], True)
    assert store.delete(stream, ids_[1])
    assert not store.delete(stream, ids_[1])
    assert not store.set_hidden(stream, ids_[1], True)
    assert [m.id for m in store.page(stream, limit=10)[0]] == [ids_[2]]
    assert store.get(stream, ids_[0]) is None and store.get(stream, ids_[1]) is None
    assert store.pinned(stream) == []
    assert store.set_grade(stream, ids_[0], grade="A", feedback=None, by=9) is None, "hidden messages cannot be graded"
    assert store.count_after(stream, None) == 1
    assert store.set_hidden(stream, ids_[0], False)
    assert [m.id for m in store.page(stream, limit=10)[0]] == [ids_[0], ids_[2]]
    assert [m.id for m in store.pinned(stream)] == [ids_[0]]


def test_hidden_runs_do_not_shorten_pages(store, stream):
    ids_ = add(store, stream, 40)
    for message_id in ids_[10:35]:
        assert store.set_hidden(stream, message_id, True)
    visible = ids_[:10] + ids_[35:]
    page, more = store.page(stream, limit=8)
    assert [m.id for m in page] == visible[-8:] and more
    assert walk_back(store, stream, 4) == visible
    assert walk_forward(store, stream, 4) == visible
    assert store.count_after(stream, ids_[5]) == 9
    assert store.set_hidden(stream, ids_[-1], True)
    assert store.last_id(stream) == ids_[-2]


def test_changes_to_old_and_new_messages_of_a_long_stream(store, stream):
    # 200 messages: MongoDB keeps the newest two 64-message buckets in the
    # stream's head document and the older ones in documents of their own;
    # changes land in either place and pages read both.
    ids_ = add(store, stream, 200)
    old, older, new = ids_[5], ids_[70], ids_[190]
    assert store.set_hidden(stream, ids_[6], True)
    assert store.delete(stream, older)
    assert store.set_pinned(stream, old, pinned=True, by=9).is_pinned
    assert store.set_pinned(stream, new, pinned=True, by=9).is_pinned
    assert store.update_content(stream, old, content="old, edited", edited=True).content == "old, edited"
    assert store.set_grade(stream, new, grade="A", feedback=None, by=9).grade == "A"
    visible = [i for i in ids_ if i not in (ids_[6], older)]
    assert walk_back(store, stream, 50) == visible
    assert walk_forward(store, stream, 50) == visible
    assert [m.id for m in store.pinned(stream)] == [old, new]
    assert store.get(stream, old).content == "old, edited" and store.get(stream, older) is None
    page, more = store.page(stream, before=ids_[72], limit=3)
    assert [m.id for m in page] == [ids_[68], ids_[69], ids_[71]] and more
    page, more = store.page(stream, after=ids_[4], limit=2)
    assert [m.id for m in page] == [old, ids_[7]] and more
    assert store.count_after(stream, ids_[0]) == 197


@pytest.mark.needs_mongodb
def test_mongodb_reads_and_extends_the_older_layout(mongodb_config, stream):
    # Before the head held the newest buckets, every bucket had a document of
    # its own and the head only last_id/seq/pins: such streams still work.
    from messagestore.base import StoredMessage
    from messagestore.mongodb import document_of, encode

    store = build_store("mongodb", mongodb_config)
    first = ids.next_id(None)
    old_ids = [first + i for i in range(70)]  # bucket 0 full, bucket 1 holds 6
    for number, members in ((0, old_ids[:64]), (1, old_ids[64:])):
        lines = [encode(document_of(StoredMessage(id=m, stream=stream, author_id=1, content=f"o{m}", created_at=ids.id_time(m)))) for m in members]
        store.buckets.insert_one({"_id": f"{stream}|{number}", "stream": stream, "b": number, "lo": members[0], "hi": members[-1], "messages": "\n".join(lines)})
    store.locators.insert_many([{"_id": f"{stream}|{m}", "b": i // 64} for i, m in enumerate(old_ids)])
    store.heads.insert_one({"_id": stream, "last_id": old_ids[-1], "seq": 70, "pins": []})
    new_ids = add(store, stream, 10)  # bucket 1 moves into the head; its old document stays behind, stale
    assert walk_back(store, stream, 7) == old_ids + new_ids
    assert store.get(stream, new_ids[-1]) is not None and store.get(stream, old_ids[65]) is not None
    new_ids += add(store, stream, 120)  # fills bucket 1, then buckets 2..3
    assert walk_back(store, stream, 40) == old_ids + new_ids
    assert walk_forward(store, stream, 40) == old_ids + new_ids
    assert store.set_pinned(stream, old_ids[66], pinned=True, by=2) is not None
    assert [m.id for m in store.pinned(stream)] == [old_ids[66]]


def test_deleted_client_id_can_be_sent_again(store, stream):
    first, _ = store.append(NewMessage(stream=stream, author_id=1, content="oops", client_id="k"))
    assert store.delete(stream, first.id)
    assert store.find_by_client_id(stream, 1, "k") is None
    again, created = store.append(NewMessage(stream=stream, author_id=1, content="again", client_id="k"))
    assert created and again.id > first.id


def test_update_content(store, stream):
    (mid,) = add(store, stream, 1)
    updated = store.update_content(stream, mid, content="final", edited=True)
    assert updated.content == "final" and updated.edited_at is not None
    streamed = store.update_content(stream, mid, content="final, streamed", edited=False)
    assert streamed.content == "final, streamed" and streamed.edited_at == updated.edited_at
    assert store.update_content(stream, mid + 1, content="x", edited=True) is None


def test_ping_and_schema_are_idempotent(store):
    store.ensure_schema()
    store.ping()


def _append_many(backend: str, config: dict[str, Any], stream: str, author: int, n: int, queue) -> None:
    """(id, prev_id, whether prev_id's message was readable when append returned) per message."""
    from django.db import connections

    connections.close_all()
    s = build_store(backend, config)
    out = []
    for i in range(n):
        stored = s.append(NewMessage(stream=stream, author_id=author, content=f"p{author}-{i}"))[0]
        out.append((stored.id, stored.prev_id, stored.prev_id == 0 or s.get(stream, stored.prev_id) is not None))
    queue.put(out)
    connections.close_all()


def test_concurrent_appends_from_two_processes_stay_ordered(store, backend, stream):
    name, config = backend
    results = in_two_processes(_append_many, lambda i: (name, config, stream, 100 + i, 60))
    for appended in results:
        ids_ = [id_ for id_, _, _ in appended]
        assert ids_ == sorted(ids_), "a process saw its own ids go backwards"
    chain = sorted(results[0] + results[1])
    everything = [id_ for id_, _, _ in chain]
    assert len(set(everything)) == 120
    # Each append names the message just before it, across both processes,
    # and that message was readable by then: what consumers fill gaps with.
    assert [prev for _, prev, _ in chain] == [0, *everything[:-1]]
    assert all(readable for _, _, readable in chain)
    assert walk_forward(store, stream, 50) == everything
    assert walk_back(store, stream, 50) == everything


def _append_same_client_ids(backend: str, config: dict[str, Any], stream: str, n: int, queue) -> None:
    from django.db import connections

    connections.close_all()
    s = build_store(backend, config)
    out = []
    for i in range(n):
        stored, created = s.append(NewMessage(stream=stream, author_id=7, content=f"from {os.getpid()}", client_id=f"k{i}"))
        out.append((stored.id, created))
    queue.put(out)
    connections.close_all()


def test_one_client_id_from_two_processes_is_stored_once(store, backend, stream):
    name, config = backend
    first, second = in_two_processes(_append_same_client_ids, lambda i: (name, config, stream, 15))
    for (id_a, created_a), (id_b, created_b) in zip(first, second, strict=True):
        assert id_a == id_b, "both processes must answer with the one stored message"
        assert created_a != created_b, "exactly one of them stored it"
    assert len(walk_forward(store, stream, 50)) == 15


# -- start-up fallback and outages ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fresh_store():
    reset_store()
    yield
    reset_store()


def served_store_name() -> str:
    body = Client().get("/healthz").json()
    return body["checks"]["messageStore"]


MONGODB_COLLECTIONS = ("stream_heads", "message_buckets", "message_locators", "client_ids", "read_pointers", "locks", "reactions", "replies", "changes")


@pytest.mark.needs_mongodb
def test_ferretdb_sqlite_id_lookups_are_served_by_an_index(mongodb_config, tmp_path):
    """FerretDB 1.24 (SQLite) looks `_id` up with an expression its own `_id`
    index does not match, so every lookup scans; the operator tool
    scripts/ferretdb_index.py adds an index on that expression to every
    collection, once, and says so when pointed at the wrong directory."""
    directory = ferretdb.sqlite_dir()
    require_service("FERRETDB_SQLITE_DIR", directory)
    for collection in MONGODB_COLLECTIONS:
        assert "USING INDEX" in ferretdb.lookup_plan(directory, f"chat_test_{RUN}", collection), collection
    assert "indexed 0 collection table(s)" in ferretdb.index(directory, f"chat_test_{RUN}")  # already there

    bare = build_store("mongodb", {"uri": _mongodb_uri(f"chat_bare_{RUN}")})
    try:
        bare.ensure_schema()
        assert "SCAN" in ferretdb.lookup_plan(directory, f"chat_bare_{RUN}", "message_locators")  # FerretDB's own index: unused
        assert f"indexed {len(MONGODB_COLLECTIONS)} collection table(s)" in ferretdb.index(directory, f"chat_bare_{RUN}")
        assert "USING INDEX" in ferretdb.lookup_plan(directory, f"chat_bare_{RUN}", "message_locators")
    finally:
        bare.drop_schema()

    wrong = subprocess.run([sys.executable, str(ferretdb.TOOL), str(tmp_path), "--database", "chat"], capture_output=True, text=True)
    assert wrong.returncode == 1 and "-sqlite-url" in wrong.stderr


def fallback_reasons(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "messagestore" and r.levelname == "CRITICAL"]


@pytest.mark.needs_mongodb
def test_unreachable_cassandra_falls_back_to_mongodb(settings, caplog, mongodb_config, fresh_store):
    settings.CHAT_MESSAGE_STORE = "cassandra"
    settings.CASSANDRA_PORT = free_port()
    settings.MONGODB_URI = mongodb_config["uri"]
    settings.CHAT_STORE_TIMEOUT = 1.0
    assert get_store().name == "mongodb"
    reasons = fallback_reasons(caplog)
    assert any("cassandra is unavailable" in r and "unreachable" in r and "falling back to the mongodb store" in r for r in reasons), reasons
    assert served_store_name() == "mongodb"
    stored, _ = get_store().append(NewMessage(stream=f"ch:{RUN}", author_id=1, content="via the fallback"))
    assert get_store().get(f"ch:{RUN}", stored.id).content == "via the fallback"


def test_unreachable_cassandra_and_mongodb_fall_back_to_sql(settings, caplog, fresh_store):
    settings.CHAT_MESSAGE_STORE = "cassandra"
    settings.CASSANDRA_PORT = free_port()
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/chat"
    settings.CHAT_STORE_TIMEOUT = 0.5
    started = time.monotonic()
    assert get_store().name == "sql"
    assert time.monotonic() - started < 10, "a dead store must fail fast"
    reasons = fallback_reasons(caplog)
    assert any("cassandra is unavailable" in r and "falling back to the mongodb store" in r for r in reasons), reasons
    assert any("mongodb is unavailable" in r and "falling back to the sql store" in r for r in reasons), reasons
    assert served_store_name() == "sql"


def test_unreachable_mongodb_falls_back_to_sql(settings, caplog, fresh_store):
    settings.CHAT_MESSAGE_STORE = "mongodb"
    settings.MONGODB_URI = f"mongodb://127.0.0.1:{free_port()}/chat"
    settings.CHAT_STORE_TIMEOUT = 0.5
    assert get_store().name == "sql"
    assert any("mongodb is unavailable" in r for r in fallback_reasons(caplog))
    assert served_store_name() == "sql"


def test_mongodb_without_uri_is_sql_and_said_so(settings, caplog, fresh_store):
    settings.CHAT_MESSAGE_STORE = "mongodb"
    settings.MONGODB_URI = ""
    assert get_store().name == "sql"
    assert any("MONGODB_URI is not set" in r for r in fallback_reasons(caplog))


@pytest.mark.parametrize("name", REAL_SERVERS)
def test_configured_store_serves_when_reachable(name, request, settings, caplog, fresh_store):
    config = request.getfixturevalue(f"{name}_config")
    settings.CHAT_MESSAGE_STORE = name
    if name == "cassandra":
        settings.CASSANDRA_HOSTS = ",".join(config["hosts"])
        settings.CASSANDRA_PORT = config["port"]
        settings.CASSANDRA_KEYSPACE = config["keyspace"]
        settings.MONGODB_URI = ""
    else:
        settings.MONGODB_URI = config["uri"]
    assert get_store().name == name
    assert fallback_reasons(caplog) == []
    assert served_store_name() == name


class TcpProxy:
    """Forwards a loopback port to a real server until stop(): a store behind
    it loses its server the way it would when the server dies."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        self.stopped = True
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def store_behind(name: str, config: dict[str, Any]) -> tuple[MessageStore, TcpProxy]:
    if name == "cassandra":
        proxy = TcpProxy(config["hosts"][0], config["port"])
        return build_store(name, {**config, "hosts": ["127.0.0.1"], "port": proxy.port, "timeout": 1.0}), proxy
    target = urlparse(config["uri"])
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 27017)
    return build_store(name, {"uri": target._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(), "timeout": 1.0}), proxy


def forget(store: MessageStore) -> None:
    """Close the connections of a store made by store_behind()."""
    if store.name == "cassandra":
        from messagestore.cassandra import disconnect

        disconnect(store.connection_name)
    else:
        store.db.client.close()


@pytest.mark.parametrize("name", REAL_SERVERS)
def test_outage_makes_append_raise_store_error_quickly(name, request, stream):
    store, proxy = store_behind(name, request.getfixturevalue(f"{name}_config"))
    try:
        stored, created = store.append(NewMessage(stream=stream, author_id=1, content="before"))
        assert created and store.get(stream, stored.id).content == "before"
        proxy.stop()
        started = time.monotonic()
        with pytest.raises(StoreError):
            store.append(NewMessage(stream=stream, author_id=1, content="during"))
        assert time.monotonic() - started < 10
        with pytest.raises(StoreError):
            store.ping()
    finally:
        proxy.stop()
        forget(store)


async def _receive(comm, timeout: float = 3) -> dict:
    event = await comm.receive_json_from(timeout)
    check_chat_event(event)
    return event


async def _request(comm, event: dict) -> dict:
    await comm.send_json_to({**event, "requestId": "rq"})
    while True:
        answer = await _receive(comm, timeout=15)
        if answer.get("requestId") == "rq":
            return answer


async def _joined(user, channel):
    from chatsite.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/chat/")
    comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    assert (await _receive(comm))["type"] == "connected"
    answer = await _request(comm, {"type": "join_channel", "channelId": channel.id})
    assert answer["type"] == "joined_channel"
    return comm


@pytest.mark.parametrize("name", REAL_SERVERS)
async def test_store_outage_during_send_is_server_error_and_nothing_is_broadcast(name, request, school):
    store, proxy = store_behind(name, request.getfixturevalue(f"{name}_config"))
    store_module._store = store
    alice = bob = None
    try:
        alice = await _joined(school.alice, school.general)
        bob = await _joined(school.bob, school.general)
        answer = await _request(alice, {"type": "send_message", "channelId": school.general.id, "content": "before"})
        assert answer["type"] == "new_message"
        event = await _receive(bob)
        while event["type"] != "new_message":
            event = await _receive(bob)
        assert event["message"]["content"] == "before"
        proxy.stop()
        answer = await _request(alice, {"type": "send_message", "channelId": school.general.id, "content": "lost?", "clientId": "c-lost"})
        assert answer["type"] == "error" and answer["code"] == "server_error"
        while not await bob.receive_nothing(0.5):
            assert (await bob.receive_json_from())["type"] != "new_message"
    finally:
        for comm in (alice, bob):
            if comm is not None:
                await comm.disconnect()
        proxy.stop()
        forget(store)
        reset_store()


def test_list_reads_of_many_streams_match_the_one_stream_reads(store):
    """read_pointers_of, counts_after and latest (one call for a whole
    channel or conversation list) agree with their one-stream forms."""
    streams = [f"ch:{uuid.uuid4().int % 10**12}" for _ in range(3)]
    ids_ = {s: add(store, s, 3 + i, author=1 + i % 2) for i, s in enumerate(streams)}
    store.set_read_pointer(streams[0], 7, ids_[streams[0]][1])
    store.set_read_pointer(streams[2], 7, ids_[streams[2]][0])
    empty = f"ch:{uuid.uuid4().int % 10**12}"
    pointers = store.read_pointers_of(7, [*streams, empty])
    assert {s: p.message_id for s, p in pointers.items()} == {streams[0]: ids_[streams[0]][1], streams[2]: ids_[streams[2]][0]}
    after = {s: pointers[s].message_id if s in pointers else None for s in [*streams, empty]}
    expected = {s: store.count_after(s, a, exclude_author=2, cap=1000) for s, a in after.items()}
    assert store.counts_after(after, exclude_author=2) == expected
    assert store.counts_after(after, cap=1) == {s: min(1, store.count_after(s, a)) for s, a in after.items()}
    latest = store.latest([*streams, empty])
    assert {s: m.id for s, m in latest.items()} == {s: ids_[s][-1] for s in streams}
    assert latest[streams[1]] == store.get(streams[1], ids_[streams[1]][-1])
