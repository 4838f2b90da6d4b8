#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Byte-exact transfers and long-lived streams for the fault tests.

Server (one thread per connection; every connection first gets the server's name and '\\n'):
  fault_xfer.py serve ADDR PORT NAME
    then the client sends one command byte:
    U <len:8> <len bytes>      -> the server answers the sha256 (hex) of what it read
    D <len:8> <seed:8>         -> the server sends <len> bytes made from <seed>, then closes
    S                          -> a slow sink: reads 4 KiB every 20 ms until EOF
Clients:
  fault_xfer.py xfer HOST PORT BYTES SEED   upload then download BYTES; checks both sha256
  fault_xfer.py who HOST PORT               prints the name of the server that answered
  fault_xfer.py hold HOST PORT OUT TIMEOUT  streams into a slow sink; writes the server's name to
      OUT, then how the stream ended: "reset" (ECONNRESET/EPIPE), "closed", or "hang" (no error
      within TIMEOUT seconds of the last byte accepted by the kernel)
"""
import hashlib
import random
import socket
import struct
import sys
import threading
import time


def data(n, seed):
    return random.Random(seed).randbytes(n)


def read_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(min(1 << 20, n - len(out)))
        if not b:
            raise EOFError("short read: %d of %d" % (len(out), n))
        out += b
    return bytes(out)


def handle(conn, name):
    try:
        conn.sendall(name.encode() + b"\n")
        cmd = read_exact(conn, 1)
        if cmd == b"U":
            (n,) = struct.unpack("!Q", read_exact(conn, 8))
            h = hashlib.sha256()
            left = n
            while left:
                b = conn.recv(min(1 << 20, left))
                if not b:
                    raise EOFError("upload cut short")
                h.update(b)
                left -= len(b)
            conn.sendall(h.hexdigest().encode())
        elif cmd == b"D":
            n, seed = struct.unpack("!QQ", read_exact(conn, 16))
            conn.sendall(data(n, seed))
        elif cmd == b"S":
            while conn.recv(4096):
                time.sleep(0.02)
    except (OSError, EOFError):
        pass
    finally:
        conn.close()


def serve(addr, port, name):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((addr, port))
    ls.listen(128)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c, name), daemon=True).start()


def connect(host, port, timeout):
    s = socket.create_connection((host, port), timeout=timeout)
    f = s.makefile("rb")
    name = f.readline().decode().strip()
    return s, f, name


def xfer(host, port, n, seed):
    up = data(n, seed)
    want = hashlib.sha256(up).hexdigest()
    t0 = time.monotonic()
    s, f, name = connect(host, port, 60)
    s.sendall(b"U" + struct.pack("!Q", n) + up)
    got = f.read(64).decode()
    s.close()
    t_up = time.monotonic() - t0
    if got != want:
        print("upload via %s: sha256 %s, sent %s" % (name, got, want))
        return 1
    t0 = time.monotonic()
    s, f, name2 = connect(host, port, 60)
    s.sendall(b"D" + struct.pack("!QQ", n, seed + 1))
    down = f.read()
    s.close()
    t_down = time.monotonic() - t0
    want2 = hashlib.sha256(data(n, seed + 1)).hexdigest()
    got2 = hashlib.sha256(down).hexdigest()
    if len(down) != n or got2 != want2:
        print("download via %s: %d of %d bytes, sha256 %s, want %s" % (name2, len(down), n, got2, want2))
        return 1
    print("ok: %d bytes up via %s (%.2f s), down via %s (%.2f s), sha256 %s / %s"
          % (n, name, t_up, name2, t_down, want[:16], want2[:16]))
    return 0


def who(host, port):
    s, _, name = connect(host, port, 5)
    s.close()
    print(name)
    return 0


def hold(host, port, out, timeout):
    s, _, name = connect(host, port, 5)
    with open(out, "w") as o:
        o.write(name + "\n")
    s.settimeout(timeout)
    s.sendall(b"S")
    chunk = b"x" * 16384
    how = "closed"
    try:
        while True:
            s.sendall(chunk)
    except (ConnectionResetError, BrokenPipeError):
        how = "reset"
    except socket.timeout:
        how = "hang"
    with open(out, "a") as o:
        o.write(how + "\n")
    return 0


def main(argv):
    cmd = argv[1]
    if cmd == "serve":
        serve(argv[2], int(argv[3]), argv[4])
    elif cmd == "xfer":
        return xfer(argv[2], int(argv[3]), int(argv[4]), int(argv[5]))
    elif cmd == "who":
        return who(argv[2], int(argv[3]))
    elif cmd == "hold":
        return hold(argv[2], int(argv[3]), argv[4], float(argv[5]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
