#!/usr/bin/env python3
"""Stdlib-only MongoDB wire-protocol readiness check used by scripts/services.

    mongo_check.py [--host H] [--port P] [--timeout S]

Sends OP_MSG {ping: 1, $db: "admin"} and exits 0 when the reply has ok == 1,
1 otherwise (reason on stderr).  Works against MongoDB and FerretDB.
"""
import argparse
import socket
import struct
import sys

OP_MSG = 2013


def _cstring(s):
    return s.encode() + b"\x00"


def bson_encode(doc):
    body = b""
    for key, value in doc.items():
        if isinstance(value, bool):
            body += b"\x08" + _cstring(key) + (b"\x01" if value else b"\x00")
        elif isinstance(value, int):
            body += b"\x10" + _cstring(key) + struct.pack("<i", value)
        elif isinstance(value, str):
            raw = value.encode() + b"\x00"
            body += b"\x02" + _cstring(key) + struct.pack("<i", len(raw)) + raw
        else:
            raise TypeError(f"unsupported BSON value {value!r}")
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def bson_top_level(data):
    """Decode the scalar top-level fields of a BSON document (others are skipped)."""
    out = {}
    (size,) = struct.unpack_from("<i", data, 0)
    pos = 4
    while pos < size - 1:
        etype = data[pos]
        pos += 1
        end = data.index(b"\x00", pos)
        key = data[pos:end].decode()
        pos = end + 1
        if etype == 0x01:
            out[key] = struct.unpack_from("<d", data, pos)[0]
            pos += 8
        elif etype == 0x02:
            (n,) = struct.unpack_from("<i", data, pos)
            out[key] = data[pos + 4:pos + 4 + n - 1].decode(errors="replace")
            pos += 4 + n
        elif etype in (0x03, 0x04):
            (n,) = struct.unpack_from("<i", data, pos)
            pos += n
        elif etype == 0x05:
            (n,) = struct.unpack_from("<i", data, pos)
            pos += 5 + n
        elif etype == 0x07:
            pos += 12
        elif etype == 0x08:
            out[key] = data[pos] == 1
            pos += 1
        elif etype in (0x09, 0x11, 0x12):
            (out[key],) = struct.unpack_from("<q", data, pos)
            pos += 8
        elif etype == 0x0A:
            out[key] = None
        elif etype == 0x10:
            (out[key],) = struct.unpack_from("<i", data, pos)
            pos += 4
        elif etype == 0x13:
            pos += 16
        else:
            break  # unknown type: stop, what we have is enough for "ok"
    return out


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=27017)
    ap.add_argument("--timeout", type=float, default=5.0)
    args = ap.parse_args()
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as sock:
            body = struct.pack("<I", 0) + b"\x00" + bson_encode({"ping": 1, "$db": "admin"})
            sock.sendall(struct.pack("<iiii", 16 + len(body), 1, 0, OP_MSG) + body)
            length, _req, _resp, opcode = struct.unpack("<iiii", _recv_exact(sock, 16))
            payload = _recv_exact(sock, length - 16)
            if opcode != OP_MSG:
                raise RuntimeError("unexpected reply opcode %d" % opcode)
            if payload[4] != 0:
                raise RuntimeError("unexpected OP_MSG section kind %d" % payload[4])
            reply = bson_top_level(payload[5:])
            if reply.get("ok") != 1:
                raise RuntimeError(f"ping failed: {reply!r}")
    except Exception as exc:
        print("mongo_check: %s:%d: %s" % (args.host, args.port, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
