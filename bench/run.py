"""Benchmark of issue 7 ("Scale-out over Redis and a benchmark against the peers").

    .venv/bin/python bench/run.py        # what `make bench` runs: under 10 minutes

It does everything itself: installs bench/requirements.txt into the venv when
the baselines' packages are missing, gets Redis and PostgreSQL from
scripts/services, makes a fresh database seeded through the ORM
(bench/seed.py), starts each server on a free loopback port, drives it with
worker processes of real WebSocket clients (bench/loadgen.py), prints the
table and writes it to bench/RESULTS.md.

Servers: ours (`python -m chatsite.server`) with each channel layer
(CHAT_CHANNEL_LAYER=core|pubsub), ours as two processes on one Redis (`core2`,
fan-out only: the scale-out of the README's "Scaling"), the Channels tutorial
consumer under daphne and python-socketio under uvicorn (bench/baselines/).
For each:

  fan-out  one publisher and 1,000 joined receivers in one channel; the publish
           rate goes up in steps until deliveries stop keeping up: deliveries/s
           (messages x receivers), publish-to-receive latency, lost and
           duplicated deliveries, and the CPU of every party;
  idle     RSS per idle connection at 1,000 and 5,000 connections, and the
           server's CPU over 10 s with 5,000 open.

Everything runs on 127.0.0.1 and is bounded: a global time budget, timeouts on
every wait, workers that exit by themselves, servers killed by process group.
The servers' logs are kept (path printed) when a phase fails, or always with
BENCH_KEEP_LOGS=1.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.loadgen import Worker, call_all, cpu_seconds, raise_fd_limit
from bench.procs import PrivateRedis, Server, machine_busy_seconds
from bench.targets import Centrifugo, ChannelsTutorial, OurChat, SocketIO, Target

PY = sys.executable
BUDGET_SECONDS = 540.0  # the whole run, setup included: `make bench` must finish in < 10 min
MEMBERS = 1000  # receivers in the fan-out channel (plus the publisher)
IDLE_COUNTS = (1000, 5000)
# (msg/s, seconds): short steps at high rates keep a saturated step's backlog,
# and so its drain time, bounded.
STEPS = ((10, 3.0), (20, 3.0), (40, 2.0), (100, 2.0), (200, 1.5))
LATENCY_RATE = 10  # the rate whose p50/p99 the targets speak of
KEEPING_UP = 0.9  # deliveries/s below this share of the offered deliveries/s: saturated
RECEIVER_PROCESSES = 2  # two cores: more client processes would only fight the server
# Handshakes in flight per worker. Our server authenticates every handshake
# with database work on its one sync thread; daphne drops a handshake the app
# has not accepted within 5 s, so a deeper queue only produces failures.
CONNECT_CONCURRENCY = 8
WARMUP_CONNECTIONS = 10  # opened before the RSS baseline, so lazy imports are not counted per connection
IDLE_SETTLE_SECONDS = 2.0
IDLE_CPU_SECONDS = 10.0
DRAIN_CAP_SECONDS = 45.0  # waiting for one step's deliveries
DRAIN_STALL_SECONDS = 5.0  # ...or until they stop moving
SETTLE_QUIET_SECONDS = 1.5  # no presence frames for this long: the join storm is over
BENCH_REDIS_DB = 0  # of the bench's own redis-server (bench/procs.py PrivateRedis), emptied before each server
# Seconds a phase may take at most (one slow server must not eat the run) and
# at least (it is not started with less left).
PHASE_SECONDS = {"fanout": (75.0, 170.0), "idle": (35.0, 110.0)}
# Most needed first (the targets compare ours with the tutorial), so a slow
# machine that runs out of budget loses the least important figures.
PLAN = (("core", "fanout"), ("centrifugo", "fanout"), ("centrifugo1", "fanout"), ("prev", "fanout"), ("uvicorn", "fanout"), ("tutorial", "fanout"),
        ("core", "idle"), ("centrifugo", "idle"), ("prev", "idle"), ("uvicorn", "idle"), ("pair", "fanout"), ("core2", "fanout"), ("socketio", "fanout"),
        ("pubsub", "fanout"), ("tutorial", "idle"), ("socketio", "idle"), ("pubsub", "idle"))
# Servers measured only when asked for (--only, --compare-with).
ON_REQUEST = {"prev", "uvicorn", "centrifugo1"}
PROFILE: Path | None = None  # --profile: py-spy of ours' server during the fan-out steps (goload only)
LOADGEN = "python"  # --loadgen: "go" drives ours and Centrifugo with bench/goload (the others keep the Python clients)

OURS_ARGV = ("-m", "chatsite.server", "--bind", "127.0.0.1", "--port", "{port}")
LAYER_CLASS = {"core": "RedisChannelLayer", "pubsub": "RedisPubSubChannelLayer"}

# Printed under every table, so RESULTS.md explains itself.
METHOD = (
    ("Everything on 127.0.0.1 on this one machine: one server process (daphne, or uvicorn for python-socketio; "
    "two daphne processes on one Redis for the '2 processes' row, the publisher and one receiver process on the "
    "first, the other receiver process on the second), Redis, PostgreSQL, and the clients (websockets package), "
    "all on the same cores. Figures are comparable "
    "between servers of one run; absolute rates depend on whatever else runs (see `other` and the first note)."),
    ("Fan-out: a channel of the publisher plus the receivers, all connected and joined; the publisher sends at a "
    "fixed rate per step; a step counts until every accepted message reached every open receiver (or deliveries "
    "stall 5 s). deliveries/s = deliveries / (last delivery - first send). Latency = receive time - send time "
    "embedded in the message text (one clock). Stepping stops at the first step that does not keep up (< 90% of "
    "the offered deliveries/s)."),
    ("lost = deliveries missing on connections still open at the end; dropped conns = connections the server "
    "closed during the run, and (deliveries lost) what they missed. A message refused as rate_limited is not a "
    "loss; the bench sets CHAT_RATE_LIMIT_MESSAGES very high."),
    ("Ours: the receivers' users are marked online in the channel from another device before they join (their "
    "presence entries in Redis), so the joins broadcast no user_presence. Without that, N members joining cost "
    "N(N-1)/2 presence frames before the first message (about 500,000 for 1,000), which this bench does not time."),
    ("Idle: connections opened and ready (ours: authenticated, `connected` received, no channel joined; the "
    "tutorial: in its room, as its URL does; python-socketio: Socket.IO-connected), nothing sent. KiB/conn = "
    "(server VmRSS after - before) / connections, the 'before' taken after 10 warm-up connections. Idle CPU = "
    "server utime+stime over 10 s with all of them open (daphne pings each every 20 s)."),
    ("Clients: the websockets package for handshakes, joins and the publisher; after the handshake each receiver's "
    "socket is read by bench/loadgen.py's FrameReader (RFC 6455 frames parsed in place, pings answered), all "
    "on uvloop, so the clients' own overhead, on the same two cores, weighs less on every server's figures. "
    "Clients send no pings and negotiate no compression. Baselines: Channels tutorial consumer with the default "
    "RedisChannelLayer config (capacity 100), python-socketio with AsyncRedisManager under uvicorn "
    "(--loop asyncio, websockets-sansio); their publisher learns of acceptance from its own copy (echo)."),
    ("Centrifugo v6.9.1 (bench/centrifugo.py): built from the Go module proxy, Redis engine on the bench's Redis, "
    "insecure client mode, publish allowed for subscribers; its publisher learns of acceptance from the publish "
    "reply. It runs with Go's default GOMAXPROCS, i.e. it may use both cores, where ours runs one process (one "
    "core) unless the row says otherwise. It merges writes: several publications in one frame, one per line."),
    ("--loadgen go (`make bench LOADGEN=go`): the fan-out clients of ours and Centrifugo are one Go process "
    "(bench/goload, gorilla/websocket: every receiver a goroutine, each frame searched for every marker), the "
    "other servers keep the Python workers. Server CPU per delivery = the server processes' utime+stime over "
    "the step and its drain / deliveries. The load average at the start of each phase is in the notes: "
    "on a shared machine compare servers within one run only."),
)

TARGET_DELIVERY_RATIO = 5.0
TARGET_P99_MS = 50.0
TARGET_IDLE_KIB = 30.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


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
    global LOADGEN
    from bench import centrifugo, goload

    notes = []
    for spec in [s for s in specs if s.key.startswith("centrifugo")]:
        try:
            log(f"Centrifugo {centrifugo.CENTRIFUGO_VERSION}: {centrifugo.build()}")
        except (OSError, subprocess.SubprocessError) as exc:
            specs.remove(spec)
            notes.append(f"Centrifugo NOT measured: it could not be built ({exc})")
    if LOADGEN == "go":
        try:
            goload.build()
        except (OSError, subprocess.SubprocessError) as exc:
            LOADGEN = "python"
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
        [PY, "bench/seed.py", "--users", str(max(IDLE_COUNTS)), "--members", str(MEMBERS), "--out", str(out)],
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
    RSS summed); `port` is the first one's, where the publisher connects."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.ports = [s.port for s in servers]
        self.port = self.ports[0]

    def start(self) -> Servers:
        for server in self.servers:
            server.start()
        return self

    def stop(self) -> None:
        for server in self.servers:
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
        server = Servers([Server(name, list(spec.argv), {**ctx.env, **spec.env}, ctx.run_dir, cwd=spec.cwd) for name in names])
        if len(set(server.ports)) == len(server.ports):
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


def split(items: list, parts: int) -> list[list]:
    return [items[i::parts] for i in range(parts)]


def open_everywhere(workers: list[Worker], targets: list[Target], credentials: list, join: bool, seconds: float) -> dict:
    """Spread the connections over the workers (worker i connects to
    targets[i % len(targets)]); what is not open after `seconds` is given
    up (and reported)."""
    answers = call_all(workers, "open", timeout=seconds + 30, per_worker=[
        {"target": targets[i % len(targets)], "credentials": chunk, "join": join, "concurrency": CONNECT_CONCURRENCY,
         "publisher": False, "seconds": seconds}
        for i, chunk in enumerate(split(credentials, len(workers)))
    ])
    return {
        "opened": sum(a["opened"] for a in answers),
        "failed": sum(a["failed"] for a in answers),
        "unfinished": sum(a["unfinished"] for a in answers),
        "retries": sum(a["retries"] for a in answers),
        "errors": sorted({e for a in answers for e in a["errors"]})[:3],
        "seconds": max(a["seconds"] for a in answers),
    }


def note_failures(result: dict, opened: dict, what: str) -> None:
    if opened["retries"] or opened["failed"] or opened["unfinished"]:
        result["notes"].append(
            f"{what}: {opened['retries']} handshakes retried, {opened['failed']} failed {opened['errors']}, "
            f"{opened['unfinished']} not open in time"
        )


def credentials_for(spec: Spec, ctx: Context, start: int, stop: int) -> list:
    return ctx.seed["users"][start:stop] if spec.login else [None] * (stop - start)


def settle(workers: list[Worker], seconds: float) -> tuple[int, bool]:
    """Wait until the clients stop receiving non-message frames (presence
    events of the joins, if any). Returns the frames counted and whether they
    stopped within `seconds`."""
    last, still_since = -1, time.monotonic()
    deadline = still_since + seconds
    while time.monotonic() < deadline:
        total = sum(p["other"] for p in call_all(workers, "progress", timeout=30))
        if total != last:
            last, still_since = total, time.monotonic()
        elif time.monotonic() - still_since >= SETTLE_QUIET_SECONDS:
            return last, True
        time.sleep(0.25)
    return last, False


class Usage:
    """CPU seconds of each party between two instants, as % of one core."""

    def __init__(self, server: Servers, workers: list[Worker], redis) -> None:
        self.server, self.workers, self.redis = server, workers, redis
        self.start = self._sample()

    def _sample(self) -> dict[str, float]:
        return {
            "wall": time.monotonic(),
            "server": self.server.cpu_seconds(),
            "clients": sum(cpu_seconds(w.pid) for w in self.workers),
            "redis": redis_cpu(self.redis),
            "machine": machine_busy_seconds(),
        }

    def stop(self) -> dict[str, float]:
        end = self._sample()
        wall = end["wall"] - self.start["wall"]
        pct = {k: 100 * (end[k] - self.start[k]) / wall for k in ("server", "clients", "redis", "machine")}
        # Whatever else ran on the machine meanwhile (other sessions' tests...).
        pct["other"] = max(0.0, pct["machine"] - pct["server"] - pct["clients"] - pct["redis"])
        pct["wall"] = wall
        return pct


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- fan-out ------------------------------------------------------------------------------------
def fanout(spec: Spec, ctx: Context, budget: Budget) -> dict:
    if LOADGEN == "go" and spec.key in GO_PROTOCOLS:
        return fanout_go(spec, ctx, budget)
    result: dict[str, Any] = {"steps": [], "notes": [loadavg()]}
    with redis_client(ctx.env) as redis, running(spec, ctx, RECEIVER_PROCESSES + 1, budget) as (server, workers):
        publisher, receivers = workers[0], workers[1:]
        target = spec.make_target(server.port, ctx.seed)
        result["ack_is_delivery"] = target.ack_is_delivery
        result["processes"] = spec.processes
        if spec.login:
            mark_online_elsewhere(redis, ctx.seed["channelId"], [ctx.seed["publisherId"], *ctx.seed["userIds"][:MEMBERS]])
        started, join_usage = time.monotonic(), Usage(server, workers, redis)
        # Whatever the join leaves of the phase goes to the steps (at least the first).
        join_budget = budget.left() - STEPS[0][1] - DRAIN_CAP_SECONDS
        targets = [spec.make_target(port, ctx.seed) for port in server.ports]
        opened = open_everywhere(receivers, targets, credentials_for(spec, ctx, 0, MEMBERS), join=True, seconds=join_budget)
        publisher.call("open", timeout=60, target=target, credentials=[ctx.seed["publisher"] if spec.login else None],
                       join=True, concurrency=1, publisher=True, seconds=30)
        result["join_frames"], settled = settle(workers, max(5.0, join_budget - (time.monotonic() - started)))
        result["join_seconds"] = time.monotonic() - started
        result["join_cpu"] = join_usage.stop()
        result["receivers"] = n = opened["opened"]
        note_failures(result, opened, f"of {MEMBERS} receivers")
        log(f"{spec.key}: {n} receivers joined in {result['join_seconds']:.1f}s ({result['join_frames']} other frames, "
            f"server CPU {result['join_cpu']['server']:.0f}%)")
        if n < MEMBERS or not settled:
            # Figures for fewer members, or measured over a presence storm,
            # would not be the fan-out the table speaks of: report the join.
            result["error"] = (f"join not done in {result['join_seconds']:.0f}s: {n} of {MEMBERS} receivers open, "
                               f"{result['join_frames']} presence frames, {'settled' if settled else 'still arriving'}")
            return result
        seq = 1
        for step, (rate, seconds) in enumerate(STEPS, 1):
            if budget.left() < seconds + DRAIN_CAP_SECONDS:
                result["notes"].append(f"stopped before {rate} msg/s: time budget")
                break
            row = measure_step(step, rate, seconds, seq, server, publisher, receivers, Usage(server, workers, redis), n)
            seq += row["sent"]
            result["steps"].append(row)
            log(f"{spec.key}: {rate} msg/s -> {row['delivered_per_s']:.0f} deliveries/s, p99 {row['p99']:.0f} ms, "
                f"lost {row['lost']}, dup {row['dups']}, dropped connections {row['dropped']}, server CPU {row['cpu']['server']:.0f}%")
            if row["reconnects"] or row["errors"]:
                result["notes"].append(f"{rate} msg/s: publisher reconnected {row['reconnects']}x, "
                                       f"{row['errors']} errors or unanswered")
            if row["saturated"]:
                break
    return result


GO_PROTOCOLS = {"core": "ours", "pubsub": "ours", "core2": "ours", "pair": "ours", "prev": "ours", "uvicorn": "ours", "centrifugo": "centrifugo", "centrifugo1": "centrifugo"}


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average at the start: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def fanout_go(spec: Spec, ctx: Context, budget: Budget) -> dict:
    """The fan-out with bench/goload's clients (one Go process for the
    publisher and every receiver), steps as in `fanout`."""
    from bench.goload import GoLoad, Profiler

    result: dict[str, Any] = {"steps": [], "notes": [loadavg(), "clients: bench/goload (Go, gorilla/websocket)"]}
    with redis_client(ctx.env) as redis, running(spec, ctx, 0, budget) as (server, _):
        target = spec.make_target(server.port, ctx.seed)
        result["ack_is_delivery"] = target.ack_is_delivery
        result["processes"] = spec.processes
        if spec.login:
            mark_online_elsewhere(redis, ctx.seed["channelId"], [ctx.seed["publisherId"], *ctx.seed["userIds"][:MEMBERS]])
        urls = [spec.make_target(port, ctx.seed).url() for port in server.ports]
        credentials = [ctx.seed["publisher"], *ctx.seed["users"][:MEMBERS]] if spec.login else None
        channel = str(ctx.seed["channelId"]) if GO_PROTOCOLS[spec.key] == "ours" else "bench"
        started = time.monotonic()
        load = GoLoad(proto=GO_PROTOCOLS[spec.key], urls=urls, members=MEMBERS, channel=channel, credentials=credentials,
                      run_dir=ctx.run_dir, name=spec.key)
        try:
            join_usage = Usage(server, [load], redis)  # type: ignore[list-item]
            ready = load.ready(timeout=max(10.0, budget.left() - STEPS[0][1] - DRAIN_CAP_SECONDS))
            result["join_seconds"] = time.monotonic() - started
            result["join_cpu"] = join_usage.stop()
            result["join_frames"] = ready["other"]
            result["receivers"] = n = ready["ready"]
            if ready["failed"]:
                result["notes"].append(f"of {MEMBERS} receivers: {ready['failed']} failed {ready['errors']}")
            log(f"{spec.key}: {n} receivers joined in {result['join_seconds']:.1f}s (goload)")
            if n < MEMBERS:
                result["error"] = f"join: {n} of {MEMBERS} receivers open"
                return result
            seq = 1
            profiler = Profiler(server.servers[0].pid, PROFILE / f"{spec.key}.txt") if PROFILE and spec.login else None
            for step, (rate, seconds) in enumerate(STEPS, 1):
                if budget.left() < seconds + DRAIN_CAP_SECONDS:
                    result["notes"].append(f"stopped before {rate} msg/s: time budget")
                    break
                usage = Usage(server, [load], redis)  # type: ignore[list-item]
                row = load.step(step, rate, seconds, seq, timeout=seconds + DRAIN_CAP_SECONDS + 60)
                row["cpu"] = cpu = usage.stop()
                row["rate"], row["unexpected"] = rate, 0
                row["server_us"] = cpu["server"] / 100 * cpu["wall"] / max(1, row["delivered"]) * 1e6
                offered = row["accepted"] * n / max(row["send_seconds"], 1 / rate)
                row["saturated"] = row["delivered_per_s"] < KEEPING_UP * offered
                seq += row["sent"]
                result["steps"].append(row)
                log(f"{spec.key}: {rate} msg/s -> {row['delivered_per_s']:.0f} deliveries/s, p50 {row['p50']:.0f} p99 {row['p99']:.0f} ms, "
                    f"lost {row['lost']}, dup {row['dups']}, dropped {row['dropped']}, server CPU {cpu['server']:.0f}%, {row['server_us']:.1f} µs/delivery")
                if row["saturated"]:
                    break
            if profiler is not None:
                profiler.stop()
        finally:
            load.stop()
    return result


def mark_online_elsewhere(redis, channel_id: int, user_ids: list[int]) -> None:
    """Our server tells a channel `user_presence` when a member's first
    connection joins it, so 1,000 fresh joins cost 1000*999/2 presence frames
    (minutes of server time here) before the first message. The fan-out is
    measured as if every member were already online on another device: one
    far-future entry per member in the presence sets the server keeps in
    Redis (presence/services.py, `presence:{channel}:{user}`). If that layout
    changes, the joins storm again and the join column shows it."""
    expiry = time.time() + 3600
    with redis.pipeline(transaction=False) as pipe:
        for user_id in user_ids:
            key = f"presence:{channel_id}:{user_id}"
            pipe.zadd(key, {"bench-other-device": expiry})
            pipe.expire(key, 3600)
        pipe.execute()


def measure_step(step: int, rate: int, seconds: float, first_seq: int, server: Servers, publisher: Worker,
                 receivers: list[Worker], usage: Usage, members: int) -> dict:
    """Publish one step, wait for its deliveries, and sum up what every receiver saw."""
    pub = publisher.call("publish", timeout=seconds + 60, step=step, rate=rate, seconds=seconds, first_seq=first_seq)
    accepted = pub["accepted"]
    drain(receivers, step, len(accepted))
    cpu = usage.stop()
    reports = call_all(receivers, "report", timeout=60, per_worker=[{"step": step, "accepted": accepted}] * len(receivers))
    latencies = array.array("f")
    for r in reports:
        latencies.frombytes(r["latency"])
    ordered = sorted(latencies)
    delivered = sum(r["delivered"] for r in reports)
    still_open, dropped = sum(r["open"] for r in reports), sum(r["dropped"] for r in reports)
    delivered_dropped = sum(r["delivered_dropped"] for r in reports)
    last = max((r["last"] for r in reports), default=0.0)
    window = last - pub["first_send"] if last else float("nan")
    answered_window = pub["last_answer"] - pub["first_send"]
    row = {
        "rate": rate,
        "sent": pub["sent"],
        "accepted": len(accepted),
        "errors": pub["errors"] + pub["unanswered"],
        "reconnects": pub["reconnects"],
        "accept_per_s": len(accepted) / answered_window if answered_window > 0 else float("nan"),
        "delivered": delivered + delivered_dropped,
        "delivered_per_s": (delivered + delivered_dropped) / window if window > 0 else 0.0,
        "lost": still_open * len(accepted) - delivered,  # to connections still open: a delivery bug
        "dropped": dropped,  # connections the server dropped so far...
        "lost_dropped": dropped * len(accepted) - delivered_dropped,  # ...and what their drop cost
        "dups": sum(r["dups"] for r in reports),
        "unexpected": sum(r["unexpected"] for r in reports),
        "p50": percentile(ordered, 0.50),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else float("nan"),
        "cpu": cpu,
    }
    # Server CPU per delivery: the efficiency figure, which other load on the
    # machine distorts far less than rates and latencies.
    row["server_us"] = cpu["server"] / 100 * cpu["wall"] / max(1, row["delivered"]) * 1e6
    offered = len(accepted) * members / max(pub["send_seconds"], 1 / rate)
    row["saturated"] = row["delivered_per_s"] < KEEPING_UP * offered
    return row


def drain(receivers: list[Worker], step: int, accepted: int) -> None:
    """Until every accepted message reached every open receiver, or deliveries stall."""
    last, moved = -1, time.monotonic()
    deadline = moved + DRAIN_CAP_SECONDS
    while time.monotonic() < deadline:
        progress = call_all(receivers, "progress", timeout=30, per_worker=[{"step": step}] * len(receivers))
        got = sum(p["delivered"] for p in progress)
        if got >= accepted * sum(p["open"] for p in progress):
            return
        if got != last:
            last, moved = got, time.monotonic()
        elif time.monotonic() - moved > DRAIN_STALL_SECONDS:
            return
        time.sleep(0.1)


# --- idle ------------------------------------------------------------------------------------------
def idle(spec: Spec, ctx: Context, budget: Budget) -> dict:
    """Connected and ready (ours: authenticated, `connected` received; no
    channel joined, see the notes), nothing sent."""
    result: dict[str, Any] = {"points": [], "notes": [loadavg()]}
    with running(spec, ctx, RECEIVER_PROCESSES, budget) as (server, workers):
        target = spec.make_target(server.port, ctx.seed)
        warm = [ctx.seed["publisher"] if spec.login else None] * WARMUP_CONNECTIONS
        workers[0].call("open", timeout=60, target=target, credentials=warm, join=False, concurrency=WARMUP_CONNECTIONS,
                        publisher=False, seconds=30)
        time.sleep(IDLE_SETTLE_SECONDS)
        base = server.rss_kib()
        result["base_rss_kib"] = base
        total, start = 0, 0
        for count in IDLE_COUNTS:
            # Keep what the CPU measurement and the settling need.
            seconds = budget.left() - IDLE_CPU_SECONDS - 2 * IDLE_SETTLE_SECONDS - 5
            if seconds < 5:
                result["notes"].append(f"stopped before {count} connections: time budget")
                break
            opened = open_everywhere(workers, [target], credentials_for(spec, ctx, start, count), join=False, seconds=seconds)
            start = count
            total += opened["opened"]
            note_failures(result, opened, f"of {count} idle connections")
            time.sleep(IDLE_SETTLE_SECONDS)
            rss = server.rss_kib()
            result["points"].append({"count": count, "opened": total, "rss_kib": rss, "per_conn_kib": (rss - base) / max(1, total),
                                     "connect_seconds": opened["seconds"]})
            log(f"{spec.key}: {total} idle connections, RSS {rss / 1024:.0f} MiB, {(rss - base) / max(1, total):.1f} KiB each")
        cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
        time.sleep(IDLE_CPU_SECONDS)
        result["idle_cpu_pct"] = 100 * (server.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)
        result["dropped"] = sum(p["closed"] for p in call_all(workers, "progress", timeout=30))
    return result


# --- report ------------------------------------------------------------------------------------------
def machine_info() -> dict[str, str]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")))

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "-"

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "packages": ", ".join(f"{d} {version(d)}" for d in ("daphne", "channels", "channels-redis", "python-socketio", "uvicorn", "websockets")),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def fmt(value: float, digits: int = 0) -> str:
    return "-" if math.isnan(value) else f"{value:,.{digits}f}"


def peak(fan: dict) -> dict | None:
    return max(fan.get("steps", []), key=lambda r: r["delivered_per_s"], default=None)


def at_rate(fan: dict, rate: int) -> dict | None:
    return next((r for r in fan.get("steps", []) if r["rate"] == rate), None)


def limited_by(fan: dict) -> str:
    """Which resource the peak figure ran into, from the CPU of each party."""
    row = peak(fan)
    if row is None:
        return "-"
    cpu, cores = row["cpu"], len(os.sched_getaffinity(0))
    last = fan["steps"][-1]
    if not last["saturated"]:
        return f"nothing: kept up at {last['rate']} msg/s (the highest step)"
    processes = fan.get("processes", 1)
    if cpu["server"] >= 85 * processes:
        return f"server CPU ({cpu['server']:.0f}% of {'its one core' if processes == 1 else f'{processes} cores'})"
    if cpu["machine"] >= 90 * cores:
        return (f"machine CPU (server {cpu['server']:.0f}%, clients {cpu['clients']:.0f}%, Redis {cpu['redis']:.0f}%, "
                f"other work {cpu['other']:.0f}%)")
    if cpu["clients"] >= 85 * RECEIVER_PROCESSES:
        return f"client CPU ({cpu['clients']:.0f}%)"
    if not fan["ack_is_delivery"] and row["accept_per_s"] < KEEPING_UP * row["rate"]:
        return f"accepting: {row['accept_per_s']:.0f} of {row['rate']} msg/s accepted from one publisher"
    return f"not CPU (server {cpu['server']:.0f}%, clients {cpu['clients']:.0f}%): waiting/queueing in the server"


def render(results: dict[str, dict], machine: dict[str, str], notes: list[str]) -> str:
    labels = {s.key: s.label for s in SPECS}
    out = [
        f"Machine: {machine['nproc']} cores ({machine['cpu']}), {machine['ram']} RAM; {machine['os']}; Python {machine['python']}",
        f"Packages: {machine['packages']}; commit {machine['commit']}",
        "",
        f"## Fan-out: 1 publisher -> {MEMBERS} receivers in one channel ({RECEIVER_PROCESSES} receiver processes + 1 publisher process)",
        "",
        "| server | join s (server CPU %) | peak deliveries/s (at msg/s) | server CPU µs/delivery | p50 / p99 ms @10 msg/s | lost | dup | dropped conns (deliveries lost) | limited by |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for key, res in results.items():
        fan = res.get("fanout")
        if not fan or not fan.get("steps"):
            out.append(f"| {labels[key]} | | | | | | | | {(fan or {}).get('error') or 'not measured'} |")
            continue
        top, low = peak(fan), at_rate(fan, LATENCY_RATE)
        lat = f"{fmt(low['p50'], 1)} / {fmt(low['p99'], 1)}" if low else "-"
        out.append(
            f"| {labels[key]} | {fmt(fan['join_seconds'], 1)} ({fmt(fan['join_cpu']['server'])}) | {fmt(top['delivered_per_s'])} ({top['rate']}) | {fmt(top['server_us'])} | {lat} | "
            f"{sum(r['lost'] for r in fan['steps'])} | {sum(r['dups'] for r in fan['steps'])} | "
            f"{fan['steps'][-1]['dropped']} ({sum(r['lost_dropped'] for r in fan['steps'])}) | {limited_by(fan)} |"
        )
    out += [
        "",
        "Steps (CPU in % of one core over the step and its drain; `other` = the rest of the machine):",
        "",
        "| server | msg/s | accepted (/s) | deliveries/s | µs/delivery | p50 / p99 / max ms | lost | dup | dropped | server | clients | Redis | other |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, res in results.items():
        fan = res.get("fanout") or {}
        for r in fan.get("steps", []):
            cpu = r["cpu"]
            out.append(
                f"| {labels[key]} | {r['rate']} | {r['accepted']}/{r['sent']} ({'echo' if fan['ack_is_delivery'] else fmt(r['accept_per_s'], 1)}) | "
                f"{fmt(r['delivered_per_s'])}"
                f"{' (saturated)' if r['saturated'] else ''} | {fmt(r['server_us'])} | {fmt(r['p50'])} / {fmt(r['p99'])} / {fmt(r['max'])} | {r['lost']} | {r['dups']} | {r['dropped']} | "
                f"{fmt(cpu['server'])} | {fmt(cpu['clients'])} | {fmt(cpu['redis'])} | {fmt(cpu['other'])} |"
            )
    out += [
        "",
        "## Idle connections (daphne/uvicorn process: VmRSS growth / connections; CPU over 10 s with all open)",
        "",
        "| server | " + " | ".join(f"KiB/conn @{n}" for n in IDLE_COUNTS) + " | RSS MiB (all open) | idle CPU % (all open) "
        "| connect s (last batch) | dropped |",
        "| --- |" + " ---: |" * (len(IDLE_COUNTS) + 4),
    ]
    for key, res in results.items():
        idl = res.get("idle")
        if not idl or not idl.get("points"):
            out.append(f"| {labels[key]} |" + " |" * (len(IDLE_COUNTS) + 3) + f" {(idl or {}).get('error') or 'not measured'} |")
            continue
        # Each figure says how many connections it was taken with: a phase
        # out of time gives fewer than asked.
        cells = [f"{fmt(p['per_conn_kib'], 1)} @{p['opened']}" for p in idl["points"]]
        cells += ["-"] * (len(IDLE_COUNTS) - len(cells))
        top = idl["points"][-1]
        out.append(
            f"| {labels[key]} | {' | '.join(cells)} | {fmt(top['rss_kib'] / 1024)} | {fmt(idl['idle_cpu_pct'], 1)} | "
            f"{fmt(top['connect_seconds'], 1)} | {idl['dropped']} |"
        )
    out += ["", "## Targets of issue 7 (printed, not asserted)", "", *targets(results, labels)]
    if "centrifugo" in results:
        out += ["", "## Targets of issue 20 (printed, not asserted; Centrifugo in the same run)", "", *targets_centrifugo(results, labels)]
    extra = notes + [f"{labels[k]} {phase}: {n}" for k, res in results.items() for phase in ("fanout", "idle")
                     for n in (res.get(phase) or {}).get("notes", [])]
    if extra:
        out += ["", "Notes of this run:"] + [f"- {n}" for n in extra]
    out += ["", "How it is measured:"] + [f"- {line}" for line in METHOD]
    return "\n".join(out) + "\n"


def targets(results: dict[str, dict], labels: dict[str, str]) -> list[str]:
    """The issue's targets beside our figures, one column per channel layer."""
    ours = [k for k in ("core", "pubsub", "pair", "core2") if k in results]
    tutorial = peak((results.get("tutorial") or {}).get("fanout") or {})

    def cell(figure: str, ok: bool | None) -> str:
        return "-" if ok is None else f"{figure} ({'met' if ok else 'NOT met'})"

    ratio_cells, p99_cells, idle_cells, loss_cells = [], [], [], []
    for key in ours:
        fan, idl = results[key].get("fanout") or {}, results[key].get("idle") or {}
        top, low = peak(fan), at_rate(fan, LATENCY_RATE)
        ratio = top["delivered_per_s"] / tutorial["delivered_per_s"] if top and tutorial and tutorial["delivered_per_s"] else None
        ratio_cells.append(cell(f"{ratio:.2f}x" if ratio is not None else "", None if ratio is None else ratio >= TARGET_DELIVERY_RATIO))
        p99_cells.append(cell(f"{fmt(low['p99'], 1)} ms" if low else "", None if low is None else low["p99"] <= TARGET_P99_MS))  # NaN (nothing delivered): not met
        per_conn = max((p["per_conn_kib"] for p in idl.get("points", [])), default=None)
        idle_cells.append(cell(f"{fmt(per_conn, 1)} KiB" if per_conn is not None else "", None if per_conn is None else per_conn <= TARGET_IDLE_KIB))
        steps = fan.get("steps", [])
        lost, dups = sum(r["lost"] + r["lost_dropped"] for r in steps), sum(r["dups"] for r in steps)
        loss_cells.append(cell(f"{lost} lost, {dups} dup", None if not steps else lost == 0 and dups == 0))
    rows = {
        f"deliveries/s >= {TARGET_DELIVERY_RATIO:g}x the tutorial's": ratio_cells,
        f"p99 <= {TARGET_P99_MS:g} ms at {LATENCY_RATE} msg/s": p99_cells,
        f"<= {TARGET_IDLE_KIB:g} KiB per idle connection": idle_cells,
        "0 lost (dropped connections included), 0 duplicated": loss_cells,
    }
    return [
        "| target | " + " | ".join(labels[k] for k in ours) + " |",
        "| --- |" + " --- |" * len(ours),
        *(f"| {name} | " + " | ".join(values) + " |" for name, values in rows.items()),
    ]


def targets_centrifugo(results: dict[str, dict], labels: dict[str, str]) -> list[str]:
    """Issue 20: ours against Centrifugo measured in the same run."""
    ours = [k for k in ("core", "pair", "core2", "pubsub") if k in results]

    def row_at(key: str, rate: int) -> dict | None:
        return at_rate((results[key].get("fanout") or {}), rate)

    def kib(key: str) -> float | None:
        return max((p["per_conn_kib"] for p in (results[key].get("idle") or {}).get("points", [])), default=None)

    c40, c_kib = row_at("centrifugo", 40), kib("centrifugo")
    lines = ["| target | " + " | ".join(labels[k] for k in ours) + " |", "| --- |" + " --- |" * len(ours)]
    cells = {"cpu": [], "peak": [], "kib": [], "p99": []}
    for key in ours:
        r40 = row_at(key, 40)
        ok = None if not (r40 and c40) else r40["server_us"] <= c40["server_us"]
        cells["cpu"].append("-" if ok is None else f"{fmt(r40['server_us'], 1)} vs {fmt(c40['server_us'], 1)} µs ({'met' if ok else 'NOT met'})")  # type: ignore[index]
        steps = (results[key].get("fanout") or {}).get("steps", [])
        good = [r for r in steps if r["p99"] <= 100 and not r["saturated"]]
        best = max((r["delivered_per_s"] for r in good), default=0.0)
        cells["peak"].append(f"{fmt(best)}/s ({'met' if best >= 100_000 else 'NOT met'})")
        low = row_at(key, LATENCY_RATE)
        cells["p99"].append("-" if low is None else f"{fmt(low['p99'], 1)} ms at {MEMBERS} members ({'met' if low['p99'] <= 100 else 'NOT met'})")
        mine = kib(key)
        cells["kib"].append("-" if mine is None or c_kib is None else f"{fmt(mine, 1)} vs {fmt(c_kib, 1)} KiB ({'met' if mine <= c_kib else 'NOT met'})")
    names = {"cpu": "server CPU per delivery <= Centrifugo's at 40 msg/s", "peak": ">= 100k deliveries/s with p99 <= 100 ms",
             "p99": f"p99 <= 100 ms at {LATENCY_RATE} msg/s (issue: with 5,000 members, `--members 5000`)",
             "kib": "KiB per idle connection <= Centrifugo's"}
    lines += [f"| {names[k]} | " + " | ".join(v) + " |" for k, v in cells.items()]
    return lines


def write_results(text: str, path: Path) -> None:
    path.write_text(
        "# Benchmark results (issues 7 and 20)\n\n"
        f"Written by `bench/run.py` (`make bench`) on {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; "
        "every run overwrites it. How it measures and what limits the figures: bench/run.py and the notes below.\n\n"
        + text
    )


# --- main --------------------------------------------------------------------------------------------
def main() -> int:
    global MEMBERS, IDLE_COUNTS, LOADGEN, PROFILE
    parser = argparse.ArgumentParser(description="Scale-out benchmark (issue 7); see the module docstring.")
    parser.add_argument("--only", help="comma-separated servers: " + ",".join(s.key for s in SPECS))
    parser.add_argument("--phases", default="fanout,idle", help="fanout,idle (default both)")
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="seconds for the whole run")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to write nothing")
    parser.add_argument("--members", type=int, default=MEMBERS, help="receivers in the fan-out channel (smaller: a quick check)")
    parser.add_argument("--idle", default=",".join(map(str, IDLE_COUNTS)), help="idle connection counts, ascending")
    parser.add_argument("--compare-with", metavar="DIR", help="also measure ours from this checkout (another commit), side by side")
    parser.add_argument("--loadgen", choices=("python", "go"), default="python",
                        help="fan-out clients: bench/loadgen.py workers, or bench/goload (ours and Centrifugo; the others keep Python)")
    parser.add_argument("--fanout-seconds", type=float, default=PHASE_SECONDS["fanout"][1],
                        help="at most this long per server for the fan-out phase, joins included")
    parser.add_argument("--idle-seconds", type=float, default=PHASE_SECONDS["idle"][1],
                        help="at most this long per server for the idle phase (a busy machine connects slowly)")
    parser.add_argument("--profile", metavar="DIR", help="with --loadgen go: py-spy profiles of ours during the steps, into DIR")
    args = parser.parse_args()
    LOADGEN = args.loadgen
    PROFILE = Path(args.profile) if args.profile else None
    PHASE_SECONDS["idle"] = (PHASE_SECONDS["idle"][0], args.idle_seconds)
    PHASE_SECONDS["fanout"] = (PHASE_SECONDS["fanout"][0], args.fanout_seconds)
    if args.compare_with:
        other = Path(args.compare_with).resolve()
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=other, capture_output=True, text=True, check=False).stdout.strip()
        SPECS.insert(1, Spec("prev", f"ours @{commit or other.name}, RedisChannelLayer", OURS_ARGV, lambda port, seed: OurChat(port, seed["channelId"]),
                             {"CHAT_CHANNEL_LAYER": "core"}, login=True, layer="core", cwd=other))
    MEMBERS, IDLE_COUNTS = args.members, tuple(int(n) for n in args.idle.split(","))
    budget = Budget(args.budget)
    # SIGTERM (make interrupted, a CI timeout) unwinds like Ctrl-C, so every
    # server and worker is stopped by the finally clauses.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    raise_fd_limit()  # inherited by every server and worker started below

    wanted = set(args.only.split(",")) if args.only else {s.key for s in SPECS} - ON_REQUEST | ({"prev"} if args.compare_with else set())
    specs = [s for s in SPECS if s.key in wanted]
    phases = [p for p in ("fanout", "idle") if p in args.phases.split(",")]
    ensure_baseline_packages()
    build_notes = prepare_binaries(specs)
    background = background_load()
    services = start_services()
    run_dir = Path(tempfile.mkdtemp(prefix="chat-bench-"))  # server logs, seed file
    keep_logs = False
    # A redis-server of the bench's own: other work on the shared Redis
    # neither disturbs the figures nor loses its data to the flushes.
    own_redis = PrivateRedis(run_dir).start()
    services["REDIS_URL"] = own_redis.url
    try:
        log("fresh database and seed")
        env = bench_env(services)
        try:
            ctx = Context(env, seed(env, run_dir), run_dir)
            notes = [
                *build_notes,
                f"machine busy before the run (other work): {background:.0f}% of {len(os.sched_getaffinity(0))} cores",
                f"database: {urlparse(env['DATABASE_URL']).scheme}; Redis database {BENCH_REDIS_DB} at {urlparse(env['REDIS_URL']).netloc}",
            ]
            results = measure(specs, phases, ctx, budget, notes)
        finally:
            drop_database(env)
        keep_logs = bool(os.environ.get("BENCH_KEEP_LOGS")) or any("error" in (res.get(phase) or {}) for res in results.values() for phase in phases)
    finally:
        if keep_logs:
            log(f"server logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
        own_redis.stop()
    text = render(results, machine_info(), notes)
    print(text)
    if args.results:
        write_results(text, Path(args.results))
        log(f"written to {args.results}")
    return 0


def measure(specs: list[Spec], phases: list[str], ctx: Context, budget: Budget, notes: list[str]) -> dict[str, dict]:
    """Every phase of PLAN for the servers asked, as far as the budget goes."""
    results: dict[str, dict] = {s.key: {} for s in specs}
    for spec in [s for s in specs if s.layer]:
        layer = resolved_layer({**ctx.env, **spec.env})
        if layer != LAYER_CLASS[spec.layer]:
            notes.append(f"{spec.label}: NOT measured: CHAT_CHANNEL_LAYER={spec.layer} resolves to {layer}")
            specs.remove(spec)
    by_key = {s.key: s for s in specs}
    for key, phase in PLAN:
        if key not in by_key or phase not in phases:
            continue
        spec = by_key[key]
        least, most = PHASE_SECONDS[phase]
        if budget.left() < least:
            results[key][phase] = {"error": "skipped: time budget"}
            continue
        log(f"{spec.label}: {phase}")
        try:
            results[key][phase] = (fanout if phase == "fanout" else idle)(spec, ctx, Budget(min(most, budget.left())))
        except Exception as exc:
            log(f"{spec.label} {phase} failed: {exc!r}")
            results[key][phase] = {"error": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    return results

if __name__ == "__main__":
    sys.exit(main())
