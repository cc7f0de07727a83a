"""The reliability tests' figures: one JSON file per test and message store
under test-artifacts/reliability/, written by every run.
scripts/reliability_report.py turns the latest ones into docs/reliability.md's
tables, so the document says what the last run measured, never a stale status.

A test calls `record(name, **figures)` once its figures are known; whether it
passed is filled in from pytest's report of that test
(tests/reliability/conftest.py), unless the test says so itself."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "reliability"
# Files written since the running test began: conftest marks them with its outcome.
pending: list[Path] = []


def store_name() -> str:
    return (os.environ.get("CHAT_MESSAGE_STORE") or "sql").strip().lower()


def record(test: str, *, passed: bool | None = None, store: str | None = None, **figures: Any) -> None:
    """Write the figures of `test` on this run's store, or on `store` when the
    test runs its own (and print them)."""
    print(f"\n[{test}] " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    entry = {
        "test": test,
        "store": store or store_name(),
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "passed": passed,
        "figures": figures,
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{test}.{entry['store']}.json"
    path.write_text(json.dumps(entry, indent=2, default=str) + "\n")
    if passed is None:
        pending.append(path)


def figures(title: str, store: str | None = None, **values: Any) -> None:
    """The fault tests' figures, printed and kept for docs/reliability.md,
    under a name made of the title ("redis restart": redis-restart)."""
    record(re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"), store=store, **values)


def settle(passed: bool) -> None:
    """The running test ended: its records without an outcome get this one."""
    while pending:
        path = pending.pop()
        entry = json.loads(path.read_text())
        entry["passed"] = passed
        path.write_text(json.dumps(entry, indent=2, default=str) + "\n")
