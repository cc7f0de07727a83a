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

This file parses the options and runs the whole; the parts:
  bench/config.py   the settings (members, steps, idle counts, the plan, the
                    phases' time limits), the log and the time budget;
  bench/servers.py  the servers under test (SPECS), the services, database
                    and seed, and `running` (one server with its workers);
  bench/phases.py   the fan-out (Python workers or bench/goload) and idle
                    phases, and `measure`, which runs the plan;
  bench/report.py   the tables, the issues' targets, METHOD, bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import config
from bench.config import BENCH_REDIS_DB, BUDGET_SECONDS, ON_REQUEST, PHASE_SECONDS, Budget, log
from bench.loadgen import raise_fd_limit
from bench.phases import measure
from bench.procs import PrivateRedis
from bench.report import machine_info, render, write_results
from bench.servers import (
    OURS_ARGV,
    SPECS,
    Context,
    Spec,
    background_load,
    bench_env,
    drop_database,
    ensure_baseline_packages,
    prepare_binaries,
    seed,
    start_services,
)
from bench.targets import OurChat


# --- main --------------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description="Scale-out benchmark (issue 7); see the module docstring.")
    parser.add_argument("--only", help="comma-separated servers: " + ",".join(s.key for s in SPECS))
    parser.add_argument("--phases", default="fanout,idle", help="fanout,idle (default both)")
    parser.add_argument("--budget", type=float, default=BUDGET_SECONDS, help="seconds for the whole run")
    parser.add_argument("--results", default=str(ROOT / "bench" / "RESULTS.md"), help="'' to write nothing")
    parser.add_argument("--members", type=int, default=config.MEMBERS, help="receivers in the fan-out channel (smaller: a quick check)")
    parser.add_argument("--idle", default=",".join(map(str, config.IDLE_COUNTS)), help="idle connection counts, ascending")
    parser.add_argument("--compare-with", metavar="DIR", help="also measure ours from this checkout (another commit), side by side")
    parser.add_argument("--loadgen", choices=("python", "go"), default="python",
                        help="fan-out clients: bench/loadgen.py workers, or bench/goload (ours and Centrifugo; the others keep Python)")
    parser.add_argument("--fanout-seconds", type=float, default=PHASE_SECONDS["fanout"][1],
                        help="at most this long per server for the fan-out phase, joins included")
    parser.add_argument("--idle-seconds", type=float, default=PHASE_SECONDS["idle"][1],
                        help="at most this long per server for the idle phase (a busy machine connects slowly)")
    parser.add_argument("--profile", metavar="DIR", help="with --loadgen go: py-spy profiles of ours during the steps, into DIR")
    args = parser.parse_args()
    config.LOADGEN = args.loadgen
    config.PROFILE = Path(args.profile) if args.profile else None
    if config.PROFILE is not None:
        config.PROFILE.mkdir(parents=True, exist_ok=True)
    PHASE_SECONDS["idle"] = (PHASE_SECONDS["idle"][0], args.idle_seconds)
    PHASE_SECONDS["fanout"] = (PHASE_SECONDS["fanout"][0], args.fanout_seconds)
    if args.compare_with:
        other = Path(args.compare_with).resolve()
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=other, capture_output=True, text=True, check=False).stdout.strip()
        SPECS.insert(1, Spec("prev", f"ours @{commit or other.name}, RedisChannelLayer", OURS_ARGV, lambda port, seed: OurChat(port, seed["channelId"]),
                             {"CHAT_CHANNEL_LAYER": "core"}, login=True, layer="core", cwd=other))
    config.MEMBERS, config.IDLE_COUNTS = args.members, tuple(int(n) for n in args.idle.split(","))
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


if __name__ == "__main__":
    sys.exit(main())
