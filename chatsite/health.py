"""`GET /healthz`: the database, the channel layer and the message store, each
answering (PROTOCOL.md, "Operations")."""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import HttpRequest, JsonResponse

from messagestore import get_store
from realtime.events import channel_layer

logger = logging.getLogger(__name__)


async def healthz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    failing = False

    def db_check() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    try:
        await sync_to_async(db_check)()
        checks["database"] = "ok"
    except Exception as exc:
        logger.error("healthz: database failing: %s", exc)
        checks["database"] = "failing"
        failing = True
    try:
        layer = channel_layer()
        name = await layer.new_channel()
        await layer.send(name, {"type": "healthz.ping"})
        await layer.receive(name)
        checks["channelLayer"] = "ok"
    except Exception as exc:
        logger.error("healthz: channel layer failing: %s", exc)
        checks["channelLayer"] = "failing"
        failing = True
    store = get_store()
    try:
        await sync_to_async(store.ping)()
        checks["messageStore"] = store.name
    except Exception as exc:
        logger.error("healthz: message store %s failing: %s", store.name, exc)
        checks["messageStore"] = "failing"
        failing = True
    body = {"status": "failing" if failing else "ok", "checks": checks}
    return JsonResponse(body, status=503 if failing else 200)
