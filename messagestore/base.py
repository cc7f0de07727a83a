"""The one message store interface, used by workspace chat and MessagePal.

A stream is a string key: `ch:{channelId}` for a workspace channel,
`conv_{a}_{b}` for a MessagePal conversation. Backends (sql, cassandra,
mongodb) implement `MessageStore`; services are the only callers.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wire.schema import MAX_ID

MAX_PAGE = 500


class StoreError(Exception):
    """The store could not do what was asked (unreachable, timeout...)."""


@dataclass
class StoredMessage:
    id: int
    stream: str
    author_id: int
    content: str
    created_at: datetime
    message_type: str = "text"
    file_url: str | None = None
    reply_to: int | None = None
    mentions: list[int] = field(default_factory=list)
    edited_at: datetime | None = None
    is_pinned: bool = False
    pinned_by: int | None = None
    is_ai: bool = False
    client_id: str | None = None
    grade: str | None = None
    feedback: str | None = None
    graded_by: int | None = None
    graded_at: datetime | None = None
    hidden: bool = False
    # Soft delete (message lifecycle): a deleted message is also hidden, so
    # every read that skips hidden messages skips it; moderators see these.
    deleted_at: datetime | None = None
    deleted_by: int | None = None
    # Set by `append` only: the id the stream's previous message got (0 for
    # the first; None when the backend cannot tell). Consumers use it to see a
    # broadcast that overtook an earlier one and fill the gap from the store.
    prev_id: int | None = None


@dataclass(frozen=True)
class NewMessage:
    stream: str
    author_id: int
    content: str
    message_type: str = "text"
    file_url: str | None = None
    reply_to: int | None = None
    mentions: Sequence[int] = ()
    is_ai: bool = False
    client_id: str | None = None

    def stored(self, *, message_id: int, created_at: datetime, prev_id: int | None = None) -> StoredMessage:
        """What `append` hands back for this message once stored at `message_id`."""
        return StoredMessage(
            id=message_id,
            stream=self.stream,
            author_id=self.author_id,
            content=self.content,
            created_at=created_at,
            message_type=self.message_type,
            file_url=self.file_url,
            reply_to=self.reply_to,
            mentions=list(self.mentions),
            is_ai=self.is_ai,
            client_id=self.client_id or None,
            prev_id=prev_id,
        )


@dataclass(frozen=True)
class Reaction:
    emoji: str
    user_id: int
    at: datetime  # when this user added it: emoji are ordered by first use


@dataclass(frozen=True)
class ThreadStats:
    reply_count: int
    last_reply_at: datetime


# What a change row records (the change feed, PROTOCOL.md "Message lifecycle").
CHANGE_KINDS = ("updated", "deleted", "reaction", "thread", "pinned")


@dataclass(frozen=True)
class Change:
    change_id: int
    message_id: int
    kind: str  # one of CHANGE_KINDS


@dataclass(frozen=True)
class ReadPointer:
    user_id: int
    message_id: int
    read_at: datetime


class MessageStore(abc.ABC):
    name: str = "?"

    @abc.abstractmethod
    def append(self, new: NewMessage) -> tuple[StoredMessage, bool]:
        """Store a message; with a client_id already stored for this author and
        stream, store nothing and return (the stored one, False)."""

    @abc.abstractmethod
    def find_by_client_id(self, stream: str, author_id: int, client_id: str) -> StoredMessage | None: ...

    @abc.abstractmethod
    def get(self, stream: str, message_id: int) -> StoredMessage | None:
        """A visible (not hidden, not deleted) message of that stream."""

    @abc.abstractmethod
    def page(self, stream: str, *, before: int | None = None, after: int | None = None, limit: int = 50) -> tuple[list[StoredMessage], bool]:
        """Visible messages oldest first, and whether more lie beyond the page.

        With `after`: the first `limit` messages with a larger id. Otherwise the
        last `limit` messages with an id below `before` (if given)."""

    @abc.abstractmethod
    def moderation_page(self, stream: str, *, before: int | None = None, limit: int = 50) -> tuple[list[StoredMessage], bool]:
        """For moderators (Django admin): the newest messages below `before`,
        hidden and deleted ones included (their flags say which), oldest
        first, and whether older ones remain."""

    @abc.abstractmethod
    def last_id(self, stream: str) -> int | None: ...

    @abc.abstractmethod
    def count_after(self, stream: str, after_id: int | None, *, exclude_author: int | None = None, cap: int = 1000) -> int: ...

    @abc.abstractmethod
    def set_read_pointer(self, stream: str, user_id: int, message_id: int) -> bool:
        """Move the pointer forward (never back); True if it moved."""

    @abc.abstractmethod
    def read_pointers(self, stream: str) -> dict[int, ReadPointer]: ...

    @abc.abstractmethod
    def set_pinned(self, stream: str, message_id: int, *, pinned: bool, by: int | None) -> StoredMessage | None: ...

    @abc.abstractmethod
    def pinned(self, stream: str) -> list[StoredMessage]: ...

    @abc.abstractmethod
    def set_grade(self, stream: str, message_id: int, *, grade: str, feedback: str | None, by: int) -> StoredMessage | None: ...

    @abc.abstractmethod
    def update_content(self, stream: str, message_id: int, *, content: str, edited: bool) -> StoredMessage | None: ...

    @abc.abstractmethod
    def set_hidden(self, stream: str, message_id: int, hidden: bool) -> bool:
        """Hide or show a message (moderation); a hidden reply leaves its
        thread's counts. A deleted message stays hidden (False)."""

    @abc.abstractmethod
    def delete(self, stream: str, message_id: int) -> bool:
        """Remove the message for good (its clientId may be sent again)."""

    # -- the message lifecycle (PROTOCOL.md part 2) -------------------------

    @abc.abstractmethod
    def edit(self, stream: str, message_id: int, *, content: str, mentions: Sequence[int]) -> StoredMessage | None:
        """New content and mentions of a visible message, `edited_at` now;
        None when there is no such visible message."""

    @abc.abstractmethod
    def soft_delete(self, stream: str, message_id: int, *, by: int | None) -> StoredMessage | None:
        """Delete a visible message for members: hidden from every read
        (pages, get, pins, counts, its thread's counts), kept with
        `deleted_at`/`deleted_by` for moderators. Returns the message as it was
        before, or None when there is no such visible message."""

    @abc.abstractmethod
    def add_reaction(self, stream: str, message_id: int, *, emoji: str, user_id: int) -> bool:
        """True when added, False when this user had it already. The caller
        checked that the message is visible and the 20-emoji cap."""

    @abc.abstractmethod
    def remove_reaction(self, stream: str, message_id: int, *, emoji: str, user_id: int) -> bool:
        """True when removed, False when this user did not have it."""

    @abc.abstractmethod
    def reactions(self, stream: str, message_ids: Sequence[int]) -> dict[int, list[Reaction]]:
        """The reactions of each of `message_ids` that has any, oldest first."""

    @abc.abstractmethod
    def thread_stats(self, stream: str, root_ids: Sequence[int]) -> dict[int, ThreadStats]:
        """Live (visible) reply count and newest reply time of each of
        `root_ids` that has a live reply."""

    @abc.abstractmethod
    def thread_page(self, stream: str, root_id: int, *, after: int | None = None, limit: int = 50) -> tuple[list[StoredMessage], bool]:
        """Visible replies of `root_id` with an id above `after`, oldest first,
        and whether more follow."""

    @abc.abstractmethod
    def record_change(self, stream: str, message_id: int, kind: str) -> int:
        """Append a change to the stream's change feed; its id is the stream's
        previous change id + 1, and a reader never sees a change id while a
        smaller one of that stream is still being written."""

    @abc.abstractmethod
    def changes(self, stream: str, *, after: int, limit: int) -> list[Change]:
        """Changes with an id above `after`, oldest first, at most `limit`."""

    @abc.abstractmethod
    def last_change_id(self, stream: str) -> int:
        """The stream's newest change id (0: none yet)."""

    # -- lists: one call for many streams (a channel list, a conversation
    # list). The defaults ask stream by stream; a backend that can answer in
    # one query (SQL) does.

    def read_pointers_of(self, user_id: int, streams: Sequence[str]) -> dict[str, ReadPointer]:
        """`user_id`'s read pointer in each of `streams` that has one."""
        found = {}
        for stream in streams:
            pointer = self.read_pointers(stream).get(user_id)
            if pointer is not None:
                found[stream] = pointer
        return found

    def counts_after(self, after: Mapping[str, int | None], *, exclude_author: int | None = None, cap: int = 1000) -> dict[str, int]:
        """`count_after` for each stream, from its own cursor."""
        return {stream: self.count_after(stream, after_id, exclude_author=exclude_author, cap=cap) for stream, after_id in after.items()}

    def latest(self, streams: Sequence[str]) -> dict[str, StoredMessage]:
        """The newest visible message of each of `streams` that has one."""
        found = {}
        for stream in streams:
            page, _ = self.page(stream, limit=1)
            if page:
                found[stream] = page[0]
        return found

    def ping(self) -> None:
        """Raise StoreError when the backend does not answer (the default
        has nothing to probe)."""
        return None

    def ensure_schema(self) -> None:
        """Create tables/indexes; `migrate` calls it (the default has none:
        the SQL store's tables come from migrations)."""
        return None


class ScanningStore(MessageStore):
    """A backend whose reads walk a stream's visible rows in id order
    (`_scan`, e.g. partition by partition): the page window, the newest id and
    the unread count are the same loop over it for every such backend."""

    @abc.abstractmethod
    def _scan(
        self, stream: str, *, after: int | None, before: int | None, ascending: bool, chunk: int, narrow: bool = False, with_hidden: bool = False
    ) -> Iterator[Mapping[str, Any]]:
        """Visible rows strictly between `after` and `before`, newest first
        unless `ascending`, lazily (a page stops early). `chunk`: how many rows
        one read may fetch; `narrow`: only `id` and `author_id` are needed;
        `with_hidden`: hidden and deleted rows too (moderation)."""

    @abc.abstractmethod
    def _record(self, stream: str, row: Mapping[str, Any]) -> StoredMessage: ...

    def page(self, stream: str, *, before: int | None = None, after: int | None = None, limit: int = 50) -> tuple[list[StoredMessage], bool]:
        limit = max(1, min(int(limit), MAX_PAGE))
        if (before is not None and before <= 1) or (after is not None and after >= MAX_ID):
            return [], False
        rows: list[Mapping[str, Any]] = []
        for row in self._scan(stream, after=after, before=before, ascending=after is not None, chunk=limit + 1):
            rows.append(row)
            if len(rows) > limit:
                break
        has_more = len(rows) > limit
        rows = rows[:limit]
        if after is None:
            rows.reverse()
        return [self._record(stream, row) for row in rows], has_more

    def moderation_page(self, stream: str, *, before: int | None = None, limit: int = 50) -> tuple[list[StoredMessage], bool]:
        limit = max(1, min(int(limit), MAX_PAGE))
        rows: list[Mapping[str, Any]] = []
        for row in self._scan(stream, after=None, before=before, ascending=False, chunk=limit + 1, with_hidden=True):
            rows.append(row)
            if len(rows) > limit:
                break
        has_more = len(rows) > limit
        return [self._record(stream, row) for row in reversed(rows[:limit])], has_more

    def last_id(self, stream: str) -> int | None:
        for row in self._scan(stream, after=None, before=None, ascending=False, chunk=2, narrow=True):
            return int(row["id"])
        return None

    def count_after(self, stream: str, after_id: int | None, *, exclude_author: int | None = None, cap: int = 1000) -> int:
        # Bounded by `cap`: a channel far behind shows "1000+" rather than
        # costing a scan of its whole history.
        count = 0
        for row in self._scan(stream, after=after_id, before=None, ascending=True, chunk=500, narrow=True):
            if exclude_author is not None and row["author_id"] == exclude_author:
                continue
            count += 1
            if count >= cap:
                break
        return count
