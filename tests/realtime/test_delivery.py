"""realtime.delivery without sockets: every decision a connection's session
makes about broadcasts and its own answers, and (property test) that a
consumer following it gives each message once, in id order, whatever order
the broadcasts arrive in."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.delivery import DELIVER, SKIP, ChannelSession, DeliverySession, FillChanges, FillGap
from realtime.events import Broadcast, envelope

ME = "conn.me.1"


def broadcast(kind: str = "new_message", *, channel: int = 5, message_id: int | None = None, prev_id: int | None = None, **skip) -> Broadcast:
    payload: dict = {"type": kind, "channelId": channel}
    if message_id is not None:
        payload["message"] = {"id": message_id}
    return Broadcast(envelope(f"chat.channel.{channel}", payload, prev_id=prev_id, **skip))


def session(*, newest: int = 0, floor: int = 0) -> ChannelSession:
    s = ChannelSession(connection=ME, user_id=7)
    s.join(5, newest=newest, floor=floor)
    return s


def test_only_joined_channels_and_never_our_own_copy():
    s = session()
    assert s.decide(broadcast("user_typing", channel=6)) is SKIP
    assert s.decide(broadcast("user_typing")) is DELIVER
    assert s.decide(broadcast("user_typing", skip_user=7)) is SKIP, "typing skips the typist's user"
    assert s.decide(broadcast(message_id=10, prev_id=0, skip_channel=ME)) is SKIP, "our own send came as the direct answer"
    assert s.leave(5) and not s.leave(5)
    assert s.decide(broadcast("user_typing")) is SKIP, "a broadcast that raced the leave"


def test_messages_in_order_once_and_a_gap_is_filled_first():
    s = session(newest=10, floor=10)
    first = broadcast(message_id=11, prev_id=10)
    assert s.decide(first) is DELIVER
    s.delivered(first)
    assert s.decide(first) is SKIP, "a message is given once"
    overtaking = broadcast(message_id=14, prev_id=13)
    assert s.decide(overtaking) == FillGap(5, after=11, before=14), "12 and 13 are still on their way"
    s.delivered(overtaking)  # the consumer wrote the gap, then 14
    assert s.decide(broadcast(message_id=12, prev_id=11)) is SKIP
    assert s.decide(broadcast(message_id=13, prev_id=12)) is SKIP
    assert s.cursors[5].delivered == 14


def test_without_prev_id_only_the_catch_up_page_is_known():
    s = session(newest=30, floor=20)
    assert s.decide(broadcast(message_id=20)) is SKIP, "in the join's catch-up page"
    assert s.decide(broadcast(message_id=21)) is DELIVER


def test_other_channel_events_pass_once_joined():
    s = session()
    assert s.decide(broadcast("message_pinned", message_id=3)) is DELIVER
    s.delivered(broadcast("message_pinned", message_id=99))
    assert s.cursors[5].delivered == 0, "only new messages move the cursor"


def test_own_answer_fills_what_lies_below_it():
    s = session(newest=10, floor=10)
    assert s.decide_own(5, 11, 10) is DELIVER
    s.given(5, 11)
    assert s.decide_own(5, 14, 12) == FillGap(5, after=11, before=14), "12 went to another connection first"
    assert s.decide_own(5, 15, None) == FillGap(5, after=11, before=15), "a replay does not know its predecessor"
    s.given(5, 15)
    assert s.decide_own(5, 13, None) is DELIVER, "an old replay below the cursor fills nothing"
    s.given(5, 13)
    assert s.cursors[5].delivered == 15, "the cursor never goes back"
    assert s.decide_own(6, 1, None) is DELIVER, "not joined: the answer alone"


def test_messagepal_sessions_only_skip_their_own_copies():
    s = DeliverySession(connection=ME, user_id=7)
    assert s.decide(broadcast("message_received", channel=0)) is DELIVER
    assert s.decide(broadcast("message_received", channel=0, skip_channel=ME)) is SKIP


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=25), st.data())
def test_any_arrival_order_gives_each_message_once_in_order(count, data):
    """Broadcasts of messages 1..count reach the connection in any order,
    some twice, the connection's own sends among them; a consumer that does
    what the session says writes 1..count, each once, in order."""
    ids = list(range(1, count + 1))
    arrivals = data.draw(st.permutations(ids))
    repeats = data.draw(st.lists(st.sampled_from(ids), max_size=5))
    own = set(data.draw(st.lists(st.sampled_from(ids), max_size=3)))
    s = session()
    written: list[int] = []

    def fill(answer: FillGap) -> None:
        written.extend(i for i in ids if answer.after < i < answer.before)  # the store

    for message_id in [*arrivals, *repeats]:
        if message_id in own:
            answer = s.decide_own(5, message_id, message_id - 1)
            if isinstance(answer, FillGap):
                fill(answer)
            s.given(5, message_id)
            if message_id not in written:  # a repeat here is a retried send: its answer again, not a new message
                written.append(message_id)
            continue
        event = broadcast(message_id=message_id, prev_id=message_id - 1)
        answer = s.decide(event)
        if answer is SKIP:
            continue
        if isinstance(answer, FillGap):
            fill(answer)
        s.delivered(event)
        written.append(message_id)
    assert written == ids, "every message once, in id order"


def change(kind: str = "reaction_updated", *, change_id: int | None, channel: int = 5, **skip) -> Broadcast:
    return Broadcast(envelope(f"chat.channel.{channel}", {"type": kind, "channelId": channel}, change_id=change_id, **skip))


def test_changes_in_order_once_and_a_gap_is_filled_first():
    s = ChannelSession(connection=ME, user_id=7)
    s.join(5, newest=0, floor=0, changes=4)
    assert s.decide(change(change_id=3)) is SKIP, "in what the join returned"
    assert s.decide(change(change_id=5)) is DELIVER
    s.delivered(change(change_id=5))
    gap = s.decide(change("message_updated", change_id=8))
    assert gap == FillChanges(5, after=5, before=8)
    s.delivered(change("message_updated", change_id=8))
    assert s.changes_given(5) == 8
    assert s.decide(change(change_id=7)) is SKIP, "filled already"
    assert s.decide(change("message_updated", change_id=None)) is DELIVER, "a streamed @AI update is not a change"
    assert s.decide(change(change_id=9, skip_channel=ME)) is SKIP, "our own change comes as the direct answer"
    assert s.decide_own_change(5, 9) is DELIVER
    s.given_change(5, 9)
    assert s.decide_own_change(5, 11) == FillChanges(5, after=9, before=11)
    assert s.decide_own_change(6, 3) is DELIVER and s.changes_given(6) is None


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(range(1, 16))), st.integers(0, 5))
def test_any_arrival_order_gives_each_change_once_in_order(arrivals, joined_at):
    """Whatever order a channel's change broadcasts arrive in, a consumer
    that follows the session writes changes joined_at+1..15 once, in order."""
    s = ChannelSession(connection=ME, user_id=7)
    s.join(5, newest=0, floor=0, changes=joined_at)
    written: list[int] = []
    for change_id in arrivals:
        event = change(change_id=change_id)
        answer = s.decide(event)
        if answer is SKIP:
            continue
        if isinstance(answer, FillChanges):
            written += [c for c in range(answer.after + 1, answer.before) if c > joined_at]
        written.append(change_id)
        s.delivered(event)
    assert written == list(range(joined_at + 1, 16))
