"""The servers under test and what they need (bench/run.py, `make bench`):
each one's command line (SPECS), the services, database and seed of a run,
and `running`, which starts one server with its client workers and stops them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from bench import config
from bench.config import BENCH_REDIS_DB, PY, ROOT, Budget, log
from bench.loadgen import Worker
from bench.procs import Server, machine_busy_seconds
from bench.targets import Centrifugo, ChannelsTutorial, OurChat, SocketIO, Target

OURS_ARGV = ("-m", "chatsite.server", "--bind", "127.0.0.1", "--port", "{port}")
LAYER_CLASS = {"core": "RedisChannelLayer", "pubsub": "RedisPubSubChannelLayer"}


@dataclass
class Spec:
    """A server under test: how to start it and how to talk to it."""

    key: str
    label: str
    argv: tuple[str, ...]
    make_target: Callable[[int, dict], Target]
    env: dict[str, str] = field(default_factory=dict)
    login: bool = False  # connections need the seeded session cookies
    layer: str | None = None  # ours: the CHAT_CHANNEL_LAYER it must resolve to
    processes: int = 1  # server processes on one Redis; receiver worker i talks to process i % processes
    # Extra processes of the same server that only take the publishers' sends
    # (goload only): the measured processes do the fan-out alone, so their
    # ceiling shows past what one process accepts (each send waits for its
    # commit on the one database thread: ~32 msg/s). Their CPU counts as the
    # clients'.
    feeders: int = 0
    publishers: int = 1  # goload publisher connections (spread over the feeders)
    cwd: Path = ROOT  # the checkout the server runs from (--compare-with: another commit's)


@dataclass(frozen=True)
class Context:
    """What every phase shares: the servers' environment, the seeded data
    (session keys, user ids, the channel) and the run's directory (logs)."""

    env: dict[str, str]
    seed: dict
    run_dir: Path


SPECS = [
    Spec("core", "ours, RedisChannelLayer", OURS_ARGV, lambda port, seed: OurChat(port, seed["channelId"]),
         {"CHAT_CHANNEL_LAYER": "core"}, login=True, layer="core"),
    Spec("pubsub", "ours, RedisPubSubChannelLayer", OURS_ARGV, lambda port, seed: OurChat(port, seed["channelId"]),
         {"CHAT_CHANNEL_LAYER": "pubsub"}, login=True, layer="pubsub"),
    # Scale-out: the same chat served by two daphne processes on one Redis
    # (README, "Scaling"), one per core; half the receivers on each.
    Spec("core2", "ours, RedisChannelLayer, 2 processes", OURS_ARGV, lambda port, seed: OurChat(port, seed["channelId"]),
         {"CHAT_CHANNEL_LAYER": "core"}, login=True, layer="core", processes=2),
    # Both cores on one port: `--workers 2` binds once and starts two servers
    # that accept on that socket (chatsite/server.py), a hub each, over Redis.
    Spec("pair", "ours, RedisChannelLayer, 2 processes on one port (--workers 2)", (*OURS_ARGV, "--workers", "2"),
         lambda port, seed: OurChat(port, seed["channelId"]), {"CHAT_CHANNEL_LAYER": "core"}, login=True, layer="core"),
    # One process's fan-out past one process's sends: the publishers send
    # through three other processes (run it with --only fed --loadgen go).
    Spec("fed", "ours, 1 process, sends through 3 other processes", OURS_ARGV,
         lambda port, seed: OurChat(port, seed["channelId"]), {"CHAT_CHANNEL_LAYER": "core"}, login=True, layer="core",
         feeders=3, publishers=6),
    Spec("tutorial", "Channels tutorial (daphne)",
         ("-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "bench.baselines.channels_tutorial.asgi:application"),
         lambda port, seed: ChannelsTutorial(port), {"DJANGO_SETTINGS_MODULE": "bench.baselines.channels_tutorial.settings"}),
    # Ours under uvicorn (websockets-sansio) instead of daphne: no daphne
    # adapter, so every broadcast goes through ASGI send (issue 12 asks whether
    # it matches daphne with the adapter). Run it with --only.
    Spec("uvicorn", "ours under uvicorn (websockets-sansio), RedisChannelLayer",
         ("-m", "uvicorn", "chatsite.asgi:application", "--host", "127.0.0.1", "--port", "{port}", "--loop", "asyncio",
          "--ws", "websockets-sansio", "--ws-max-size", "65536", "--ws-ping-interval", "20", "--ws-ping-timeout", "30",
          "--lifespan", "off", "--no-access-log", "--log-level", "warning"),
         lambda port, seed: OurChat(port, seed["channelId"]), {"CHAT_CHANNEL_LAYER": "core"}, login=True, layer="core"),
    # Centrifugo v6 (Go), built from the Go module proxy into the cache
    # (bench/centrifugo.py), Redis engine on the bench's Redis.
    Spec("centrifugo", "Centrifugo v6.9.1 (Go, Redis engine)", ("-m", "bench.centrifugo", "--port", "{port}"),
         lambda port, seed: Centrifugo(port)),
    # The same on one core (GOMAXPROCS=1), as ours runs one process: run it with --only.
    Spec("centrifugo1", "Centrifugo v6.9.1, GOMAXPROCS=1", ("-m", "bench.centrifugo", "--port", "{port}"),
         lambda port, seed: Centrifugo(port), {"GOMAXPROCS": "1"}),
    Spec("socketio", "python-socketio (uvicorn)",
         ("-m", "uvicorn", "bench.baselines.socketio_app:app", "--host", "127.0.0.1", "--port", "{port}",
          "--loop", "asyncio", "--ws", "websockets-sansio", "--log-level", "warning"),
         lambda port, seed: SocketIO(port)),
]


# --- setup ------------------------------------------------------------------------------
def ensure_baseline_packages() -> None:
    import importlib.util

    if all(importlib.util.find_spec(name) for name in ("socketio", "uvicorn", "uvloop")):
        return
    log("installing bench/requirements.txt into the venv (baselines)")
    subprocess.run(
        [PY, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", str(ROOT / "bench" / "requirements.txt")],
        check=True, timeout=300,
    )


def prepare_binaries(specs: list[Spec]) -> list[str]:
    """Centrifugo and goload built (Go module proxy; minutes the first time)
    before any phase starts; without Go, Centrifugo is left out and the
    Python clients drive every server."""
    from bench import centrifugo, goload

    notes = []
    for spec in [s for s in specs if s.key.startswith("centrifugo")]:
        try:
            log(f"Centrifugo {centrifugo.CENTRIFUGO_VERSION}: {centrifugo.build()}")
        except (OSError, subprocess.SubprocessError) as exc:
            specs.remove(spec)
            notes.append(f"Centrifugo NOT measured: it could not be built ({exc})")
    if config.LOADGEN == "go":
        try:
            goload.build()
        except (OSError, subprocess.SubprocessError) as exc:
            config.LOADGEN = "python"
            notes.append(f"goload could not be built ({exc}): the Python clients drove every server")
    return notes


def start_services() -> dict[str, str]:
    """REDIS_URL (required) and DATABASE_URL (PostgreSQL; without it SQLite)."""
    for names in (("redis", "postgres"), ("redis",)):
        done = subprocess.run([str(ROOT / "scripts" / "services"), "up", *names], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode == 0:
            return dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
        log(f"scripts/services up {' '.join(names)} failed:\n{done.stderr[-1500:]}")
    raise RuntimeError("Redis could not be started (scripts/services up redis)")


def bench_env(services: dict[str, str]) -> dict[str, str]:
    from tests.e2e.harness import prepare_database

    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CHAT_CHANNEL_LAYER")}
    env.update(
        REDIS_URL=urlparse(services["REDIS_URL"])._replace(path=f"/{BENCH_REDIS_DB}").geturl(),
        DJANGO_DEBUG="0",
        LOG_LEVEL="WARNING",
        # Every message of the publisher must be accepted: the bench measures
        # delivery, not the limiter (a rate_limited answer would not be a loss).
        CHAT_RATE_LIMIT_MESSAGES="1000000",
        CHAT_RATE_LIMIT_WINDOW="1",
    )
    if "DATABASE_URL" in services:
        env["DATABASE_URL"] = services["DATABASE_URL"]
    return prepare_database(env, "chat_bench")


def seed(env: dict[str, str], run_dir: Path) -> dict:
    out = run_dir / "seed.json"
    subprocess.run(
        [PY, "bench/seed.py", "--users", str(max(config.IDLE_COUNTS)), "--members", str(config.MEMBERS), "--out", str(out)],
        cwd=ROOT, env=env, check=True, timeout=300,
    )
    return json.loads(out.read_text())


def drop_database(env: dict[str, str]) -> None:
    """The bench's PostgreSQL database (prepare_database made it); a SQLite
    file goes with the run directory."""
    url = env["DATABASE_URL"]
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        with psycopg.connect(urlparse(url)._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{urlparse(url).path.lstrip("/")}" WITH (FORCE)')


def resolved_layer(env: dict[str, str]) -> str:
    """The channel layer class our server would really use with this env, so
    a row is never labelled with a layer the settings did not honour."""
    code = "import django; django.setup(); from django.conf import settings; print(settings.CHANNEL_LAYERS['default']['BACKEND'])"
    done = subprocess.run([PY, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "chatsite.settings"},
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip().rsplit(".", 1)[-1]


def background_load(seconds: float = 2.0) -> float:
    """How busy the machine is before we start (% of all cores): the figures
    mean little if other work already takes the CPU."""
    before = machine_busy_seconds()
    time.sleep(seconds)
    return 100 * (machine_busy_seconds() - before) / seconds / len(os.sched_getaffinity(0))


def redis_client(env: dict[str, str]):
    import redis

    return redis.Redis.from_url(env["REDIS_URL"], socket_timeout=5)


def redis_cpu(client) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- running a server with its clients ------------------------------------------------------
class Servers:
    """The processes of one server under test, measured together (CPU and
    RSS summed); `port` is the first one's, where the publisher connects
    unless there are feeders (Spec.feeders: not measured, publishers only)."""

    def __init__(self, servers: list[Server], feeders: list[Server] | None = None) -> None:
        self.servers = servers
        self.feeders = feeders or []
        self.ports = [s.port for s in servers]
        self.port = self.ports[0]

    def start(self) -> Servers:
        for server in [*self.servers, *self.feeders]:
            server.start()
        return self

    def stop(self) -> None:
        for server in [*self.servers, *self.feeders]:
            server.stop()

    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds() for s in self.servers)

    def rss_kib(self) -> int:
        return sum(s.rss_kib() for s in self.servers)


@contextlib.contextmanager
def running(spec: Spec, ctx: Context, workers: int, budget: Budget) -> Iterator[tuple[Servers, list[Worker]]]:
    with redis_client(ctx.env) as redis:
        redis.flushdb()  # no groups, presence or buckets left by the previous server
    names = [spec.key] if spec.processes == 1 else [f"{spec.key}-{i}" for i in range(spec.processes)]
    while True:  # each picks a free port before any listens: never twice the same
        def start(name: str) -> Server:
            return Server(name, list(spec.argv), {**ctx.env, **spec.env}, ctx.run_dir, cwd=spec.cwd)

        server = Servers([start(name) for name in names], [start(f"{spec.key}-feeder{i}") for i in range(spec.feeders)])
        ports = [*server.ports, *(f.port for f in server.feeders)]
        if len(set(ports)) == len(ports):
            break
    handles: list[Worker] = []
    try:
        server.start()
        handles = [Worker(f"{spec.key}-client{i}", budget.left() + 30) for i in range(workers)]
        yield server, handles
    finally:
        for handle in handles:
            handle.stop()
        server.stop()

