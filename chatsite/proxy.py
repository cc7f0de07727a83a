"""Which proxies the app believes: behind a load balancer (nginx,
deploy/nginx.conf) the peer of every request is the proxy, which names the
client in `X-Forwarded-For` and the scheme the client used in
`X-Forwarded-Proto`. With CHAT_TRUST_PROXY=1 this middleware puts those into
the ASGI scope (`client`, `scheme`: REMOTE_ADDR, `request.is_secure()`, the
WebSocket Origin check's own origin), but only for a request whose peer is
one of CHAT_TRUSTED_PROXIES (default: loopback); from anyone else the
headers are ignored, since any client can send them.

daphne's own `--proxy-headers` is not used: it believes any peer, and takes
the left-most (client-written) X-Forwarded-For address. Here the client is
the right-most address that is not a trusted proxy, as Django's and
uvicorn's guides advise.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Scope = MutableMapping[str, Any]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(spec: Iterable[str]) -> list[Network]:
    """`127.0.0.0/8`, `10.0.0.5`, `::1`: addresses or networks."""
    networks = []
    for item in spec:
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(f"CHAT_TRUSTED_PROXIES: {item!r} is not an address or network") from exc
    return networks


def _is_in(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _header(scope: Scope, name: bytes) -> str | None:
    values = [value for key, value in scope.get("headers", ()) if key == name]
    return ",".join(v.decode("latin-1") for v in values) if values else None


def forwarded_scope(scope: Scope, networks: list[Network]) -> Scope:
    """The scope as the client saw it, when the peer is a trusted proxy;
    else the scope unchanged."""
    client = scope.get("client")
    if not client or not _is_in(str(client[0]), networks):
        return scope
    changed = dict(scope)
    forwarded_for = _header(scope, b"x-forwarded-for")
    if forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        # Right to left: each trusted proxy names the one before it; the first
        # address that is not a trusted proxy is the client. Garbage stops the walk.
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop.strip("[]"))
            except ValueError:
                break
            changed["client"] = [hop.strip("[]"), 0]
            if not _is_in(hop, networks):
                break
    proto = (_header(scope, b"x-forwarded-proto") or "").split(",")[-1].strip().lower()
    if proto in ("http", "https"):
        if scope["type"] == "websocket":
            changed["scheme"] = "wss" if proto == "https" else "ws"
        else:
            changed["scheme"] = proto
    return changed


class ProxyHeaders:
    def __init__(self, application: Callable[..., Awaitable[None]]) -> None:
        self.application = application
        self.enabled = settings.CHAT_TRUST_PROXY
        self.networks = parse_networks(settings.CHAT_TRUSTED_PROXIES)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if self.enabled and scope["type"] in ("http", "websocket"):
            scope = forwarded_scope(scope, self.networks)
        await self.application(scope, receive, send)
