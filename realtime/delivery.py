"""What one connection has been given, and what it should get next: a plain
class with no I/O (the `websockets` library's protocol/IO split). The
consumer asks it about every broadcast and every direct answer, does the
writing and the store reads it answers with, then tells it what it wrote.

The guarantee it keeps (PROTOCOL.md, "Rules that hold on every path"): on
each connection a channel's `new_message` events, the sender's own answer
included, arrive in id order and once, so a client that resumes with
`afterId` = the newest id it has seen misses nothing. Per joined channel it
keeps a cursor:

- `delivered`: the newest message id this connection has been given (by the
  join's catch-up, a broadcast, or its own send); every id below it was
  given too, or lies before the join;
- `floor`: the newest id of the join's catch-up page: a broadcast at or below
  it was in that page.

A broadcast of a new message carries `prev_id`, the id of the stream's
message before it, when the store can tell. When `prev_id` is above
`delivered`, another message is still on its way (or was sent by another
process and overtook nothing yet): the answer is `FillGap`, and the consumer
reads the messages between from the store before writing this one.

Changes (edits, deletes, reactions, thread counts, pins: PROTOCOL.md part 2)
are ordered the same way, by their `change_id`: a channel's change ids are
dense (1, 2, 3... each taken as "newest + 1" in the store), so a change above
`changes` + 1 means one is still on its way: `FillChanges` reads the changes
between from the store first. A client that keeps the newest changeId it saw
and rejoins with it therefore misses no change. Changes at or below `changes`
are in what the join returned (SKIP).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from realtime.events import Broadcast


class Decision(enum.Enum):
    SKIP = "skip"
    DELIVER = "deliver"


SKIP = Decision.SKIP
DELIVER = Decision.DELIVER


@dataclass(frozen=True)
class FillGap:
    """Read the channel's messages with `after` < id < `before` from the
    store, write them, then write the event."""

    channel_id: int
    after: int
    before: int


@dataclass(frozen=True)
class FillChanges:
    """Read the channel's change events with `after` < changeId < `before`
    from the store, write them, then write the event."""

    channel_id: int
    after: int
    before: int


Answer = Decision | FillGap | FillChanges


@dataclass
class Cursor:
    channel_id: int
    delivered: int
    floor: int
    # The newest change id this connection has been given (every one below
    # it too, or it lies before the join).
    changes: int = 0


class DeliverySession:
    """The skip rules every connection has: the sender's own connection gets
    its event as a direct answer (`skip_channel`), and typing skips the
    typist's user (`skip_user`). MessagePal connections use it as it is."""

    def __init__(self, *, connection: str, user_id: int) -> None:
        self.connection = connection
        self.user_id = user_id

    def skips(self, event: Broadcast) -> bool:
        return event.skip_channel == self.connection or (event.skip_user is not None and event.skip_user == self.user_id)

    def decide(self, event: Broadcast) -> Answer:
        return SKIP if self.skips(event) else DELIVER

    def delivered(self, event: Broadcast) -> None:
        """The consumer wrote `event` (after filling any gap)."""


class ChannelSession(DeliverySession):
    """A `/ws/chat/` connection: only events of the channels it joined, and a
    channel's new messages in id order, each once."""

    def __init__(self, *, connection: str, user_id: int) -> None:
        super().__init__(connection=connection, user_id=user_id)
        # Keyed by channel id; typed to take a broadcast's channelId, which
        # is None for events of no channel.
        self.cursors: dict[int | None, Cursor] = {}

    # -- joining ---------------------------------------------------------------

    def joined(self) -> list[int]:
        return [cursor.channel_id for cursor in self.cursors.values()]

    def is_joined(self, channel_id: int) -> bool:
        return channel_id in self.cursors

    def join(self, channel_id: int, *, newest: int, floor: int, changes: int = 0) -> bool:
        """After the join's catch-up page: `floor` is its newest id (0 when
        empty), `newest` the newest id the client now has or may page to over
        HTTP, `changes` the channel's newest change id when it was read. True
        if the channel was not joined yet."""
        first = channel_id not in self.cursors
        self.cursors[channel_id] = Cursor(channel_id, delivered=newest, floor=floor, changes=changes)
        return first

    def leave(self, channel_id: int) -> bool:
        """True if the channel was joined."""
        return self.cursors.pop(channel_id, None) is not None

    # -- broadcasts ----------------------------------------------------------------

    def decide(self, event: Broadcast) -> Answer:
        # On every broadcast to every member: kept to plain attribute reads.
        if event.channel_id is None:  # the user's own events (user group): no channel to have joined
            return SKIP if self.skips(event) else DELIVER
        cursor = self.cursors.get(event.channel_id)
        if cursor is None or event.skip_channel == self.connection or (event.skip_user is not None and event.skip_user == self.user_id):
            return SKIP  # not joined (or a broadcast that raced a leave), or our own
        if event.kind != "new_message":
            change_id = event.change_id
            if change_id is None:
                return DELIVER
            if change_id <= cursor.changes:
                return SKIP
            if change_id > cursor.changes + 1:
                return FillChanges(cursor.channel_id, after=cursor.changes, before=change_id)
            return DELIVER
        message_id, prev_id = event.message_id, event.prev_id
        assert message_id is not None
        if prev_id is None:
            # The store could not tell the predecessor: only the catch-up
            # page is known to hold what came before.
            return SKIP if message_id <= cursor.floor else DELIVER
        if message_id <= cursor.delivered:
            return SKIP
        if prev_id > cursor.delivered:
            return FillGap(cursor.channel_id, after=cursor.delivered, before=message_id)
        return DELIVER

    def delivered(self, event: Broadcast) -> None:
        if event.kind == "new_message":
            cursor, message_id = self.cursors.get(event.channel_id), event.message_id
            if cursor is not None and message_id is not None and message_id > cursor.delivered:
                cursor.delivered = message_id
        elif event.change_id is not None and event.channel_id is not None:
            self.given_change(event.channel_id, event.change_id)

    # -- the connection's own sends --------------------------------------------------

    def decide_own(self, channel_id: int, message_id: int, prev_id: int | None) -> Answer:
        """The direct answer to this connection's send of `message_id`. A
        replayed answer (clientId retry) or a store that cannot tell has no
        `prev_id`: what lies below the message is filled too, or a client
        resuming from it would skip it."""
        cursor = self.cursors.get(channel_id)
        if cursor is None:
            return DELIVER
        if message_id > cursor.delivered and (prev_id is None or prev_id > cursor.delivered):
            return FillGap(channel_id, after=cursor.delivered, before=message_id)
        return DELIVER

    def given(self, channel_id: int, message_id: int) -> None:
        """This connection was given `message_id` of `channel_id`."""
        cursor = self.cursors.get(channel_id)
        if cursor is not None and message_id > cursor.delivered:
            cursor.delivered = message_id

    def decide_own_change(self, channel_id: int, change_id: int) -> Answer:
        """The direct answer to this connection's change `change_id`: the
        changes before it that this connection has not been given first."""
        cursor = self.cursors.get(channel_id)
        if cursor is None or change_id <= cursor.changes + 1:
            return DELIVER
        return FillChanges(channel_id, after=cursor.changes, before=change_id)

    def given_change(self, channel_id: int, change_id: int) -> None:
        cursor = self.cursors.get(channel_id)
        if cursor is not None and change_id > cursor.changes:
            cursor.changes = change_id

    def changes_given(self, channel_id: int) -> int | None:
        """The newest change id this connection has (None: not joined)."""
        cursor = self.cursors.get(channel_id)
        return cursor.changes if cursor is not None else None
