"""Upload benchmark (issue 14): what 20 concurrent 10 MB uploads cost the
server's memory and the chat of everyone else meanwhile.

    .venv/bin/python bench/upload_bench.py               # `make bench-upload`
    .venv/bin/python bench/upload_bench.py --redis-db 12 --database chat_helper --rounds random --ref HEAD

With --ref the server runs from a clean `git archive` copy of that commit;
--server-env NAME=VALUE adds to the server's environment (experiments).

Seeds a fresh database through the ORM (one workspace, one public channel,
50 chatting members and 20 uploaders, a logged-in session each), then per
round starts ONE fresh server process as the other benches do
(`python -m chatsite.server`, REDIS_URL and DATABASE_URL set, CHAT_MEDIA_ROOT a
temporary directory, the message rate limit raised) and:

- opens 50 WebSockets that join the channel; 5 of them send a message every
  200 ms; every `new_message` received by one of the 49 other members is a
  latency sample (send -> received), counted "at rest" for the messages sent
  before the first upload began and "during" for those sent while any upload
  ran (first request byte -> last answer);
- after --rest seconds, a separate client process (so the chat clients' loop
  is never busy writing bodies) makes 20 concurrent `POST /api/files/`
  (multipart, 10 MB each, Content-Length declared, written in 256 KiB pieces);
- samples the server's VmRSS (/proc/<pid>/status; also with its image worker
  processes) every 50 ms: "before" is the last sample before the first
  upload, "peak" the highest until --tail s after the last answer.

Rounds: `random` (random bytes: stored as attachments) and `jpeg` (one noisy
4032x3024 JPEG of about 10 MB, 12.2 megapixels, sent 20 times: each is
decoded and re-encoded by Pillow). Targets: RSS growth < 100 MB and chat p99
< 100 ms during the uploads.

REDIS_URL and DATABASE_URL come from the environment (scripts/services); the
bench empties its own Redis database (--redis-db) and recreates its own
PostgreSQL database (--database). Loopback only; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.loadgen import cpu_seconds, raise_fd_limit
from bench.procs import Server, rss_kib

PY = sys.executable
SERVER_ARGV = ["-m", "chatsite.server", "--bind", "127.0.0.1", "--port", "{port}"]
REDIS_DB = 11  # run.py uses 13, join_storm 12, the e2e suite 14
DATABASE = "chat_upload_bench"
MB = 1_000_000
UPLOAD_BYTES = 10 * MB
JPEG_SIZE, JPEG_QUALITY = (4032, 3024), 88  # noise at this quality: about 10 MB
PIECE = 256 * 1024
TARGET_RSS_MB = 100.0
TARGET_P99_MS = 100.0
CONTENT = re.compile(r"^bench (\d+) (\d+)$")


def log(message: str) -> None:
    print(f"[upload-bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- setup -----------------------------------------------------------------------------------------
def seed_main(out: str, users: int) -> None:
    """Subprocess mode (--seed-out): `users` users in one workspace with one
    public channel (workspace membership suffices to join it and to upload
    to it) and a logged-in session each, as bench/join_storm.py seeds."""
    sys.path.insert(0, os.environ.get("UPLOAD_BENCH_CODE", str(ROOT)))  # the models of the code under test
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
            [User(username=f"up{i:04d}", display_name=f"Up {i}", password=unusable, username_key=names.name_key(f"up{i:04d}"),
                  username_look_alike=names.look_alike_key(f"up{i:04d}")) for i in range(users)])
        workspace = Workspace.objects.create(name="Upload bench", created_by=people[0])
        WorkspaceMembership.objects.bulk_create(
            [WorkspaceMembership(workspace=workspace, user=u, role=Role.ADMIN if i == 0 else Role.STUDENT) for i, u in enumerate(people)])
        channel = Channel.objects.create(workspace=workspace, name="uploads", is_private=False, created_by=people[0])
        store = seeding.SessionStore()
        expire = seeding.timezone.now() + seeding.timedelta(seconds=seeding.settings.SESSION_COOKIE_AGE)
        keys = [seeding.get_random_string(32) for _ in people]
        seeding.Session.objects.bulk_create(
            [seeding.Session(session_key=key, expire_date=expire, session_data=store.encode(
                {seeding.SESSION_KEY: str(u.pk), seeding.BACKEND_SESSION_KEY: backend, seeding.HASH_SESSION_KEY: u.get_session_auth_hash()}))
             for key, u in zip(keys, people, strict=True)])
    Path(out).write_text(json.dumps({"channelId": channel.pk, "sessions": keys}))


def postgres(url: str, *statements: str) -> None:
    import psycopg

    # Through the maintenance database: the bench's own is dropped and made anew.
    with psycopg.connect(urlparse(url)._replace(path="/postgres").geturl(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def export(ref: str, run_dir: Path) -> Path:
    """A clean `git archive` copy of commit `ref` (no work tree or index
    touched): the figures belong to it, not to edits under way in the checkout."""
    code = run_dir / "code"
    code.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True, timeout=120).stdout
    subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True, timeout=120)
    return code


def bench_env(args: argparse.Namespace, run_dir: Path, code: Path) -> dict[str, str]:
    """The server's environment: the bench's Redis database (emptied), a fresh migrated database."""
    import redis

    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL")}
    redis_url = os.environ.get("REDIS_URL")
    if not redis_url:
        raise SystemExit("REDIS_URL is required (e.g. `set -a; eval \"$(scripts/services up redis postgres)\"; set +a`)")
    env["REDIS_URL"] = urlparse(redis_url)._replace(path=f"/{args.redis_db}").geturl()
    with redis.Redis.from_url(env["REDIS_URL"], socket_timeout=5) as client:
        client.flushdb()
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        postgres(url, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)', f'CREATE DATABASE "{args.database}"')
        env["DATABASE_URL"] = urlparse(url)._replace(path=f"/{args.database}").geturl()
    else:
        env["DATABASE_URL"] = f"sqlite:///{run_dir / 'upload.sqlite3'}"
    env.update(DJANGO_DEBUG="0", LOG_LEVEL="WARNING", CHAT_RATE_LIMIT_MESSAGES="100000", CHAT_RATE_LIMIT_EVENTS="100000", UPLOAD_BENCH_CODE=str(code))
    subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v0"], cwd=code, env=env, check=True, timeout=300)
    return env


# --- the uploading client process -------------------------------------------------------------------
def payload(kind: str, small: bool = False) -> tuple[bytes, str, str]:
    """(bytes, file name suffix, client content type) of one round's uploads."""
    if kind == "jpeg":
        from PIL import Image

        out, size = io.BytesIO(), (64, 48) if small else JPEG_SIZE
        Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "JPEG", quality=JPEG_QUALITY)
        return out.getvalue(), ".jpg", "image/jpeg"
    # A fixed text start: no magic number, so never taken for a known type.
    return b"upload bench data " + os.urandom((1000 if small else UPLOAD_BYTES) - 18), ".bin", "application/octet-stream"


async def upload_one(port: int, session: str, channel_id: int, name: str, data: bytes, content_type: str, timeout: float) -> dict:
    """One multipart POST /api/files/ over a raw HTTP/1.1 connection."""
    boundary = secrets.token_hex(16)
    csrf = secrets.token_hex(16)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="channelId"\r\n\r\n{channel_id}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n').encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + len(data) + len(tail)
    request = (f"POST /api/files/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
               f"Cookie: sessionid={session}; csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\n"
               f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n").encode()
    result: dict[str, Any] = {"name": name, "bytes": length, "start": time.monotonic()}
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request + head)
            view = memoryview(data)
            for offset in range(0, len(data), PIECE):
                writer.write(view[offset : offset + PIECE])
                await writer.drain()
            writer.write(tail)
            await writer.drain()
            result["sent"] = time.monotonic()
            answer = await reader.read()
            writer.close()
        result["end"] = time.monotonic()
        status_line, _, rest = answer.partition(b"\r\n")
        result["status"] = int(status_line.split()[1]) if status_line.startswith(b"HTTP/") else 0
        body = rest.partition(b"\r\n\r\n")[2]
        try:
            obj = json.loads(body)
            result["contentType"], result["isImage"] = obj.get("contentType"), obj.get("isImage")
        except ValueError:
            pass
        if result["status"] != 201:
            result["error"] = f"{result['status']}: {body[:200].decode(errors='replace')}"
    except Exception as exc:
        result["end"], result["status"], result["error"] = time.monotonic(), 0, f"{type(exc).__name__}: {exc}"[:200]
    return result


def upload_worker(config: str) -> None:
    """Subprocess mode (--upload-worker): make the round's payload, say
    `ready`, wait for `go` on stdin, upload all at once, print the results."""
    cfg = json.loads(config)
    data, suffix, content_type = payload(cfg["kind"])
    print("ready", flush=True)
    sys.stdin.readline()

    async def all_uploads() -> list[dict]:
        return await asyncio.gather(*(upload_one(cfg["port"], session, cfg["channelId"], f"{cfg['kind']}-{i:02d}{suffix}", data, content_type,
                                                 cfg["timeout"]) for i, session in enumerate(cfg["sessions"])))

    print(json.dumps(asyncio.run(all_uploads())), flush=True)


# --- measuring ---------------------------------------------------------------------------------------
class RssSampler(threading.Thread):
    """Every `every` s: (monotonic time, VmRSS KiB, that + its child processes')."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, int, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                own = rss_kib(self.pid)
                self.samples.append((time.monotonic(), own, own + sum(rss_kib(c) for c in descendants(self.pid))))
            self.done.wait(self.every)


def descendants(pid: int) -> list[int]:
    children = [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    return children + [d for c in children for d in descendants(c)]


@dataclass
class Chat:
    """Every message sent (by sender, seq) and every delivery to another member."""

    channel_id: int
    tag: str = field(default_factory=lambda: secrets.token_hex(4))  # clientIds unique per round (a stored one is not sent again)
    sent: dict[tuple[int, int], float] = field(default_factory=dict)
    deliveries: list[tuple[float, float]] = field(default_factory=list)  # (sent at, latency ms)
    errors: list[str] = field(default_factory=list)
    stop: bool = False


async def member(chat: Chat, index: int, port: int, session: str, senders: int, every: float, joined: asyncio.Event, ready: list[int]) -> None:
    import websockets

    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/chat/", additional_headers={"Origin": f"http://127.0.0.1:{port}", "Cookie": f"sessionid={session}"},
                                  open_timeout=30, ping_interval=None, compression=None, close_timeout=2, max_size=None)
    await ws.send(json.dumps({"type": "join_channel", "channelId": chat.channel_id}))

    async def send_loop() -> None:
        await joined.wait()
        await asyncio.sleep(every * index / senders)  # the senders spread over the interval
        seq, next_at = 0, time.monotonic()
        while not chat.stop:
            chat.sent[(index, seq)] = time.monotonic()
            await ws.send(json.dumps({"type": "send_message", "channelId": chat.channel_id, "content": f"bench {index} {seq}", "clientId": f"{chat.tag}-{index}-{seq}"}))
            seq += 1
            next_at += every
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    sender = asyncio.create_task(send_loop()) if index < senders else None
    try:
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), 1.0)
            except TimeoutError:
                if chat.stop:
                    break
                continue
            now = time.monotonic()
            event = json.loads(raw)
            kind = event.get("type")
            if kind == "joined_channel":
                ready.append(index)
            elif kind == "new_message":
                m = CONTENT.match(event["message"].get("content", ""))
                if m and int(m.group(1)) != index and (key := (int(m.group(1)), int(m.group(2)))) in chat.sent:
                    chat.deliveries.append((chat.sent[key], (now - chat.sent[key]) * 1000))
            elif kind == "error":
                chat.errors.append(f"{event.get('code')}: {event.get('message')}"[:120])
    except websockets.ConnectionClosed as exc:
        if not chat.stop:
            chat.errors.append(f"member {index} closed: {exc}"[:120])
    finally:
        if sender is not None:
            sender.cancel()
        await ws.close()


async def run_round(kind: str, port: int, pid: int, seed_data: dict, args: argparse.Namespace) -> dict:
    sessions = seed_data["sessions"]
    chat = Chat(seed_data["channelId"])
    # A server that has served uploads before: the URL conf, DRF and Pillow's plugins are imported on first use.
    data, _, content_type = payload(kind, small=True)
    warm = await upload_one(port, sessions[-1], chat.channel_id, "warm-up", data, content_type, timeout=30)
    if warm["status"] != 201:
        raise RuntimeError(f"the warm-up upload failed: {warm.get('error')}")
    sampler = RssSampler(pid)
    sampler.start()
    joined, ready = asyncio.Event(), list[int]()
    members = [asyncio.create_task(member(chat, i, port, sessions[i], args.senders, args.every, joined, ready)) for i in range(args.members)]
    deadline = time.monotonic() + 30
    while len(ready) < args.members and time.monotonic() < deadline and not any(t.done() for t in members):
        await asyncio.sleep(0.05)
    if len(ready) < args.members:
        raise RuntimeError(f"only {len(ready)} of {args.members} members joined: {[t.exception() for t in members if t.done()][:3]}")
    config = {"kind": kind, "port": port, "channelId": chat.channel_id, "sessions": sessions[args.members : args.members + args.uploads],
              "timeout": args.upload_timeout}
    # The uploading process makes its payload first, before the chat starts.
    worker = await asyncio.create_subprocess_exec(PY, str(Path(__file__).resolve()), "--upload-worker", json.dumps(config), cwd=ROOT,
                                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert worker.stdin is not None and worker.stdout is not None
    try:
        async with asyncio.timeout(args.upload_timeout + args.rest + 60):
            if (await worker.stdout.readline()).strip() != b"ready":
                raise RuntimeError("the upload worker failed")
            joined.set()
            await asyncio.sleep(1.0)
            rest0 = (time.monotonic(), cpu_seconds(pid))
            await asyncio.sleep(max(0.0, args.rest - 1.0))
            rest_cpu = (cpu_seconds(pid) - rest0[1]) / (time.monotonic() - rest0[0])
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
            cpu0 = cpu_seconds(pid)
            uploads = json.loads(await worker.stdout.readline())
            cpu1 = cpu_seconds(pid)
            await worker.wait()
    finally:
        if worker.returncode is None:
            worker.kill()
    await asyncio.sleep(args.tail)
    chat.stop = True
    await asyncio.sleep(1.5)  # the last messages' deliveries
    await asyncio.gather(*members, return_exceptions=True)
    sampler.done.set()
    sampler.join()
    return {**summarize(kind, chat, sampler.samples, uploads, args), "server_cpu_s": cpu1 - cpu0, "rest_cpu": rest_cpu}


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def latency(chat: Chat, start: float, end: float, receivers: int) -> dict:
    lat = sorted(ms for at, ms in chat.deliveries if start <= at <= end)
    sent = sum(1 for at in chat.sent.values() if start <= at <= end)
    return {"p50": percentile(lat, 0.5), "p99": percentile(lat, 0.99), "max": lat[-1] if lat else float("nan"), "n": len(lat),
            "missing": sent * receivers - len(lat)}


def summarize(kind: str, chat: Chat, samples: list[tuple[float, int, int]], uploads: list[dict], args: argparse.Namespace) -> dict:
    first, last = min(u["start"] for u in uploads), max(u["end"] for u in uploads)
    before = [s for s in samples if s[0] < first]
    during = [s for s in samples if first <= s[0] <= last + args.tail]
    peak_at = max(during, key=lambda s: s[1], default=(first, 0, 0))[0]
    ok = [u for u in uploads if u.get("status") == 201]
    times = sorted(u["end"] - u["start"] for u in ok)
    rest_start = min(chat.sent.values(), default=first)
    receivers = args.members - 1
    return {
        "kind": kind,
        "rss_before_mb": before[-1][1] * 1024 / MB if before else float("nan"),
        "rss_peak_mb": max((s[1] for s in during), default=0) * 1024 / MB,
        "rss_after_mb": samples[-1][1] * 1024 / MB if samples else float("nan"),
        "total_before_mb": before[-1][2] * 1024 / MB if before else float("nan"),
        "total_peak_mb": max((s[2] for s in during), default=0) * 1024 / MB,
        "peak_after_first_s": peak_at - first,
        "uploads": len(uploads),
        "uploaded": len(ok),
        "upload_window_s": last - first,
        "throughput_mb_s": sum(u["bytes"] for u in ok) / MB / (last - first),
        "upload_p50_s": percentile(times, 0.5),
        "upload_p99_s": percentile(times, 0.99),
        "body_sent_p50_s": percentile(sorted(u["sent"] - u["start"] for u in ok if "sent" in u), 0.5),
        "stored_as": sorted({f"{u.get('contentType')}{' (image)' if u.get('isImage') else ''}" for u in ok}),
        "during": latency(chat, first, last, receivers),
        "rest": latency(chat, rest_start + 1.0, first - 0.2, receivers),  # the first second warms up
        "upload_errors": [u["error"] for u in uploads if "error" in u][:5],
        "chat_errors": chat.errors[:5],
        "chat_error_count": len(chat.errors),
    }


# --- report -------------------------------------------------------------------------------------------
def render(rounds: list[dict]) -> str:
    def verdict(ok: bool) -> str:
        return "met" if ok else "**NOT met**"

    def lat(d: dict) -> str:
        return f"{d['p50']:.1f} / {d['p99']:.1f} / {d['max']:.1f} ms ({d['n']:,} deliveries, {d['missing']} missing)"

    names = {"random": "20 x 10 MB random (attachments)", "jpeg": "20 x ~10 MB JPEG 4032x3024 (decoded)"}
    rows: list[tuple[str, list[str]]] = [
        ("server RSS before / peak / after", [f"{r['rss_before_mb']:.0f} / {r['rss_peak_mb']:.0f} / {r['rss_after_mb']:.0f} MB" for r in rounds]),
        (f"RSS growth (target < {TARGET_RSS_MB:g} MB)",
         [f"{r['rss_peak_mb'] - r['rss_before_mb']:.0f} MB ({verdict(r['rss_peak_mb'] - r['rss_before_mb'] < TARGET_RSS_MB)})" for r in rounds]),
        ("with its image worker: before / peak (growth)",
         [f"{r['total_before_mb']:.0f} / {r['total_peak_mb']:.0f} MB ({r['total_peak_mb'] - r['total_before_mb']:.0f} MB)" for r in rounds]),
        ("uploads stored (stored as)", [f"{r['uploaded']} of {r['uploads']} ({', '.join(map(str, r['stored_as']))})" for r in rounds]),
        ("upload throughput", [f"{r['throughput_mb_s']:.1f} MB/s ({r['upload_window_s']:.1f} s for all)" for r in rounds]),
        ("server CPU over the uploads (at rest: share of a core)", [f"{r['server_cpu_s']:.1f} s ({r['rest_cpu']:.0%})" for r in rounds]),
        ("one upload p50 / p99 (body sent p50)", [f"{r['upload_p50_s']:.2f} / {r['upload_p99_s']:.2f} s ({r['body_sent_p50_s']:.2f} s)" for r in rounds]),
        (f"chat during uploads p50 / p99 / max (target p99 < {TARGET_P99_MS:g} ms)",
         [f"{lat(r['during'])} ({verdict(r['during']['p99'] < TARGET_P99_MS)})" for r in rounds]),
        ("chat at rest before, p50 / p99 / max", [lat(r["rest"]) for r in rounds]),
        ("errors", [("; ".join(r["upload_errors"] + r["chat_errors"]) + (f" ({r['chat_error_count']} chat errors)" if r["chat_error_count"] else ""))
                    or "none" for r in rounds]),
    ]
    out = ["| figure | " + " | ".join(names.get(r["kind"], r["kind"]) for r in rounds) + " |", "| --- |" + " --- |" * len(rounds)]
    out += [f"| {name} | " + " | ".join(values) + " |" for name, values in rows]
    return "\n".join(out) + "\n"


# --- main -----------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", default="random,jpeg", help="comma-separated: random, jpeg")
    parser.add_argument("--uploads", type=int, default=20, help="concurrent uploads per round")
    parser.add_argument("--members", type=int, default=50, help="chat members joined to the channel")
    parser.add_argument("--senders", type=int, default=5, help="of them, sending")
    parser.add_argument("--every", type=float, default=0.2, help="seconds between one sender's messages")
    parser.add_argument("--rest", type=float, default=8.0, help="seconds of chat before the uploads")
    parser.add_argument("--tail", type=float, default=3.0, help="seconds of chat (and RSS samples) after the last upload")
    parser.add_argument("--upload-timeout", type=float, default=300.0)
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE", help="extra server environment (experiments)")
    parser.add_argument("--redis-db", type=int, default=REDIS_DB, help="Redis database of the bench (emptied)")
    parser.add_argument("--database", default=DATABASE, help="PostgreSQL database of the bench (dropped and created)")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--ref", help="measure this commit (a clean git-archive copy) instead of the checkout as it is")
    parser.add_argument("--seed-out", help=argparse.SUPPRESS)
    parser.add_argument("--upload-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    users = args.members + args.uploads
    if args.seed_out:
        seed_main(args.seed_out, users)
        return 0
    if args.upload_worker:
        upload_worker(args.upload_worker)
        return 0
    raise_fd_limit()
    run_dir = Path(tempfile.mkdtemp(prefix="chat-upload-bench-"))
    code = export(args.ref, run_dir) if args.ref else ROOT
    env = bench_env(args, run_dir, code)
    env.update(dict(item.split("=", 1) for item in args.server_env))
    results, keep_logs = [], True
    try:
        log(f"seeding {users} users and a public channel ({urlparse(env['DATABASE_URL']).scheme})")
        subprocess.run([PY, str(Path(__file__).resolve()), "--seed-out", str(run_dir / "seed.json"), "--members", str(args.members),
                        "--uploads", str(args.uploads)], cwd=code, env=env, check=True, timeout=300)
        seed_data = json.loads((run_dir / "seed.json").read_text())
        for kind in [k.strip() for k in args.rounds.split(",") if k.strip()]:
            media = run_dir / f"media-{kind}"
            media.mkdir()
            server = Server(f"server-{kind}", list(SERVER_ARGV), {**env, "CHAT_MEDIA_ROOT": str(media)}, run_dir, cwd=code).start()
            try:
                log(f"round {kind}: server pid {server.pid} on port {server.port}; {args.members} members, {args.uploads} uploads")
                results.append(asyncio.run(run_round(kind, server.port, server.pid, seed_data, args)))
            finally:
                server.stop()
            shutil.rmtree(media, ignore_errors=True)
        keep_logs = any(r["upload_errors"] or r["chat_errors"] for r in results)
    finally:
        if env["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
            postgres(env["DATABASE_URL"], f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        if keep_logs:
            log(f"server logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = Path("/proc/loadavg").read_text().split()[:3]
    head = subprocess.run(["git", "log", "-1", "--format=%h", args.ref or "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    print(f"Upload benchmark, {when}, commit {head}, load average {' '.join(load)} ({os.cpu_count()} cores)\n")
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"when": when, "commit": head, "loadavg": load, "rounds": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
