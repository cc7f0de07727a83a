from messagepal.routing import websocket_urlpatterns as messagepal_patterns
from workspace_chat.routing import websocket_urlpatterns as chat_patterns

websocket_urlpatterns = [*chat_patterns, *messagepal_patterns]
