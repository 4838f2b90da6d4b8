// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/control/api_convert.h"

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

#include "cmd/lbd/control/health_convert.h"
#include "core/sync/sync_master.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;

constexpr size_t kMaxOwnerLength = 253;  // Service.owner: a DNS name's length at most

absl::Status invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

// Whole seconds in [min, max]; `unset_value` when the duration is absent.
absl::StatusOr<uint32_t> secondsFromProto(bool has,
                                          const google::protobuf::Duration& d,
                                          absl::string_view field,
                                          uint32_t min,
                                          uint32_t max,
                                          uint32_t unset_value) {
  if (!has)
    return unset_value;
  if (d.nanos() != 0) {
    return invalid(field, absl::StrCat("duration must be whole seconds, got ", d.seconds(), "s ",
                                       d.nanos(), "ns"));
  }
  if (d.seconds() < min || d.seconds() > max) {
    return invalid(field, absl::StrCat(d.seconds(), "s out of range ", min, "..", max));
  }
  return static_cast<uint32_t>(d.seconds());
}

google::protobuf::Duration secondsToProto(int64_t s) {
  google::protobuf::Duration d;
  d.set_seconds(s);
  return d;
}

absl::StatusOr<L4Proto> protoFromProto(pb::Protocol p, absl::string_view field, bool allow_any) {
  switch (p) {
    case pb::PROTOCOL_TCP:
      return L4Proto::kTcp;
    case pb::PROTOCOL_UDP:
      return L4Proto::kUdp;
    case pb::PROTOCOL_SCTP:
      return L4Proto::kSctp;
    case pb::PROTOCOL_ANY:
      if (allow_any)
        return L4Proto::kNone;
      return invalid(field, "PROTOCOL_ANY is only valid in fwmark rules");
    default:
      return invalid(field, "protocol unspecified");
  }
}

pb::Protocol protoToProto(L4Proto p) {
  switch (p) {
    case L4Proto::kTcp:
      return pb::PROTOCOL_TCP;
    case L4Proto::kUdp:
      return pb::PROTOCOL_UDP;
    case L4Proto::kSctp:
      return pb::PROTOCOL_SCTP;
    default:
      return pb::PROTOCOL_ANY;
  }
}

absl::StatusOr<uint16_t> portFromProto(uint32_t port, absl::string_view field) {
  if (port > 65535)
    return invalid(field, absl::StrCat("port ", port, " out of range 0..65535"));
  return static_cast<uint16_t>(port);
}

absl::StatusOr<FwdMethod> fwdFromProto(pb::ForwardMethod f) {
  switch (f) {
    case pb::FORWARD_METHOD_MASQ:
      return FwdMethod::kMasq;
    case pb::FORWARD_METHOD_LOCAL:
      return FwdMethod::kLocal;
    case pb::FORWARD_METHOD_TUNNEL:
      return FwdMethod::kTunnel;
    case pb::FORWARD_METHOD_DIRECT_ROUTE:
      return FwdMethod::kDirectRoute;
    case pb::FORWARD_METHOD_BYPASS:
      return FwdMethod::kBypass;
    case pb::FORWARD_METHOD_FULL_NAT:
      return FwdMethod::kFullNat;
    default:
      return invalid("dest.forward_method", "forward method unspecified");
  }
}

pb::ForwardMethod fwdToProto(FwdMethod f) {
  switch (f) {
    case FwdMethod::kMasq:
      return pb::FORWARD_METHOD_MASQ;
    case FwdMethod::kLocal:
      return pb::FORWARD_METHOD_LOCAL;
    case FwdMethod::kTunnel:
      return pb::FORWARD_METHOD_TUNNEL;
    case FwdMethod::kDirectRoute:
      return pb::FORWARD_METHOD_DIRECT_ROUTE;
    case FwdMethod::kBypass:
      return pb::FORWARD_METHOD_BYPASS;
    case FwdMethod::kFullNat:
      return pb::FORWARD_METHOD_FULL_NAT;
  }
  return pb::FORWARD_METHOD_UNSPECIFIED;
}

absl::Status tunnelFromProto(const pb::Tunnel& t, DestConfig* d) {
  switch (t.type()) {
    case pb::TUNNEL_TYPE_IPIP:
      d->tun_type = TunType::kIpip;
      break;
    case pb::TUNNEL_TYPE_GUE:
      d->tun_type = TunType::kGue;
      break;
    case pb::TUNNEL_TYPE_GRE:
      d->tun_type = TunType::kGre;
      break;
    default:
      return invalid("dest.tunnel.type", "tunnel type unspecified");
  }
  switch (t.checksum()) {
    case pb::TUNNEL_CHECKSUM_UNSPECIFIED:
    case pb::TUNNEL_CHECKSUM_NONE:
      d->tun_csum = TunCsum::kNoCsum;
      break;
    case pb::TUNNEL_CHECKSUM_CSUM:
      d->tun_csum = TunCsum::kCsum;
      break;
    case pb::TUNNEL_CHECKSUM_REMOTE:
      d->tun_csum = TunCsum::kRemCsum;
      break;
    default:
      return invalid("dest.tunnel.checksum", "unknown checksum mode");
  }
  if (t.port() > 65535)
    return invalid("dest.tunnel.port", absl::StrCat(t.port(), " > 65535"));
  d->tun_port = static_cast<uint16_t>(t.port());
  return absl::OkStatus();
}

// Scheduler options -> IP_VS_SVC_F_SCHED* flags; typed options must match the scheduler.
absl::Status schedFlagsFromProto(const pb::Service& p, ServiceConfig* s) {
  uint32_t f = 0;
  switch (p.scheduler_options_case()) {
    case pb::Service::kSh:
      if (s->scheduler != "sh") {
        return invalid("service.sh", absl::StrCat("sh options with scheduler ", s->scheduler));
      }
      f = (p.sh().fallback() ? kSchedFlag1 : 0) | (p.sh().port() ? kSchedFlag2 : 0);
      break;
    case pb::Service::kMh:
      if (s->scheduler != "mh") {
        return invalid("service.mh", absl::StrCat("mh options with scheduler ", s->scheduler));
      }
      f = (p.mh().fallback() ? kSchedFlag1 : 0) | (p.mh().port() ? kSchedFlag2 : 0);
      break;
    case pb::Service::kFlags:
      f = (p.flags().flag_1() ? kSchedFlag1 : 0) | (p.flags().flag_2() ? kSchedFlag2 : 0) |
          (p.flags().flag_3() ? kSchedFlag3 : 0);
      break;
    default:
      break;
  }
  s->flags |= f;
  return absl::OkStatus();
}

}  // namespace

grpc::Status toGrpcStatus(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

absl::StatusOr<IpAddr> addrFromProto(absl::string_view text, absl::string_view field) {
  std::optional<IpAddr> a = IpAddr::parse(text);
  if (!a)
    return invalid(field, absl::StrCat("invalid address '", text, "'"));
  return *a;
}

absl::StatusOr<ServiceKey> serviceKeyFromProto(const pb::ServiceKey& p) {
  ServiceKey k;
  if (p.has_fwmark()) {
    if (p.fwmark().mark() == 0)
      return invalid("key.fwmark.mark", "must be > 0");
    switch (p.fwmark().family()) {
      case pb::ADDRESS_FAMILY_INET:
        k.af = Af::kInet;
        break;
      case pb::ADDRESS_FAMILY_INET6:
        k.af = Af::kInet6;
        break;
      default:
        return invalid("key.fwmark.family", "address family unspecified");
    }
    k.proto = L4Proto::kTcp;
    k.fwmark = p.fwmark().mark();
    return k;
  }
  if (!p.has_address())
    return invalid("key", "service key unset (address or fwmark)");
  absl::StatusOr<L4Proto> proto = protoFromProto(p.address().protocol(), "key.address", false);
  if (!proto.ok())
    return proto.status();
  absl::StatusOr<IpAddr> addr = addrFromProto(p.address().address(), "key.address.address");
  if (!addr.ok())
    return addr.status();
  absl::StatusOr<uint16_t> port = portFromProto(p.address().port(), "key.address.port");
  if (!port.ok())
    return port.status();
  k.af = addr->af();
  k.proto = *proto;
  k.vaddr = *addr;
  k.vport = *port;
  return k;
}

pb::ServiceKey serviceKeyToProto(const ServiceKey& k) {
  pb::ServiceKey p;
  if (k.isFwmark()) {
    p.mutable_fwmark()->set_mark(k.fwmark);
    p.mutable_fwmark()->set_family(k.af == Af::kInet6 ? pb::ADDRESS_FAMILY_INET6
                                                      : pb::ADDRESS_FAMILY_INET);
    return p;
  }
  p.mutable_address()->set_protocol(protoToProto(k.proto));
  p.mutable_address()->set_address(k.vaddr.toString());
  p.mutable_address()->set_port(k.vport);
  return p;
}

absl::StatusOr<ServiceConfig> serviceFromProto(const pb::Service& p) {
  ServiceConfig s;
  absl::StatusOr<ServiceKey> key = serviceKeyFromProto(p.key());
  if (!key.ok())
    return key.status();
  s.key = *key;
  s.scheduler = p.scheduler().empty() ? "wlc" : p.scheduler();
  if (absl::Status st = schedFlagsFromProto(p, &s); !st.ok())
    return st;
  if (p.has_persistence()) {
    const pb::Persistence& per = p.persistence();
    s.flags |= kSvcPersistent;
    absl::StatusOr<uint32_t> t =
        secondsFromProto(per.has_timeout(), per.timeout(), "service.persistence.timeout", 1,
                         kMaxTimeoutSeconds, kDefaultPersistSeconds);
    if (!t.ok())
      return t.status();
    s.timeout_s = *t;
    const uint32_t max_prefix = s.key.af == Af::kInet6 ? 128 : 32;
    if (per.netmask_prefix() > max_prefix) {
      return invalid("service.persistence.netmask_prefix",
                     absl::StrCat(per.netmask_prefix(), " out of range 1..", max_prefix));
    }
    s.netmask = per.netmask_prefix() == 0 ? max_prefix : per.netmask_prefix();
    s.pe_name = per.engine();
  } else {
    s.netmask = s.key.af == Af::kInet6 ? 128 : 32;
  }
  if (p.one_packet())
    s.flags |= kSvcOnePacket;
  if (p.synproxy())
    s.flags |= kSvcSynproxy;
  for (const std::string& a : p.local_addresses()) {
    absl::StatusOr<IpAddr> addr = addrFromProto(a, "service.local_addresses");
    if (!addr.ok())
      return addr.status();
    s.local_addrs.push_back(*addr);
  }
  if (p.owner().size() > kMaxOwnerLength) {
    return invalid("service.owner",
                   absl::StrCat(p.owner().size(), " characters, at most ", kMaxOwnerLength));
  }
  s.owner = p.owner();
  absl::StatusOr<std::string> health = serviceHealthFromProto(p);
  if (!health.ok())
    return health.status();
  s.health = std::move(*health);
  return s;
}

pb::Service serviceToProto(const ServiceConfig& s) {
  pb::Service p;
  *p.mutable_key() = serviceKeyToProto(s.key);
  p.set_scheduler(s.scheduler);
  const uint32_t f = s.flags;
  const bool f1 = (f & kSchedFlag1) != 0, f2 = (f & kSchedFlag2) != 0, f3 = (f & kSchedFlag3) != 0;
  if (s.scheduler == "sh" && !f3 && (f1 || f2)) {
    p.mutable_sh()->set_fallback(f1);
    p.mutable_sh()->set_port(f2);
  } else if (s.scheduler == "mh" && !f3 && (f1 || f2)) {
    p.mutable_mh()->set_fallback(f1);
    p.mutable_mh()->set_port(f2);
  } else if (f1 || f2 || f3) {
    p.mutable_flags()->set_flag_1(f1);
    p.mutable_flags()->set_flag_2(f2);
    p.mutable_flags()->set_flag_3(f3);
  }
  if ((f & kSvcPersistent) != 0) {
    pb::Persistence* per = p.mutable_persistence();
    *per->mutable_timeout() = secondsToProto(s.timeout_s);
    per->set_netmask_prefix(s.netmask);
    per->set_engine(s.pe_name);
  }
  p.set_one_packet((f & kSvcOnePacket) != 0);
  p.set_synproxy((f & kSvcSynproxy) != 0);
  for (const IpAddr& a : s.local_addrs)
    p.add_local_addresses(a.toString());
  p.set_owner(s.owner);
  serviceHealthToProto(s.health, &p);
  return p;
}

absl::StatusOr<DestConfig> destFromProto(const pb::Dest& p) {
  DestConfig d;
  absl::StatusOr<IpAddr> addr = addrFromProto(p.address(), "dest.address");
  if (!addr.ok())
    return addr.status();
  d.addr = *addr;
  absl::StatusOr<uint16_t> port = portFromProto(p.port(), "dest.port");
  if (!port.ok())
    return port.status();
  d.port = *port;
  absl::StatusOr<FwdMethod> fwd = fwdFromProto(p.forward_method());
  if (!fwd.ok())
    return fwd.status();
  d.fwd = *fwd;
  if (p.weight() > static_cast<uint32_t>(INT_MAX)) {
    return invalid("dest.weight", absl::StrCat(p.weight(), " out of range 0..", INT_MAX));
  }
  if (p.upper_threshold() > static_cast<uint32_t>(INT_MAX) ||
      p.lower_threshold() > static_cast<uint32_t>(INT_MAX)) {
    return invalid("dest thresholds", absl::StrCat("out of range 0..", INT_MAX));
  }
  d.weight = p.weight();
  d.u_threshold = p.upper_threshold();
  d.l_threshold = p.lower_threshold();
  if (p.has_tunnel()) {
    if (d.fwd != FwdMethod::kTunnel) {
      return invalid("dest.tunnel", "tunnel options need forward method TUNNEL");
    }
    if (absl::Status st = tunnelFromProto(p.tunnel(), &d); !st.ok())
      return st;
  }
  absl::StatusOr<std::string> health = destHealthFromProto(p);
  if (!health.ok())
    return health.status();
  d.health = std::move(*health);
  return d;
}

pb::Dest destToProto(const DestConfig& d) {
  pb::Dest p;
  p.set_address(d.addr.toString());
  p.set_port(d.port);
  p.set_forward_method(fwdToProto(d.fwd));
  p.set_weight(d.weight);
  p.set_upper_threshold(d.u_threshold);
  p.set_lower_threshold(d.l_threshold);
  if (d.fwd == FwdMethod::kTunnel) {
    pb::Tunnel* t = p.mutable_tunnel();
    t->set_type(d.tun_type == TunType::kGue   ? pb::TUNNEL_TYPE_GUE
                : d.tun_type == TunType::kGre ? pb::TUNNEL_TYPE_GRE
                                              : pb::TUNNEL_TYPE_IPIP);
    t->set_port(d.tun_port);
    t->set_checksum(d.tun_csum == TunCsum::kCsum      ? pb::TUNNEL_CHECKSUM_CSUM
                    : d.tun_csum == TunCsum::kRemCsum ? pb::TUNNEL_CHECKSUM_REMOTE
                                                      : pb::TUNNEL_CHECKSUM_NONE);
  }
  destHealthToProto(d.health, &p);
  return p;
}

absl::StatusOr<Timeouts> timeoutsFromProto(const pb::Timeouts& p) {
  Timeouts t;
  absl::StatusOr<uint32_t> tcp =
      secondsFromProto(p.has_tcp(), p.tcp(), "timeouts.tcp", 0, kMaxTimeoutSeconds, 0);
  if (!tcp.ok())
    return tcp.status();
  absl::StatusOr<uint32_t> fin =
      secondsFromProto(p.has_tcp_fin(), p.tcp_fin(), "timeouts.tcp_fin", 0, kMaxTimeoutSeconds, 0);
  if (!fin.ok())
    return fin.status();
  absl::StatusOr<uint32_t> udp =
      secondsFromProto(p.has_udp(), p.udp(), "timeouts.udp", 0, kMaxTimeoutSeconds, 0);
  if (!udp.ok())
    return udp.status();
  t.tcp = *tcp;
  t.tcp_fin = *fin;
  t.udp = *udp;
  return t;
}

pb::Timeouts timeoutsToProto(const Timeouts& t) {
  pb::Timeouts p;
  *p.mutable_tcp() = secondsToProto(t.tcp);
  *p.mutable_tcp_fin() = secondsToProto(t.tcp_fin);
  *p.mutable_udp() = secondsToProto(t.udp);
  return p;
}

absl::StatusOr<Sysctls> sysctlsFromProto(const pb::Sysctls& p) {
  Sysctls s;
  s.expire_nodest_conn = p.expire_nodest_conn();
  s.expire_quiescent_template = p.expire_quiescent_template();
  s.conn_reuse_mode = p.conn_reuse_mode();
  s.sloppy_tcp = p.sloppy_tcp();
  s.sloppy_sctp = p.sloppy_sctp();
  s.schedule_icmp = p.schedule_icmp();
  s.nat_icmp_send = p.nat_icmp_send();
  s.pmtu_disc = p.pmtu_disc();
  s.drop_entry = p.drop_entry();
  s.drop_packet = p.drop_packet();
  s.secure_tcp = p.secure_tcp();
  s.am_droprate = p.am_droprate();
  absl::StatusOr<uint32_t> lblc =
      secondsFromProto(p.has_lblc_expiration(), p.lblc_expiration(), "sysctls.lblc_expiration", 1,
                       UINT32_MAX, s.lblc_expiration_s);
  if (!lblc.ok())
    return lblc.status();
  absl::StatusOr<uint32_t> lblcr =
      secondsFromProto(p.has_lblcr_expiration(), p.lblcr_expiration(), "sysctls.lblcr_expiration",
                       1, UINT32_MAX, s.lblcr_expiration_s);
  if (!lblcr.ok())
    return lblcr.status();
  s.lblc_expiration_s = *lblc;
  s.lblcr_expiration_s = *lblcr;
  // Connection sync: unset fields keep the kernel's defaults; the kernel's handlers' checks.
  if (p.has_sync_threshold())
    s.sync_threshold = p.sync_threshold();
  if (p.has_sync_period())
    s.sync_period = p.sync_period();
  absl::StatusOr<uint32_t> refresh =
      secondsFromProto(p.has_sync_refresh_period(), p.sync_refresh_period(),
                       "sysctls.sync_refresh_period", 0, UINT32_MAX, s.sync_refresh_period_s);
  if (!refresh.ok())
    return refresh.status();
  s.sync_refresh_period_s = *refresh;
  if (p.has_sync_retries())
    s.sync_retries = p.sync_retries();
  if (p.has_sync_persist_mode())
    s.sync_persist_mode = p.sync_persist_mode();
  if (p.has_sync_version())
    s.sync_version = p.sync_version();
  if (p.has_sync_qlen_max())
    s.sync_qlen_max = p.sync_qlen_max();
  if (p.has_sync_sock_size())
    s.sync_sock_size = p.sync_sock_size();
  if (p.has_sync_ports())
    s.sync_ports = p.sync_ports();
  if (p.has_syncookies())
    s.syncookies = p.syncookies();
  if (p.has_syncookies_threshold())
    s.syncookies_threshold = p.syncookies_threshold();
  SyncSysctls sync;
  sync.sync_threshold = s.sync_threshold;
  sync.sync_period = s.sync_period;
  sync.sync_refresh_period_s = s.sync_refresh_period_s;
  sync.sync_retries = s.sync_retries;
  sync.sync_persist_mode = s.sync_persist_mode;
  sync.sync_version = s.sync_version;
  sync.sync_qlen_max = s.sync_qlen_max;
  sync.sync_sock_size = s.sync_sock_size;
  sync.sync_ports = s.sync_ports;
  if (absl::Status v = validateSyncSysctls(sync); !v.ok())
    return absl::InvalidArgumentError(absl::StrCat("sysctls.", v.message()));
  if (s.sync_sock_size > INT_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("sysctls.sync_sock_size ", s.sync_sock_size, ": at most ", INT_MAX));
  }
  return s;
}

pb::Sysctls sysctlsToProto(const Sysctls& s) {
  pb::Sysctls p;
  p.set_expire_nodest_conn(s.expire_nodest_conn);
  p.set_expire_quiescent_template(s.expire_quiescent_template);
  p.set_conn_reuse_mode(s.conn_reuse_mode);
  p.set_sloppy_tcp(s.sloppy_tcp);
  p.set_sloppy_sctp(s.sloppy_sctp);
  p.set_schedule_icmp(s.schedule_icmp);
  p.set_nat_icmp_send(s.nat_icmp_send);
  p.set_pmtu_disc(s.pmtu_disc);
  p.set_drop_entry(s.drop_entry);
  p.set_drop_packet(s.drop_packet);
  p.set_secure_tcp(s.secure_tcp);
  p.set_am_droprate(s.am_droprate);
  *p.mutable_lblc_expiration() = secondsToProto(s.lblc_expiration_s);
  *p.mutable_lblcr_expiration() = secondsToProto(s.lblcr_expiration_s);
  p.set_sync_threshold(s.sync_threshold);
  p.set_sync_period(s.sync_period);
  *p.mutable_sync_refresh_period() = secondsToProto(s.sync_refresh_period_s);
  p.set_sync_retries(s.sync_retries);
  p.set_sync_persist_mode(s.sync_persist_mode);
  p.set_sync_version(s.sync_version);
  p.set_sync_qlen_max(s.sync_qlen_max);
  p.set_sync_sock_size(s.sync_sock_size);
  p.set_sync_ports(s.sync_ports);
  p.set_syncookies(s.syncookies);
  p.set_syncookies_threshold(s.syncookies_threshold);
  return p;
}

absl::StatusOr<FwmarkRule> fwmarkRuleFromProto(const pb::FwmarkRule& p) {
  FwmarkRule r;
  std::vector<std::string> parts = absl::StrSplit(p.destination(), absl::MaxSplits('/', 1));
  absl::StatusOr<IpAddr> dst = addrFromProto(parts[0], "fwmark_rule.destination");
  if (!dst.ok())
    return dst.status();
  r.af = dst->af();
  r.dst = *dst;
  const int max_prefix = r.af == Af::kInet6 ? 128 : 32;
  r.prefix_len = max_prefix;
  if (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &r.prefix_len) || r.prefix_len < 0 ||
                            r.prefix_len > max_prefix)) {
    return invalid("fwmark_rule.destination",
                   absl::StrCat("bad prefix in '", p.destination(), "'"));
  }
  absl::StatusOr<L4Proto> proto = protoFromProto(p.protocol(), "fwmark_rule.protocol", true);
  if (!proto.ok())
    return proto.status();
  r.proto = *proto;
  if (p.port_min() > 65535 || p.port_max() > 65535) {
    return invalid("fwmark_rule ports", "out of range 0..65535");
  }
  r.port_min = static_cast<uint16_t>(p.port_min());
  r.port_max = p.port_min() == 0 && p.port_max() == 0 ? 65535 : static_cast<uint16_t>(p.port_max());
  if (p.mark() == 0)
    return invalid("fwmark_rule.mark", "must be > 0");
  r.mark = p.mark();
  return r;
}

pb::FwmarkRule fwmarkRuleToProto(const FwmarkRule& r) {
  pb::FwmarkRule p;
  p.set_destination(absl::StrCat(r.dst.toString(), "/", r.prefix_len));
  p.set_protocol(protoToProto(r.proto));
  p.set_port_min(r.port_min);
  p.set_port_max(r.port_max);
  p.set_mark(r.mark);
  return p;
}

absl::StatusOr<FullConfig> configFromProto(const pb::Config& p) {
  FullConfig c;
  for (const pb::Service& ps : p.services()) {
    absl::StatusOr<ServiceConfig> s = serviceFromProto(ps);
    if (!s.ok())
      return s.status();
    ServiceWithDests sd;
    sd.service = std::move(*s);
    for (const pb::Dest& pd : ps.dests()) {
      absl::StatusOr<DestConfig> d = destFromProto(pd);
      if (!d.ok())
        return d.status();
      sd.dests.push_back(*d);
    }
    c.services.push_back(std::move(sd));
  }
  if (p.has_timeouts()) {
    absl::StatusOr<Timeouts> t = timeoutsFromProto(p.timeouts());
    if (!t.ok())
      return t.status();
    const Timeouts def;
    c.timeouts.tcp = t->tcp != 0 ? t->tcp : def.tcp;
    c.timeouts.tcp_fin = t->tcp_fin != 0 ? t->tcp_fin : def.tcp_fin;
    c.timeouts.udp = t->udp != 0 ? t->udp : def.udp;
  }
  if (p.has_sysctls()) {
    absl::StatusOr<Sysctls> s = sysctlsFromProto(p.sysctls());
    if (!s.ok())
      return s.status();
    c.sysctls = *s;
  }
  for (const pb::FwmarkRule& pr : p.fwmark_rules()) {
    absl::StatusOr<FwmarkRule> r = fwmarkRuleFromProto(pr);
    if (!r.ok())
      return r.status();
    c.fwmark_rules.push_back(*r);
  }
  return c;
}

pb::Config configToProto(const FullConfig& c) {
  pb::Config p;
  for (const ServiceWithDests& sd : c.services) {
    pb::Service* ps = p.add_services();
    *ps = serviceToProto(sd.service);
    for (const DestConfig& d : sd.dests)
      *ps->add_dests() = destToProto(d);
  }
  *p.mutable_timeouts() = timeoutsToProto(c.timeouts);
  *p.mutable_sysctls() = sysctlsToProto(c.sysctls);
  for (const FwmarkRule& r : c.fwmark_rules)
    *p.add_fwmark_rules() = fwmarkRuleToProto(r);
  return p;
}

pb::Stats statsToProto(const StatsValues& v) {
  pb::Stats p;
  p.set_conns(v.conns);
  p.set_in_packets(v.inpkts);
  p.set_out_packets(v.outpkts);
  p.set_in_bytes(v.inbytes);
  p.set_out_bytes(v.outbytes);
  return p;
}

pb::Rates ratesToProto(const RateValues& v) {
  pb::Rates p;
  p.set_conns_per_second(v.cps);
  p.set_in_packets_per_second(v.inpps);
  p.set_out_packets_per_second(v.outpps);
  p.set_in_bytes_per_second(v.inbps);
  p.set_out_bytes_per_second(v.outbps);
  return p;
}

pb::Connection connToProto(const Conn& c, absl::string_view state, MonoTime now) {
  pb::Connection p;
  p.set_protocol(protoToProto(c.proto));
  p.set_client_address(c.caddr.toString());
  p.set_client_port(c.cport);
  p.set_virtual_address(c.vaddr.toString());
  p.set_virtual_port(c.vport);
  p.set_dest_address(c.daddr.toString());
  p.set_dest_port(c.dport);
  if ((c.flags & kConnFFullNat) != 0) {
    p.set_local_address(c.laddr.toString());
    p.set_local_port(c.lport);
  }
  p.set_state(std::string(state));
  // /proc/net/ip_vs_conn: (timer.expires - jiffies) / HZ, i.e. whole seconds rounded down.
  const int64_t left_ns = std::max<int64_t>(0, (c.expires - now).count());
  *p.mutable_expires() = secondsToProto(left_ns / 1'000'000'000);
  p.set_template_((c.flags & kConnFTemplate) != 0);
  p.set_forward_method(fwdToProto(connFwd(c)));
  p.set_fwmark(c.fwmark);
  return p;
}

}  // namespace lb::lbd
