"""HTTP API of workspace chat (PROTOCOL.md, "Workspaces, channels, roles").
Thin: validate input, call one selector or service, shape the output."""

from __future__ import annotations

from typing import cast

from django.conf import settings
from django.utils.translation import gettext_noop
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.selectors import user_object
from wire.http import output_serializer, parse_int_param
from wire.protocol import ProtocolError, read_content
from wire.schema import MAX_ID
from workspace_chat import invites, lifecycle, membership, protocol, safeguarding, schema, selectors, services
from workspace_chat.models import ChannelKind, Role, WorkspaceMembership


def workspace_object(membership: WorkspaceMembership) -> schema.WorkspaceObject:
    return schema.WorkspaceObject(id=membership.workspace_id, name=membership.workspace.name, role=cast(schema.RoleName, membership.role))


def member_object(membership: WorkspaceMembership) -> schema.Member:
    return schema.Member(user=user_object(membership.user), role=cast(schema.RoleName, membership.role))


class WorkspaceListApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)

    @extend_schema(responses={200: output_serializer(schema.WorkspaceObject)(many=True)})
    def get(self, request):
        return Response([workspace_object(m) for m in selectors.workspace_list(request.user)])

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.WorkspaceObject)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.workspace_create(user=request.user, name=data.validated_data["name"])
        return Response(workspace_object(membership), status=status.HTTP_201_CREATED)


class WorkspaceDetailApi(APIView):
    @extend_schema(responses={200: output_serializer(schema.WorkspaceDetail)})
    def get(self, request, workspace_id: int):
        membership = selectors.access_workspace(request.user, workspace_id)
        members = [member_object(m) for m in selectors.workspace_members(membership.workspace)]
        return Response(schema.WorkspaceDetail(**workspace_object(membership), members=members))


class WorkspaceMemberAddApi(APIView):
    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        role = serializers.ChoiceField(choices=Role.choices, default=Role.STUDENT)

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.Member)})
    def post(self, request, workspace_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.workspace_member_add(actor=request.user, workspace_id=workspace_id, **data.validated_data)
        return Response(member_object(membership), status=status.HTTP_201_CREATED)


class ChannelListApi(APIView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=80)
        kind = serializers.ChoiceField(choices=[ChannelKind.TEXT, ChannelKind.ANNOUNCEMENT], default=ChannelKind.TEXT)
        isPrivate = serializers.BooleanField(default=False)

    @extend_schema(responses={200: output_serializer(schema.ChannelListItem)(many=True)})
    def get(self, request, workspace_id: int):
        membership = selectors.access_workspace(request.user, workspace_id)
        result = selectors.channel_list(request.user, membership.workspace)
        return Response(result)

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.ChannelObject)})
    def post(self, request, workspace_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel = services.channel_create(
            actor=request.user,
            workspace_id=workspace_id,
            name=data.validated_data["name"],
            kind=data.validated_data["kind"],
            is_private=data.validated_data["isPrivate"],
        )
        return Response(selectors.channel_object(channel), status=status.HTTP_201_CREATED)


class DmGetOrCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        userId = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    @extend_schema(request=InputSerializer, responses={200: output_serializer(schema.ChannelObject), 201: output_serializer(schema.ChannelObject)})
    def post(self, request, workspace_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        channel, created = services.dm_get_or_create(actor=request.user, workspace_id=workspace_id, user_id=data.validated_data["userId"])
        return Response(selectors.channel_object(channel), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MessageHistoryApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("before", int, required=False),
            OpenApiParameter("after", int, required=False),
            OpenApiParameter("limit", int, required=False, description="1..100, default 50; larger values are capped at 100"),
        ],
        responses={200: output_serializer(schema.MessagePage)},
    )
    def get(self, request, channel_id: int):
        params = request.query_params
        before = parse_int_param(params.get("before"), "before", minimum=1)
        after = parse_int_param(params.get("after"), "after", minimum=0)
        limit = parse_int_param(params.get("limit"), "limit", minimum=1, maximum=10**9) or 50
        results, has_more = selectors.message_history(user=request.user, channel_id=channel_id, before=before, after=after, limit=limit)
        return Response(schema.MessagePage(results=results, hasMore=has_more))


class PinListApi(APIView):
    @extend_schema(responses={200: output_serializer(schema.MessageObject)(many=True)})
    def get(self, request, channel_id: int):
        return Response(selectors.channel_pins(user=request.user, channel_id=channel_id))


class MessageGradeApi(APIView):
    class InputSerializer(serializers.Serializer):
        grade = serializers.CharField(max_length=32)
        feedback = serializers.CharField(max_length=2000, required=False, allow_blank=True, allow_null=True)

    @extend_schema(request=InputSerializer, responses={200: output_serializer(schema.MessageObject)})
    def post(self, request, channel_id: int, message_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        message = services.message_grade(
            user=request.user,
            channel_id=channel_id,
            message_id=message_id,
            grade=data.validated_data["grade"],
            feedback=data.validated_data.get("feedback") or None,
        )
        return Response(message)


class MessageDetailApi(APIView):
    """PATCH: the author edits (PROTOCOL.md part 2); DELETE: the author, an
    admin or a teacher deletes."""

    class InputSerializer(serializers.Serializer):
        content = serializers.CharField(trim_whitespace=True)

        def validate_content(self, value: str) -> str:
            return validate_content(value)

    @extend_schema(request=InputSerializer, responses={200: output_serializer(schema.MessageObject)})
    def patch(self, request, channel_id: int, message_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event = lifecycle.message_edit(user=request.user, channel_id=channel_id, message_id=message_id, content=data.validated_data["content"])
        return Response(event["message"])

    @extend_schema(responses={204: None})
    def delete(self, request, channel_id: int, message_id: int):
        lifecycle.message_delete(user=request.user, channel_id=channel_id, message_id=message_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReactionAddApi(APIView):
    class InputSerializer(serializers.Serializer):
        emoji = serializers.CharField(max_length=protocol.MAX_EMOJI_LENGTH, trim_whitespace=False)

        def validate_emoji(self, value: str) -> str:
            return validate_emoji(value)

    @extend_schema(request=InputSerializer, responses={200: output_serializer(schema.ReactionsAnswer)})
    def post(self, request, channel_id: int, message_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        event, _ = lifecycle.reaction_set(user=request.user, channel_id=channel_id, message_id=message_id, emoji=data.validated_data["emoji"], add=True)
        return Response(schema.ReactionsAnswer(reactions=event["reactions"]))


class ReactionRemoveApi(APIView):
    @extend_schema(responses={200: output_serializer(schema.ReactionsAnswer)})
    def delete(self, request, channel_id: int, message_id: int, emoji: str):
        try:
            emoji = validate_emoji(emoji)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"emoji": exc.detail}) from None
        event, _ = lifecycle.reaction_set(user=request.user, channel_id=channel_id, message_id=message_id, emoji=emoji, add=False)
        return Response(schema.ReactionsAnswer(reactions=event["reactions"]))


class ThreadApi(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("after", int, required=False),
            OpenApiParameter("limit", int, required=False, description="1..100, default 50; larger values are capped at 100"),
        ],
        responses={200: output_serializer(schema.ThreadPage)},
    )
    def get(self, request, channel_id: int, message_id: int):
        params = request.query_params
        after = parse_int_param(params.get("after"), "after", minimum=0)
        limit = parse_int_param(params.get("limit"), "limit", minimum=1, maximum=10**9) or 50
        return Response(selectors.message_thread(user=request.user, channel_id=channel_id, message_id=message_id, after=after, limit=limit))


def validate_content(value: str) -> str:
    """The content rules of `send_message` (wire.protocol.read_content) for a DRF field."""
    try:
        return read_content({"content": value}, settings.CHAT_MAX_MESSAGE_LENGTH)
    except ProtocolError as exc:
        raise serializers.ValidationError(exc.message) from None


def validate_emoji(value: str) -> str:
    try:
        return protocol.read_emoji({"emoji": value})
    except ProtocolError as exc:
        raise serializers.ValidationError(exc.message) from None


class ReportCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=safeguarding.MAX_REASON, trim_whitespace=True)

        def validate_reason(self, value: str) -> str:
            return validate_text(value, "reason")

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.ReportObject)})
    def post(self, request, channel_id: int, message_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = safeguarding.report_create(user=request.user, channel_id=channel_id, message_id=message_id, reason=data.validated_data["reason"])
        return Response(report, status=status.HTTP_201_CREATED)


class ReportListApi(APIView):
    @extend_schema(responses={200: output_serializer(schema.ReportObject)(many=True)})
    def get(self, request, workspace_id: int):
        return Response(safeguarding.report_list(user=request.user, workspace_id=workspace_id))


class ReportResolveApi(APIView):
    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=safeguarding.RESOLUTIONS)
        minutes = serializers.IntegerField(min_value=1, max_value=safeguarding.MAX_MUTE_MINUTES, default=60)
        reason = serializers.CharField(max_length=safeguarding.MAX_REASON, required=False, allow_blank=True, default="")

        def validate_reason(self, value: str) -> str:
            return validate_text(value, "reason")

    @extend_schema(request=InputSerializer, responses={200: output_serializer(schema.ReportObject)})
    def post(self, request, workspace_id: int, report_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        report = safeguarding.report_resolve(
            actor=request.user, workspace_id=workspace_id, report_id=report_id, action=values["action"], minutes=values["minutes"], reason=values["reason"]
        )
        return Response(report)


class AuditListApi(APIView):
    @extend_schema(responses={200: output_serializer(schema.AuditObject)(many=True)})
    def get(self, request, workspace_id: int):
        return Response(safeguarding.audit_list(actor=request.user, workspace_id=workspace_id))


class MuteCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        userId = serializers.IntegerField(min_value=1, max_value=MAX_ID)
        minutes = serializers.IntegerField(min_value=1, max_value=safeguarding.MAX_MUTE_MINUTES)
        reason = serializers.CharField(max_length=safeguarding.MAX_REASON, required=False, allow_blank=True, default="")

        def validate_reason(self, value: str) -> str:
            return validate_text(value, "reason")

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.MuteObject)})
    def post(self, request, workspace_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["userId"] == request.user.id:
            raise serializers.ValidationError({"userId": [gettext_noop("You cannot mute yourself.")]})
        mute = safeguarding.mute_set(actor=request.user, workspace_id=workspace_id, user_id=values["userId"], minutes=values["minutes"], reason=values["reason"])
        return Response(mute, status=status.HTTP_201_CREATED)


class MuteDeleteApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, workspace_id: int, user_id: int):
        safeguarding.mute_clear(actor=request.user, workspace_id=workspace_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices)

    @extend_schema(request=InputSerializer, responses={200: output_serializer(schema.Member)})
    def patch(self, request, workspace_id: int, user_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = membership.member_role_set(actor=request.user, workspace_id=workspace_id, user_id=user_id, role=data.validated_data["role"])
        return Response(member_object(member))

    @extend_schema(responses={204: None})
    def delete(self, request, workspace_id: int, user_id: int):
        membership.member_remove(actor=request.user, workspace_id=workspace_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelMembersApi(APIView):
    class InputSerializer(serializers.Serializer):
        userId = serializers.IntegerField(min_value=1, max_value=MAX_ID)

    @extend_schema(responses={200: output_serializer(schema.Member)(many=True)})
    def get(self, request, channel_id: int):
        return Response([member_object(m) for m in membership.channel_members(user=request.user, channel_id=channel_id)])

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.Member)})
    def post(self, request, channel_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        member = membership.channel_member_add(actor=request.user, channel_id=channel_id, user_id=data.validated_data["userId"])
        return Response(member_object(member), status=status.HTTP_201_CREATED)


class ChannelMemberDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, channel_id: int, user_id: int):
        membership.channel_member_remove(actor=request.user, channel_id=channel_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteListApi(APIView):
    class InputSerializer(serializers.Serializer):
        role = serializers.ChoiceField(choices=Role.choices, default=Role.STUDENT)
        maxUses = serializers.IntegerField(min_value=1, max_value=invites.MAX_USES, default=invites.DEFAULT_USES)
        expiresInHours = serializers.IntegerField(min_value=1, max_value=invites.MAX_HOURS, default=invites.DEFAULT_HOURS)

    @extend_schema(responses={200: output_serializer(schema.InviteObject)(many=True)})
    def get(self, request, workspace_id: int):
        return Response(invites.invite_list(actor=request.user, workspace_id=workspace_id))

    @extend_schema(request=InputSerializer, responses={201: output_serializer(schema.InviteObject)})
    def post(self, request, workspace_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        invite = invites.invite_create(
            actor=request.user, workspace_id=workspace_id, role=values["role"], max_uses=values["maxUses"], expires_in_hours=values["expiresInHours"]
        )
        return Response(invite, status=status.HTTP_201_CREATED)


class InviteDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, workspace_id: int, code: str):
        invites.invite_revoke(actor=request.user, workspace_id=workspace_id, code=code)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteAcceptApi(APIView):
    @extend_schema(request=None, responses={200: output_serializer(schema.WorkspaceObject)})
    def post(self, request, code: str):
        return Response(workspace_object(invites.invite_accept(user=request.user, code=code)))


def validate_text(value: str, name: str) -> str:
    """Free text people type (a report's reason): no NUL, valid Unicode."""
    if "\x00" in value:
        raise serializers.ValidationError("Must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise serializers.ValidationError("Must be valid Unicode text.") from None
    return value
