"""The WebSocket URLs of both chats (chatsite.asgi routes them)."""

from typing import Any

from messagepal.routing import websocket_urlpatterns as messagepal_patterns
from workspace_chat.routing import websocket_urlpatterns as chat_patterns

websocket_urlpatterns: list[Any] = [*chat_patterns, *messagepal_patterns]
