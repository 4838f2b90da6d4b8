// SPDX-License-Identifier: Apache-2.0
// The configuration model: services, real servers, timeouts, sysctls, fwmark rules, full-NAT
// pools. Plain values, validated by ServiceTable. The analogue of ip_vs_service_user_kern /
// ip_vs_dest_user_kern and the per-netns sysctls (ip_vs_ctl.c).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/addr.h"

namespace lb {

// Forwarding method (IP_VS_CONN_F_FWD_MASK values; full NAT is lbd's, as DPVS's FNAT).
enum class FwdMethod : uint8_t {
  kMasq = 0,
  kLocal = 1,
  kTunnel = 2,
  kDirectRoute = 3,
  kBypass = 4,
  kFullNat = 5,
};

enum class TunType : uint8_t { kIpip = 0, kGue = 1, kGre = 2 };
enum class TunCsum : uint8_t { kNoCsum = 0, kCsum = 1, kRemCsum = 2 };

// Service flags (IP_VS_SVC_F_*). Scheduler flags are kSchedFlag1..3 in core/sched/scheduler.h.
inline constexpr uint32_t kSvcPersistent = 0x0001;
inline constexpr uint32_t kSvcOnePacket = 0x0004;
// DPVS's IP_VS_SVC_F_SYNPROXY: SYN cookies answer SYNs, the client's ACK makes the conn (TCP;
// NAT and full-NAT real servers).
inline constexpr uint32_t kSvcSynproxy = 0x8000;

// A virtual service's identity: (af, protocol, vaddr, vport) or (af, fwmark).
struct ServiceKey {
  Af af = Af::kInet;
  L4Proto proto = L4Proto::kTcp;  // fwmark services: kTcp, as the kernel stores them
  IpAddr vaddr;
  uint16_t vport = 0;
  uint32_t fwmark = 0;  // non-zero => fwmark service; vaddr/vport unused

  bool isFwmark() const { return fwmark != 0; }

  // "TCP 198.18.0.1:80", "UDP [2001:2::1]:53", "FWM 7". May allocate.
  std::string toString() const;
  friend bool operator==(const ServiceKey&, const ServiceKey&) = default;
  friend bool operator<(const ServiceKey& a, const ServiceKey& b);

  template <typename H>
  friend H AbslHashValue(H h, const ServiceKey& k) {
    return H::combine(std::move(h), k.af, k.proto, k.vaddr, k.vport, k.fwmark);
  }
};

struct DestConfig {
  IpAddr addr;
  uint16_t port = 0;
  FwdMethod fwd = FwdMethod::kDirectRoute;  // ipvsadm's default (-g)
  uint32_t weight = 1;                      // 0..65535 via ipvsadm; kernel: >= 0
  uint32_t u_threshold = 0;                 // 0 = none
  uint32_t l_threshold = 0;
  TunType tun_type = TunType::kIpip;
  uint16_t tun_port = 0;  // GUE only, required there
  TunCsum tun_csum = TunCsum::kNoCsum;
  // Its health checks (lbd.v1 Dest fields 20-29, serialized; empty = none). Control-plane
  // bookkeeping that rides with the dest for the health subsystem; the pipeline never reads it.
  std::string health;
  friend bool operator==(const DestConfig&, const DestConfig&) = default;
};

struct ServiceConfig {
  ServiceKey key;
  std::string scheduler = "wlc";
  uint32_t flags = 0;               // kSvcPersistent | kSvcOnePacket | kSchedFlag*
  uint32_t timeout_s = 0;           // persistence timeout, seconds (1..2678400 when persistent)
  uint32_t netmask = 0;             // persistence granularity as a prefix length: 32 / 128 default
  std::string pe_name;              // persistence engine ("sip"), empty for none
  std::vector<IpAddr> local_addrs;  // full-NAT local-address pool (DPVS -P/-Q)
  // Who created it (lbd.v1 Service.owner): "" = an operator, else a controller's name.
  // Control-plane bookkeeping that rides with the service; the pipeline never reads it.
  std::string owner;
  // Its health policy (lbd.v1 Service fields 20-29, serialized; empty = none). Bookkeeping as
  // `health` of DestConfig.
  std::string health;
  friend bool operator==(const ServiceConfig&, const ServiceConfig&) = default;
};

// Connection timeouts settable with `ipvsadm --set tcp tcpfin udp` (seconds).
struct Timeouts {
  uint32_t tcp = 900;
  uint32_t tcp_fin = 120;
  uint32_t udp = 300;
  friend bool operator==(const Timeouts&, const Timeouts&) = default;
};

// The /proc/sys/net/ipv4/vs/ knobs lbd implements (defaults from ipvs-sysctl.rst).
struct Sysctls {
  bool expire_nodest_conn = false;
  bool expire_quiescent_template = false;
  uint32_t conn_reuse_mode = 1;
  bool sloppy_tcp = false;
  bool sloppy_sctp = false;
  bool schedule_icmp = false;
  bool nat_icmp_send = false;
  bool pmtu_disc = true;
  uint32_t drop_entry = 0;   // 0..3
  uint32_t drop_packet = 0;  // 0..3
  uint32_t secure_tcp = 0;   // 0..3
  uint32_t am_droprate = 10;
  uint32_t lblc_expiration_s = 86400;
  uint32_t lblcr_expiration_s = 86400;
  // Connection sync (ip_vs_sync.c; core/sync's SyncSysctls, which cmd/lbd/sync fills from
  // these and gives to the running daemons).
  uint32_t sync_threshold = 3;
  uint32_t sync_period = 50;
  uint32_t sync_refresh_period_s = 0;
  uint32_t sync_retries = 0;
  bool sync_persist_mode = false;
  uint32_t sync_version = 1;
  uint32_t sync_qlen_max = 0;
  uint32_t sync_sock_size = 0;
  uint32_t sync_ports = 1;
  // lbd: SYN cookies for NAT and full-NAT TCP services (core/pipeline/syncookies.h, the kernel's
  // net.ipv4.tcp_syncookies): 0 only --synproxy services, 1 every eligible service while the
  // table holds more than syncookies_threshold embryonic TCP conns (a SYN flood), 2 always.
  uint32_t syncookies = 1;               // 0..2
  uint32_t syncookies_threshold = 4096;  // >= 1
  friend bool operator==(const Sysctls&, const Sysctls&) = default;
};

// fwmark classification: there is no skb mark behind a TUN device, so an ordered rule table
// gives packets their mark. First match wins; no match => mark 0.
struct FwmarkRule {
  Af af = Af::kInet;
  IpAddr dst;  // destination prefix
  int prefix_len = 32;
  L4Proto proto = L4Proto::kNone;           // kNone = any
  uint16_t port_min = 0, port_max = 65535;  // destination port range, inclusive
  uint32_t mark = 0;                        // > 0
  friend bool operator==(const FwmarkRule&, const FwmarkRule&) = default;
};

struct ServiceWithDests {
  ServiceConfig service;
  std::vector<DestConfig> dests;  // in the kernel's list order: newest first
  friend bool operator==(const ServiceWithDests&, const ServiceWithDests&) = default;
};

// The whole configuration, as saved to the state file and replaced in one step.
struct FullConfig {
  std::vector<ServiceWithDests> services;  // in creation order
  Timeouts timeouts;
  Sysctls sysctls;
  std::vector<FwmarkRule> fwmark_rules;
  friend bool operator==(const FullConfig&, const FullConfig&) = default;
};

}  // namespace lb
