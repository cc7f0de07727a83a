"""Client side of the benchmark: worker processes holding real WebSocket
connections (the `websockets` package, loopback only), driven over a pipe by
bench/run.py.

One worker is the publisher (one connection that sends at a paced rate and
collects the server's answers); the others are receivers (many connections
that record every marked message they get: latency, duplicates, per-message
counts). Receivers are split over several processes because on 2 cores one
Python process cannot read 1,000 sockets as fast as the server writes them.

Everything is bounded: each worker exits by itself at its deadline, each
command has its own timeouts, and the coordinator (`Worker` handle) waits on
the pipe with a timeout and kills the process when it is done with it.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import multiprocessing
import os
import resource
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.exceptions import ConnectionClosed

from bench.targets import ERROR, MARK, OK, REFUSED, Target

OPEN_TIMEOUT = 30.0
ANSWER_TIMEOUT = 20.0  # after the last send, for the publisher's answers
CLOSE_TIMEOUT = 10.0
RETRY_PAUSES = (1.0, 3.0, None)  # seconds before each retry of a failed handshake; None: give up
MAX_PUBLISHER_RECONNECTS = 3  # per step


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit: 5,000 sockets need it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(eq=False)
class Conn:
    """One client connection and what it received."""

    ws: Any
    credential: str | None
    seen: set[int] = field(default_factory=set)  # receivers: every seq delivered
    per_step: collections.Counter = field(default_factory=collections.Counter)  # receivers: first deliveries
    closed: bool = False


@dataclass
class StepRecord:
    """What all receivers of one worker saw of one step's messages."""

    dups: int = 0
    latency_ms: array.array = field(default_factory=lambda: array.array("f"))
    first: float = 0.0
    last: float = 0.0


class Client:
    """The asyncio side of one worker process."""

    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.tasks: list[asyncio.Task] = []
        self.steps: dict[int, StepRecord] = collections.defaultdict(StepRecord)
        self.other_frames = 0
        self.answers: dict[int, tuple[str, float]] = {}  # publisher: seq -> (status, time)
        self.target: Target | None = None
        self.join = False

    # --- connecting -------------------------------------------------------------------
    async def connect(self, credential: str | None) -> tuple[Any, int]:
        """A connection through the handshake (and join), with the retries a
        real client makes after a refused or timed-out handshake."""
        target = self.target
        for retries, pause in enumerate(RETRY_PAUSES):
            try:
                # No client pings (the servers ping; client pings would add
                # load the server's figures then carry) and no compression (not
                # every server negotiates it: the bytes on the wire must be alike).
                ws = await websockets.connect(
                    target.url(),
                    additional_headers=target.headers(credential),
                    open_timeout=OPEN_TIMEOUT,
                    ping_interval=None,
                    compression=None,
                    close_timeout=2,
                )
                try:
                    await target.handshake(ws, self.join)
                except BaseException:
                    ws.transport.abort()
                    raise
                return ws, retries
            except (OSError, TimeoutError, websockets.InvalidHandshake, ConnectionClosed):
                if pause is None:
                    raise
                await asyncio.sleep(pause)
        raise AssertionError("unreachable: the last pause is None")

    def start_reader(self, conn: Conn, publisher: bool) -> None:
        reader = self.read_answers if publisher else self.read_deliveries
        self.tasks.append(asyncio.create_task(reader(conn)))

    # --- commands -----------------------------------------------------------------------
    async def open(
        self, target: Target, credentials: list[str | None], join: bool, concurrency: int, publisher: bool, seconds: float
    ) -> dict:
        """Open (and join) one connection per credential, `concurrency` at a
        time; whatever is not open after `seconds` is given up and counted."""
        self.target, self.join = target, join
        gate = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        retries = 0

        async def one(credential: str | None) -> None:
            nonlocal retries
            async with gate:
                ws, tried = await self.connect(credential)
            retries += tried
            conn = Conn(ws, credential)
            self.conns.append(conn)
            self.start_reader(conn, publisher)

        tasks = [asyncio.create_task(one(c)) for c in credentials]
        _, unfinished = await asyncio.wait(tasks, timeout=seconds)
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        failures = [t.exception() for t in tasks if t not in unfinished and t.exception() is not None]
        errors = [f"{type(e).__name__}: {e}"[:160] for e in failures]
        return {
            "opened": len(tasks) - len(failures) - len(unfinished),
            "failed": len(failures),
            "unfinished": len(unfinished),
            "retries": retries,
            "errors": sorted(set(errors))[:3],
            "seconds": time.monotonic() - started,
        }

    def progress(self, step: int | None = None) -> dict:
        """Cheap counters the coordinator polls: to see a presence storm settle
        (other frames stop growing) or a step drain (deliveries to the open
        connections reach their total)."""
        live = [c for c in self.conns if not c.closed]
        return {
            "other": self.other_frames,
            "delivered": sum(c.per_step[step] for c in live) if step is not None else 0,
            "open": len(live),
            "closed": len(self.conns) - len(live),
        }

    def report(self, step: int, accepted: list[int]) -> dict:
        """One step, split by connections still open and those the server
        dropped: a loss on an open connection is a delivery bug, a loss on a
        dropped one is what the drop cost."""
        record = self.steps.get(step, StepRecord())
        wanted = set(accepted)
        live = [c for c in self.conns if not c.closed]
        dropped = [c for c in self.conns if c.closed]
        delivered = sum(len(c.seen & wanted) for c in live)
        delivered_dropped = sum(len(c.seen & wanted) for c in dropped)
        return {
            "open": len(live),
            "dropped": len(dropped),
            "delivered": delivered,
            "delivered_dropped": delivered_dropped,
            # deliveries of messages the publisher saw refused or unanswered
            "unexpected": sum(c.per_step[step] for c in self.conns) - delivered - delivered_dropped,
            "dups": record.dups,
            "latency": record.latency_ms.tobytes(),
            "first": record.first,
            "last": record.last,
        }

    async def publish(self, step: int, rate: float, seconds: float, first_seq: int) -> dict:
        """Send round(rate*seconds) messages on a fixed schedule from the first
        connection, then wait (bounded) for the server's answers. A dropped
        publisher reconnects (like a real client) and goes on."""
        conn, target = self.conns[0], self.target
        count = max(1, round(rate * seconds))
        seqs = range(first_seq, first_seq + count)
        started, first_send = time.monotonic(), time.time()
        worst_slip, reconnects = 0.0, 0
        for i, seq in enumerate(seqs):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                worst_slip = max(worst_slip, -delay)
            while True:
                try:
                    await conn.ws.send(target.publish(step, seq))
                    break
                except ConnectionClosed:
                    if reconnects >= MAX_PUBLISHER_RECONNECTS:
                        raise
                    reconnects += 1
                    conn.ws, _ = await self.connect(conn.credential)
                    conn.closed = False
                    self.start_reader(conn, publisher=True)
        send_seconds = time.monotonic() - started
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while any(s not in self.answers for s in seqs) and not conn.closed and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        statuses = collections.Counter(self.answers[s][0] if s in self.answers else "unanswered" for s in seqs)
        return {
            "sent": count,
            "accepted": [s for s in seqs if self.answers.get(s, ("",))[0] == OK],
            "refused": statuses[REFUSED],
            "errors": statuses[ERROR],
            "unanswered": statuses["unanswered"],
            "reconnects": reconnects,
            "first_send": first_send,
            "send_seconds": send_seconds,
            "last_answer": max((self.answers[s][1] for s in seqs if s in self.answers), default=0.0),
            "worst_slip_ms": worst_slip * 1000,
        }

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        # Abort rather than a closing handshake per socket: the server under
        # test is stopped right after, and 5,000 handshakes would only add time.
        for conn in self.conns:
            conn.ws.transport.abort()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.conns.clear()

    # --- readers --------------------------------------------------------------------------
    async def read_deliveries(self, conn: Conn) -> None:
        """From here on the receiver's socket is read by FrameReader, not by
        websockets: at 10,000+ deliveries/s websockets' per-message machinery
        (futures, assembler, UTF-8 checks) cost more CPU than the server under
        test, and the clients share its two cores. The handshake and join went
        through websockets; nothing is published before every receiver is in."""
        done = asyncio.get_running_loop().create_future()
        transport = conn.ws.transport
        transport.set_protocol(FrameReader(self, conn, transport, done))
        with contextlib.suppress(asyncio.CancelledError):
            await done

    def delivered(self, conn: Conn, raw: bytes) -> bytes | None:
        """One text message a receiver got; returns the reply its protocol needs, if any."""
        now, found = time.time(), False
        # Every marker: a server that merges writes (Centrifugo) puts several
        # publications in one frame.
        for m in MARK.finditer(raw):
            found = True
            step, seq = int(m.group(1)), int(m.group(2))
            record = self.steps[step]
            if seq in conn.seen:
                record.dups += 1
                continue
            conn.seen.add(seq)
            conn.per_step[step] += 1
            record.latency_ms.append(now * 1000 - int(m.group(3)) / 1000)
            if not record.first:
                record.first = now
            record.last = max(record.last, now)
        if not found:
            self.other_frames += 1
            reply = self.target.keepalive(raw)
            return reply.encode() if reply is not None else None
        return None

    async def read_answers(self, conn: Conn) -> None:
        ws, target = conn.ws, self.target
        try:
            while True:
                raw = await ws.recv(decode=False)
                found = target.answers(raw)
                if found:
                    for seq, status in found:
                        self.answers.setdefault(seq, (status, time.time()))
                    continue
                self.other_frames += 1
                reply = target.keepalive(raw)
                if reply is not None:
                    await ws.send(reply)
        except ConnectionClosed:
            if conn.ws is ws:  # not an old socket of a reconnected publisher
                conn.closed = True


class FrameReader(asyncio.Protocol):
    """A receiver's socket after the handshake: RFC 6455 frames parsed in
    place (servers send them unmasked and, here, unfragmented); pings
    answered; our frames masked, with a zero key."""

    def __init__(self, client: Client, conn: Conn, transport: asyncio.Transport, done: asyncio.Future) -> None:
        self.client, self.conn, self.transport, self.done = client, conn, transport, done
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos, size = 0, len(buf)
        while size - pos >= 2:
            first, length = buf[pos], buf[pos + 1] & 0x7F
            head = 2
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
                reply = self.client.delivered(self.conn, payload)
                if reply is not None:
                    self.send(0x1, reply)
            elif opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                self.transport.abort()
                return
            else:
                self.client.other_frames += 1
        del buf[:pos]

    def send(self, opcode: int, payload: bytes) -> None:
        length = len(payload)
        head = bytes((0x80 | opcode, 0x80 | length)) if length < 126 else bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
        self.transport.write(head + b"\0\0\0\0" + payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.closed = True
        if not self.done.done():
            self.done.set_result(None)


async def _serve(pipe, lifetime: float) -> None:
    """Run commands from the pipe until `close` or the end of the lifetime."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()

    def on_readable() -> None:
        try:
            inbox.put_nowait(pipe.recv())
        except (EOFError, OSError):  # the coordinator went away
            loop.remove_reader(pipe.fileno())
            inbox.put_nowait(("close", {}))

    loop.add_reader(pipe.fileno(), on_readable)
    # uvloop leaves the fd non-blocking: a large result (a fast step's
    # latencies) would then fail to send with EAGAIN.
    os.set_blocking(pipe.fileno(), True)
    client = Client()
    deadline = time.monotonic() + lifetime
    try:
        while True:
            try:
                name, kwargs = await asyncio.wait_for(inbox.get(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                return  # the coordinator is gone or stuck: stop by ourselves
            if name == "close":
                await asyncio.wait_for(client.close(), CLOSE_TIMEOUT)
                with contextlib.suppress(OSError):
                    pipe.send(("ok", None))
                return
            try:
                result = getattr(client, name)(**kwargs)
                if asyncio.iscoroutine(result):
                    result = await result
                pipe.send(("ok", result))
            except Exception:
                pipe.send(("error", traceback.format_exc()))
    finally:
        loop.remove_reader(pipe.fileno())
        for conn in client.conns:
            conn.ws.transport.abort()


def worker_main(pipe, lifetime: float) -> None:
    raise_fd_limit()
    # uvloop: the clients' own event-loop overhead is not what is measured,
    # and they share the two cores with the server under test.
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(pipe, lifetime))


class Worker:
    """The coordinator's handle on one worker process (synchronous)."""

    _ctx = multiprocessing.get_context("spawn")  # no inherited sockets or threads

    def __init__(self, name: str, lifetime: float):
        self.name = name
        self.pipe, child = self._ctx.Pipe()
        self.process = self._ctx.Process(target=worker_main, args=(child, lifetime), name=name, daemon=True)
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, command: str, **kwargs: Any) -> None:
        self.pipe.send((command, kwargs))

    def receive(self, timeout: float) -> Any:
        if not self.pipe.poll(timeout):
            raise TimeoutError(f"{self.name}: no answer within {timeout:.0f}s")
        status, value = self.pipe.recv()
        if status != "ok":
            raise RuntimeError(f"{self.name} failed:\n{value}")
        return value

    def call(self, command: str, timeout: float, **kwargs: Any) -> Any:
        self.send(command, **kwargs)
        return self.receive(timeout)

    def stop(self) -> None:
        if self.process.is_alive():
            try:
                self.call("close", timeout=CLOSE_TIMEOUT + 5)
            except (OSError, EOFError, TimeoutError, RuntimeError):
                pass
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self.pipe.close()


def call_all(workers: list[Worker], command: str, timeout: float, per_worker: list[dict] | None = None) -> list[Any]:
    """The same command on every worker at once (they run in parallel), then
    every answer."""
    for i, worker in enumerate(workers):
        worker.send(command, **(per_worker[i] if per_worker else {}))
    deadline = time.monotonic() + timeout
    return [worker.receive(max(0.1, deadline - time.monotonic())) for worker in workers]
