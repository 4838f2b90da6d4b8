#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Traffic for the owner and restart tests (single_owner.sh, hot_restart.sh, scripts/restart_gap.sh):
# servers and clients that say what they saw, and the longest silence, so a test can assert on
# bytes and a script can print the gap a client sees. Exit status 0 = everything arrived intact.
#
#   traffic.py serve-ticks ADDR PORT            ticks "N\n" every 20 ms on each TCP conn
#   traffic.py ticks ADDR PORT SECONDS          reads ticks; all consecutive?
#   traffic.py serve-bulk ADDR PORT             sends SIZE pseudo-random bytes at RATE B/s
#   traffic.py bulk ADDR PORT SIZE RATE         receives them; sha256 equal?
#   traffic.py serve-udp ADDR PORT NAME         answers "NAME SEQ SRCPORT" to datagram "SEQ"
#   traffic.py udp ADDR PORT SECONDS            a datagram every 20 ms; counts answers
#   traffic.py conns ADDR PORT SECONDS MS [SRC] a new HTTP GET every MS ms; all answered?
import hashlib
import http.client
import random
import socket
import sys
import threading
import time


def stamp():
    t = time.time()
    return time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d" % int((t % 1) * 1000)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listener(addr, port, kind=socket.SOCK_STREAM):
    s = socket.socket(family(addr), kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen(128)
    return s


def serve(s, handler):
    while True:
        c, _ = s.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def tick_handler(c):
    i = 0
    try:
        while True:
            c.sendall(b"%d\n" % i)
            i += 1
            time.sleep(0.02)
    except OSError:
        pass
    finally:
        c.close()


def pattern(size):
    rng = random.Random(size)
    return rng.randbytes(size)


def bulk_handler(c):
    try:
        f = c.makefile("rb")
        size, rate = (int(x) for x in f.readline().split())
        data = pattern(size)
        chunk = max(1024, rate // 50)
        start = time.monotonic()
        for off in range(0, size, chunk):
            c.sendall(data[off:off + chunk])
            due = start + (off + chunk) / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    except OSError:
        pass
    finally:
        c.close()


def connect(addr, port, timeout=5):
    s = socket.socket(family(addr), socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((addr, port))
    return s


def ticks(addr, port, seconds):
    s = connect(addr, port)
    f = s.makefile("rb")
    expect, gap, last = 0, 0.0, time.monotonic()
    end = last + seconds
    while time.monotonic() < end:
        line = f.readline()
        now = time.monotonic()
        if not line:
            print("ticks: connection closed after %d ticks" % expect)
            return 1
        if int(line) != expect:
            print("ticks: got %s, expected %d" % (line.strip().decode(), expect))
            return 1
        gap, last, expect = max(gap, now - last), now, expect + 1
    s.close()
    print("ticks %d max_gap_ms %.1f" % (expect, gap * 1000))
    return 0 if expect > 0 else 1


def bulk(addr, port, size, rate):
    s = connect(addr, port, timeout=10)
    s.sendall(b"%d %d\n" % (size, rate))
    # Gaps count from the first byte on (the server computes the data before it sends any).
    h, got, gap, last, at = hashlib.sha256(), 0, 0.0, None, "-"
    while True:
        b = s.recv(1 << 16)
        now = time.monotonic()
        if not b:
            break
        h.update(b)
        got += len(b)
        if last is not None and now - last > gap:
            gap, at = now - last, stamp()
        last = now
    ok = got == size and h.digest() == hashlib.sha256(pattern(size)).digest()
    print("bulk bytes %d of %d sha256 %s max_gap_ms %.1f (ended %s UTC)" %
          (got, size, "equal" if ok else "DIFFERENT", gap * 1000, at))
    return 0 if ok else 1


def serve_udp(addr, port, name):
    s = listener(addr, port, socket.SOCK_DGRAM)
    while True:
        d, a = s.recvfrom(2048)
        s.sendto(b"%s %s %d" % (name.encode(), d, a[1]), a)


def udp(addr, port, seconds):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.connect((addr, port))
    s.settimeout(0.02)
    # peers: the source ports the server saw (one per conn: full NAT's local port changes with
    # a new conn).
    sent, answered, names, peers, at = 0, set(), set(), set(), "-"
    last_ok, gap = time.monotonic(), 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        s.send(b"%d" % sent)
        sent += 1
        t = time.monotonic() + 0.02
        while time.monotonic() < t:
            try:
                name, seq, peer = s.recv(2048).split()
            except (socket.timeout, ValueError):
                break
            except OSError:
                time.sleep(0.005)
                continue
            now = time.monotonic()
            if now - last_ok > gap:
                gap, at = now - last_ok, stamp()
            last_ok = now
            answered.add(int(seq))
            names.add(name.decode())
            peers.add(int(peer))
    lost = sent - len(answered)
    print("udp sent %d answered %d lost %d servers %s peers %d max_gap_ms %.1f (ended %s UTC)" %
          (sent, len(answered), lost, ",".join(sorted(names)), len(peers), gap * 1000, at))
    return 0 if answered else 1


def conns(addr, port, seconds, every_ms, src=None):
    fails, n, seen, gap, at = 0, 0, {}, 0.0, "-"
    last_ok = time.monotonic()
    end = last_ok + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(addr, port, timeout=3,
                                           source_address=(src, 0) if src else None)
            c.request("GET", "/")
            body = c.getresponse().read().decode().strip()
            c.close()
            seen[body] = seen.get(body, 0) + 1
            now = time.monotonic()
            if now - t0 > 0.5:
                print("conns: request %d took %.0f ms (ended %s UTC)" % (n, (now - t0) * 1000, stamp()))
            if now - last_ok > gap:
                gap, at = now - last_ok, stamp()
            last_ok = now
        except OSError as e:
            fails += 1
            print("conns: request %d failed: %s" % (n, e))
        n += 1
        delay = t0 + every_ms / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print("conns %d failed %d servers %s max_gap_ms %.1f (ended %s UTC)" %
          (n, fails, ",".join("%s=%d" % kv for kv in sorted(seen.items())), gap * 1000, at))
    return 0 if fails == 0 and n > 0 else 1


def main(argv):
    cmd, a = argv[1], argv[2:]
    if cmd == "serve-ticks":
        serve(listener(a[0], int(a[1])), tick_handler)
    elif cmd == "serve-bulk":
        serve(listener(a[0], int(a[1])), bulk_handler)
    elif cmd == "serve-udp":
        serve_udp(a[0], int(a[1]), a[2])
    elif cmd == "ticks":
        return ticks(a[0], int(a[1]), float(a[2]))
    elif cmd == "bulk":
        return bulk(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "udp":
        return udp(a[0], int(a[1]), float(a[2]))
    elif cmd == "conns":
        return conns(a[0], int(a[1]), float(a[2]), float(a[3]), a[4] if len(a) > 4 else None)
    else:
        print("unknown command " + cmd)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
