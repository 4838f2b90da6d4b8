// SPDX-License-Identifier: Apache-2.0
// Stand-in for core/proto's ProtoTimeouts::fromConfig while it is being written: the kernel's
// default tables (ip_vs_proto_tcp.c tcp_timeouts, ip_vs_proto_sctp.c, udp 300 s) with the --set
// values applied. Linked only when the lb_core_proto target does not exist.
#include "core/proto/proto.h"

namespace lb {

ProtoTimeouts ProtoTimeouts::fromConfig(const Timeouts& t) {
  ProtoTimeouts p{};
  const int tcp[kTcpStateCount] = {2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120};
  for (int i = 0; i < kTcpStateCount; ++i)
    p.tcp[i] = seconds(tcp[i]);
  const int sctp[kSctpStateCount] = {2, 4, 61, 61, 61, 61, 61, 61, 900, 61, 61, 61, 4, 61};
  for (int i = 0; i < kSctpStateCount; ++i)
    p.sctp[i] = seconds(sctp[i]);
  p.udp = seconds(300);
  p.icmp = seconds(60);
  if (t.tcp != 0)
    p.tcp[kTcpEstablished] = seconds(t.tcp);
  if (t.tcp_fin != 0)
    p.tcp[kTcpFinWait] = seconds(t.tcp_fin);
  if (t.udp != 0)
    p.udp = seconds(t.udp);
  return p;
}

}  // namespace lb
