#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""A burst of concurrent control RPCs against lbd, for fault_rpc_burst.sh.

  rpc_burst.py PY_DIR SOCKET TOTAL EXPECTED_OUT
PY_DIR holds lbd/v1/lbd_pb2.py (protoc --python_out). Sends TOTAL RPCs at once on one channel
(all in flight together): 40 % valid ApplyBatch (each creates its own service
198.18.<101+i//250>.<i%250+1>:80, rr, with real server 198.18.2.11:80 NAT; every 4th one also
creates and deletes a scratch service in the same batch), 30 % reads (ListServices, GetStats,
GetConfig), 30 % malformed (bytes that are no protobuf, a batch operation without a kind, bad
addresses, a dest for a service that does not exist, an unknown method). Checks each answer:
valid -> OK with no failure, malformed -> an error (or a batch failure), reads -> OK. Writes the
`lbctl -Sn` lines the configuration must hold afterwards (sorted) to EXPECTED_OUT.
Exit 0 when every answer was as expected.
"""
import os
import sys
import time

import grpc

sys.path.insert(0, sys.argv[1])
from lbd.v1 import lbd_pb2 as pb  # noqa: E402

SVC = "/lbd.v1.LoadBalancer/"


def vip(i):
    return "198.18.%d.%d" % (101 + i // 250, i % 250 + 1)


def key(addr, port=80):
    k = pb.ServiceKey()
    k.address.protocol = pb.PROTOCOL_TCP
    k.address.address = addr
    k.address.port = port
    return k


def valid_batch(i):
    req = pb.ApplyBatchRequest()
    op = req.operations.add()
    op.create_service.service.key.CopyFrom(key(vip(i)))
    op.create_service.service.scheduler = "rr"
    op = req.operations.add()
    op.create_dest.key.CopyFrom(key(vip(i)))
    op.create_dest.dest.address = "198.18.2.11"
    op.create_dest.dest.port = 80
    op.create_dest.dest.forward_method = pb.FORWARD_METHOD_MASQ
    op.create_dest.dest.weight = 1
    if i % 4 == 0:  # a scratch service, created and deleted in the same batch
        op = req.operations.add()
        op.create_service.service.key.CopyFrom(key(vip(i), 9999))
        op.create_service.service.scheduler = "wlc"
        op = req.operations.add()
        op.delete_service.key.CopyFrom(key(vip(i), 9999))
    return req


def malformed(i):
    """(method, request bytes, kind): every one of them must be refused."""
    k = i % 6
    if k == 0:
        return "ApplyBatch", os.urandom(64) + b"\xff\xff\xff\xff\x0f", "raw"
    if k == 1:
        req = pb.ApplyBatchRequest()
        req.operations.add()  # no kind
        return "ApplyBatch", req.SerializeToString(), "batch"
    if k == 2:
        req = pb.CreateServiceRequest()
        req.service.key.CopyFrom(key("999.1.2.3"))
        return "CreateService", req.SerializeToString(), "rpc"
    if k == 3:
        req = pb.CreateDestRequest()
        req.key.CopyFrom(key("198.18.250.%d" % (i % 250 + 1)))  # no such service
        req.dest.address = "198.18.2.11"
        req.dest.port = 80
        req.dest.forward_method = pb.FORWARD_METHOD_MASQ
        return "CreateDest", req.SerializeToString(), "rpc"
    if k == 4:
        return "NoSuchMethod", b"\x0a\x00", "rpc"
    req = pb.ApplyBatchRequest()
    op = req.operations.add()
    op.create_service.service.key.CopyFrom(key(vip(i), 70000))  # port out of range
    return "ApplyBatch", req.SerializeToString(), "batch"


def main():
    sock, total, expected_out = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ch = grpc.insecure_channel("unix://" + sock, options=[("grpc.max_send_message_length", 1 << 24)])
    grpc.channel_ready_future(ch).result(timeout=10)
    raw = lambda m: ch.unary_unary(SVC + m)  # bytes in, bytes out
    n_valid = total * 4 // 10
    n_read = total * 3 // 10
    n_bad = total - n_valid - n_read
    calls = []
    for i in range(n_valid):
        calls.append(("valid", i, raw("ApplyBatch").future(valid_batch(i).SerializeToString(), timeout=120)))
    reads = [("ListServices", pb.ListServicesRequest()), ("GetStats", pb.GetStatsRequest()),
             ("GetConfig", pb.GetConfigRequest())]
    for i in range(n_read):
        m, r = reads[i % 3]
        calls.append(("read", i, raw(m).future(r.SerializeToString(), timeout=120)))
    bad_kind = {}
    for i in range(n_bad):
        m, b, kind = malformed(i)
        bad_kind[i] = (m, kind)
        calls.append(("bad", i, raw(m).future(b, timeout=120)))
    # Interleave is done by gRPC: every call is already in flight.
    t0 = time.monotonic()
    wrong = []
    codes = {}
    for what, i, f in calls:
        try:
            body = f.result()
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            body, code = None, e.code()
        label = what if what != "bad" else "malformed %s (%s)" % bad_kind[i]
        codes[(label, code.name)] = codes.get((label, code.name), 0) + 1
        if what == "valid":
            if code != grpc.StatusCode.OK:
                wrong.append("valid batch %d: %s" % (i, code))
                continue
            resp = pb.ApplyBatchResponse.FromString(body)
            if resp.failures:
                wrong.append("valid batch %d: failures %s" % (i, resp.failures))
        elif what == "read":
            if code != grpc.StatusCode.OK:
                wrong.append("read %d: %s" % (i, code))
        else:
            m, kind = bad_kind[i]
            if code == grpc.StatusCode.OK:
                if kind != "batch" or not pb.ApplyBatchResponse.FromString(body).failures:
                    wrong.append("malformed %d (%s, %s) was accepted" % (i, m, kind))
    print("burst: %d RPCs (%d valid batches, %d reads, %d malformed) answered in %.2f s"
          % (total, n_valid, n_read, n_bad, time.monotonic() - t0))
    print("answers: " + ", ".join("%s %s: %d" % (w, c, n) for (w, c), n in sorted(codes.items())))
    lines = []
    for i in range(n_valid):
        lines.append("-A -t %s:80 -s rr" % vip(i))
        lines.append("-a -t %s:80 -r 198.18.2.11:80 -m -w 1" % vip(i))
    with open(expected_out, "w") as f:
        f.write("\n".join(sorted(lines)) + "\n")
    for w in wrong[:20]:
        print("WRONG: " + w)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
