from django.urls import re_path

from realtime.consumers import consumer
from workspace_chat.consumers import ChatConsumer

websocket_urlpatterns = [
    # The original client connects to /ws/chat without the slash.
    re_path(r"^ws/chat/?$", consumer(ChatConsumer)),
]
