"""The one place every password is checked (the API's login and Django
admin's): Django's ModelBackend behind the login throttle
(accounts.throttle)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from accounts import throttle


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any) -> Any:
        if username is None:
            return None
        wait = throttle.login_wait(username)
        if wait:
            # Refused without checking the password (no hashing work either):
            # the caller answers 429 with this Retry-After.
            if request is not None:
                request.chat_login_retry_after = wait  # type: ignore[attr-defined]
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None or getattr(user, "is_ai", False):
            throttle.login_failed(username)
            return None
        throttle.login_succeeded(username)
        return user


def login_retry_after(request: HttpRequest) -> float:
    """Seconds the throttle asked this request's login to wait (0: not throttled)."""
    return float(getattr(request, "chat_login_retry_after", 0.0))
