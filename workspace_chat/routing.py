from django.urls import re_path

from workspace_chat.consumers import ChatConsumer

websocket_urlpatterns = [
    # The original client connects to /ws/chat without the slash.
    re_path(r"^ws/chat/?$", ChatConsumer.as_asgi()),
]
