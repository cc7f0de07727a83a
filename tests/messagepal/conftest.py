"""Fixtures of the MessagePal tests (their helpers: tests/messagepal/pal.py)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from tests.messagepal.pal import PalListener, make_pals
from tests.messagepal.pal_ws import PATH, app, receive


@pytest.fixture
def listen(in_memory_layer):
    """listen(*users) -> a PalListener on those users' pal groups."""
    layer = get_channel_layer()
    async_to_sync(layer.flush)()
    yield PalListener
    async_to_sync(layer.flush)()


@pytest.fixture
def pals(make_user, settings):
    return make_pals(make_user, settings)


@pytest.fixture
async def connect():
    """connect(user) -> a communicator past its `connected` event; all are
    disconnected at the end of the test."""
    opened: list[WebsocketCommunicator] = []

    async def open_socket(user, path: str = PATH) -> WebsocketCommunicator:
        comm = WebsocketCommunicator(app, path)
        comm.scope["user"] = user
        connected, _ = await comm.connect()
        assert connected
        opened.append(comm)
        hello = await receive(comm)
        assert hello == {"type": "connected", "userId": user.id, "username": user.username, "displayName": user.shown_name}
        return comm

    yield open_socket
    for comm in opened:
        await comm.disconnect()
