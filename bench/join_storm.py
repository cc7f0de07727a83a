"""Join storm: what it costs when 1,000 members join ONE channel within 10 s.

    .venv/bin/python bench/join_storm.py                 # `make bench-join-storm`
    .venv/bin/python bench/join_storm.py --ref HEAD --json out.json --redis-db 6 --database chat_helper

With --ref the server (and the migrations and models of the seed) run from a
clean `git archive` copy of that commit, not from the checkout as it is.

Seeds a fresh database through the ORM as bench/seed.py does (one workspace
of N users, each with a logged-in session) with one public channel (workspace
membership suffices to join it), starts one server process as bench/run.py
does (`python -m chatsite.server`, REDIS_URL and DATABASE_URL set), then opens
N WebSocket connections spread evenly over the spread (default 10 s); each
waits for `connected`, sends `join_channel` and stays open reading. After the
last join it waits until every join is answered and no frame arrived for 3 s
(at most --settle-cap seconds), so a backlog of presence frames is counted too.

Reported: the server's CPU seconds over the storm (utime+stime from
/proc/<pid>/stat, before and after; beside it the clients', Redis's and the
rest of the machine's), frames received in total, per client (max) and per
event type, p50/p99 of join latency (join_channel sent -> joined_channel
received), the largest joined_channel frame and, when the server sends it,
the largest `online` list of joined_channel (checked: user ids, the joiner's
among them). The clients are one asyncio process (uvloop) that reads each
socket after the handshake with a minimal RFC 6455 frame parser: on 2 cores
they share the CPU with the server.

REDIS_URL and DATABASE_URL come from the environment (the Makefile target gets
them from scripts/services); the bench uses its own Redis database (--redis-db,
emptied) and PostgreSQL database (--database, recreated, dropped afterwards
unless --keep-db). Without DATABASE_URL: a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.loadgen import cpu_seconds, raise_fd_limit
from bench.procs import Server, machine_busy_seconds

PY = sys.executable
SERVER_ARGV = ["-m", "chatsite.server", "--bind", "127.0.0.1", "--port", "{port}"]
REDIS_DB = 12  # run.py uses 13, the e2e suite 14
DATABASE = "chat_join_storm"
QUIET_SECONDS = 3.0  # after the last join: no frame for this long ends the storm
OPEN_TIMEOUT = 30.0
TARGET_CPU_SECONDS = 10.0
TARGET_MAX_FRAMES = 5000
TYPE = re.compile(rb'"type":\s*"([A-Za-z_]+)"')
USER = re.compile(rb'"userId":\s*(\d+)')


def log(message: str) -> None:
    print(f"[join-storm {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- setup ----------------------------------------------------------------------------------------
def seed_main(out: str, members: int) -> None:
    """Subprocess mode (--seed-out): `members` users in one workspace, one
    public channel, a logged-in session each. bench/seed.py's approach, but
    its seed() leaves User.username_key empty (set only by User.save(), not by
    bulk_create), which the unique index refuses for a second user, and its
    sessions name ModelBackend, which is no longer the configured backend."""
    sys.path.insert(0, os.environ.get("JOIN_STORM_CODE", str(ROOT)))  # the models of the code under test
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from accounts import names
    from accounts.models import User
    from bench import seed as seeding
    from workspace_chat.models import Channel, Role, Workspace, WorkspaceMembership

    unusable, backend = seeding.make_password(None), seeding.settings.AUTHENTICATION_BACKENDS[0]
    with seeding.transaction.atomic():
        people = User.objects.bulk_create(
            [User(username=f"storm{i:05d}", display_name=f"Storm {i}", password=unusable, username_key=names.name_key(f"storm{i:05d}"),
                  username_look_alike=names.look_alike_key(f"storm{i:05d}")) for i in range(members)],
            batch_size=seeding.BATCH,
        )
        workspace = Workspace.objects.create(name="Join storm", created_by=people[0])
        WorkspaceMembership.objects.bulk_create(
            [WorkspaceMembership(workspace=workspace, user=u, role=Role.ADMIN if i == 0 else Role.STUDENT) for i, u in enumerate(people)],
            batch_size=seeding.BATCH,
        )
        channel = Channel.objects.create(workspace=workspace, name="storm", is_private=False, created_by=people[0])
        store = seeding.SessionStore()
        expire = seeding.timezone.now() + seeding.timedelta(seconds=seeding.settings.SESSION_COOKIE_AGE)
        keys = [seeding.get_random_string(32) for _ in people]
        seeding.Session.objects.bulk_create(
            [seeding.Session(session_key=key, expire_date=expire, session_data=store.encode(
                {seeding.SESSION_KEY: str(u.pk), seeding.BACKEND_SESSION_KEY: backend, seeding.HASH_SESSION_KEY: u.get_session_auth_hash()}))
             for key, u in zip(keys, people, strict=True)],
            batch_size=seeding.BATCH,
        )
    Path(out).write_text(json.dumps({"channelId": channel.pk, "sessions": keys, "userIds": [u.pk for u in people]}))


def export(ref: str, run_dir: Path) -> tuple[Path, str]:
    """A clean copy of commit `ref` (git archive: no work tree, index or
    stash touched), so the figures belong to that commit and not to whatever
    is being edited in the checkout."""
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    code = run_dir / "code"
    code.mkdir()
    archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True, timeout=120)
    return code, sha


def bench_env(args: argparse.Namespace, code: Path, run_dir: Path) -> dict[str, str]:
    """The servers' environment: the bench's Redis database, a fresh database migrated by the code under test."""
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")}
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise SystemExit("REDIS_URL is required (e.g. `set -a; eval \"$(scripts/services up redis postgres)\"; set +a`)")
    env.update(REDIS_URL=urlparse(redis_url)._replace(path=f"/{args.redis_db}").geturl(), DJANGO_DEBUG="0", LOG_LEVEL="WARNING",
               JOIN_STORM_CODE=str(code))
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        # Through the maintenance database: the bench's own is dropped and made anew.
        with psycopg.connect(urlparse(url)._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{args.database}"')
        env["DATABASE_URL"] = urlparse(url)._replace(path=f"/{args.database}").geturl()
    else:
        env["DATABASE_URL"] = f"sqlite:///{run_dir / 'storm.sqlite3'}"
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=code, env=env, check=True, timeout=300)
    return env


def drop_database(env: dict[str, str]) -> None:
    url = env["DATABASE_URL"]
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        with psycopg.connect(urlparse(url)._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{urlparse(url).path.lstrip("/")}" WITH (FORCE)')


def seed(env: dict[str, str], run_dir: Path, members: int) -> dict:
    out = run_dir / "seed.json"
    subprocess.run([PY, str(Path(__file__).resolve()), "--seed-out", str(out), "--members", str(members)],
                   cwd=env["JOIN_STORM_CODE"], env=env, check=True, timeout=300)
    return json.loads(out.read_text())


def redis_cpu(env: dict[str, str], flush: bool = False) -> float:
    import redis

    with redis.Redis.from_url(env["REDIS_URL"], socket_timeout=5) as client:
        if flush:
            client.flushdb()
        info = client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


# --- clients ----------------------------------------------------------------------------------------
@dataclass(eq=False)
class Member:
    """One connection: its user, when it sent join_channel and got joined_channel."""
    index: int
    user_id: int
    sent: float = 0.0
    joined: float = 0.0
    answered: bool = False  # joined_channel or an error answered the join
    frames: int = 0
    closed: bool = False
    online_seen: set[int] = field(default_factory=set)  # users announced online to this client


@dataclass
class Storm:
    """What all clients received."""

    channel_id: int
    members: list[Member]
    types: collections.Counter = field(default_factory=collections.Counter)
    frames: int = 0
    last_frame: float = 0.0
    failed: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    largest_joined: int = 0
    largest_online: int = -1  # entries; -1: no joined_channel carried `online`
    largest_online_bytes: int = 0
    without_online: int = 0
    online_problems: collections.Counter = field(default_factory=collections.Counter)
    join_errors: list[str] = field(default_factory=list)
    presence_repeats: int = 0  # user_presence online for a user this client was already told is online

    def frame(self, member: Member, payload: bytes) -> None:
        now = time.monotonic()
        self.frames += 1
        self.last_frame = now
        member.frames += 1
        m = TYPE.search(payload)
        kind = m.group(1).decode() if m else "?"
        self.types[kind] += 1
        if kind == "joined_channel":
            self.joined_frame(member, payload, now)
        elif kind == "user_presence" and b'"online"' in payload:
            user = USER.search(payload)
            if user is not None:
                uid = int(user.group(1))
                if uid in member.online_seen:
                    self.presence_repeats += 1
                member.online_seen.add(uid)
        elif kind == "error" and b'"requestId":"join"' in payload:
            self.join_errors.append(payload[:200].decode(errors="replace"))
            member.answered = True

    def joined_frame(self, member: Member, payload: bytes, now: float) -> None:
        event = json.loads(payload)
        if event.get("channelId") != self.channel_id or member.joined:
            return
        member.joined, member.answered = now, True
        self.latencies.append((now - member.sent) * 1000)
        self.largest_joined = max(self.largest_joined, len(payload))
        if "online" not in event:
            self.without_online += 1
            return
        online = event["online"]
        if not isinstance(online, list) or not all(isinstance(u, int) and not isinstance(u, bool) for u in online):
            self.online_problems["not a list of user ids"] += 1
            return
        if member.user_id not in online:
            self.online_problems["joiner missing"] += 1
        if len(set(online)) != len(online):
            self.online_problems["duplicate ids"] += 1
        self.largest_online = max(self.largest_online, len(online))
        self.largest_online_bytes = max(self.largest_online_bytes, len(json.dumps(online, separators=(",", ":"))))


class FrameReader(asyncio.Protocol):
    """A client's socket after `connected`: server frames (unmasked,
    unfragmented) parsed in place, pings answered, ours masked with a zero key."""

    def __init__(self, storm: Storm, member: Member, transport: asyncio.Transport) -> None:
        self.storm, self.member, self.transport = storm, member, transport
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, length, head = buf[pos], buf[pos + 1] & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            end = pos + head + length
            if end > size:
                break
            payload = bytes(buf[pos + head : end])
            pos = end
            opcode = first & 0x0F
            if opcode == 0x1:
                self.storm.frame(self.member, payload)
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.transport.abort()
                return
        del buf[:pos]

    def send(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes((0x80 | opcode, 0x80 | n)) if n < 126 else bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
        self.transport.write(head + b"\0\0\0\0" + payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.member.closed = True


async def one_member(storm: Storm, member: Member, port: int, session: str, at: float, transports: list[Any]) -> None:
    """At `at` (monotonic): handshake, `connected`, then join_channel."""
    import websockets

    await asyncio.sleep(max(0.0, at - time.monotonic()))
    origin = f"http://127.0.0.1:{port}"
    try:
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/chat/", additional_headers={"Origin": origin, "Cookie": f"sessionid={session}"},
                                      open_timeout=OPEN_TIMEOUT, ping_interval=None, compression=None, close_timeout=2)
        transports.append(ws.transport)
        hello = await asyncio.wait_for(ws.recv(decode=False), OPEN_TIMEOUT)
    except Exception as exc:
        storm.failed.append(f"{type(exc).__name__}: {exc}"[:160])
        return
    if b'"type":"connected"' not in hello:
        storm.failed.append(f"no connected: {hello[:160]!r}")
        ws.transport.abort()
        return
    # Nothing else comes before the join, so websockets holds no unread frame.
    reader = FrameReader(storm, member, ws.transport)
    ws.transport.set_protocol(reader)
    member.sent = time.monotonic()
    reader.send(0x1, json.dumps({"type": "join_channel", "channelId": storm.channel_id, "requestId": "join"}).encode())


async def run_storm(port: int, seed_data: dict, spread: float, settle_cap: float, server_pid: int) -> dict:
    sessions, user_ids = seed_data["sessions"], seed_data["userIds"]
    members = [Member(i, user_ids[i]) for i in range(len(sessions))]
    storm = Storm(seed_data["channelId"], members)
    transports: list[Any] = []
    n = len(members)
    cpu0, own0, wall0, busy0 = cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), machine_busy_seconds()
    start = wall0 + 0.2
    tasks = [asyncio.create_task(one_member(storm, m, port, sessions[m.index], start + spread * m.index / n, transports)) for m in members]
    await asyncio.gather(*tasks)
    last_join = max((m.sent for m in members), default=time.monotonic())
    all_sent = time.monotonic()
    settled = False
    while time.monotonic() - all_sent < settle_cap:
        answered = all(m.answered or m.closed or not m.sent for m in members)
        if answered and time.monotonic() - max(storm.last_frame, last_join) >= QUIET_SECONDS:
            settled = True
            break
        await asyncio.sleep(0.1)
    cpu1, own1, wall1, busy1 = cpu_seconds(server_pid), resource.getrusage(resource.RUSAGE_SELF), time.monotonic(), machine_busy_seconds()
    for transport in transports:
        transport.abort()
    lat = sorted(storm.latencies)
    sent = [m for m in members if m.sent]
    return {
        "members": n,
        "spread_s": spread,
        "opened": len(sent),
        "failed": len(storm.failed),
        "failures": sorted(set(storm.failed))[:3],
        "joined": len(lat),
        "unanswered": sum(1 for m in sent if not m.answered),
        "join_errored": len(storm.join_errors),
        "join_errors": storm.join_errors[:3],
        "dropped": sum(1 for m in sent if m.closed),
        "settled": settled,
        "storm_s": round(max(storm.last_frame, last_join) - start, 2),
        "measured_s": round(wall1 - wall0, 2),
        "server_cpu_s": round(cpu1 - cpu0, 2),
        "client_cpu_s": round(own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime, 2),
        "machine_cpu_s": round(busy1 - busy0, 2),  # all cores, not idle
        "frames": storm.frames,
        "max_frames_per_client": max((m.frames for m in members), default=0),
        "median_frames_per_client": sorted(m.frames for m in members)[n // 2] if n else 0,
        "frames_by_type": dict(storm.types.most_common()),
        "presence_repeats": storm.presence_repeats,
        "join_p50_ms": round(percentile(lat, 0.50), 1),
        "join_p99_ms": round(percentile(lat, 0.99), 1),
        "join_max_ms": round(lat[-1], 1) if lat else float("nan"),
        "largest_joined_bytes": storm.largest_joined,
        "online_present": storm.largest_online >= 0,
        "largest_online_entries": storm.largest_online if storm.largest_online >= 0 else None,
        "largest_online_bytes": storm.largest_online_bytes if storm.largest_online >= 0 else None,
        "joined_without_online": storm.without_online,
        "online_problems": dict(storm.online_problems),
    }


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def client_loop(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


# --- report -------------------------------------------------------------------------------------------
def describe(sha: str | None) -> str:
    """The commit measured: --ref's, or HEAD and whether the checkout differs from it."""
    head = subprocess.run(["git", "log", "-1", "--format=%h %s", sha or "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    if sha is None and subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True,
                                      check=False).stdout.strip():
        head += " (checkout with uncommitted changes)"
    return head


def render(r: dict) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    types = ", ".join(f"{k} {v:,}" for k, v in r["frames_by_type"].items()) or "-"
    online = (f"{r['largest_online_entries']:,} ids, {r['largest_online_bytes']:,} bytes" if r["online_present"]
              else "absent (no joined_channel carried `online`)")
    if r["online_present"] and (r["online_problems"] or r["joined_without_online"]):
        online += f"; problems: {r['online_problems']}, {r['joined_without_online']} joined_channel without it"
    rows = [
        ("members joining (opened / not opened / joined / join refused / dropped by server)",
         f"{r['members']:,} over {r['spread_s']:g} s ({r['opened']:,} / {r['failed']} / {r['joined']:,} / {r['join_errored']} / {r['dropped']})"),
        ("storm: first connect -> last frame", f"{r['storm_s']:.1f} s (" + ("settled" if r["settled"] else f"NOT settled: {r['unanswered']} joins unanswered or frames still coming at the cap") + ")"),
        ("server CPU during the storm", f"{r['server_cpu_s']:.2f} s (target < {TARGET_CPU_SECONDS:g} s: {verdict(r['server_cpu_s'] < TARGET_CPU_SECONDS)})"),
        ("client CPU (one asyncio process, same machine)", f"{r['client_cpu_s']:.2f} s"),
        ("Redis CPU", f"{r['redis_cpu_s']:.2f} s"),
        (f"other work on the machine ({os.cpu_count()} cores, busy {r['machine_cpu_s']:.1f} s in {r['measured_s']:.1f} s)",
         f"{max(0.0, r['machine_cpu_s'] - r['server_cpu_s'] - r['client_cpu_s'] - r['redis_cpu_s']):.2f} s CPU"),
        ("frames received, all clients", f"{r['frames']:,}"),
        ("frames received, max one client (median)",
         f"{r['max_frames_per_client']:,} ({r['median_frames_per_client']:,}) (target <= {TARGET_MAX_FRAMES:,}: "
         f"{verdict(r['max_frames_per_client'] <= TARGET_MAX_FRAMES)})"),
        ("frames by type", types),
        ("user_presence online repeated to a client (same user)", f"{r['presence_repeats']:,}"),
        ("join latency p50 / p99 / max", f"{r['join_p50_ms']:,.1f} / {r['join_p99_ms']:,.1f} / {r['join_max_ms']:,.1f} ms"),
        ("largest joined_channel frame", f"{r['largest_joined_bytes']:,} bytes"),
        ("largest `online` in joined_channel", online),
    ]
    out = ["| figure | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    if r["failures"] or r["join_errors"]:
        out += ["", f"Failures: {r['failures']} {r['join_errors']}"]
    return "\n".join(out) + "\n"


# --- main -----------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", type=int, default=1000, help="connections (one user each) joining the channel")
    parser.add_argument("--spread", type=float, default=10.0, help="seconds over which the joins are spread")
    parser.add_argument("--settle-cap", type=float, default=180.0, help="at most this long after the last join for frames to stop")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="Redis database of the bench (emptied)")
    parser.add_argument("--database", default=DATABASE, help="PostgreSQL database of the bench (dropped and created)")
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database afterwards")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--ref", help="measure this commit (a clean git-archive copy) instead of the checkout as it is")
    parser.add_argument("--seed-out", help=argparse.SUPPRESS)  # internal: the seeding subprocess
    args = parser.parse_args()
    if args.seed_out:
        seed_main(args.seed_out, args.members)
        return 0
    raise_fd_limit()
    run_dir = Path(tempfile.mkdtemp(prefix="chat-join-storm-"))
    keep_logs = True
    code, sha = export(args.ref, run_dir) if args.ref else (ROOT, None)
    env = bench_env(args, code, run_dir)
    try:
        log(f"seeding {args.members} users and a public channel ({urlparse(env['DATABASE_URL']).scheme})")
        seed_data = seed(env, run_dir, args.members)
        redis_cpu(env, flush=True)  # no presence entries or groups of an earlier run
        server = Server("server", list(SERVER_ARGV), env, run_dir, cwd=code).start()
        try:
            redis0 = redis_cpu(env)
            log(f"server pid {server.pid} on port {server.port}; {args.members} joins over {args.spread:g} s")
            result = client_loop(run_storm(server.port, seed_data, args.spread, args.settle_cap, server.pid))
        finally:
            server.stop()
        result["redis_cpu_s"] = round(redis_cpu(env) - redis0, 2)
        keep_logs = bool(result["failed"] or result["dropped"] or not result["settled"])
    finally:
        if not args.keep_db:
            drop_database(env)
        if keep_logs:
            log(f"server log kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    result["when"] = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    result["commit"] = describe(sha)
    with contextlib.suppress(OSError):
        result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    print(f"Join storm, {result['when']}, commit {result['commit']}\n")
    print(render(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
        log(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
