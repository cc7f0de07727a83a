#!/usr/bin/env python3
"""`make test`: start the real services the suite needs through
scripts/services, then run the whole suite in each configuration:

1. production shape: PostgreSQL (DATABASE_URL) + Redis (REDIS_URL);
2. embedded default: SQLite + in-memory channel layer (what `make run` uses);
   tests that need Redis or PostgreSQL are deselected here, not skipped.

Exits non-zero if any run fails or runs no test.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def services_up(*names: str) -> dict[str, str]:
    out = subprocess.run([str(ROOT / "scripts" / "services"), "up", *names], check=True, stdout=subprocess.PIPE, text=True).stdout
    env = {}
    for line in out.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    print("services: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    return env


def pytest_run(label: str, env: dict[str, str], extra: list[str]) -> int:
    print(f"\n===== {label} =====", flush=True)
    full_env = {**os.environ, **env}
    for key in ("DATABASE_URL", "REDIS_URL"):
        if key not in env:
            full_env.pop(key, None)
    args = [PY, "-m", "pytest", *extra, *sys.argv[1:]]
    code = subprocess.call(args, cwd=ROOT, env=full_env)
    print(f"===== {label}: pytest exit {code} =====", flush=True)
    return code


def main() -> int:
    env = services_up("redis", "postgres")
    results = {
        "postgres+redis": pytest_run("PostgreSQL + Redis", env, []),
        "sqlite+in-memory": pytest_run("SQLite + in-memory layer (embedded default)", {}, ["-m", "not needs_redis and not needs_postgres"]),
    }
    failed = [label for label, code in results.items() if code != 0]
    print("\nsuite runs: " + ", ".join(f"{label}={'ok' if code == 0 else f'exit {code}'}" for label, code in results.items()))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
