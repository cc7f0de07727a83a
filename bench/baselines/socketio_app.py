"""Baseline (b): a python-socketio chat room over Redis (AsyncRedisManager),
served by uvicorn:

    REDIS_URL=redis://127.0.0.1:6379/13 uvicorn bench.baselines.socketio_app:app \\
        --host 127.0.0.1 --port 8200 --loop asyncio --ws websockets-sansio

Events: `join` (room name, acknowledged) and `msg` ({room, text}); a message
is emitted to the whole room, the sender included, as `msg` with the text.
"""

import os

import socketio

sio = socketio.AsyncServer(
    async_mode="asgi",
    client_manager=socketio.AsyncRedisManager(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")),
    cors_allowed_origins="*",
)
app = socketio.ASGIApp(sio)


@sio.event
async def join(sid, room):
    await sio.enter_room(sid, room)
    return "ok"


@sio.event
async def msg(sid, data):
    await sio.emit("msg", data["text"], room=data["room"])
