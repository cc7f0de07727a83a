"""Search over HTTP (PROTOCOL.md part 2, "Search"). Thin: read the query
parameters, call one selector, shape the page."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from messagepal import protocol as pal_protocol
from search import schema, selectors
from wire.errors import Invalid
from wire.http import output_serializer, parse_int_param

PARAMETERS = [
    OpenApiParameter("q", str, required=True, description="at least 2 characters; every word must match, the last also as a prefix"),
    OpenApiParameter("limit", int, required=False, description=f"1..{selectors.MAX_LIMIT}, default {selectors.DEFAULT_LIMIT}; larger values are capped"),
]


def _limit(raw: str | None) -> int:
    return parse_int_param(raw, "limit", minimum=1, maximum=10**9) or selectors.DEFAULT_LIMIT


class SearchApi(APIView):
    @extend_schema(
        parameters=[
            *PARAMETERS,
            OpenApiParameter("workspaceId", int, required=False),
            OpenApiParameter("channelId", int, required=False),
            OpenApiParameter("before", int, required=False, description="a message id: only older results"),
        ],
        responses={200: output_serializer(schema.SearchPage)},
    )
    def get(self, request):
        params = request.query_params
        workspace_id = parse_int_param(params.get("workspaceId"), "workspaceId", minimum=1)
        channel_id = parse_int_param(params.get("channelId"), "channelId", minimum=1)
        before = parse_int_param(params.get("before"), "before", minimum=1)
        limit = _limit(params.get("limit"))
        try:
            results, has_more = selectors.search_messages(
                user=request.user, q=params.get("q", ""), workspace_id=workspace_id, channel_id=channel_id, before=before, limit=limit
            )
        except ValueError as exc:
            raise Invalid("q", str(exc)) from None
        return Response(schema.SearchPage(results=results, hasMore=has_more))


class PalSearchApi(APIView):
    @extend_schema(
        parameters=[*PARAMETERS, OpenApiParameter("before", str, required=False, description="a MessagePal message id: only older results")],
        responses={200: output_serializer(schema.PalSearchPage)},
    )
    def get(self, request):
        params = request.query_params
        before = None
        raw_before = params.get("before")
        if raw_before:
            parsed = pal_protocol.parse_message_id(raw_before)
            if parsed is None:
                raise Invalid("before", "Must be a MessagePal message id.")
            before = parsed[1]
        limit = _limit(params.get("limit"))
        try:
            results, has_more = selectors.search_pal_messages(user=request.user, q=params.get("q", ""), before=before, limit=limit)
        except ValueError as exc:
            raise Invalid("q", str(exc)) from None
        return Response(schema.PalSearchPage(results=results, hasMore=has_more))
