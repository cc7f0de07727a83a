from django.urls import re_path

from messagepal.consumers import MessagePalConsumer
from realtime.consumers import consumer

websocket_urlpatterns = [re_path(r"^ws/messagepal/?$", consumer(MessagePalConsumer))]
