"""One contract for every message store backend, each on its real server:
`sql` on the test database, `cassandra` and `mongodb` on the servers of
scripts/services (CASSANDRA_HOSTS, MONGODB_URI). A run uses a keyspace and a
database of its own, dropped at the end, so runs never see each other's data.

The start-up fallback and outages: tests/messagestore/test_fallback.py.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from messagestore import NewMessage, ids
from tests.messagestore.stores import add, build_store, in_two_processes, walk_back, walk_forward

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
