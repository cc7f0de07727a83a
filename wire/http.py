"""HTTP plumbing shared by the apps' DRF views: the error shape, query
parameters and OpenAPI component names (DRF's settings name them)."""

from __future__ import annotations

import functools
import logging
import math
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin, is_typeddict

from django.utils.translation import gettext_noop
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from wire.errors import ChatError, Invalid, RateLimited
from wire.i18n import translate, translate_detail
from wire.schema import MAX_ID, Timestamp, fields

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """400s carry `{"errors": {field: [message]}}` (PROTOCOL.md); messages
    for people are in the request's language (wire.i18n)."""
    if isinstance(exc, exceptions.ValidationError):
        detail = translate_detail(exc.detail)
        if isinstance(detail, dict):
            errors = {k: v if isinstance(v, list) else [v] for k, v in detail.items()}
        else:
            errors = {"non_field_errors": detail if isinstance(detail, list) else [detail]}
        return Response({"errors": errors}, status=400)
    if isinstance(exc, exceptions.ParseError):
        return Response({"errors": {"non_field_errors": [str(exc.detail)]}}, status=400)
    if isinstance(exc, Invalid):
        return Response({"errors": {exc.field: [translate(exc.message)]}}, status=400)
    if isinstance(exc, RateLimited):
        return Response({"detail": translate(exc.message)}, status=429, headers={"Retry-After": str(max(1, math.ceil(exc.retry_after)))})
    if isinstance(exc, ChatError):
        if exc.http_status >= 500:
            logger.error("request failed: %s", exc, exc_info=exc.__cause__)
        return Response({"detail": translate(exc.message)}, status=exc.http_status)
    return drf_exception_handler(exc, context)


def parse_int_param(value: str | None, name: str, *, minimum: int = 0, maximum: int = MAX_ID) -> int | None:
    """Query parameters: None when absent, ValidationError when not an integer in range."""
    if value is None or value == "":
        return None
    # Only ASCII digits: int() would also take "²"-like digits and "1_000".
    if not value.isascii() or not value.lstrip("-").isdigit():
        raise serializers.ValidationError({name: [gettext_noop("A valid integer is required.")]})
    try:
        number = int(value)
    except ValueError:
        raise serializers.ValidationError({name: [gettext_noop("A valid integer is required.")]}) from None
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


# -- OpenAPI: output serializers derived from the schemas (wire.schema) --------


@functools.cache
def output_serializer(schema: type) -> type[serializers.Serializer]:
    """The DRF serializer that documents a TypedDict of an app's schema.py in
    the OpenAPI document (named after it). Only for documentation: views
    return the TypedDicts their builders make."""
    hints, required = fields(schema)
    declared = {name: _serializer_field(hint, required=name in required) for name, hint in hints.items()}
    return type(f"{schema.__name__}Serializer", (serializers.Serializer,), declared)


def _serializer_field(hint: Any, *, required: bool = True, allow_null: bool = False) -> serializers.Field:
    options: dict[str, Any] = {"required": required}
    if allow_null:
        options["allow_null"] = True
    if hint == Timestamp:
        return serializers.DateTimeField(**options)
    origin = get_origin(hint)
    if origin is Annotated:
        hint = get_args(hint)[0]
        origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        present = [arg for arg in get_args(hint) if arg is not type(None)]
        return _serializer_field(present[0] if len(present) == 1 else Any, required=required, allow_null=True)
    if is_typeddict(hint):
        return output_serializer(hint)(**options)
    if origin is list:
        (item,) = get_args(hint)
        if is_typeddict(item):
            return output_serializer(item)(many=True, **options)
        return serializers.ListField(child=_serializer_field(item), **options)
    if origin is Literal:
        return serializers.ChoiceField(choices=list(get_args(hint)), **options)
    simple = {int: serializers.IntegerField, str: serializers.CharField, bool: serializers.BooleanField, float: serializers.FloatField}
    if hint in simple:
        return simple[hint](**options)
    return serializers.JSONField(**options)
