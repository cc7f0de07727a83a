"""realtime.reorder: a channel's new messages put back in order once per
process (no sockets; a hand-driven timer), and (property test) that whatever
order the broadcasts arrive in, what is passed on is each event once, and a
channel's new messages in id order unless a wait timed out. The hub with it
on a real channel layer: tests/realtime/test_hub.py."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from realtime.events import Broadcast, envelope
from realtime.reorder import Sequencer

GROUP = "chat.channel.5"


def message(message_id: int, prev_id: int | None, group: str = GROUP) -> Broadcast:
    return Broadcast(envelope(group, {"type": "new_message", "channelId": 5, "message": {"id": message_id}}, prev_id=prev_id))


def other(kind: str = "reaction_updated", group: str = GROUP) -> Broadcast:
    return Broadcast(envelope(group, {"type": kind, "channelId": 5}))


class Clock:
    """call_later by hand: `fire()` ends every wait scheduled so far."""

    def __init__(self) -> None:
        self.timers: list[Timer] = []

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        timer = Timer(delay, callback)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[Timer]:
        return [t for t in self.timers if not t.cancelled and not t.fired]

    def fire(self) -> None:
        for timer in self.pending():
            timer.fired = True
            timer.callback()


class Timer:
    def __init__(self, delay: float, callback: Callable[[], None]) -> None:
        self.delay, self.callback = delay, callback
        self.cancelled = self.fired = False

    def cancel(self) -> None:
        self.cancelled = True


def sequencer() -> tuple[Sequencer, list[Broadcast], Clock]:
    out: list[Broadcast] = []
    clock = Clock()
    return Sequencer(out.append, 0.1, clock.call_later), out, clock


def ids(events: list[Broadcast]) -> list[int | str]:
    return [e.message_id if e.message_id is not None else e.kind for e in events]


def test_in_order_passes_at_once_and_the_first_message_of_a_group_sets_where_it_stands():
    seq, out, clock = sequencer()
    for event in (message(7, 3), message(8, 7), other(), message(9, 8)):
        seq.put(event)
    assert ids(out) == [7, 8, "reaction_updated", 9] and not clock.timers and seq.held == 0


def test_a_message_that_overtook_its_predecessor_waits_for_it_with_everything_after_it():
    seq, out, clock = sequencer()
    seq.put(message(10, 9))
    seq.put(message(12, 11))  # 11 is on its way through another process
    seq.put(other("message_edited"))  # may be about 12: stays behind it
    seq.put(message(13, 12))
    assert ids(out) == [10] and seq.holding() == 3 and len(clock.pending()) == 1
    seq.put(message(11, 10))
    assert ids(out) == [10, 11, 12, "message_edited", 13]
    assert seq.holding() == 0 and not clock.pending() and clock.timers[0].cancelled
    assert (seq.held, seq.timed_out) == (1, 0)


def test_a_predecessor_that_never_comes_ends_the_wait_and_the_held_go_out_as_they_are():
    seq, out, clock = sequencer()
    seq.put(message(10, 9))
    seq.put(message(12, 11))
    seq.put(message(13, 12))
    clock.fire()  # 11's broadcast was lost: the connections fill the gap from the store
    assert ids(out) == [10, 12, 13] and seq.timed_out == 1 and seq.holding() == 0
    seq.put(message(14, 13))
    assert ids(out) == [10, 12, 13, 14]
    seq.put(message(11, 10))  # late after all: passed on, the connections skip it
    assert ids(out)[-1] == 11


def test_two_gaps_one_after_the_other_and_groups_are_apart():
    seq, out, clock = sequencer()
    seq.put(message(1, 0))
    seq.put(message(1, 0, group="chat.channel.6"))
    seq.put(message(4, 3))
    seq.put(message(3, 2))
    seq.put(message(2, 1, group="chat.channel.6"))  # another channel: not held
    assert ids(out) == [1, 1, 2]
    seq.put(message(2, 1))
    assert ids(out) == [1, 1, 2, 2, 3, 4] and not clock.pending()


def test_flush_reset_and_forget():
    seq, out, clock = sequencer()
    seq.put(message(1, 0))
    seq.put(message(3, 2))
    seq.flush(GROUP)  # a control message of the group must not overtake it
    assert ids(out) == [1, 3] and not clock.pending()
    seq.put(message(5, 4))
    seq.reset()  # the layer failed: passed on, and no gap assumed afterwards
    seq.put(message(9, 8))
    assert ids(out) == [1, 3, 5, 9] and not clock.pending()
    seq.forget(GROUP)
    seq.put(message(20, 19))
    assert ids(out)[-1] == 20


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=12), st.data())
def test_any_arrival_order_gives_each_event_once_and_messages_in_order_unless_a_wait_ended(delays, data):
    # A stream of messages 1..n (each one's prev_id the one before), each
    # overtaken by up to 3 later ones, with a reaction after some; now and
    # then a wait ends before the missing one comes.
    n = len(delays)
    arrivals = sorted(range(1, n + 1), key=lambda i: i + delays[i - 1] + 0.5 * (i % 2))
    seq, out, clock = sequencer()
    seq.put(message(0, None))
    timed_out = False
    sent = 1
    for i in arrivals:
        seq.put(message(i, i - 1))
        sent += 1
        if data.draw(st.booleans(), label=f"reaction after {i}"):
            seq.put(other())
            sent += 1
        if clock.pending() and data.draw(st.integers(0, 9), label="wait ends") == 0:
            clock.fire()
            timed_out = True
    clock.fire()
    messages = [e.message_id for e in out if e.kind == "new_message"]
    assert sorted(messages) == list(range(0, n + 1)) and len(out) == sent  # each once, nothing left held
    if not timed_out:
        assert messages == list(range(0, n + 1))
        assert seq.timed_out == 0


def change(change_id: int, kind: str = "reaction_updated", group: str = GROUP) -> Broadcast:
    return Broadcast(envelope(group, {"type": kind, "channelId": 5}, change_id=change_id))


def changes(events: list[Broadcast]) -> list[int | None]:
    return [e.change_id for e in events]


def test_changes_wait_for_a_missing_change_id_and_messages_and_changes_keep_their_own_order():
    seq, out, clock = sequencer()
    seq.put(change(4))
    seq.put(change(6))  # 5 (another member's reaction, through another process) is on its way
    seq.put(message(30, 29))  # the first message seen: sets where messages stand, waits behind 6
    seq.put(change(7, "message_updated"))
    assert changes(out) == [4] and seq.holding() == 3
    seq.put(change(5))
    assert changes(out) == [4, 5, 6, None, 7] and ids(out)[3] == 30 and not clock.pending()
    seq.put(change(9))
    clock.fire()  # 8 never came: the connections read it from the store
    assert changes(out)[-1] == 9 and seq.timed_out == 1
    seq.put(change(10))
    assert changes(out)[-1] == 10 and not clock.pending()


@settings(max_examples=200, deadline=None)
@given(st.permutations(list(range(2, 12))))
def test_changes_in_any_arrival_order_come_out_in_order(arrival):
    seq, out, clock = sequencer()
    seq.put(change(1))
    for change_id in arrival:
        seq.put(change(change_id))
    assert changes(out) == list(range(1, 12)) and not clock.pending() and seq.timed_out == 0
