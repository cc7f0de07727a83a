"""The Go load generator (bench/goload/, `bench/run.py --loadgen go`): one
process of goroutines holding the publisher and every receiver, so the
clients take far less of the shared cores than the Python workers
(bench/loadgen.py) and the servers' own cost shows more clearly.

`build()` compiles bench/goload (its go.mod/go.sum pin gorilla/websocket)
into the bench cache; `GoLoad` starts it for one server, waits until every
receiver is joined, then runs one step per `step()` call over its stdin and
stdout (one JSON object a line; the protocol is in bench/goload/main.go).
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.centrifugo import CACHE

SOURCE = Path(__file__).resolve().parent / "goload"


def build() -> Path:
    """The binary, rebuilt when a source file is newer."""
    path = CACHE / "bin" / "goload"
    newest = max(p.stat().st_mtime for p in SOURCE.iterdir())
    if not path.exists() or path.stat().st_mtime < newest:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["go", "build", "-o", str(path), "."], cwd=SOURCE, check=True, timeout=600,
                       env={**os.environ, "GOFLAGS": "-buildvcs=false -mod=readonly"})
    return path


class GoLoad:
    """One goload process for one server under test."""

    def __init__(self, *, proto: str, urls: list[str], members: int, channel: str, credentials: list[str] | None,
                 run_dir: Path, name: str, pub_urls: list[str] | None = None, publishers: int = 1) -> None:
        argv = [str(build()), "-proto", proto, "-url", ",".join(urls), "-members", str(members), "-channel", channel,
                "-publishers", str(publishers)]
        if pub_urls:
            argv += ["-pub-url", ",".join(pub_urls)]
        if credentials:
            creds = run_dir / f"{name}.credentials"
            creds.write_text("\n".join(credentials) + "\n")
            argv += ["-credentials", str(creds)]
        self.log = open(run_dir / f"{name}.goload.log", "ab")  # closed in stop()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"goload: no answer within {timeout:.0f}s")
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"goload exited with {self.proc.wait(5)}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"goload: {answer['error']}")
        return answer

    def ready(self, timeout: float) -> dict[str, Any]:
        """Every receiver open and joined (or failed), the joins' side frames settled."""
        return self._read(timeout)

    def step(self, step: int, rate: int, seconds: float, first_seq: int, timeout: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": "step", "step": step, "rate": rate, "seconds": seconds, "first_seq": first_seq}).encode() + b"\n")
        self.proc.stdin.flush()
        row = self._read(timeout)
        for key in ("p50", "p99", "max"):
            if row[key] < 0:
                row[key] = math.nan
        return row

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)
        self.log.close()


class Profiler:
    """py-spy (bench/requirements.txt) sampling one server process while the
    steps run (`bench/run.py --profile DIR`): raw collapsed stacks, summed up
    by bench/profile_top.py."""

    def __init__(self, pid: int, path: Path) -> None:
        # bench/requirements.txt installs it beside this interpreter.
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.proc = subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw", "--output", str(path),
                                      "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
