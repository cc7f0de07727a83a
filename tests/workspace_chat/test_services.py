"""Services and access selectors of workspace chat, with the events they
broadcast (caught by joining the channel's group on the channel layer)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from messagestore import get_store
from realtime.events import EVENT_TYPE, channel_group, payload_of
from tests.schemas import check_chat_event, check_message
from wire.errors import Forbidden, Invalid, NotFound, RateLimited
from workspace_chat import selectors, services

# Broadcasts leave on commit, so these tests run outside a wrapping transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fast_and_unlimited(settings):
    # Production password hashing costs ~0.3 s per user; the rate-limit tests lower the limit themselves.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.CHAT_RATE_LIMIT_MESSAGES = 100_000


class Listener:
    """A channel-layer consumer stand-in: joins channel groups, reads events."""

    def __init__(self) -> None:
        self.layer = get_channel_layer()
        self.name = async_to_sync(self.layer.new_channel)()

    def join(self, channel_id: int) -> None:
        async_to_sync(self.layer.group_add)(channel_group(channel_id), self.name)

    def next(self, timeout: float = 2.0) -> dict[str, Any]:
        envelope = async_to_sync(self._receive)(timeout)
        assert envelope is not None, "no event was broadcast"
        assert envelope["type"] == EVENT_TYPE
        check_chat_event(payload_of(envelope))
        return payload_of(envelope)

    def silent(self, timeout: float = 0.05) -> bool:
        return async_to_sync(self._receive)(timeout) is None

    async def _receive(self, timeout: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self.layer.receive(self.name), timeout)
        except TimeoutError:
            return None


@pytest.fixture
def listener(in_memory_layer):
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield Listener()
    async_to_sync(layer.flush)()


def send(user, channel, content: str = "hello", **kw: Any) -> services.SendResult:
    channel_id = channel if isinstance(channel, int) else channel.id
    return services.message_send(user=user, channel_id=channel_id, content=content, **kw)


def history(user, channel) -> list[dict[str, Any]]:
    results, _ = selectors.message_history(user=user, channel_id=channel.id, before=None, after=None, limit=100)
    return results


def stored_ids(channel) -> list[int]:
    messages, _ = get_store().page(channel.stream, limit=500)
    return [m.id for m in messages]


def expect_new_message(listener: Listener, channel, message: dict[str, Any]) -> None:
    event = listener.next()
    assert event == {"type": "new_message", "channelId": channel.id, "message": message}


def assert_nothing_broadcast_before(listener: Listener, school) -> None:
    """Bob posts a marker; it must be the very next event on the channel."""
    marker = send(school.bob, school.general, "marker").message
    expect_new_message(listener, school.general, marker)


# --- message_send ------------------------------------------------------------------


def test_send_persists_returns_and_broadcasts_after_commit(school, listener):
    listener.join(school.general.id)
    with transaction.atomic():
        result = send(school.carol, school.general, "hello class")
        assert listener.silent(), "broadcast before the transaction committed"
    assert result.created is True and result.channel_id == school.general.id
    message = result.message
    check_message(message)
    assert message["content"] == "hello class" and message["authorId"] == school.carol.id
    assert (message["authorUsername"], message["authorDisplayName"]) == ("carol", "Carol C")
    assert (message["messageType"], message["clientId"], message["grade"], message["readBy"]) == ("text", None, None, [])
    assert message["isPinned"] is False and message["isAI"] is False
    assert history(school.alice, school.general) == [message]
    expect_new_message(listener, school.general, message)


def test_rolled_back_send_broadcasts_nothing(school, listener):
    listener.join(school.general.id)
    with pytest.raises(RuntimeError), transaction.atomic():
        send(school.carol, school.general, "never happened")
        raise RuntimeError("roll back")
    assert stored_ids(school.general) == []
    assert_nothing_broadcast_before(listener, school)


def test_same_client_id_twice_stores_one_message(school, listener):
    listener.join(school.general.id)
    first = send(school.carol, school.general, "once", client_id="c-1")
    again = send(school.carol, school.general, "once (retry)", client_id="c-1")
    assert first.created is True and again.created is False
    assert again.message["id"] == first.message["id"] and again.message["content"] == "once"
    assert again.message["clientId"] == "c-1"
    assert stored_ids(school.general) == [first.message["id"]]
    expect_new_message(listener, school.general, first.message)
    assert_nothing_broadcast_before(listener, school)  # the retry is not broadcast again


def test_client_id_is_per_author_and_per_channel(school):
    carols = send(school.carol, school.general, "carol", client_id="same")
    bobs = send(school.bob, school.general, "bob", client_id="same")
    assert carols.created and bobs.created
    assert carols.message["id"] != bobs.message["id"]
    assert [m["content"] for m in history(school.alice, school.general)] == ["carol", "bob"]
    in_staff = send(school.alice, school.staff, "staff", client_id="same")
    in_general = send(school.alice, school.general, "general", client_id="same")
    assert in_staff.created and in_general.created


def test_ids_strictly_increase_in_send_order(school):
    authors = (school.alice, school.bob, school.carol)
    sent = [send(authors[i % 3], school.general, f"m{i}").message["id"] for i in range(30)]
    assert all(a < b for a, b in itertools.pairwise(sent))
    assert all(0 < i < 2**53 for i in sent)
    assert [m["id"] for m in history(school.alice, school.general)] == sent


@pytest.mark.parametrize(
    "content",
    ["<script>alert('x')</script>", "<b>bold</b> &amp; &lt;tag&gt;", "  spaced\n\tlines  ", "emoji 🎉 and \"quotes\""],
)
def test_content_is_stored_verbatim_as_plain_text(school, content):
    message = send(school.carol, school.general, content).message
    assert message["content"] == content
    assert history(school.alice, school.general)[0]["content"] == content


# --- mentions -----------------------------------------------------------------------


def mentions_of(school, content: str, channel=None) -> list[int]:
    return send(school.alice, channel or school.general, content).message["mentions"]


def test_mentions_resolve_to_workspace_members_only(school):
    assert mentions_of(school, "hi @bob") == [school.bob.id]
    assert mentions_of(school, "@bob and @carol, see @nobody") == sorted([school.bob.id, school.carol.id])
    assert mentions_of(school, "@dave is not in this workspace") == []
    assert mentions_of(school, "write to x@bob.org, bob@example.com or x@bob") == []
    assert mentions_of(school, "no mention here") == []
    assert mentions_of(school, "@bob @bob (@bob)") == [school.bob.id]


def test_mention_at_the_end_of_a_sentence(school):
    assert mentions_of(school, "Thanks @bob.") == [school.bob.id]
    assert mentions_of(school, "Ask @carol...") == [school.carol.id]


def test_mentions_ignore_case_like_usernames_do(school):
    # Registration treats usernames case-insensitively ("Bob" is taken once "bob" exists).
    assert mentions_of(school, "hi @Bob") == [school.bob.id]


def test_mentions_in_a_private_channel_only_reach_its_members(school):
    assert mentions_of(school, "@bob @alice", school.staff) == [school.alice.id]


# --- roles --------------------------------------------------------------------------


def test_announcement_channel_is_for_staff(school, listener):
    listener.join(school.news.id)
    listener.join(school.general.id)
    with pytest.raises(Forbidden):
        send(school.carol, school.news, "hi all")
    assert stored_ids(school.news) == []
    assert_nothing_broadcast_before(listener, school)
    posted = send(school.bob, school.news, "exam on Friday").message
    assert history(school.carol, school.news) == [posted]


@pytest.mark.parametrize("message_type", ["announcement", "assignment"])
def test_students_cannot_send_staff_message_types(school, listener, message_type):
    listener.join(school.general.id)
    with pytest.raises(Forbidden):
        send(school.carol, school.general, "hi", message_type=message_type)
    assert stored_ids(school.general) == []
    assert_nothing_broadcast_before(listener, school)
    assert send(school.bob, school.general, "task", message_type=message_type).message["messageType"] == message_type


# --- rate limit -----------------------------------------------------------------------


def test_rate_limit_refuses_and_stores_nothing(school, listener, settings):
    settings.CHAT_RATE_LIMIT_MESSAGES = 3
    settings.CHAT_RATE_LIMIT_WINDOW = 3600
    listener.join(school.general.id)
    sent = [send(school.carol, school.general, f"m{i}", client_id=f"c{i}").message for i in range(3)]
    for message in sent:
        expect_new_message(listener, school.general, message)
    with pytest.raises(RateLimited) as limited:
        send(school.carol, school.general, "one too many", client_id="c3")
    assert limited.value.retry_after > 0
    assert stored_ids(school.general) == [m["id"] for m in sent]
    retry = send(school.carol, school.general, "m1", client_id="c1")  # a safe retry is not limited
    assert retry.created is False and retry.message["id"] == sent[1]["id"]
    with pytest.raises(RateLimited):
        send(school.carol, school.general, "still limited")
    assert stored_ids(school.general) == [m["id"] for m in sent]
    assert_nothing_broadcast_before(listener, school)  # bob has his own bucket


# --- read pointers ---------------------------------------------------------------------


def test_read_mark_moves_forward_only_and_shows_in_read_by(school, listener):
    m1, m2, m3, m4 = (send(school.bob, school.general, f"m{i}").message for i in range(4))
    listener.join(school.general.id)
    event = services.read_mark(user=school.carol, channel_id=school.general.id, message_id=m3["id"])
    expected = {"type": "message_read", "channelId": school.general.id, "messageId": m3["id"], "userId": school.carol.id}
    assert event == expected
    assert listener.next() == expected
    back = services.read_mark(user=school.carol, channel_id=school.general.id, message_id=m1["id"])
    assert back["messageId"] == m3["id"]
    assert_nothing_broadcast_before(listener, school)
    read_by = {m["id"]: m["readBy"] for m in history(school.alice, school.general)}
    assert [read_by[m["id"]] for m in (m1, m2, m3, m4)] == [[school.carol.id]] * 3 + [[]]
    services.read_mark(user=school.alice, channel_id=school.general.id, message_id=m4["id"])
    read_by = {m["id"]: m["readBy"] for m in history(school.alice, school.general)}
    assert read_by[m3["id"]] == sorted([school.alice.id, school.carol.id]) and read_by[m4["id"]] == [school.alice.id]


def test_read_mark_of_a_message_elsewhere_is_not_found(school):
    other = send(school.bob, school.news, "news").message
    with pytest.raises(NotFound):
        services.read_mark(user=school.carol, channel_id=school.general.id, message_id=other["id"])
    with pytest.raises(NotFound):
        services.read_mark(user=school.dave, channel_id=school.news.id, message_id=other["id"])


# --- pin, grade, moderation -------------------------------------------------------------


def test_pin_is_for_staff_and_broadcast(school, listener):
    message = send(school.carol, school.general, "pin me").message
    listener.join(school.general.id)
    with pytest.raises(Forbidden):
        services.message_pin(user=school.carol, channel_id=school.general.id, message_id=message["id"])
    assert_nothing_broadcast_before(listener, school)
    services.message_pin(user=school.bob, channel_id=school.general.id, message_id=message["id"])
    assert listener.next() == {
        "type": "message_pinned",
        "channelId": school.general.id,
        "messageId": message["id"],
        "pinnedBy": {"userId": school.bob.id, "username": "bob"},
        "changeId": 1,
    }
    assert [m["id"] for m in selectors.channel_pins(user=school.carol, channel_id=school.general.id)] == [message["id"]]
    with pytest.raises(NotFound):
        services.message_pin(user=school.bob, channel_id=school.general.id, message_id=message["id"] + 12345)


def test_a_grade_reaches_only_the_author_and_staff(school, listener, make_user):
    """Grades are private (PROTOCOL.md part 2): the grading's message_updated
    goes to the author's and the staff's connections, not to the channel."""
    from realtime.events import user_group

    make_user("erin")
    services.workspace_member_add(actor=school.alice, workspace_id=school.workspace.id, username="erin", role="student")
    erin = type(school.carol).objects.get(username="erin")
    message = send(school.carol, school.general, "essay").message
    listener.join(school.general.id)
    people = {}
    for user in (school.alice, school.bob, school.carol, erin):
        people[user.username] = Listener()
        async_to_sync(people[user.username].layer.group_add)(user_group(user.id), people[user.username].name)
    target = {"channel_id": school.general.id, "message_id": message["id"]}
    with pytest.raises(Forbidden):
        services.message_grade(user=school.carol, **target, grade="A+", feedback=None)
    graded = services.message_grade(user=school.bob, **target, grade="B+", feedback="Cite sources")
    check_message(graded)
    assert graded["grade"]["value"] == "B+" and graded["grade"]["feedback"] == "Cite sources" and graded["id"] == message["id"]
    for name in ("alice", "bob", "carol"):
        assert people[name].next() == {"type": "message_updated", "channelId": school.general.id, "message": graded, "changeId": 0}
    assert people["erin"].silent() and listener.silent(), "neither a classmate nor the channel hears of it"
    assert history(school.carol, school.general)[0]["grade"]["value"] == "B+"
    assert history(erin, school.general)[0]["grade"] is None


@pytest.mark.parametrize("action", ["hide", "delete"])
def test_moderation_removes_the_message_from_history(school, listener, action):
    keep, bad = send(school.carol, school.general, "fine").message, send(school.carol, school.general, "rude").message
    listener.join(school.general.id)
    assert services.message_moderate(channel_id=school.general.id, message_id=bad["id"], action=action) is True
    assert listener.next() == {"type": "message_deleted", "channelId": school.general.id, "messageId": bad["id"], "changeId": 1}
    assert [m["id"] for m in history(school.alice, school.general)] == [keep["id"]]
    assert get_store().get(school.general.stream, bad["id"]) is None
    listed = {c["id"]: c for c in selectors.channel_list(school.alice, school.workspace)}[school.general.id]
    assert (listed["unreadCount"], listed["lastMessageId"]) == (1, keep["id"])


def test_hidden_message_is_kept_but_deleted_is_gone(school):
    hidden, deleted = send(school.carol, school.general, "a").message, send(school.carol, school.general, "b").message
    services.message_moderate(channel_id=school.general.id, message_id=hidden["id"], action="hide")
    services.message_moderate(channel_id=school.general.id, message_id=deleted["id"], action="delete")
    assert history(school.alice, school.general) == []
    store = get_store()
    assert store.set_hidden(school.general.stream, hidden["id"], False) is True  # kept: it can come back
    assert store.set_hidden(school.general.stream, deleted["id"], False) is False  # gone
    assert [m["id"] for m in history(school.alice, school.general)] == [hidden["id"]]
    assert services.message_moderate(channel_id=school.general.id, message_id=deleted["id"], action="delete") is False


# --- DMs and access ------------------------------------------------------------------------


def test_dm_get_or_create_from_both_sides_is_one_channel(school):
    dm, created = services.dm_get_or_create(actor=school.carol, workspace_id=school.workspace.id, user_id=school.bob.id)
    again, created_again = services.dm_get_or_create(actor=school.bob, workspace_id=school.workspace.id, user_id=school.carol.id)
    assert created is True and created_again is False and again.id == dm.id
    assert dm.kind == "dm" and dm.is_restricted
    assert selectors.channel_member_ids(dm) == sorted([school.bob.id, school.carol.id])


@pytest.mark.parametrize("who", ["self", "dave"])
def test_dm_with_self_or_outsider_is_refused(school, who):
    target = school.carol if who == "self" else school.dave
    with pytest.raises(Invalid):
        services.dm_get_or_create(actor=school.carol, workspace_id=school.workspace.id, user_id=target.id)


def test_access_channel_refuses_everyone_who_may_not_see_it(school):
    dm, _ = services.dm_get_or_create(actor=school.carol, workspace_id=school.workspace.id, user_id=school.bob.id)
    refused = [
        (school.carol, school.staff.id),  # private channel, not a member
        (school.bob, school.staff.id),  # staff role does not open a private channel
        (school.alice, dm.id),  # third party to a DM, even the admin
        (school.dave, school.general.id),  # not in the workspace
        (school.dave, dm.id),
        (school.carol, 999999),  # does not exist
    ]
    for user, channel_id in refused:
        with pytest.raises(NotFound):
            selectors.access_channel(user, channel_id)
        with pytest.raises(NotFound):
            send(user, channel_id, "let me in")
    assert selectors.access_channel(school.carol, dm.id).channel.id == dm.id
    assert selectors.access_channel(school.alice, school.staff.id).is_staff
    assert selectors.access_channel(school.carol, school.general.id).role == "student"
