#!/usr/bin/env python3
"""Stdlib-only CQL readiness check used by scripts/services.

    cql_check.py [--host H] [--port P] [--keyspace KS] [--timeout S]

Speaks the CQL native protocol v4: OPTIONS -> SUPPORTED, STARTUP -> READY,
then (with --keyspace) `CREATE KEYSPACE IF NOT EXISTS KS` with
SimpleStrategy/RF 1.  Exit 0 when all of that worked, 1 otherwise (reason on
stderr).
"""
import argparse
import socket
import struct
import sys

VERSION = 0x04
OP_ERROR, OP_STARTUP, OP_READY, OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = (
    0x00, 0x01, 0x02, 0x05, 0x06, 0x07, 0x08)
CONSISTENCY_ONE = 0x0001


def _string(s):
    b = s.encode()
    return struct.pack(">H", len(b)) + b


def _long_string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def request(sock, stream, opcode, body=b""):
    sock.sendall(struct.pack(">BBhBi", VERSION, 0, stream, opcode, len(body)) + body)
    _version, _flags, _stream, op, length = struct.unpack(">BBhBi", _recv_exact(sock, 9))
    payload = _recv_exact(sock, length) if length else b""
    if op == OP_ERROR:
        code = struct.unpack(">i", payload[:4])[0]
        (mlen,) = struct.unpack(">H", payload[4:6])
        raise RuntimeError("CQL error 0x{:04x}: {}".format(code, payload[6:6 + mlen].decode(errors="replace")))
    return op, payload


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9042)
    ap.add_argument("--keyspace")
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as sock:
            op, _ = request(sock, 1, OP_OPTIONS)
            if op != OP_SUPPORTED:
                raise RuntimeError("OPTIONS answered with opcode %d" % op)
            op, _ = request(sock, 2, OP_STARTUP, struct.pack(">H", 1) + _string("CQL_VERSION") + _string("3.0.0"))
            if op != OP_READY:
                raise RuntimeError("STARTUP answered with opcode %d" % op)
            if args.keyspace:
                cql = (f"CREATE KEYSPACE IF NOT EXISTS {args.keyspace} WITH replication = "
                       "{'class': 'SimpleStrategy', 'replication_factor': 1}")
                sock.settimeout(max(args.timeout, 30.0))
                op, _ = request(sock, 3, OP_QUERY, _long_string(cql) + struct.pack(">HB", CONSISTENCY_ONE, 0))
                if op != OP_RESULT:
                    raise RuntimeError("QUERY answered with opcode %d" % op)
    except Exception as exc:
        print("cql_check: %s:%d: %s" % (args.host, args.port, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
