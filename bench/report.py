"""The bench's report (bench/run.py, `make bench`): the tables of a run,
the issues' targets beside the figures, how it was measured (METHOD), and
bench/RESULTS.md.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import math
import os
import platform
import subprocess
from pathlib import Path

from bench import config
from bench.config import KEEPING_UP, LATENCY_RATE, RECEIVER_PROCESSES, ROOT
from bench.servers import SPECS

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
        f"## Fan-out: 1 publisher -> {config.MEMBERS} receivers in one channel ({RECEIVER_PROCESSES} receiver processes + 1 publisher process)",
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
        "| server | " + " | ".join(f"KiB/conn @{n}" for n in config.IDLE_COUNTS) + " | RSS MiB (all open) | idle CPU % (all open) "
        "| connect s (last batch) | dropped |",
        "| --- |" + " ---: |" * (len(config.IDLE_COUNTS) + 4),
    ]
    for key, res in results.items():
        idl = res.get("idle")
        if not idl or not idl.get("points"):
            out.append(f"| {labels[key]} |" + " |" * (len(config.IDLE_COUNTS) + 3) + f" {(idl or {}).get('error') or 'not measured'} |")
            continue
        # Each figure says how many connections it was taken with: a phase
        # out of time gives fewer than asked.
        cells = [f"{fmt(p['per_conn_kib'], 1)} @{p['opened']}" for p in idl["points"]]
        cells += ["-"] * (len(config.IDLE_COUNTS) - len(cells))
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
    ours = [k for k in ("core", "pubsub", "pair", "core2", "fed") if k in results]
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
    ours = [k for k in ("core", "pair", "core2", "fed", "pubsub") if k in results]

    def row_at(key: str, rate: int) -> dict | None:
        return at_rate((results[key].get("fanout") or {}), rate)

    def kib(key: str) -> float | None:
        return max((p["per_conn_kib"] for p in (results[key].get("idle") or {}).get("points", [])), default=None)

    c40, c_kib = row_at("centrifugo", 40), kib("centrifugo")
    lines = ["| target | " + " | ".join(labels[k] for k in ours) + " |", "| --- |" + " --- |" * len(ours)]
    cells = {"cpu": [], "peak": [], "kib": [], "p99": []}
    for key in ours:
        r40 = row_at(key, 40)
        if r40 and c40:
            ok = r40["server_us"] <= c40["server_us"]
            cells["cpu"].append(f"{fmt(r40['server_us'], 1)} vs {fmt(c40['server_us'], 1)} µs ({'met' if ok else 'NOT met'})")
        else:
            cells["cpu"].append("-")
        steps = (results[key].get("fanout") or {}).get("steps", [])
        good = [r for r in steps if r["p99"] <= 100 and not r["saturated"]]
        best = max((r["delivered_per_s"] for r in good), default=0.0)
        cells["peak"].append(f"{fmt(best)}/s ({'met' if best >= 100_000 else 'NOT met'})")
        low = row_at(key, LATENCY_RATE)
        cells["p99"].append("-" if low is None else f"{fmt(low['p99'], 1)} ms at {config.MEMBERS} members ({'met' if low['p99'] <= 100 else 'NOT met'})")
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
