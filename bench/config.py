"""The bench's settings and the few helpers every part of it uses
(bench/run.py, `make bench`): what a run measures (members, steps, idle
counts, the plan and its time limits), the log and the time budget.

MEMBERS, IDLE_COUNTS, LOADGEN and PROFILE are set from the command line by
bench/run.py's main (and LOADGEN by bench/servers.py's prepare_binaries when
goload cannot be built): read them as `config.NAME`, never import them by
name, or the value seen is the default.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

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
        ("core", "idle"), ("centrifugo", "idle"), ("prev", "idle"), ("uvicorn", "idle"), ("pair", "fanout"), ("fed", "fanout"), ("core2", "fanout"), ("socketio", "fanout"),
        ("pubsub", "fanout"), ("tutorial", "idle"), ("socketio", "idle"), ("pubsub", "idle"))
# Servers measured only when asked for (--only, --compare-with).
ON_REQUEST = {"prev", "uvicorn", "centrifugo1"}
PROFILE: Path | None = None  # --profile: py-spy of ours' server during the fan-out steps (goload only)
LOADGEN = "python"  # --loadgen: "go" drives ours and Centrifugo with bench/goload (the others keep the Python clients)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Budget:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

