#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The traffic of tests/integration/sync_active_active.sh.
#
#   server ADDR... PORT          an echo server on every ADDR:PORT (one process, asyncio)
#   client VIP PORT N DIR        N long-lived TCP connections to VIP:PORT, each doing a ping-pong:
#                                a 64-byte ping whose bytes derive from (conn, round), every
#                                100 ms once the previous echo came back whole and equal.
#
# The client writes DIR/ports ("IDX LOCAL_PORT" a line) once every connection is open, then
# rewrites DIR/status (atomically) every 200 ms: "IDX PORT ROUNDS SINCE_MARK STATE", STATE "ok" or
# "err:<what>" (reset, eof, mismatch, ...; a failed conn stays failed). SINCE_MARK counts the
# rounds completed after DIR/mark appeared. DIR/stop ends it (exit 0); so does its own 180 s cap.
import asyncio
import errno
import hashlib
import os
import selectors
import socket
import sys
import time

PING = 64
INTERVAL = 0.1


def payload(idx, rnd):
    head = idx.to_bytes(4, "big") + rnd.to_bytes(4, "big")
    return head + hashlib.sha256(head).digest() + hashlib.sha256(head[::-1]).digest()[:24]


async def serve(addrs, port):
    async def echo(reader, writer):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(echo, a, port, reuse_address=True) for a in addrs]
    await asyncio.gather(*(s.serve_forever() for s in servers))


class Conn:
    def __init__(self, idx, sock):
        self.idx = idx
        self.sock = sock
        self.port = sock.getsockname()[1]
        self.rounds = 0
        self.at_mark = None
        self.state = "ok"
        self.want = b""  # the echo still expected
        self.next_send = 0.0


def client(vip, port, n, d):
    deadline = time.monotonic() + 180
    conns = []
    for i in range(n):
        s = socket.create_connection((vip, port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        conns.append(Conn(i, s))
    with open(os.path.join(d, "ports.tmp"), "w") as f:
        for c in conns:
            f.write(f"{c.idx} {c.port}\n")
    os.rename(os.path.join(d, "ports.tmp"), os.path.join(d, "ports"))

    sel = selectors.DefaultSelector()
    for c in conns:
        sel.register(c.sock, selectors.EVENT_READ, c)

    def fail(c, what):
        if c.state == "ok":
            c.state = "err:" + what
            sel.unregister(c.sock)
            c.sock.close()

    marked = False
    last_status = 0.0
    while time.monotonic() < deadline and not os.path.exists(os.path.join(d, "stop")):
        now = time.monotonic()
        if not marked and os.path.exists(os.path.join(d, "mark")):
            marked = True
            for c in conns:
                c.at_mark = c.rounds
        for c in conns:
            if c.state == "ok" and not c.want and now >= c.next_send:
                p = payload(c.idx, c.rounds)
                try:
                    sent = c.sock.send(p)
                except OSError as e:
                    fail(c, errno.errorcode.get(e.errno, str(e.errno)))
                    continue
                if sent != len(p):  # 64 bytes into an idle socket's buffer: never short
                    fail(c, "short_send")
                    continue
                c.want = p
                c.next_send = now + INTERVAL
        for key, _ in sel.select(timeout=0.02):
            c = key.data
            try:
                b = c.sock.recv(4096)
            except BlockingIOError:
                continue
            except OSError as e:
                fail(c, errno.errorcode.get(e.errno, str(e.errno)))
                continue
            if not b:
                fail(c, "eof")
            elif len(b) > len(c.want) or c.want[: len(b)] != b:
                fail(c, "mismatch")
            else:
                c.want = c.want[len(b):]
                if not c.want:
                    c.rounds += 1
        if now - last_status >= 0.2:
            last_status = now
            tmp = os.path.join(d, "status.tmp")
            with open(tmp, "w") as f:
                for c in conns:
                    since = c.rounds - c.at_mark if c.at_mark is not None else -1
                    f.write(f"{c.idx} {c.port} {c.rounds} {since} {c.state}\n")
            os.rename(tmp, os.path.join(d, "status"))
    for c in conns:
        if c.state == "ok":
            c.sock.close()


def main():
    if sys.argv[1] == "server":
        asyncio.run(serve(sys.argv[2:-1], int(sys.argv[-1])))
    elif sys.argv[1] == "client":
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        sys.exit("usage: server ADDR... PORT | client VIP PORT N DIR")


if __name__ == "__main__":
    main()
