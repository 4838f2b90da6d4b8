#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The real client of a SYN flood test (tests/integration/syn_flood.sh, tests/perf/run.sh's
# flood row): opens a new TCP connection to ADDR:PORT every 100 ms for SECONDS seconds, each in
# its own thread with 20 s to connect and get its answer (a SYN lost in a full queue is sent
# again after 1, 3, 7 and 15 s), sends an HTTP/1.0 GET and reads the answer to its end.
#   flood_client.py ADDR PORT SECONDS [EXPECT]
# An answer counts when it ends with EXPECT, trailing white space aside (without EXPECT: any
# non-empty answer). Prints the counts and connect times; exits 0 when every connection got its
# answer.
import socket
import sys
import threading
import time

addr, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
expect = sys.argv[4].encode() if len(sys.argv) > 4 else b""
results = []
lock = threading.Lock()


def one(i):
    t0 = time.monotonic()
    ok, err, took = False, "", 0.0
    try:
        s = socket.create_connection((addr, port), timeout=20)
        took = time.monotonic() - t0
        s.sendall(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
        body = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            body += d
        s.close()
        ok = body.rstrip().endswith(expect) if expect else len(body) > 0
        if not ok:
            err = "answer %r" % body[-40:]
    except Exception as e:  # noqa: BLE001 - every failure is reported, none is fatal
        err = repr(e)
    with lock:
        results.append((i, ok, took, err))


threads = []
start = time.monotonic()
n = 0
while time.monotonic() - start < seconds:
    t = threading.Thread(target=one, args=(n,))
    t.start()
    threads.append(t)
    n += 1
    time.sleep(max(0.0, start + n * 0.1 - time.monotonic()))
for t in threads:
    t.join(60)
oks = [r for r in results if r[1]]
fails = [r for r in results if not r[1]]
times = sorted(r[2] for r in oks) or [0.0]
print("client: %d connections, %d answered, %d failed" % (n, len(oks), n - len(oks)))
print("client: connect time p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (
    1000 * times[len(times) // 2], 1000 * times[int(len(times) * 0.99)], 1000 * times[-1]))
for r in fails[:10]:
    print("client: connection %d failed: %s" % (r[0], r[3]))
sys.exit(0 if len(oks) == n else 1)
