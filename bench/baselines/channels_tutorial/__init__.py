"""Baseline (a): the Channels tutorial chat, as the tutorial writes it.

An AsyncWebsocketConsumer joins a room group on connect, `group_send`s every
message it receives, and json.dumps once per recipient; the default
RedisChannelLayer configuration, no authentication. Served by daphne:

    DJANGO_SETTINGS_MODULE=bench.baselines.channels_tutorial.settings \\
        python -m daphne -b 127.0.0.1 -p 8100 bench.baselines.channels_tutorial.asgi:application
"""
