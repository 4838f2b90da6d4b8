// SPDX-License-Identifier: Apache-2.0
// A connection entry and its flags; the analogue of struct ip_vs_conn (include/net/ip_vs.h).
#pragma once

#include <atomic>
#include <cstdint>

#include "core/base/addr.h"
#include "core/base/ids.h"
#include "core/base/time.h"
#include "core/service/config.h"

namespace lb {

// IP_VS_CONN_F_* (include/uapi/linux/ip_vs.h). The low 3 bits hold FwdMethod for the kernel's
// methods; full NAT is flagged separately since it has no kernel value.
inline constexpr uint32_t kConnFFwdMask = 0x0007;
inline constexpr uint32_t kConnFHashed = 0x0040;
inline constexpr uint32_t kConnFNoOutput = 0x0080;
inline constexpr uint32_t kConnFInactive = 0x0100;
inline constexpr uint32_t kConnFNoCport = 0x0800;
inline constexpr uint32_t kConnFTemplate = 0x1000;
inline constexpr uint32_t kConnFOnePacket = 0x2000;
inline constexpr uint32_t kConnFFullNat = 0x00800000;  // lbd: src rewritten to laddr:lport
// lbd: handed to a flow fast path (core/pipeline/offload.h); never offered again.
inline constexpr uint32_t kConnFOffloaded = 0x01000000;
// lbd: the conn proved its client's address, as conntrack's IPS_ASSURED: TCP or SCTP reached
// ESTABLISHED, a UDP reply was seen (or, for a method whose replies bypass lbd, a second client
// datagram). The pipeline sets it; the table's early drop never takes an assured conn.
inline constexpr uint32_t kConnFAssured = 0x02000000;
// lbd: made by the SYN proxy (core/pipeline/synproxy.cc): sequence numbers are translated by
// ConnGuard::seqDelta; PENDING while the handshake with the real server is not done.
inline constexpr uint32_t kConnFSynproxy = 0x04000000;
inline constexpr uint32_t kConnFSynproxyPending = 0x08000000;
inline constexpr uint32_t kConnFSync = 0x0020;
// lbd: made from a mid-stream TCP packet while early drop was freeing conns (Pipeline's flood
// pickup, conntrack's nf_conntrack_tcp_loose): ESTABLISHED by state, but not assured (early drop
// may take it) until the real server answers it with something other than a reset.
inline constexpr uint32_t kConnFPickedUp = 0x10000000;

// Template states (IP_VS_CTPL_S_*): shown as NONE / ASSURED by -Lnc.
inline constexpr uint8_t kTemplateNone = 0;
inline constexpr uint8_t kTemplateAssured = 1;

// No conn: an empty Conn::control, a missing slab index.
inline constexpr uint32_t kNoConn = 0xffffffffu;

// Direction of a packet relative to the conn (ip_vs_proto_tcp.c state table rows).
enum class ConnDir : uint8_t { kInput = 0, kOutput = 1, kInputOnly = 2 };

// A packet's tuple as seen on the wire, host-order ports.
struct ConnTuple {
  Af af = Af::kInet;
  L4Proto proto = L4Proto::kTcp;
  IpAddr saddr, daddr;
  uint16_t sport = 0, dport = 0;
};

// Everything needed to create a conn (ip_vs_conn_new's parameters).
// Field order is chosen so that everything an in-lookup compares (flags, ports, caddr, vaddr)
// sits in the first cache line of a slab entry (conn_table.cc).
struct ConnParams {
  Af af = Af::kInet;              // client side family
  Af daf = Af::kInet;             // real-server side family (differs only for tunnels)
  L4Proto proto = L4Proto::kTcp;  // kNone (IPPROTO_IP) for fwmark templates
  uint32_t flags = 0;             // kConnF*, the forwarding method in kConnFFwdMask
  uint16_t cport = 0, vport = 0, dport = 0;
  uint16_t lport = 0;  // full NAT: the local port the real server sees
  IpAddr caddr, vaddr, daddr;
  IpAddr laddr;  // full NAT: the local address the real server sees
  uint32_t fwmark = 0;
  ServiceId svc = kNoService;
  DestId dest = kNoDest;
  // The controlling template (cp->control) as a slab index (ConnGuard::index()), or kNoConn.
  uint32_t control = kNoConn;
  Duration timeout = seconds(3);  // a new conn lives 3 s until its first state transition
};

// One entry of the connection table. Identity fields never change after creation except where
// the kernel changes them (template invalidation sets ports to 0xffff). Mutable fields are
// touched only with the conn's shard lock held (ConnGuard).
//
// Reading a conn's fields needs its ConnGuard, with one exception: n_control is atomic and may
// be touched through ConnTable::nControl(index) without a guard (a template with n_control > 0
// is never freed, so its slab chunk is never given back; see ConnTable::nControl).
struct Conn : ConnParams {
  Conn() = default;

  // Copies are snapshots (forEach, tests); n_control is read once.
  Conn(const Conn& o) : ConnParams(o) { copyMutable(o); }

  Conn& operator=(const Conn& o) {
    if (this != &o) {
      static_cast<ConnParams&>(*this) = o;
      copyMutable(o);
    }
    return *this;
  }

  uint8_t state = 0;  // protocol state (core/proto), or kTemplate*
  uint8_t old_state = 0;
  // The kernel's cp->sync_endtime (core/sync/sync_master.h): when the master last synced the
  // conn, as (now + timeout) in whole seconds mod 2^14, shifted left 2, with the sync_retries
  // count in the low 2 bits. Fills padding: the entry's size is unchanged.
  uint16_t sync_endtime = 0;
  uint32_t in_pkts = 0;
  MonoTime expires;  // when the timer fires; set only through ConnGuard::setTimeout
  std::atomic<int32_t> n_control{0};  // conns controlled by this template
  uint32_t generation = 0;            // bumped on free: stale handles never match

 private:
  void copyMutable(const Conn& o) {
    state = o.state;
    old_state = o.old_state;
    sync_endtime = o.sync_endtime;
    in_pkts = o.in_pkts;
    expires = o.expires;
    n_control.store(o.n_control.load(std::memory_order_relaxed), std::memory_order_relaxed);
    generation = o.generation;
  }
};

inline FwdMethod connFwd(const Conn& c) {
  if ((c.flags & kConnFFullNat) != 0)
    return FwdMethod::kFullNat;
  return static_cast<FwdMethod>(c.flags & kConnFFwdMask);
}

}  // namespace lb
