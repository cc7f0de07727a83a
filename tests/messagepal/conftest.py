"""Fixtures of the MessagePal tests (their helpers: tests/messagepal/pal.py)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from tests.messagepal.pal import PalListener, make_pals


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
