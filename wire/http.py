"""HTTP plumbing shared by the apps' DRF views: the error shape, query
parameters and OpenAPI component names (DRF's settings name them)."""

from __future__ import annotations

import logging
import math
from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from wire.errors import ChatError, Invalid, RateLimited

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
