"""`POST /api/files/` (PROTOCOL.md part 2, "Files"). Thin: validate, call the service."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from files import services
from files.schema import FileObject
from wire.http import output_serializer
from wire.schema import MAX_ID


class FileUploadApi(APIView):
    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(allow_empty_file=True, max_length=1000)
        channelId = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
        conversationId = serializers.RegexField(r"^conv_[0-9]{1,16}_[0-9]{1,16}$", max_length=40, required=False)

    @extend_schema(request={"multipart/form-data": InputSerializer}, responses={201: output_serializer(FileObject)})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        uploaded = services.file_upload(
            user=request.user,
            upload=data.validated_data["file"],
            channel_id=data.validated_data.get("channelId"),
            conversation_id=data.validated_data.get("conversationId"),
        )
        return Response(uploaded, status=status.HTTP_201_CREATED)
