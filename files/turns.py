"""Uploads take turns: at most CHAT_UPLOAD_CONCURRENCY uploads run their view
at once in one server process (chatsite/handler.py holds the turn around the
view). Twenty request threads at once starved the event loop and the
consumers' database thread of the GIL (docs/files.md, "Third pass").

A turn is for the work that competes for the GIL: parsing, copying, the
database. An upload that goes on to wait for the image worker process steps
aside first (`step_aside`, from the view's thread), so one user's two large
photos waiting behind each other for the worker do not hold every other
upload of the process back for minutes.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading


class Turn:
    """One upload's turn; given back once, whichever comes first: the view
    stepping aside (any thread) or the request's end (the event loop)."""

    def __init__(self, semaphore: asyncio.Semaphore, loop: asyncio.AbstractEventLoop) -> None:
        self._semaphore = semaphore
        self._loop = loop
        self._lock = threading.Lock()
        self._held = True

    def _take_back(self) -> bool:
        with self._lock:
            held, self._held = self._held, False
        return held

    def step_aside(self) -> None:
        """From the view's thread: the rest waits on something else."""
        if self._take_back():
            self._loop.call_soon_threadsafe(self._semaphore.release)

    def end(self) -> None:
        """On the event loop, when the view is done."""
        if self._take_back():
            self._semaphore.release()


_current: contextvars.ContextVar[Turn | None] = contextvars.ContextVar("chat_upload_turn", default=None)


def step_aside() -> None:
    """Give the current upload's turn back early (no turn: nothing to do)."""
    turn = _current.get()
    if turn is not None:
        turn.step_aside()


class Turns:
    """At most `limit` turns at a time, the others waiting in arrival order
    (an asyncio.Semaphore per event loop: tests run several loops)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._semaphores: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

    def _semaphore(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            for old in [old for old in self._semaphores if old.is_closed()]:
                del self._semaphores[old]
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.limit)
        return semaphore

    async def take(self) -> Turn:
        """Wait for a turn; the caller ends it (`Turn.end`) in a finally. The
        view, run in a thread with this context copied, finds it for
        `step_aside`."""
        loop = asyncio.get_running_loop()
        semaphore = self._semaphore(loop)
        await semaphore.acquire()
        turn = Turn(semaphore, loop)
        _current.set(turn)
        return turn
