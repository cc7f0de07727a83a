"""The message lifecycle part of the store contract (PROTOCOL.md part 2):
edits, soft deletes, reactions, threads and the change feed, on every store
on its real server (fixtures: tests/messagestore/stores.py)."""

from __future__ import annotations

from typing import Any

import pytest

from messagestore import MessageStore, NewMessage
from tests.messagestore.stores import add, build_store, in_two_processes

pytestmark = pytest.mark.django_db(transaction=True)


def reply(store: MessageStore, stream: str, root: int, *, author: int = 2, content: str = "re") -> int:
    return store.append(NewMessage(stream=stream, author_id=author, content=content, reply_to=root))[0].id


def test_edit_sets_content_mentions_and_edited_at(store, stream):
    (mid,) = add(store, stream, 1)
    edited = store.edit(stream, mid, content="fixed @bob", mentions=[7])
    assert edited is not None
    assert (edited.content, edited.mentions) == ("fixed @bob", [7]) and edited.edited_at is not None
    again = store.get(stream, mid)
    assert (again.content, again.mentions, again.edited_at) == ("fixed @bob", [7], edited.edited_at)
    assert store.page(stream, limit=5)[0][0].content == "fixed @bob"
    assert store.edit(stream, mid + 1, content="x", mentions=[]) is None


def test_soft_delete_hides_everywhere_and_keeps_the_row(store, stream):
    ids_ = add(store, stream, 3)
    assert store.set_pinned(stream, ids_[1], pinned=True, by=9)
    before = store.soft_delete(stream, ids_[1], by=5)
    assert before is not None and before.id == ids_[1] and before.content == "m1"
    assert store.get(stream, ids_[1]) is None
    assert [m.id for m in store.page(stream, limit=10)[0]] == [ids_[0], ids_[2]]
    assert [m.id for m in store.page(stream, after=0, limit=10)[0]] == [ids_[0], ids_[2]]
    assert store.pinned(stream) == []
    assert store.count_after(stream, None) == 2
    assert store.soft_delete(stream, ids_[1], by=5) is None, "deleted once"
    assert store.edit(stream, ids_[1], content="x", mentions=[]) is None
    assert not store.set_hidden(stream, ids_[1], False), "un-hiding never brings a deleted message back"
    assert store.get(stream, ids_[1]) is None
    assert store.last_id(stream) == ids_[2]
    assert store.soft_delete(stream, ids_[2], by=None) is not None
    assert store.last_id(stream) == ids_[0]


def test_reactions_add_once_remove_and_keep_first_use_order(store, stream):
    a, b = add(store, stream, 2)
    assert store.add_reaction(stream, a, emoji="👍", user_id=1)
    assert not store.add_reaction(stream, a, emoji="👍", user_id=1), "the same user's same emoji once"
    assert store.add_reaction(stream, a, emoji="🎉", user_id=2)
    assert store.add_reaction(stream, a, emoji="👍", user_id=2)
    assert store.add_reaction(stream, a, emoji="❤️", user_id=3)  # with its variation selector
    assert store.add_reaction(stream, b, emoji="👨‍👩‍👧", user_id=1)
    found = store.reactions(stream, [a, b, b + 1])
    assert set(found) == {a, b}
    assert [(r.emoji, r.user_id) for r in found[a]] == [("👍", 1), ("🎉", 2), ("👍", 2), ("❤️", 3)]
    assert [r.emoji for r in found[b]] == ["👨‍👩‍👧"]
    assert store.remove_reaction(stream, a, emoji="👍", user_id=1)
    assert not store.remove_reaction(stream, a, emoji="👍", user_id=1)
    assert not store.remove_reaction(stream, a, emoji="🙂", user_id=1)
    assert [(r.emoji, r.user_id) for r in store.reactions(stream, [a])[a]] == [("🎉", 2), ("👍", 2), ("❤️", 3)]
    assert store.reactions(stream, []) == {}


def test_threads_count_live_replies(store, stream):
    root, other = add(store, stream, 2)
    first = reply(store, stream, root)
    second = reply(store, stream, root, author=3)
    assert store.thread_stats(stream, [root, other]).keys() == {root}
    stats = store.thread_stats(stream, [root])[root]
    assert stats.reply_count == 2
    assert stats.last_reply_at == store.get(stream, second).created_at
    page, more = store.thread_page(stream, root)
    assert [m.id for m in page] == [first, second] and not more
    assert all(m.reply_to == root for m in page)
    page, more = store.thread_page(stream, root, limit=1)
    assert [m.id for m in page] == [first] and more
    assert [m.id for m in store.thread_page(stream, root, after=first)[0]] == [second]
    # Replies are ordinary messages of the stream.
    assert [m.id for m in store.page(stream, limit=10)[0]] == [root, other, first, second]

    assert store.soft_delete(stream, second, by=3) is not None
    stats = store.thread_stats(stream, [root])[root]
    assert stats.reply_count == 1 and stats.last_reply_at == store.get(stream, first).created_at
    assert store.set_hidden(stream, first, True)
    assert store.thread_stats(stream, [root]) == {}
    assert store.thread_page(stream, root) == ([], False)
    assert store.set_hidden(stream, first, False)
    assert store.thread_stats(stream, [root])[root].reply_count == 1


def test_threads_and_reactions_across_buckets(store, stream, fast_clock):
    ids_ = add(store, stream, 6)
    replies = {root: reply(store, stream, root) for root in ids_[::2]}
    for message_id in ids_:
        assert store.add_reaction(stream, message_id, emoji="👍", user_id=message_id % 7)
    assert store.thread_stats(stream, ids_).keys() == set(replies)
    assert store.reactions(stream, ids_).keys() == set(ids_)
    for root, reply_id in replies.items():
        assert [m.id for m in store.thread_page(stream, root)[0]] == [reply_id]


def test_change_feed_numbers_and_pages(store, stream):
    assert store.last_change_id(stream) == 0
    assert store.changes(stream, after=0, limit=10) == []
    (mid,) = add(store, stream, 1)
    kinds = ["updated", "reaction", "reaction", "thread", "pinned", "deleted"]
    assert [store.record_change(stream, mid, kind) for kind in kinds] == [1, 2, 3, 4, 5, 6]
    assert store.last_change_id(stream) == 6
    assert [(c.change_id, c.message_id, c.kind) for c in store.changes(stream, after=0, limit=10)] == [
        (i, mid, kind) for i, kind in enumerate(kinds, 1)
    ]
    assert [c.change_id for c in store.changes(stream, after=2, limit=3)] == [3, 4, 5]
    assert store.changes(stream, after=6, limit=3) == []
    assert store.last_change_id(stream + "0") == 0, "each stream numbers its own"


def _react_many(backend: str, config: dict[str, Any], stream: str, message_id: int, users: range, queue) -> None:
    from django.db import connections

    connections.close_all()
    s = build_store(backend, config)
    added = 0
    for user in users:
        added += s.add_reaction(stream, message_id, emoji="👍", user_id=user)
        added += s.add_reaction(stream, message_id, emoji="🎉", user_id=user % 10)
    queue.put(added)
    connections.close_all()


def test_concurrent_reactions_from_two_processes_lose_nothing(store, backend, stream):
    name, config = backend
    (mid,) = add(store, stream, 1)
    # Both processes add 👍 for users 1..40 (overlapping halves) and 🎉 for users 0..9.
    results = in_two_processes(_react_many, lambda i: (name, config, stream, mid, range(1 + (i - 1) * 20, 31 + (i - 1) * 10)))
    found = store.reactions(stream, [mid])[mid]
    thumbs = {r.user_id for r in found if r.emoji == "👍"}
    party = {r.user_id for r in found if r.emoji == "🎉"}
    assert thumbs == set(range(1, 41)) and party == set(range(10))
    assert sum(results) == len(found) == 50, "each (emoji, user) was added exactly once"


def _record_many(backend: str, config: dict[str, Any], stream: str, n: int, queue) -> None:
    from django.db import connections

    connections.close_all()
    s = build_store(backend, config)
    queue.put([s.record_change(stream, 1, "reaction") for _ in range(n)])
    connections.close_all()


def test_concurrent_changes_from_two_processes_are_numbered_densely(store, backend, stream):
    name, config = backend
    first, second = in_two_processes(_record_many, lambda i: (name, config, stream, 30))
    assert first == sorted(first) and second == sorted(second)
    assert sorted(first + second) == list(range(1, 61))
    assert [c.change_id for c in store.changes(stream, after=0, limit=100)] == list(range(1, 61))


def test_moderators_page_hidden_and_deleted_messages_too(store, stream, fast_clock):
    ids_ = add(store, stream, 5)
    assert store.set_hidden(stream, ids_[1], True)
    assert store.soft_delete(stream, ids_[3], by=7) is not None
    page, more = store.moderation_page(stream, limit=3)
    assert [m.id for m in page] == ids_[2:] and more
    assert [(m.hidden, m.deleted_by) for m in page] == [(False, None), (True, 7), (False, None)]
    assert page[1].deleted_at is not None
    rest, more = store.moderation_page(stream, before=ids_[2], limit=3)
    assert [m.id for m in rest] == ids_[:2] and not more and rest[1].hidden
    assert [m.id for m in store.page(stream, limit=10)[0]] == [ids_[0], ids_[2], ids_[4]], "members still see only the visible ones"
