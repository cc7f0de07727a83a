"""HTTP API of notifications (PROTOCOL.md part 2, "Presence snapshot,
mentions and notifications"). Thin: validate, call one selector or service."""

from __future__ import annotations

from django.utils.translation import gettext_noop
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications import selectors, services
from notifications.models import Level
from notifications.schema import LevelObject, NotificationPage
from wire.http import output_serializer, parse_int_param
from wire.schema import MAX_ID
from workspace_chat.selectors import access_channel

# A read request names at most this many notifications.
MAX_READ_IDS = 500


class ChannelLevelApi(APIView):
    class InputSerializer(serializers.Serializer):
        level = serializers.ChoiceField(choices=Level.choices)

    @extend_schema(responses={200: output_serializer(LevelObject)})
    def get(self, request, channel_id: int):
        channel = access_channel(request.user, channel_id).channel
        return Response(LevelObject(level=selectors.level_of(user=request.user, channel=channel)))

    @extend_schema(request=InputSerializer, responses={200: output_serializer(LevelObject)})
    def put(self, request, channel_id: int):
        channel = access_channel(request.user, channel_id).channel
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        level = services.level_set(user=request.user, channel=channel, level=data.validated_data["level"])
        return Response(LevelObject(level=level))


class NotificationListApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("unread", int, required=False), OpenApiParameter("before", int, required=False)],
        responses={200: output_serializer(NotificationPage)},
    )
    def get(self, request):
        unread = request.query_params.get("unread", "")
        if unread not in ("", "0", "1", "true", "false"):
            raise serializers.ValidationError({"unread": [gettext_noop("Must be 1 or 0.")]})
        before = parse_int_param(request.query_params.get("before"), "before", minimum=1)
        return Response(selectors.notification_page(user=request.user, unread=unread in ("1", "true"), before=before))


class NotificationReadApi(APIView):
    class InputSerializer(serializers.Serializer):
        ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=MAX_ID), required=False, max_length=MAX_READ_IDS)
        channelId = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.notifications_read(user=request.user, ids=data.validated_data.get("ids"), channel_id=data.validated_data.get("channelId"))
        return Response(status=status.HTTP_204_NO_CONTENT)
