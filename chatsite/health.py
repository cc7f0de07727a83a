"""`GET /healthz` and `GET /metrics`. Health: the database, the channel layer and the message store, each
answering (PROTOCOL.md, "Operations" and "Operations, part 2"): 200 `ok`;
200 `degraded` while the process serves from a fallback store (with
`configuredStore`); 503 `failing` naming the failing check."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from messagestore import configured_store, get_store
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
    degraded = False
    try:
        store = await sync_to_async(get_store)()
        await sync_to_async(store.ping)()
        checks["messageStore"] = store.name
        if store.name != configured_store():
            checks["configuredStore"] = configured_store()
            degraded = True
    except Exception as exc:
        logger.error("healthz: message store failing: %s", exc)
        checks["messageStore"] = "failing"
        failing = True
    status = "failing" if failing else "degraded" if degraded else "ok"
    return JsonResponse({"status": status, "checks": checks}, status=503 if failing else 200)


def _from_loopback(request: HttpRequest) -> bool:
    """Straight from this machine: a loopback peer, not a proxy passing on
    someone else's request (which adds Forwarded / X-Forwarded-For)."""
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return peer.is_loopback and "forwarded" not in request.headers and "x-forwarded-for" not in request.headers


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """`GET /metrics` (PROTOCOL.md, "Operations, part 2"): this process's
    Prometheus metrics (wire.metrics, and the process collector), from
    loopback or with `Authorization: Bearer CHAT_METRICS_TOKEN`; 404 to
    anyone else, as if there were none."""
    token = settings.CHAT_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if not ((token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())) or _from_loopback(request)):
        raise Http404("Not found.")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
