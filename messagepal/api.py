"""MessagePal over HTTP (PROTOCOL.md, "MessagePal HTTP", and part 2's
"Class management and safeguarding" for blocks). Non-participants, and
participants who no longer share a workspace, get 404."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.schema import UserObject
from accounts.selectors import user_object
from messagepal import protocol, schema, selectors, services
from wire.errors import Invalid
from wire.http import output_serializer, parse_int_param
from wire.protocol import MAX_CLIENT_ID, is_safe_url
from wire.schema import MAX_ID


class ConversationListApi(APIView):
    @extend_schema(responses={200: output_serializer(schema.ConversationListItem)(many=True)})
    def get(self, request):
        return Response(selectors.conversation_list(user=request.user))


class ConversationMessagesApi(APIView):
    class InputSerializer(serializers.Serializer):
        content = serializers.CharField(trim_whitespace=True)
        clientId = serializers.CharField(max_length=MAX_CLIENT_ID, required=False, allow_null=True)
        fileUrl = serializers.CharField(max_length=2048, required=False, allow_null=True)

        def validate_fileUrl(self, value: str | None) -> str | None:  # DRF's validate_<field> for fileUrl
            if value is not None and not is_safe_url(value):
                raise serializers.ValidationError("Must be an http(s):// URL or a path on this site.")
            return value

        def validate_content(self, value: str) -> str:
            from django.conf import settings

            if "\x00" in value:
                raise serializers.ValidationError("Must not contain NUL characters.")
            if len(value) > settings.CHAT_MAX_MESSAGE_LENGTH:
                raise serializers.ValidationError(f"Must be at most {settings.CHAT_MAX_MESSAGE_LENGTH} characters.")
            return value

    @extend_schema(
        parameters=[OpenApiParameter("before", str, required=False), OpenApiParameter("limit", int, required=False)],
        responses={200: output_serializer(schema.PalMessagePage)},
    )
    def get(self, request, conversation_id: str):
        selectors.access_conversation(request.user, conversation_id)
        before = None
        raw_before = request.query_params.get("before")
        if raw_before:
            parsed = protocol.parse_message_id(raw_before)
            if parsed is None or parsed[0] != conversation_id:
                raise Invalid("before", "Must be a message id of this conversation.")
            before = parsed[1]
        limit = parse_int_param(request.query_params.get("limit"), "limit", minimum=1) or protocol.DEFAULT_PAGE
        results, has_more = selectors.conversation_history(user=request.user, conversation_id=conversation_id, before=before, limit=limit)
        return Response(schema.PalMessagePage(results=results, hasMore=has_more))

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.PalMessageObject)})
    def post(self, request, conversation_id: str):
        selectors.access_conversation(request.user, conversation_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message, created = services.pal_message_send_to_conversation(
            sender=request.user,
            conversation_id=conversation_id,
            content=data.validated_data["content"],
            client_id=data.validated_data.get("clientId") or None,
            file_url=data.validated_data.get("fileUrl") or None,
        )
        return Response(message, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class BlockListApi(APIView):
    """The caller's MessagePal blocks. A block works both ways: while A blocks
    B, B's sends to A and A's sends to B are refused (`forbidden` over
    /ws/messagepal/, 403 here), edits between them too, and neither sees the
    other typing; both keep their history. Blocking someone already blocked
    answers 200 with them; yourself, or no such active user, 400 `userId`."""

    class InputSerializer(serializers.Serializer):
        userId = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    @extend_schema(responses={200: output_serializer(UserObject)(many=True)})
    def get(self, request):
        return Response(selectors.block_list(user=request.user))

    @extend_schema(request=InputSerializer, responses={201: output_serializer(UserObject), 200: output_serializer(UserObject)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        blocked, created = services.block_create(blocker=request.user, user_id=data.validated_data["userId"])
        return Response(user_object(blocked), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class BlockDeleteApi(APIView):
    """Unblock: 204, or 404 when the caller had not blocked that person."""

    @extend_schema(responses={204: None})
    def delete(self, request, user_id: int):
        services.block_delete(blocker=request.user, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
