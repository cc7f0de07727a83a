"""One contract for every message store backend, run on its real server."""

from __future__ import annotations

import multiprocessing
import uuid

import pytest

from chatcore.store import MessageStore, NewMessage

pytestmark = pytest.mark.django_db(transaction=True)

BACKENDS = ["sql"]


def build_store(name: str) -> MessageStore:
    if name == "sql":
        from chatcore.store.sql import SqlMessageStore

        return SqlMessageStore()
    raise AssertionError(name)


@pytest.fixture(params=BACKENDS)
def store(request) -> MessageStore:
    s = build_store(request.param)
    s.ensure_schema()
    return s


@pytest.fixture
def stream() -> str:
    return f"ch:{uuid.uuid4().int % 10**12}"


def add(store: MessageStore, stream: str, n: int, *, author: int = 1, prefix: str = "m") -> list[int]:
    return [store.append(NewMessage(stream=stream, author_id=author, content=f"{prefix}{i}"))[0].id for i in range(n)]


def test_append_and_get(store, stream):
    msg, created = store.append(
        NewMessage(stream=stream, author_id=7, content="<i>hi</i>", message_type="image", file_url="/x.png", mentions=[3], client_id="c1")
    )
    assert created and 0 < msg.id < 2**53
    got = store.get(stream, msg.id)
    assert got is not None
    assert (got.content, got.author_id, got.message_type, got.file_url, got.mentions, got.client_id) == ("<i>hi</i>", 7, "image", "/x.png", [3], "c1")
    assert store.get(stream, msg.id + 1) is None
    assert store.get("ch:other", msg.id) is None


def test_pages_before_and_after_have_no_gap_or_repeat(store, stream):
    ids = add(store, stream, 57)
    assert ids == sorted(ids)
    page, more = store.page(stream, limit=20)
    assert [m.id for m in page] == ids[-20:] and more
    collected = []
    before = None
    while True:
        page, more = store.page(stream, before=before, limit=10)
        collected = [m.id for m in page] + collected
        if not more:
            break
        before = page[0].id
    assert collected == ids
    forward = []
    after = 0
    while True:
        page, more = store.page(stream, after=after, limit=13)
        forward += [m.id for m in page]
        if not more:
            break
        after = page[-1].id
    assert forward == ids
    assert store.last_id(stream) == ids[-1]
    assert store.count_after(stream, ids[49]) == 7
    assert store.count_after(stream, None, exclude_author=1) == 0


def test_client_id_idempotency(store, stream):
    first, created = store.append(NewMessage(stream=stream, author_id=1, content="a", client_id="k"))
    again, created_again = store.append(NewMessage(stream=stream, author_id=1, content="a (retry)", client_id="k"))
    assert created and not created_again and again.id == first.id and again.content == "a"
    other, created_other = store.append(NewMessage(stream=stream, author_id=2, content="b", client_id="k"))
    assert created_other and other.id != first.id
    assert store.find_by_client_id(stream, 1, "k").id == first.id


def test_read_pointers_only_move_forward(store, stream):
    ids = add(store, stream, 3)
    assert store.set_read_pointer(stream, 5, ids[1])
    assert not store.set_read_pointer(stream, 5, ids[0])
    assert not store.set_read_pointer(stream, 5, ids[1])
    assert store.set_read_pointer(stream, 6, ids[0])
    pointers = store.read_pointers(stream)
    assert pointers[5].message_id == ids[1] and pointers[6].message_id == ids[0]


def test_pins_and_grades(store, stream):
    ids = add(store, stream, 3)
    assert store.set_pinned(stream, ids[1], pinned=True, by=9).is_pinned
    assert [m.id for m in store.pinned(stream)] == [ids[1]]
    graded = store.set_grade(stream, ids[2], grade="A-", feedback="good", by=9)
    assert (graded.grade, graded.feedback, graded.graded_by) == ("A-", "good", 9)
    assert store.set_grade(stream, 12345, grade="B", feedback=None, by=9) is None


def test_hide_and_delete(store, stream):
    ids = add(store, stream, 3)
    assert store.set_hidden(stream, ids[0], True)
    assert store.delete(stream, ids[1])
    assert [m.id for m in store.page(stream, limit=10)[0]] == [ids[2]]
    assert store.get(stream, ids[0]) is None and store.get(stream, ids[1]) is None
    assert store.set_hidden(stream, ids[0], False)
    assert [m.id for m in store.page(stream, limit=10)[0]] == [ids[0], ids[2]]


def test_update_content(store, stream):
    (mid,) = add(store, stream, 1)
    updated = store.update_content(stream, mid, content="final", edited=True)
    assert updated.content == "final" and updated.edited_at is not None


def _append_many(backend: str, stream: str, author: int, n: int, queue) -> None:
    from django.db import connections

    connections.close_all()
    s = build_store(backend)
    queue.put([s.append(NewMessage(stream=stream, author_id=author, content=f"p{author}-{i}"))[0].id for i in range(n)])
    connections.close_all()


def test_concurrent_appends_from_two_processes_stay_ordered(store, stream):
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_append_many, args=(store.name, stream, author, 60, queue)) for author in (101, 102)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    for ids in results:
        assert ids == sorted(ids), "a process saw its own ids go backwards"
    everything = sorted(results[0] + results[1])
    assert len(set(everything)) == 120
    stored = []
    after = 0
    while True:
        page, more = store.page(stream, after=after, limit=50)
        stored += [m.id for m in page]
        if not more:
            break
        after = page[-1].id
    assert stored == everything
