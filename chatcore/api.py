"""HTTP plumbing shared by the apps' DRF views: the error shape and /healthz."""

from __future__ import annotations

import logging
import math
from typing import Any

from channels.layers import get_channel_layer
from django.db import connection
from django.http import JsonResponse
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from chatcore.errors import ChatError, Invalid, RateLimited
from chatcore.store import get_store

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """400s carry `{"errors": {field: [message]}}` (PROTOCOL.md)."""
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            errors = {k: v if isinstance(v, list) else [v] for k, v in detail.items()}
        else:
            errors = {"non_field_errors": detail if isinstance(detail, list) else [detail]}
        return Response({"errors": errors}, status=400)
    if isinstance(exc, exceptions.ParseError):
        return Response({"errors": {"non_field_errors": [str(exc.detail)]}}, status=400)
    if isinstance(exc, Invalid):
        return Response({"errors": {exc.field: [exc.message]}}, status=400)
    if isinstance(exc, RateLimited):
        return Response({"detail": exc.message}, status=429, headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
    if isinstance(exc, ChatError):
        if exc.http_status >= 500:
            logger.error("request failed: %s", exc, exc_info=exc.__cause__)
        return Response({"detail": exc.message}, status=exc.http_status)
    return drf_exception_handler(exc, context)


def parse_int_param(value: str | None, name: str, *, minimum: int = 0, maximum: int = 2**53 - 1) -> int | None:
    """Query parameters: None when absent, ValidationError when not an integer in range."""
    if value is None or value == "":
        return None
    # Only ASCII digits: int() would also take "²"-like digits and "1_000".
    if not value.isascii() or not value.lstrip("-").isdigit():
        raise serializers.ValidationError({name: ["A valid integer is required."]})
    try:
        number = int(value)
    except ValueError:
        raise serializers.ValidationError({name: ["A valid integer is required."]}) from None
    if not minimum <= number <= maximum:
        raise serializers.ValidationError({name: [f"Must be between {minimum} and {maximum}."]})
    return number


async def healthz(request):
    from asgiref.sync import sync_to_async

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
        layer = get_channel_layer()
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


from drf_spectacular.openapi import AutoSchema  # noqa: E402


class NestedSerializerSchema(AutoSchema):
    """Names nested `InputSerializer`s after their view (`LoginApiInput`), so
    the one-view-per-operation style gives unique schema components."""

    def _get_serializer_name(self, serializer, direction, bypass_extensions=False):
        name = super()._get_serializer_name(serializer, direction, bypass_extensions)
        cls = serializer if isinstance(serializer, type) else type(serializer)
        qualname = cls.__qualname__
        if "." in qualname and qualname.split(".")[-1] in ("InputSerializer", "OutputSerializer"):
            prefix = qualname.split(".")[0]
            return prefix + name
        return name
