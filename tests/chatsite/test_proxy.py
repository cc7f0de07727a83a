"""chatsite.proxy: X-Forwarded-For/-Proto are believed only with
CHAT_TRUST_PROXY and only from a peer in CHAT_TRUSTED_PROXIES."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from chatsite.origins import allowed
from chatsite.proxy import ProxyHeaders, forwarded_scope, parse_networks

LOOPBACK = parse_networks(["127.0.0.0/8", "::1"])


def scope(peer: str, *headers: tuple[bytes, bytes], kind: str = "http") -> dict:
    return {"type": kind, "client": [peer, 50000], "scheme": "ws" if kind == "websocket" else "http", "headers": list(headers)}


def test_a_trusted_proxy_names_the_client_and_scheme():
    out = forwarded_scope(scope("127.0.0.1", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")), LOOPBACK)
    assert out["client"] == ["203.0.113.7", 0] and out["scheme"] == "https"
    ws = forwarded_scope(scope("::1", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https"), kind="websocket"), LOOPBACK)
    assert ws["client"][0] == "203.0.113.7" and ws["scheme"] == "wss"


def test_anyone_else_is_not_believed():
    original = scope("198.51.100.2", (b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https"))
    assert forwarded_scope(original, LOOPBACK) is original


def test_the_client_is_the_rightmost_address_that_is_not_a_proxy():
    # A client wrote "1.2.3.4" itself; the proxy appended the real peer.
    out = forwarded_scope(scope("127.0.0.1", (b"x-forwarded-for", b"1.2.3.4, 203.0.113.7")), LOOPBACK)
    assert out["client"][0] == "203.0.113.7"
    chain = parse_networks(["127.0.0.1", "10.0.0.0/8"])
    out = forwarded_scope(scope("127.0.0.1", (b"x-forwarded-for", b"1.2.3.4, 203.0.113.7, 10.0.0.3")), chain)
    assert out["client"][0] == "203.0.113.7"
    out = forwarded_scope(scope("127.0.0.1", (b"x-forwarded-for", b"unknown")), LOOPBACK)
    assert out["client"][0] == "127.0.0.1"


def test_bad_networks_are_a_configuration_error():
    with pytest.raises(ImproperlyConfigured):
        parse_networks(["not-an-address"])


async def test_the_origin_check_sees_the_scheme_the_browser_used(settings):
    """Behind TLS on nginx, a page of https://chat.example.org opens wss://
    to the proxy, which talks plain ws to daphne: the own origin must be https."""
    settings.ALLOWED_HOSTS = ["chat.example.org"]
    settings.CHAT_TRUST_PROXY = True
    settings.CHAT_TRUSTED_PROXIES = ["127.0.0.1"]
    seen = {}

    async def app(scope, receive, send):
        seen["allowed"] = allowed(scope)

    handshake = scope(
        "127.0.0.1",
        (b"host", b"chat.example.org"),
        (b"origin", b"https://chat.example.org"),
        (b"x-forwarded-for", b"203.0.113.7"),
        (b"x-forwarded-proto", b"https"),
        kind="websocket",
    )
    await ProxyHeaders(app)(handshake, None, None)
    assert seen["allowed"] is True
    settings.CHAT_TRUST_PROXY = False
    await ProxyHeaders(app)(handshake, None, None)
    assert seen["allowed"] is False, "without the proxy trusted, the scheme is the plain one daphne saw"
