"""The @AI assistant: answers a question in its channel, streamed, bounded in
time, behind a per-user quota and a circuit breaker. A message that mentions
@AI reaches `schedule_answer` through workspace_chat's post-commit hook
(registered in assistant.apps), which runs the answer as a task: nothing
waits for it. Its messages are posted through workspace_chat's services."""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.models import User
from assistant import prompt
from messagestore import get_store
from messagestore.streams import channel_stream
from realtime import ratelimit
from workspace_chat import services as chat_services
from workspace_chat.hooks import MessageCreated
from workspace_chat.schema import MessageObject
from workspace_chat.selectors import authors_by_id

logger = logging.getLogger(__name__)
AI_USERNAME = "ai-assistant"
# Stream updates are sent at most this often; the final text always goes out.
UPDATE_INTERVAL = 0.1
BUSY_RETRY_SECONDS = 5.0

_tasks: set[asyncio.Task] = set()


class CircuitBreaker:
    """After `failures` failures in a row, stop calling the provider for
    `cooldown` seconds (one process; each process learns on its own)."""

    def __init__(self) -> None:
        self.failures = 0
        self.open_until = 0.0

    def is_open(self) -> bool:
        return time.monotonic() < self.open_until

    def record(self, ok: bool) -> None:
        if ok:
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= settings.CHAT_AI_BREAKER_FAILURES:
            self.open_until = time.monotonic() + settings.CHAT_AI_BREAKER_COOLDOWN
            self.failures = 0
            logger.warning("AI provider failing: circuit open for %.0fs", settings.CHAT_AI_BREAKER_COOLDOWN)


breaker = CircuitBreaker()


def ai_user() -> User:
    user, _ = User.objects.get_or_create(username=AI_USERNAME, defaults={"display_name": "AI Assistant", "is_ai": True})
    if not user.is_ai:
        User.objects.filter(pk=user.pk).update(is_ai=True)
    return user


def wants_answer(created: MessageCreated) -> bool:
    """A person's message that mentions @AI (asked on every message's send path)."""
    return not created.message["isAI"] and prompt.mentions_ai(created.message["content"])


def schedule_answer(created: MessageCreated) -> None:
    """Answer in the background (on the event loop, after the question committed)."""
    task = asyncio.create_task(answer(channel_id=created.channel_id, asker=created.author, question=dict(created.message)))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _transcript(channel_id: int, question_id: int) -> list[prompt.Line]:
    """The last N messages of this channel up to the question: the asker
    could read all of them (they just posted there)."""
    messages, _ = get_store().page(channel_stream(channel_id), before=question_id, limit=settings.CHAT_AI_CONTEXT_MESSAGES)
    authors = authors_by_id(m.author_id for m in messages)
    return [
        prompt.Line(author=authors[m.author_id].username if m.author_id in authors else "deleted", text=m.content, is_ai=m.is_ai)
        for m in messages
    ]


# Calls to the provider this process makes at once (CHAT_AI_CONCURRENCY); past
# it the asker is told to try again instead of queueing behind the others.
_calls: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _call_slots() -> asyncio.Semaphore:
    loop = asyncio.get_running_loop()
    slots = _calls.get(loop)
    if slots is None:
        slots = _calls[loop] = asyncio.Semaphore(settings.CHAT_AI_CONCURRENCY)
    return slots


async def answer(*, channel_id: int, asker: User, question: dict[str, Any]) -> None:
    """Refusals (the asker's quota, the workspace's hourly budget, every slot
    busy) go to the asker alone; only an answer (or the provider's failure)
    is posted in the channel."""
    try:
        quota = await ratelimit.atake(f"ai:{asker.id}", capacity=settings.CHAT_AI_QUOTA_MESSAGES, window=settings.CHAT_AI_QUOTA_WINDOW)
        if not quota.allowed:
            await chat_services.ai_refusal(asker=asker, text=prompt.QUOTA_EXCEEDED, retry_after=quota.retry_after)
            return
        workspace_id = await database_sync_to_async(chat_services.channel_workspace_id)(channel_id=channel_id)
        budget = await ratelimit.atake(f"ai-workspace:{workspace_id}", capacity=settings.CHAT_AI_WORKSPACE_HOURLY, window=3600)
        if not budget.allowed:
            await chat_services.ai_refusal(asker=asker, text=prompt.WORKSPACE_BUDGET, retry_after=budget.retry_after)
            return
        slots = _call_slots()
        if slots.locked():
            await chat_services.ai_refusal(asker=asker, text=prompt.BUSY, retry_after=BUSY_RETRY_SECONDS)
            return
        async with slots:
            ai = await database_sync_to_async(ai_user)()
            if not settings.OPENAI_API_KEY:
                await _post(channel_id, ai, prompt.NOT_CONFIGURED)
                return
            if breaker.is_open():
                await _post(channel_id, ai, prompt.UNAVAILABLE)
                return
            transcript = await database_sync_to_async(_transcript)(channel_id, question["id"])
            messages = prompt.build_messages(transcript=transcript, asker=asker.username, question=question["content"])
            await _ask(channel_id, ai, messages)
    except Exception:
        logger.exception("the assistant failed in channel %s", channel_id)


async def _post(channel_id: int, ai: User, text: str) -> MessageObject:
    return await database_sync_to_async(chat_services.ai_message_post)(channel_id=channel_id, ai_user=ai, content=text)


def _client():
    from openai import AsyncOpenAI

    return AsyncOpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL or None,
        timeout=settings.CHAT_AI_TIMEOUT,
        max_retries=settings.CHAT_AI_MAX_RETRIES,
    )


async def _ask(channel_id: int, ai: User, messages: list[dict[str, str]]) -> None:
    limit = settings.CHAT_MAX_MESSAGE_LENGTH
    state: dict[str, Any] = {"payload": None, "text": ""}
    client = _client()
    try:
        async with asyncio.timeout(settings.CHAT_AI_TIMEOUT):
            if settings.CHAT_AI_STREAM:
                await _stream(client, channel_id, ai, messages, state)
            else:
                response = await client.chat.completions.create(model=settings.OPENAI_MODEL, messages=messages)
                state["text"] = (response.choices[0].message.content or "").strip()
        ok = bool(state["text"].strip())
    except Exception as exc:  # timeout, connection, 429, 5xx, bad payload: all one answer
        logger.warning("AI provider call failed: %s", type(exc).__name__)
        ok = False
    finally:
        await client.close()
    breaker.record(ok)
    text = state["text"].strip()[:limit] if ok else prompt.UNAVAILABLE
    if state["payload"] is None:
        await _post(channel_id, ai, text)
    else:
        await database_sync_to_async(chat_services.ai_message_finish)(
            channel_id=channel_id, message_id=state["payload"]["id"], ai_user=ai, content=text
        )


async def _stream(client, channel_id: int, ai: User, messages: list[dict[str, str]], state: dict[str, Any]) -> None:
    stream = await client.chat.completions.create(model=settings.OPENAI_MODEL, messages=messages, stream=True)
    last_sent = 0.0
    async for chunk in stream:
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if not delta:
            continue
        state["text"] += delta
        text = state["text"][: settings.CHAT_MAX_MESSAGE_LENGTH]
        if state["payload"] is None:
            state["payload"] = await database_sync_to_async(chat_services.ai_message_post)(
                channel_id=channel_id, ai_user=ai, content=text, streaming=True
            )
            last_sent = time.monotonic()
        elif time.monotonic() - last_sent >= UPDATE_INTERVAL:
            state["payload"] = await chat_services.ai_message_stream(channel_id=channel_id, message=state["payload"], text=text)
            last_sent = time.monotonic()
