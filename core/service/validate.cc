// SPDX-License-Identifier: Apache-2.0
#include "core/service/validate.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

#include "core/sched/scheduler.h"

namespace lb {

namespace {

bool validAf(Af af) {
  return af == Af::kInet || af == Af::kInet6;
}

int maxPrefix(Af af) {
  return af == Af::kInet6 ? 128 : 32;
}

absl::string_view afName(Af af) {
  return af == Af::kInet6 ? "IPv6" : "IPv4";
}

std::string destName(const DestConfig& d) {
  return formatAddrPort(d.addr, d.port);
}

// ip_vs_check_udest / __ip_vs_get_out_rt: real servers are unicast (RTN_UNICAST or RTN_LOCAL),
// IPv6 ones not link-local. Rejects the unspecified address, IPv4 multicast and limited
// broadcast, IPv6 multicast and link-local.
bool isUnicast(const IpAddr& a) {
  if (a.isUnspecified())
    return false;
  const uint8_t* b = a.data();
  if (a.isV4()) {
    if ((b[0] & 0xf0) == 0xe0)
      return false;  // 224.0.0.0/4
    return a.v4HostOrder() != 0xffffffffu;
  }
  if (b[0] == 0xff)
    return false;                                   // ff00::/8
  return !(b[0] == 0xfe && (b[1] & 0xc0) == 0x80);  // fe80::/10
}

// Names the dest in an error; built only on the error path (a commit validates every dest).
std::string destWho(const ServiceConfig& svc, const DestConfig& d) {
  return absl::StrCat("dest ", destName(d), " in service ", svc.key.toString());
}

absl::Status checkTunnel(const ServiceConfig& svc, const DestConfig& d) {
  auto who = [&] { return destWho(svc, d); };
  if (d.fwd != FwdMethod::kTunnel) {
    if (d.tun_type != TunType::kIpip || d.tun_port != 0 || d.tun_csum != TunCsum::kNoCsum) {
      return absl::InvalidArgumentError(
          absl::StrCat(who(), ": tunnel options need the tunnel forwarding method"));
    }
    return absl::OkStatus();
  }
  switch (d.tun_type) {
    case TunType::kGue:
      // ip_vs_ctl.c ip_vs_check_udest: "tunnel port is zero".
      if (d.tun_port == 0) {
        return absl::InvalidArgumentError(absl::StrCat(who(), ": GUE tunnel needs a tunnel port"));
      }
      if (d.tun_csum > TunCsum::kRemCsum) {
        return absl::InvalidArgumentError(absl::StrCat(
            who(), ": tunnel checksum option ", static_cast<int>(d.tun_csum), " not supported"));
      }
      return absl::OkStatus();
    case TunType::kIpip:
    case TunType::kGre:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(who(), ": tunnel type ", static_cast<int>(d.tun_type), " not supported"));
  }
  const absl::string_view type = d.tun_type == TunType::kGre ? "GRE" : "IPIP";
  // ipvsadm tunnel_types_v_options: --tun-port is GUE only; ipip takes no checksum option,
  // gre takes nocsum or csum.
  if (d.tun_port != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(who(), ": tunnel port ", d.tun_port, " is only valid for GUE, not ", type));
  }
  bool csum_ok =
      d.tun_type == TunType::kGre ? d.tun_csum <= TunCsum::kCsum : d.tun_csum == TunCsum::kNoCsum;
  if (!csum_ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        who(), ": tunnel checksum option ", static_cast<int>(d.tun_csum), " not valid for ", type));
  }
  return absl::OkStatus();
}

}  // namespace

ServiceKey normalizeKey(ServiceKey key) {
  if (key.isFwmark()) {
    key.proto = L4Proto::kTcp;
    key.vaddr = IpAddr();
    key.vport = 0;
  }
  return key;
}

void normalizeService(ServiceConfig& svc) {
  svc.key = normalizeKey(svc.key);
  if (svc.netmask == 0)
    svc.netmask = static_cast<uint32_t>(maxPrefix(svc.key.af));
}

void normalizeConfig(FullConfig& cfg) {
  for (ServiceWithDests& s : cfg.services)
    normalizeService(s.service);
}

absl::Status validateService(const ServiceConfig& svc) {
  const ServiceKey& k = svc.key;
  // Built only on the error path (a commit validates every service).
  auto name = [&] { return absl::StrCat("service ", k.toString()); };
  if (!validAf(k.af)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), ": address family ", static_cast<int>(k.af), " not supported"));
  }
  if (!k.isFwmark()) {
    if (k.proto != L4Proto::kTcp && k.proto != L4Proto::kUdp && k.proto != L4Proto::kSctp) {
      return absl::InvalidArgumentError(absl::StrCat(
          name(), ": protocol ", static_cast<int>(k.proto), " not supported (TCP, UDP or SCTP)"));
    }
    if (k.vaddr.af() != k.af) {
      return absl::InvalidArgumentError(
          absl::StrCat(name(), ": virtual address is not ", afName(k.af)));
    }
  }
  constexpr uint32_t kKnownFlags =
      kSvcPersistent | kSvcOnePacket | kSvcSynproxy | kSchedFlag1 | kSchedFlag2 | kSchedFlag3;
  if ((svc.flags & ~kKnownFlags) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: unknown service flags 0x%x", name(), svc.flags & ~kKnownFlags));
  }
  const bool persistent = (svc.flags & kSvcPersistent) != 0;
  // ipvsadm: "Zero port specified for non-persistent service"; the kernel never schedules one.
  if (!k.isFwmark() && k.vport == 0 && !persistent) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), ": port zero is only allowed for persistent services"));
  }
  if (persistent && (svc.timeout_s < 1 || svc.timeout_s > kMaxPersistTimeout)) {
    return absl::InvalidArgumentError(absl::StrCat(name(), ": persistence timeout ", svc.timeout_s,
                                                   " out of range 1..", kMaxPersistTimeout));
  }
  const int max_prefix = maxPrefix(k.af);
  if (svc.netmask < 1 || svc.netmask > static_cast<uint32_t>(max_prefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), ": netmask /", svc.netmask, " out of range 1..", max_prefix));
  }
  // ipvsadm: one-packet scheduling "only for UDP" (and fwmark services).
  if ((svc.flags & kSvcOnePacket) != 0 && !k.isFwmark() && k.proto != L4Proto::kUdp) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), ": one-packet scheduling is only for UDP and fwmark services"));
  }
  // DPVS: the SYN proxy answers TCP handshakes; a fwmark service has no single protocol.
  if ((svc.flags & kSvcSynproxy) != 0 && (k.isFwmark() || k.proto != L4Proto::kTcp)) {
    return absl::InvalidArgumentError(
        absl::StrCat(name(), ": the SYN proxy is only for TCP services"));
  }
  if (!svc.pe_name.empty() && svc.pe_name != "sip") {
    return absl::NotFoundError(
        absl::StrCat(name(), ": persistence engine '", svc.pe_name, "' not found"));
  }
  if (svc.scheduler != "none" && findScheduler(svc.scheduler) == nullptr) {
    return absl::NotFoundError(absl::StrCat("scheduler '", svc.scheduler, "' not found"));
  }
  if (svc.local_addrs.size() > kMaxLocalAddrsPerService) {
    return absl::ResourceExhaustedError(absl::StrCat(name(), ": ", svc.local_addrs.size(),
                                                     " local addresses, at most ",
                                                     kMaxLocalAddrsPerService));
  }
  absl::flat_hash_set<IpAddr> seen;
  for (const IpAddr& a : svc.local_addrs) {
    if (a.af() != k.af || a.isUnspecified()) {
      return absl::InvalidArgumentError(absl::StrCat(name(), ": local address ", a.toString(),
                                                     " is not a unicast ", afName(k.af),
                                                     " address"));
    }
    if (!seen.insert(a).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("local address ", a.toString(), " already exists in ", name()));
    }
  }
  return absl::OkStatus();
}

absl::Status validateDest(const ServiceConfig& svc, const DestConfig& d) {
  auto who = [&] { return destWho(svc, d); };
  if (!validAf(d.addr.af()) || !isUnicast(d.addr)) {
    return absl::InvalidArgumentError(absl::StrCat(who(), ": address is not unicast"));
  }
  switch (d.fwd) {
    case FwdMethod::kMasq:
    case FwdMethod::kLocal:
    case FwdMethod::kTunnel:
    case FwdMethod::kDirectRoute:
    case FwdMethod::kFullNat:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(who(), ": forwarding method ", static_cast<int>(d.fwd), " not supported"));
  }
  // ip_vs_check_udest: a different family is allowed only for tunnels.
  if (d.addr.af() != svc.key.af && d.fwd != FwdMethod::kTunnel) {
    return absl::InvalidArgumentError(absl::StrCat(
        who(), ": address family differs from the service's (allowed only for tunnel dests)"));
  }
  if (d.weight > kMaxWeight) {
    return absl::InvalidArgumentError(
        absl::StrCat(who(), ": weight ", d.weight, " out of range 0..", kMaxWeight));
  }
  if (d.u_threshold > kMaxThreshold) {
    return absl::InvalidArgumentError(absl::StrCat(who(), ": upper threshold ", d.u_threshold,
                                                   " out of range 0..", kMaxThreshold));
  }
  if (d.l_threshold > kMaxThreshold) {
    return absl::InvalidArgumentError(absl::StrCat(who(), ": lower threshold ", d.l_threshold,
                                                   " out of range 0..", kMaxThreshold));
  }
  // ip_vs_check_udest: -ERANGE when l_threshold > u_threshold (so -y without -x fails too).
  if (d.l_threshold > d.u_threshold) {
    return absl::InvalidArgumentError(absl::StrCat(who(), ": lower threshold ", d.l_threshold,
                                                   " above upper threshold ", d.u_threshold));
  }
  if (absl::Status s = checkTunnel(svc, d); !s.ok())
    return s;
  // A full-NAT dest may come before its service's first local address (DPVS's tutorials add
  // them in that order, and so may -R): until the pool has one, new connections to it drop
  // with DropReason::kNoLocalAddr (core/pipeline/schedule.cc).
  return absl::OkStatus();
}

absl::Status validateTimeouts(const Timeouts& t) {
  const std::pair<absl::string_view, uint32_t> values[] = {
      {"tcp", t.tcp}, {"tcpfin", t.tcp_fin}, {"udp", t.udp}};
  for (const auto& [name, v] : values) {
    if (v > kMaxTimeout) {
      return absl::InvalidArgumentError(
          absl::StrCat("timeout ", name, " ", v, " out of range 0..", kMaxTimeout));
    }
  }
  return absl::OkStatus();
}

absl::Status validateSysctls(const Sysctls& s) {
  // ip_vs_ctl.c proc_do_defense_mode (0..3) and proc_do_sync_... ; conn_reuse_mode is a bitmap
  // of two bits.
  const std::pair<absl::string_view, uint32_t> modes[] = {{"drop_entry", s.drop_entry},
                                                          {"drop_packet", s.drop_packet},
                                                          {"secure_tcp", s.secure_tcp},
                                                          {"conn_reuse_mode", s.conn_reuse_mode}};
  for (const auto& [name, v] : modes) {
    if (v > 3) {
      return absl::InvalidArgumentError(
          absl::StrCat("sysctl ", name, " ", v, " out of range 0..3"));
    }
  }
  if (s.syncookies > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctl syncookies ", s.syncookies, " out of range 0..2"));
  }
  if (s.syncookies_threshold == 0)
    return absl::InvalidArgumentError("sysctl syncookies_threshold 0 must be > 0");
  return absl::OkStatus();
}

absl::Status validateFwmarkRule(const FwmarkRule& r, size_t index) {
  const std::string who = absl::StrCat("fwmark rule #", index);
  if (r.mark == 0)
    return absl::InvalidArgumentError(absl::StrCat(who, ": mark 0 must be > 0"));
  if (!validAf(r.af) || r.dst.af() != r.af) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": destination ", r.dst.toString(), " is not ", afName(r.af)));
  }
  if (r.prefix_len < 0 || r.prefix_len > maxPrefix(r.af)) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": prefix /", r.prefix_len, " out of range 0..", maxPrefix(r.af)));
  }
  if (r.port_min > r.port_max) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": port range ", r.port_min, "-", r.port_max, " is empty"));
  }
  return absl::OkStatus();
}

absl::Status validateConfig(const FullConfig& cfg, size_t max_services) {
  constexpr size_t kSmallService = 32;
  if (cfg.services.size() > max_services) {
    return absl::ResourceExhaustedError(
        absl::StrCat(cfg.services.size(), " services, at most ", max_services));
  }
  absl::flat_hash_set<ServiceKey> keys;
  keys.reserve(cfg.services.size());
  absl::flat_hash_set<std::pair<IpAddr, uint16_t>> dests;  // a large service's; reused
  for (const ServiceWithDests& s : cfg.services) {
    if (absl::Status st = validateService(s.service); !st.ok())
      return st;
    if (!keys.insert(s.service.key).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("service ", s.service.key.toString(), " already exists"));
    }
    // Duplicates: a scan of the earlier dests for small services (no hashing), a set otherwise.
    const bool small = s.dests.size() <= kSmallService;
    dests.clear();
    for (size_t j = 0; j < s.dests.size(); ++j) {
      const DestConfig& d = s.dests[j];
      if (absl::Status st = validateDest(s.service, d); !st.ok())
        return st;
      const bool dup =
          small ? std::any_of(
                      s.dests.begin(), s.dests.begin() + static_cast<std::ptrdiff_t>(j),
                      [&](const DestConfig& e) { return e.addr == d.addr && e.port == d.port; })
                : !dests.insert({d.addr, d.port}).second;
      if (dup) {
        return absl::AlreadyExistsError(absl::StrCat(
            "dest ", destName(d), " already exists in service ", s.service.key.toString()));
      }
    }
  }
  if (absl::Status st = validateTimeouts(cfg.timeouts); !st.ok())
    return st;
  if (absl::Status st = validateSysctls(cfg.sysctls); !st.ok())
    return st;
  for (size_t i = 0; i < cfg.fwmark_rules.size(); ++i) {
    if (absl::Status st = validateFwmarkRule(cfg.fwmark_rules[i], i); !st.ok())
      return st;
  }
  return absl::OkStatus();
}

}  // namespace lb
