"""The message lifecycle's services and selectors (workspace_chat.lifecycle,
selectors.change_catch_up): the rules PROTOCOL.md part 2 fixes, on the
configured store (the e2e suite drives the same through daphne)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.sites import site
from django.test import Client
from django.utils import timezone

from messagestore import get_store
from messagestore.models import Message
from tests.schemas import check_chat_event
from tests.workspace_chat.test_services import Listener, send
from wire.errors import Forbidden, Invalid, NotFound
from wire.protocol import ProtocolError
from workspace_chat import lifecycle, protocol, selectors, services

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_and_unlimited")]


@pytest.fixture
def listener(in_memory_layer):
    return Listener()


def test_edit_window(school, settings, monkeypatch):
    message = send(school.carol, school.general, "typo").message
    settings.CHAT_EDIT_WINDOW = 60
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr(lifecycle.timezone, "now", lambda: later)
    with pytest.raises(Forbidden):
        lifecycle.message_edit(user=school.carol, channel_id=school.general.id, message_id=message["id"], content="fixed")
    settings.CHAT_EDIT_WINDOW = 0  # no limit
    edited = lifecycle.message_edit(user=school.carol, channel_id=school.general.id, message_id=message["id"], content="fixed")
    assert edited["message"]["content"] == "fixed"


def test_not_found_comes_before_any_permission_check(school):
    message = send(school.carol, school.general, "mine").message
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=message["id"])
    for call in (
        lambda: lifecycle.message_edit(user=school.bob, channel_id=school.general.id, message_id=message["id"], content="x"),
        lambda: lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=message["id"]),
        lambda: lifecycle.reaction_set(user=school.bob, channel_id=school.general.id, message_id=message["id"], emoji="👍", add=True),
        lambda: services.message_pin(user=school.carol, channel_id=school.general.id, message_id=message["id"]),
        lambda: services.message_grade(user=school.carol, channel_id=school.general.id, message_id=message["id"], grade="A", feedback=None),
        lambda: send(school.carol, school.general, "re", reply_to=message["id"]),
    ):
        with pytest.raises(NotFound):
            call()
    # The channel comes first: an outsider learns nothing about the message.
    with pytest.raises(selectors.ChannelInaccessible):
        lifecycle.message_edit(user=school.dave, channel_id=school.general.id, message_id=message["id"], content="x")


def test_edit_finds_mentions_again(school):
    message = send(school.carol, school.general, "hi @bob").message
    assert message["mentions"] == [school.bob.id]
    edited = lifecycle.message_edit(user=school.carol, channel_id=school.general.id, message_id=message["id"], content="hi @alice")
    assert edited["message"]["mentions"] == [school.alice.id]


def test_staff_delete_any_students_only_their_own(school):
    by_bob = send(school.bob, school.general, "teacher's").message
    by_carol = send(school.carol, school.general, "student's").message
    with pytest.raises(Forbidden):
        lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=by_bob["id"])
    lifecycle.message_delete(user=school.bob, channel_id=school.general.id, message_id=by_carol["id"])
    lifecycle.message_delete(user=school.alice, channel_id=school.general.id, message_id=by_bob["id"])
    assert selectors.message_history(user=school.carol, channel_id=school.general.id, before=None, after=None, limit=50) == ([], False)


def test_the_twentieth_emoji_is_the_last(school):
    message = send(school.carol, school.general, "react").message
    target = {"channel_id": school.general.id, "message_id": message["id"]}
    for codepoint in range(0x1F600, 0x1F614):
        lifecycle.reaction_set(user=school.carol, **target, emoji=chr(codepoint), add=True)
    with pytest.raises(Invalid):
        lifecycle.reaction_set(user=school.carol, **target, emoji="🤔", add=True)
    event, changed = lifecycle.reaction_set(user=school.bob, **target, emoji=chr(0x1F600), add=True)
    assert changed and event["reactions"][0] == {"emoji": "😀", "count": 2, "userIds": sorted([school.bob.id, school.carol.id])}


@pytest.mark.parametrize(
    "value, ok",
    [("👍", True), ("👍🏽", True), ("❤️", True), ("👨‍👩‍👧", True), ("🇫🇷", True), ("x", False), (":smile:", False), ("👍👍", False), ("", False), ("<b>", False), ("👍 ", False)],
)
def test_one_emoji_exactly(value, ok):
    if ok:
        assert protocol.read_emoji({"emoji": value}) == value
    else:
        with pytest.raises(ProtocolError):
            protocol.read_emoji({"emoji": value})


def test_change_catch_up_collapses_per_message_and_kind(school, listener):
    listener.join(school.general.id)
    one = send(school.carol, school.general, "one").message
    two = send(school.carol, school.general, "two").message
    target = {"user": school.carol, "channel_id": school.general.id}
    lifecycle.message_edit(**target, message_id=one["id"], content="one!")
    lifecycle.reaction_set(**target, message_id=one["id"], emoji="👍", add=True)
    lifecycle.message_edit(**target, message_id=one["id"], content="one!!")
    lifecycle.reaction_set(**target, message_id=two["id"], emoji="🎉", add=True)
    lifecycle.message_delete(**target, message_id=two["id"])
    changes, more = selectors.change_catch_up(channel=school.general, after=0)
    assert not more
    assert [(c["type"], c["changeId"]) for c in changes] == [("reaction_updated", 2), ("message_updated", 3), ("message_deleted", 5)]
    for change in changes:
        check_chat_event(change)
    assert changes[1]["message"]["content"] == "one!!" and changes[1]["message"]["reactions"][0]["emoji"] == "👍"
    assert selectors.change_catch_up(channel=school.general, after=5) == ([], False)
    state = selectors.join_state(channel=school.general, after_id=None, changes_after=3)
    assert state.change_id == 5 and [c["changeId"] for c in state.changes] == [5]


def test_change_catch_up_pages_past_500(school, monkeypatch):
    message = send(school.carol, school.general, "busy").message
    monkeypatch.setattr(selectors, "CHANGES_MAX", 5)
    for i in range(8):
        lifecycle.reaction_set(user=school.carol, channel_id=school.general.id, message_id=message["id"], emoji="👍", add=i % 2 == 0)
    first, more = selectors.change_catch_up(channel=school.general, after=0)
    assert more and [c["changeId"] for c in first] == [5], "collapsed: the latest of the first five"
    rest, more = selectors.change_catch_up(channel=school.general, after=5)
    assert not more and [c["changeId"] for c in rest] == [8] and rest[0]["reactions"] == []


def test_moderators_find_a_deleted_message_in_admin_with_who_and_when(school, monkeypatch):
    # The SQL store's own table in admin (every store: tests/messagestore/test_admin_store.py).
    import messagestore
    from messagestore.sql import SqlMessageStore

    monkeypatch.setattr(messagestore, "_store", SqlMessageStore())
    message = send(school.carol, school.general, "oops").message
    lifecycle.message_delete(user=school.bob, channel_id=school.general.id, message_id=message["id"])
    row = Message.objects.get(stream=school.general.stream, message_id=message["id"])
    assert row.hidden and row.deleted_by == school.bob.id and row.deleted_at is not None and row.content == "oops"
    school.alice.is_staff = school.alice.is_superuser = True
    school.alice.save()
    client = Client()
    client.force_login(school.alice)
    page = client.get("/admin/chatcore/message/?deleted_at__isnull=False")
    assert page.status_code == 200 and "oops" in page.content.decode()
    detail = client.get(f"/admin/chatcore/message/{row.pk}/change/")
    assert detail.status_code == 200 and str(school.bob.id) in detail.content.decode()
    assert site.is_registered(Message)


def test_a_page_of_changes_to_a_message_since_deleted_is_never_empty(school, monkeypatch):
    """A page holding only changes of a message deleted since tells its
    deletion, at the page's last change of it, so the client pages on."""
    message = send(school.carol, school.general, "soon gone").message
    monkeypatch.setattr(selectors, "CHANGES_MAX", 5)
    for i in range(8):
        lifecycle.reaction_set(user=school.carol, channel_id=school.general.id, message_id=message["id"], emoji="👍", add=i % 2 == 0)
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=message["id"])
    first, more = selectors.change_catch_up(channel=school.general, after=0)
    assert more and first == [{"type": "message_deleted", "channelId": school.general.id, "messageId": message["id"], "changeId": 5}]
    rest, more = selectors.change_catch_up(channel=school.general, after=5)
    assert not more and [(c["type"], c["changeId"]) for c in rest] == [("message_deleted", 9)]


def test_a_pin_removed_since_is_caught_up_as_unpinned(school):
    message = send(school.carol, school.general, "pinned once").message
    services.message_pin(user=school.bob, channel_id=school.general.id, message_id=message["id"])
    get_store().set_pinned(school.general.stream, message["id"], pinned=False, by=None)  # by hand, no change of its own
    (change,), _ = selectors.change_catch_up(channel=school.general, after=0)
    assert change == {"type": "message_unpinned", "channelId": school.general.id, "messageId": message["id"], "changeId": 1}


def test_two_new_emoji_at_once_on_nineteen_keep_twenty(school, monkeypatch):
    message = send(school.carol, school.general, "react").message
    target = {"channel_id": school.general.id, "message_id": message["id"]}
    for codepoint in range(0x1F600, 0x1F613):  # 19
        lifecycle.reaction_set(user=school.carol, **target, emoji=chr(codepoint), add=True)
    store = get_store()
    stale = store.reactions(school.general.stream, [message["id"]])
    # Bob's different new emoji lands between Alice's count and her add.
    lifecycle.reaction_set(user=school.bob, **target, emoji="🥳", add=True)
    reads = iter([stale])
    real = store.reactions
    monkeypatch.setattr(store, "reactions", lambda stream, ids: next(reads, None) or real(stream, ids))
    with pytest.raises(Invalid):
        lifecycle.reaction_set(user=school.alice, **target, emoji="🤔", add=True)
    monkeypatch.undo()
    emoji = [r["emoji"] for r in selectors.message_reactions(school.general, message["id"])]
    assert len(emoji) == 20 and emoji[-1] == "🥳" and "🤔" not in emoji


def test_replies_need_a_live_thread_but_a_retry_is_answered_as_stored(school):
    root = send(school.carol, school.general, "root").message
    first = send(school.bob, school.general, "first reply", reply_to=root["id"], client_id="r-1").message
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=root["id"])
    with pytest.raises(NotFound):
        send(school.alice, school.general, "reply to the reply of a deleted root", reply_to=first["id"])
    again = send(school.bob, school.general, "first reply", reply_to=root["id"], client_id="r-1")
    assert not again.created and again.message["id"] == first["id"]


def test_a_hidden_message_can_be_shown_again_and_members_hear_of_it(school, listener):
    message = send(school.carol, school.general, "borderline").message
    listener.join(school.general.id)
    assert services.message_moderate(channel_id=school.general.id, message_id=message["id"], action="hide")
    assert listener.next()["type"] == "message_deleted"
    assert services.message_moderate(channel_id=school.general.id, message_id=message["id"], action="unhide")
    shown = listener.next()
    assert shown["type"] == "message_updated" and shown["message"]["id"] == message["id"] and shown["changeId"] == 2
    assert [m["id"] for m in selectors.message_history(user=school.alice, channel_id=school.general.id, before=None, after=None, limit=50)[0]] == [message["id"]]
    assert not services.message_moderate(channel_id=school.general.id, message_id=message["id"], action="unhide"), "shown already"
    lifecycle.message_delete(user=school.carol, channel_id=school.general.id, message_id=message["id"])
    assert not services.message_moderate(channel_id=school.general.id, message_id=message["id"], action="unhide"), "deleted stays deleted"
