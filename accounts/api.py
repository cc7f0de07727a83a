"""Auth endpoints of PROTOCOL.md ("Identity and authentication")."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_noop
from django.views.decorators.csrf import csrf_protect, ensure_csrf_cookie
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from accounts.backends import login_retry_after
from accounts.schema import MeObject, UserObject
from accounts.selectors import me_object, user_canonical_username, user_object, user_search
from accounts.services import user_email_settings, user_logout, user_password_change, user_register
from wire.errors import Invalid, RateLimited
from wire.http import output_serializer

UserOutputSerializer = output_serializer(UserObject)


@method_decorator(ensure_csrf_cookie, name="dispatch")
class CsrfApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses={204: None})
    def get(self, request):
        return Response(status=status.HTTP_204_NO_CONTENT)


class RegisterThrottle(AnonRateThrottle):
    """CHAT_REGISTER_RATE registrations per client address, counted in
    Django's cache (Redis when there is one: across processes)."""

    scope = "register"

    def get_rate(self) -> str:
        return settings.CHAT_REGISTER_RATE

    def get_cache_key(self, request: Any, view: Any) -> str:
        # Every attempt counts, logged in or not (AnonRateThrottle skips logged-in callers).
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


@method_decorator(csrf_protect, name="dispatch")
class RegisterApi(APIView):
    """CSRF is checked even for anonymous callers (DRF checks it only for
    session-authenticated ones): no login CSRF."""

    permission_classes = [AllowAny]
    throttle_classes = [RegisterThrottle]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150, validators=[UnicodeUsernameValidator()])
        password = serializers.CharField(max_length=128, trim_whitespace=False)
        displayName = serializers.CharField(max_length=80, required=False, allow_blank=True)
        email = serializers.EmailField(max_length=254, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: UserOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_register(
            username=data.validated_data["username"],
            password=data.validated_data["password"],
            display_name=data.validated_data.get("displayName", ""),
            email=data.validated_data.get("email", ""),
        )
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        return Response(user_object(user), status=status.HTTP_201_CREATED)


@method_decorator(csrf_protect, name="dispatch")
class LoginApi(APIView):
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={200: UserOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Usernames are unique regardless of case (user_register): log in that way too.
        username = user_canonical_username(data.validated_data["username"])
        user = authenticate(request, username=username, password=data.validated_data["password"])
        wait = login_retry_after(request)
        if wait:
            raise RateLimited("Too many failed logins for this username; try again later.", wait)
        if user is None:
            raise serializers.ValidationError({"non_field_errors": [gettext_noop("Invalid username or password.")]})
        login(request, user)
        return Response(user_object(user))


@method_decorator(csrf_protect, name="dispatch")
class LogoutApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        user_logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


@method_decorator(csrf_protect, name="dispatch")
class PasswordChangeApi(APIView):
    class InputSerializer(serializers.Serializer):
        oldPassword = serializers.CharField(max_length=128, trim_whitespace=False)
        newPassword = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user_password_change(
            request=request, user=request.user, old_password=data.validated_data["oldPassword"], new_password=data.validated_data["newPassword"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@method_decorator(csrf_protect, name="dispatch")
class MeApi(APIView):
    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
        emailNotifications = serializers.BooleanField(required=False)

    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request):
        return Response(user_object(request.user))

    @extend_schema(request=InputSerializer, responses={200: output_serializer(MeObject)})
    def patch(self, request):
        """The email settings; answers the user object with them (GET
        answers the plain user object, as PROTOCOL.md part 1 fixes it)."""
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = user_email_settings(user=request.user, email=data.validated_data.get("email"), email_notifications=data.validated_data.get("emailNotifications"))
        return Response(me_object(user))


class UserSearchApi(APIView):
    """People who share a workspace with the caller (PROTOCOL.md part 2, "Who
    can reach whom"), at most 20."""

    @extend_schema(parameters=[OpenApiParameter("search", str, required=False)], responses={200: UserOutputSerializer(many=True)})
    def get(self, request):
        text = request.query_params.get("search", "")[:150]
        if "\x00" in text:  # PostgreSQL refuses NUL in a query: a 400, not a 500
            raise Invalid("search", "Must not contain NUL characters.")
        return Response([user_object(u) for u in user_search(user=request.user, text=text)])
