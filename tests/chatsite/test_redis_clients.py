"""Every Redis client of the project is built in realtime/redis.py, so none
misses Redis Sentinel (REDIS_SENTINELS) or the reconnect policy: no other
module of the server imports redis-py for more than its exceptions, and the
settings route the channel layer and Django's cache through it."""

from __future__ import annotations

import ast
from pathlib import Path

from realtime import redis as chat_redis

ROOT = Path(__file__).resolve().parents[2]
# Not the server: tests, benchmarks (their own clients against their own
# Redis), scripts, the virtualenv.
SKIP = {"tests", "bench", "scripts", ".venv", "node_modules", "static", "templates", "media"}
BUILDER = "realtime/redis.py"


def server_modules() -> list[Path]:
    return [
        p for p in ROOT.rglob("*.py")
        if p.relative_to(ROOT).parts[0] not in SKIP and not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
    ]


def redis_uses(tree: ast.AST) -> list[str]:
    """redis-py (and Django's Redis cache backend) imports beyond exceptions."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "redis" or a.name.startswith(("redis.", "channels_redis"))]
        elif isinstance(node, ast.ImportFrom) and node.module:
            module = node.module
            if module == "redis.exceptions":
                continue
            if module == "redis" or module.startswith(("redis.", "channels_redis", "django.core.cache.backends.redis")):
                # Exceptions, and the layer's class (realtime.hub reads a batch
                # through the layer's own, Sentinel-aware, connection when the
                # layer is a RedisChannelLayer): neither builds a client.
                names = [a.name for a in node.names if not a.name.endswith(("Error", "Exception")) and (module, a.name) != ("channels_redis.core", "RedisChannelLayer")]
                if names:
                    found.append(f"{module}: {', '.join(names)}")
    return found


def test_only_realtime_redis_builds_redis_clients():
    offenders = {}
    for path in server_modules():
        rel = path.relative_to(ROOT).as_posix()
        if rel in (BUILDER, "realtime/cache.py"):
            continue
        uses = redis_uses(ast.parse(path.read_text(), filename=rel))
        if uses:
            offenders[rel] = uses
    assert not offenders, f"Redis clients must come from {BUILDER} (Sentinel, retries): {offenders}"


def test_cache_backend_uses_the_shared_client():
    """realtime/cache.py imports Django's backend only to hand it our client."""
    source = (ROOT / "realtime" / "cache.py").read_text()
    assert "from realtime.redis import sync_client" in source
    assert "from_url" not in source and "ConnectionPool" not in source


def test_settings_route_layer_and_cache_through_realtime_redis(settings):
    source = (ROOT / "chatsite" / "settings.py").read_text()
    assert "layer_host(" in source and "realtime.cache.RedisCache" in source
    assert "django.core.cache.backends.redis" not in source


def test_layer_host_with_sentinels():
    host = chat_redis.layer_host(url="redis://x:1/0", sentinels=[("127.0.0.1", 26379)], master="chat", db=3)
    assert host["sentinels"] == [("127.0.0.1", 26379)] and host["master_name"] == "chat" and host["db"] == 3
    assert host["connection_class"] is chat_redis.AsyncFollowPrimary
    assert "address" not in host
    assert host["retry"].get_retries() == chat_redis.FAILOVER_RETRIES
    plain = chat_redis.layer_host(url="redis://x:1/0", sentinels=[], master="", db=0)
    assert plain["address"] == "redis://x:1/0" and plain["retry"].get_retries() == 1


def test_parse_sentinels():
    assert chat_redis.parse_sentinels(" 127.0.0.1:26379, host-b:26380 ,") == [("127.0.0.1", 26379), ("host-b", 26380)]
    assert chat_redis.parse_sentinels("[::1]:26379") == [("::1", 26379)]
    assert chat_redis.parse_sentinels("") == []
    for bad in ("127.0.0.1", "host:port", ":26379"):
        try:
            chat_redis.parse_sentinels(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} accepted")
