"""A channel's new messages put back in order once per process, before its
connections see them (realtime.hub uses it; no I/O here but a timer).

Messages of one channel sent through different server processes can reach
another process's hub out of order: each sender broadcasts after its own
commit, so a message committed later may be broadcast first. Every
connection would then find `prev_id` above what it was given and read the
missing message from the store itself (realtime.delivery, `FillGap`): with
1,000 members in the channel that is 1,000 store reads on the process's one
database thread for one overtaking, and at 100 messages a second through
three processes the fan-out collapsed (8,000 deliveries/s, p50 14 s, where
one process sending alone delivered 60,000/s: bench/run.py `--only fed`).

Changes (edits, deletes, reactions, pins, thread counts) are the same
with their dense `change_id`s (each channel's 1, 2, 3...; a connection finding
one missing reads the changes between, `FillChanges`).

So the hub holds a new message whose `prev_id` it has not passed on yet, or a
change whose `change_id` is more than one past the newest it passed on, for
up to `wait` seconds, and everything of its group that arrives after it
(edits, reactions, typing: nothing overtakes what it may refer to); a
message that arrives meanwhile goes in its place, and what is no longer
waiting on anything goes out in order. After `wait` the held events go out
as they are, and connections fill the gap from the store as before (a
broadcast really lost, or a sender stalled). Correctness stays with the
connections (realtime.delivery): this only saves them the store reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from realtime.events import Broadcast
from wire.metrics import REORDERED


class Timer(Protocol):
    def cancel(self) -> None: ...


class Sequencer:
    """Per group: the newest message id passed on, and what waits behind a
    gap. `deliver` is called with every event, once, in order;
    `call_later(delay, callback)` schedules the end of a wait (the event
    loop's call_later)."""

    def __init__(self, deliver: Callable[[Broadcast], None], wait: float, call_later: Callable[[float, Callable[[], None]], Timer]) -> None:
        self._deliver = deliver
        self._wait = wait
        self._call_later = call_later
        self._last: dict[str, int] = {}  # newest message id passed on
        self._last_change: dict[str, int] = {}  # newest change id passed on
        self._held: dict[str, deque[Broadcast]] = {}
        self._timers: dict[str, Timer] = {}
        self.held = 0  # events ever held (a gap seen)
        self.timed_out = 0  # waits that ended without the gap filled

    def put(self, event: Broadcast) -> None:
        group = event.group
        held = self._held.get(group)
        if held is not None:
            _insert(held, event)
            self._release(group)
        elif self._behind_gap(event):
            self.held += 1
            REORDERED.labels("held").inc()
            self._timers[group] = self._call_later(self._wait, lambda: self._timed_out(group))
            self._held[group] = deque((event,))
        else:
            self._pass(event)

    def flush(self, group: str) -> None:
        """Pass on what `group` holds, as it is (before a control message of
        the group, or when the layer fails)."""
        held = self._held.pop(group, None)
        timer = self._timers.pop(group, None)
        if timer is not None:
            timer.cancel()
        for event in held or ():
            self._pass(event)

    def flush_all(self) -> None:
        for group in list(self._held):
            self.flush(group)

    def clear(self) -> None:
        """The hub closes: drop what is held, end every wait."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._held.clear()
        self._last.clear()
        self._last_change.clear()

    def reset(self) -> None:
        """Broadcasts may have been lost (the layer failed): pass on what is
        held and start every group afresh."""
        self.flush_all()
        self._last.clear()
        self._last_change.clear()

    def forget(self, group: str) -> None:
        """The process left `group`."""
        self.flush(group)
        self._last.pop(group, None)
        self._last_change.pop(group, None)

    def holding(self) -> int:
        return sum(len(held) for held in self._held.values())

    # -- inside -----------------------------------------------------------------

    def _behind_gap(self, event: Broadcast) -> bool:
        """A new message whose predecessor has not been passed on yet, or a
        change with one missing before it."""
        if event.kind == "new_message":
            if event.prev_id is None or event.message_id is None:
                return False
            last = self._last.get(event.group)
            return last is not None and event.prev_id > last and event.message_id > last
        change_id = event.change_id
        if change_id is None:
            return False
        last_change = self._last_change.get(event.group)
        return last_change is not None and change_id > last_change + 1

    def _pass(self, event: Broadcast) -> None:
        if event.kind == "new_message":
            message_id = event.message_id
            if message_id is not None:
                last = self._last.get(event.group)
                if last is None or message_id > last:
                    self._last[event.group] = message_id
        elif event.change_id is not None:
            last_change = self._last_change.get(event.group)
            if last_change is None or event.change_id > last_change:
                self._last_change[event.group] = event.change_id
        self._deliver(event)

    def _release(self, group: str) -> None:
        held = self._held[group]
        while held and not self._behind_gap(held[0]):
            self._pass(held.popleft())
        if not held:
            del self._held[group]
            self._timers.pop(group).cancel()

    def _timed_out(self, group: str) -> None:
        if group in self._held:
            self.timed_out += 1
            REORDERED.labels("timed_out").inc()
            self._timers.pop(group, None)
            self.flush(group)


def _insert(held: deque[Broadcast], event: Broadcast) -> None:
    """A new message goes before the first held message with a higher id,
    a change before the first held change with a higher change id (it came
    first, so before whatever followed that one); every other event after
    everything held. After a stall the hub may hold thousands: what arrives
    in order is appended at once."""
    last = held[-1]
    if last.kind == event.kind == "new_message" and (last.message_id or 0) < (event.message_id or 0):
        held.append(event)
        return
    if event.kind == "new_message":
        message_id = event.message_id
        if message_id is not None:
            for i, other in enumerate(held):
                if other.kind == "new_message" and other.message_id is not None and other.message_id > message_id:
                    held.insert(i, event)
                    return
    elif event.change_id is not None:
        change_id = event.change_id
        for i, other in enumerate(held):
            if other.kind != "new_message" and other.change_id is not None and other.change_id > change_id:
                held.insert(i, event)
                return
    held.append(event)
