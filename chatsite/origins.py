"""Which browser pages may open a WebSocket here (PROTOCOL.md, "Workspace
chat WebSocket"): a handshake whose Origin is this site's own origin -- the
scheme, host and port the request came to -- or one listed in
DJANGO_ALLOWED_ORIGINS. Anything else, a missing Origin included, is refused
before the consumer runs (no cross-site WebSocket hijacking). The host must
also be one of ALLOWED_HOSTS."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize(origin: str) -> str | None:
    """`scheme://host:port` with the default port spelled out; None if it is not an origin."""
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def own_origin(scope: dict[str, Any]) -> str | None:
    """The origin the handshake came to, from its Host header and scheme."""
    headers = dict(scope.get("headers", ()))
    host = headers.get(b"host", b"").decode("latin-1")
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    return normalize(f"{scheme}://{host}")


def allowed(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers", ()))
    raw = headers.get(b"origin")
    if not raw:
        return False
    origin = normalize(raw.decode("latin-1"))
    if origin is None:
        return False
    listed = {normalize(o) for o in settings.DJANGO_ALLOWED_ORIGINS}
    return origin == own_origin(scope) or origin in listed


class OriginValidator:
    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
