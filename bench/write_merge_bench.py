"""The mechanism of the merged writes (chatsite.daphne_adapter.FrameWriter)
in isolation: CPU time per delivered frame when k frames for a socket leave
as k `send` calls against one `send` of the k frames joined, over real
loopback TCP connections (issue 20, docs/performance.md).

    .venv/bin/python bench/write_merge_bench.py [--sockets 500] [--rounds 40]

Only the sending loop is timed (process CPU time: user + system, which on
loopback includes the receiver's TCP input, run in the sender's context);
the receiving ends are drained between rounds, untimed. CPU time, unlike
wall time, is little affected by other work on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.events import text_frame


def pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(count)
    out = []
    for _ in range(count):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        server.setblocking(False)
        client.setblocking(False)
        out.append((server, client))
    listener.close()
    return out


def drain(conns: list[tuple[socket.socket, socket.socket]], expected: int) -> None:
    for _, client in conns:
        got = 0
        while got < expected:
            try:
                got += len(client.recv(1 << 20))
            except BlockingIOError:
                time.sleep(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    payload = json.dumps({"type": "new_message", "channelId": 1, "message": {"id": 123456789, "content": "b|1|1|1" + "x" * 200,
                          "authorUsername": "user42", "createdAt": "2026-12-05T06:00:00.000000Z", "reactions": [], "readBy": []}})
    frame = text_frame(payload.encode())
    conns = pairs(args.sockets)
    print(f"{args.sockets} loopback TCP connections, frame {len(frame)} bytes, load average {os.getloadavg()[0]:.1f}")
    print("| frames per socket and turn | µs CPU per frame, one send each | µs CPU per frame, one send joined | saved |")
    print("| ---: | ---: | ---: | ---: |")
    for k in (1, 2, 4, 8, 16):
        joined = frame * k
        spent = {"each": 0.0, "joined": 0.0}
        for _ in range(args.rounds):
            for how in ("each", "joined"):
                start = time.process_time()
                if how == "each":
                    for server, _ in conns:
                        for _ in range(k):
                            server.send(frame)
                else:
                    for server, _ in conns:
                        server.send(joined)
                spent[how] += time.process_time() - start
                drain(conns, len(joined))
        frames = args.rounds * args.sockets * k
        each, merged = (spent[h] / frames * 1e6 for h in ("each", "joined"))
        print(f"| {k} | {each:.2f} | {merged:.2f} | {100 * (1 - merged / each):.0f}% |")
    for server, client in conns:
        server.close()
        client.close()


if __name__ == "__main__":
    main()
