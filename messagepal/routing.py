from django.urls import re_path

from messagepal.consumers import MessagePalConsumer

websocket_urlpatterns = [re_path(r"^ws/messagepal/?$", MessagePalConsumer.as_asgi())]
