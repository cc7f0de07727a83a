"""What other apps do when a workspace-chat message is created (the @AI
assistant answers), registered by those apps at start-up: workspace_chat
never imports them. A hook runs on the server's event loop after the
message's transaction has committed, so it sees the message stored."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from django.db import transaction

from workspace_chat.schema import MessageObject

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageCreated:
    channel_id: int
    author: Any  # accounts.models.User
    message: MessageObject


@dataclass(frozen=True)
class _Hook:
    run: Callable[[MessageCreated], None]
    wanted: Callable[[MessageCreated], bool]


_hooks: list[_Hook] = []


def on_message_created(run: Callable[[MessageCreated], None], *, wanted: Callable[[MessageCreated], bool]) -> None:
    """After a message is created and committed, call `run(created)` on the
    event loop (it must not block: start a task) for each message where
    `wanted(created)`, which is asked in the sending thread and must be cheap:
    it runs on the send path of every message."""
    if all(hook.run is not run for hook in _hooks):
        _hooks.append(_Hook(run, wanted))


def message_created_on_commit(created: MessageCreated) -> None:
    """Called inside the send's transaction."""
    hooks = [hook for hook in _hooks if hook.wanted(created)]
    if hooks:
        transaction.on_commit(partial(_run_on_loop, hooks, created))


def _run_on_loop(hooks: list[_Hook], created: MessageCreated) -> None:
    # In the sending thread, after commit: hand over to the event loop (as
    # realtime.events.broadcast_on_commit does for the broadcast).
    try:
        async_to_sync(_run)(hooks, created)
    except Exception:
        logger.exception("message hooks of channel %s failed", created.channel_id)


async def _run(hooks: list[_Hook], created: MessageCreated) -> None:
    # Each hook runs on its own loop turn in a fresh context: this coroutine
    # runs in the sending thread's asgiref context, whose thread executor is
    # gone by the time a task started here would use it.
    loop = asyncio.get_running_loop()
    for hook in hooks:
        loop.call_soon(_call, hook, created, context=contextvars.Context())


def _call(hook: _Hook, created: MessageCreated) -> None:
    try:
        hook.run(created)
    except Exception:
        logger.exception("message hook %s failed", getattr(hook.run, "__qualname__", hook.run))
