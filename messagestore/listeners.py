"""Who hears about message writes: `on_write(callback)` registers a listener,
and `ObservedStore` (what `get_store()` hands out) forwards every call to the
real store and, after a write that changed a message succeeded, tells each
listener. Whichever code writes (a service, the assistant, Django admin),
the write passes here, so an index kept beside the store (search) never
misses one, on every backend.

Listeners run in the writer's thread and transaction, after the store
answered; a listener that fails is logged, never the write's failure (the
message is stored already; `manage.py search_rebuild` repairs an index).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

from messagestore.base import MessageStore, NewMessage, StoredMessage
from wire.metrics import STORE_SECONDS

logger = logging.getLogger(__name__)

# append: a new message; edit: its content changed (edit, update_content);
# shown: a hidden message shown again; removed: deleted (soft or for good)
# or hidden by a moderator.
WriteKind = Literal["append", "edit", "shown", "removed"]


@dataclass(frozen=True)
class Write:
    kind: WriteKind
    stream: str
    message_id: int
    # The message as it is now (append, edit, shown); None once removed.
    message: StoredMessage | None = None


Listener = Callable[[Write], None]
_listeners: list[Listener] = []


def on_write(callback: Listener) -> None:
    """Call `callback` after every message write of any store (once, however
    often it is registered)."""
    if callback not in _listeners:
        _listeners.append(callback)


def _tell(write: Write) -> None:
    for listener in list(_listeners):
        try:
            listener(write)
        except Exception:
            logger.exception("a message-write listener failed on %s %s#%s", write.kind, write.stream, write.message_id)


class ObservedStore:
    """The store with its writes told to the listeners, and every call timed
    (`chat_store_seconds` by `op`, wire.metrics); every other attribute is
    the store's own."""

    def __init__(self, inner: MessageStore):
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name.startswith("_") or not callable(attr):
            return attr
        return partial(self._timed, name)

    def _timed(self, op: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return getattr(self.inner, op)(*args, **kwargs)
        finally:
            STORE_SECONDS.labels(op).observe(time.perf_counter() - started)

    def __repr__(self) -> str:
        return f"ObservedStore({self.inner!r})"

    def append(self, new: NewMessage) -> tuple[StoredMessage, bool]:
        stored, created = self._timed("append", new)
        if created:
            _tell(Write("append", stored.stream, stored.id, stored))
        return stored, created

    def edit(self, stream: str, message_id: int, *, content: str, mentions: Sequence[int]) -> StoredMessage | None:
        edited = self._timed("edit", stream, message_id, content=content, mentions=mentions)
        if edited is not None:
            _tell(Write("edit", stream, message_id, edited))
        return edited

    def update_content(self, stream: str, message_id: int, *, content: str, edited: bool) -> StoredMessage | None:
        updated = self._timed("update_content", stream, message_id, content=content, edited=edited)
        if updated is not None:
            _tell(Write("edit", stream, message_id, updated))
        return updated

    def soft_delete(self, stream: str, message_id: int, *, by: int | None) -> StoredMessage | None:
        before = self._timed("soft_delete", stream, message_id, by=by)
        if before is not None:
            _tell(Write("removed", stream, message_id))
        return before

    def delete(self, stream: str, message_id: int) -> bool:
        done = self._timed("delete", stream, message_id)
        if done:
            _tell(Write("removed", stream, message_id))
        return done

    def set_hidden(self, stream: str, message_id: int, hidden: bool) -> bool:
        done = self._timed("set_hidden", stream, message_id, hidden)
        if done and hidden:
            _tell(Write("removed", stream, message_id))
        elif done:
            shown = self._timed("get", stream, message_id)
            if shown is not None:
                _tell(Write("shown", stream, message_id, shown))
        return done
