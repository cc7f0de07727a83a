"""The phases of the bench (bench/run.py, `make bench`) and their
measurement: the fan-out steps (Python workers or bench/goload), the idle
connections, and `measure`, which runs the plan within the time budget.
"""

from __future__ import annotations

import array
import os
import time
from collections.abc import Sequence
from typing import Any, Protocol

from bench import config
from bench.config import (
    CONNECT_CONCURRENCY,
    DRAIN_CAP_SECONDS,
    DRAIN_STALL_SECONDS,
    IDLE_CPU_SECONDS,
    IDLE_SETTLE_SECONDS,
    KEEPING_UP,
    PHASE_SECONDS,
    PLAN,
    RECEIVER_PROCESSES,
    SETTLE_QUIET_SECONDS,
    STEPS,
    WARMUP_CONNECTIONS,
    Budget,
    log,
)
from bench.loadgen import Worker, call_all, cpu_seconds
from bench.procs import machine_busy_seconds
from bench.servers import LAYER_CLASS, Context, Servers, Spec, redis_client, redis_cpu, resolved_layer, running
from bench.targets import Target


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


class HasPid(Protocol):
    @property
    def pid(self) -> int: ...


class Usage:
    """CPU seconds of each party between two instants, as % of one core."""

    def __init__(self, server: Servers, workers: Sequence[HasPid], redis) -> None:
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
    if config.LOADGEN == "go" and spec.key in GO_PROTOCOLS:
        return fanout_go(spec, ctx, budget)
    if spec.feeders:
        return {"error": "skipped: sends through other processes need --loadgen go"}
    result: dict[str, Any] = {"steps": [], "notes": [loadavg()]}
    with redis_client(ctx.env) as redis, running(spec, ctx, RECEIVER_PROCESSES + 1, budget) as (server, workers):
        publisher, receivers = workers[0], workers[1:]
        target = spec.make_target(server.port, ctx.seed)
        result["ack_is_delivery"] = target.ack_is_delivery
        result["processes"] = spec.processes
        if spec.login:
            mark_online_elsewhere(redis, ctx.seed["channelId"], [ctx.seed["publisherId"], *ctx.seed["userIds"][:config.MEMBERS]])
        started, join_usage = time.monotonic(), Usage(server, workers, redis)
        # Whatever the join leaves of the phase goes to the steps (at least the first).
        join_budget = budget.left() - STEPS[0][1] - DRAIN_CAP_SECONDS
        targets = [spec.make_target(port, ctx.seed) for port in server.ports]
        opened = open_everywhere(receivers, targets, credentials_for(spec, ctx, 0, config.MEMBERS), join=True, seconds=join_budget)
        publisher.call("open", timeout=60, target=target, credentials=[ctx.seed["publisher"] if spec.login else None],
                       join=True, concurrency=1, publisher=True, seconds=30)
        result["join_frames"], settled = settle(workers, max(5.0, join_budget - (time.monotonic() - started)))
        result["join_seconds"] = time.monotonic() - started
        result["join_cpu"] = join_usage.stop()
        result["receivers"] = n = opened["opened"]
        note_failures(result, opened, f"of {config.MEMBERS} receivers")
        log(f"{spec.key}: {n} receivers joined in {result['join_seconds']:.1f}s ({result['join_frames']} other frames, "
            f"server CPU {result['join_cpu']['server']:.0f}%)")
        if n < config.MEMBERS or not settled:
            # Figures for fewer members, or measured over a presence storm,
            # would not be the fan-out the table speaks of: report the join.
            result["error"] = (f"join not done in {result['join_seconds']:.0f}s: {n} of {config.MEMBERS} receivers open, "
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


GO_PROTOCOLS = {"core": "ours", "pubsub": "ours", "core2": "ours", "pair": "ours", "fed": "ours", "prev": "ours", "uvicorn": "ours", "centrifugo": "centrifugo", "centrifugo1": "centrifugo"}


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
            mark_online_elsewhere(redis, ctx.seed["channelId"], [ctx.seed["publisherId"], *ctx.seed["userIds"][:config.MEMBERS]])
        urls = [spec.make_target(port, ctx.seed).url() for port in server.ports]
        pub_urls = [spec.make_target(f.port, ctx.seed).url() for f in server.feeders]
        credentials = [ctx.seed["publisher"], *ctx.seed["users"][:config.MEMBERS]] if spec.login else None
        channel = str(ctx.seed["channelId"]) if GO_PROTOCOLS[spec.key] == "ours" else "bench"
        started = time.monotonic()
        load = GoLoad(proto=GO_PROTOCOLS[spec.key], urls=urls, members=config.MEMBERS, channel=channel, credentials=credentials,
                      run_dir=ctx.run_dir, name=spec.key, pub_urls=pub_urls, publishers=spec.publishers)
        clients: list[HasPid] = [load, *server.feeders]  # the feeders take the sends: load generation
        if server.feeders:
            result["notes"].append(f"{spec.publishers} publishers through {len(server.feeders)} other processes (their CPU counted as the clients')")
        try:
            join_usage = Usage(server, clients, redis)
            ready = load.ready(timeout=max(10.0, budget.left() - STEPS[0][1] - DRAIN_CAP_SECONDS))
            result["join_seconds"] = time.monotonic() - started
            result["join_cpu"] = join_usage.stop()
            result["join_frames"] = ready["other"]
            result["receivers"] = n = ready["ready"]
            if ready["failed"]:
                result["notes"].append(f"of {config.MEMBERS} receivers: {ready['failed']} failed {ready['errors']}")
            log(f"{spec.key}: {n} receivers joined in {result['join_seconds']:.1f}s (goload)")
            if n < config.MEMBERS:
                result["error"] = f"join: {n} of {config.MEMBERS} receivers open"
                return result
            seq = 1
            profiler = Profiler(server.servers[0].pid, config.PROFILE / f"{spec.key}.txt") if config.PROFILE and spec.login else None
            for step, (rate, seconds) in enumerate(STEPS, 1):
                if budget.left() < seconds + DRAIN_CAP_SECONDS:
                    result["notes"].append(f"stopped before {rate} msg/s: time budget")
                    break
                usage = Usage(server, clients, redis)
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
        for count in config.IDLE_COUNTS:
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
