"""MessagePal sockets in-process (channels.testing.WebsocketCommunicator): the
routed app and short forms of a request, an answer, silence."""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chatsite.routing import websocket_urlpatterns
from tests.pal_schemas import check_pal_event

app = URLRouter(websocket_urlpatterns)
PATH = "/ws/messagepal/"


async def receive(comm: WebsocketCommunicator, timeout: float = 2) -> dict[str, Any]:
    event = await comm.receive_json_from(timeout)
    check_pal_event(event)
    return event


async def request(comm: WebsocketCommunicator, event: dict[str, Any]) -> dict[str, Any]:
    """Send with a requestId; the very next frame must be its answer."""
    await comm.send_json_to({**event, "requestId": "rq"})
    answer = await receive(comm)
    assert answer.get("requestId") == "rq", answer
    return answer


async def refused(comm: WebsocketCommunicator, event: dict[str, Any], code: str) -> dict[str, Any]:
    answer = await request(comm, event)
    assert answer["type"] == "error" and answer["code"] == code, answer
    return answer


async def quiet(*comms: WebsocketCommunicator) -> None:
    """None of these connections gets anything more (waited on together)."""
    nothing = await asyncio.gather(*(comm.receive_nothing(0.15) for comm in comms))
    for comm, silent in zip(comms, nothing, strict=True):
        assert silent, f"unexpected {await comm.receive_json_from()}"


async def each_gets(comms: tuple[WebsocketCommunicator, ...], event: dict[str, Any]) -> None:
    for comm in comms:
        assert await receive(comm) == event


sync = database_sync_to_async
