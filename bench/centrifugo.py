"""Centrifugo, the Go real-time server, as a peer of `make bench` (issue 20).

    .venv/bin/python bench/centrifugo.py --build      # into the cache, once
    .venv/bin/python -m bench.centrifugo --port 8123  # what bench/run.py starts

`build()` compiles github.com/centrifugal/centrifugo/v6 at CENTRIFUGO_VERSION
from the Go module proxy (`go install`, the module's own go.sum pins its
dependencies) into ${XDG_CACHE_HOME:-~/.cache}/chat-bench/bin. `main()`
writes its configuration and execs it, so the process bench/run.py measures
(CPU, RSS) is Centrifugo's own: Redis engine on the bench's REDIS_URL (a key
prefix of its own), insecure client mode (anonymous connections, the bench
needs no tokens), subscribe and publish allowed for subscribers of channels
without namespace, as a chat whose clients publish directly would be set up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CENTRIFUGO_MODULE = "github.com/centrifugal/centrifugo/v6"
CENTRIFUGO_VERSION = "v6.9.1"
CHANNEL = "bench"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chat-bench"


def binary_path() -> Path:
    return CACHE / "bin" / f"centrifugo-{CENTRIFUGO_VERSION}"


def build() -> Path:
    """The pinned Centrifugo binary, built from the Go module proxy when missing."""
    path = binary_path()
    if path.exists():
        return path
    gobin = CACHE / f"build-{CENTRIFUGO_VERSION}"
    gobin.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["go", "install", f"-ldflags=-X {CENTRIFUGO_MODULE}/internal/build.Version={CENTRIFUGO_VERSION.lstrip('v')}",
         f"{CENTRIFUGO_MODULE}@{CENTRIFUGO_VERSION}"],
        env={**os.environ, "GOBIN": str(gobin), "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"},
        check=True, timeout=1200,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    (gobin / "centrifugo").replace(path)
    return path


def config(port: int, redis_url: str) -> dict:
    return {
        "http_server": {"address": "127.0.0.1", "port": port},
        "log": {"level": "error"},
        "client": {"insecure": True, "allowed_origins": ["*"]},
        "channel": {"without_namespace": {"allow_subscribe_for_client": True, "allow_publish_for_subscriber": True,
                                          "allow_publish_for_client": True}},
        # Pub/sub channels are global to a Redis server: a prefix of its own.
        "engine": {"type": "redis", "redis": {"address": [redis_url], "prefix": f"chatbench{os.getpid()}"}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", action="store_true", help="build into the cache and exit")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    binary = build()
    if args.build:
        print(binary)
        return
    fd, path = tempfile.mkstemp(prefix="centrifugo-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(config(args.port, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")), f)
    sys.stdout.flush()
    os.execv(binary, [str(binary), "--config", path])


if __name__ == "__main__":
    main()
