// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbctl/format.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

#include "api/ipvsadm/health_option.h"
#include "api/ipvsadm/lbd_commands.h"

namespace lb::lbctl {
namespace {

namespace pb = ::lbd::v1;

constexpr int kAfInet = AF_INET, kAfInet6 = AF_INET6;

bool isV6(const std::string& address) {
  return address.find(':') != std::string::npos;
}

int serviceAf(const pb::ServiceKey& k) {
  if (k.has_fwmark()) {
    return k.fwmark().family() == pb::ADDRESS_FAMILY_INET6 ? kAfInet6 : kAfInet;
  }
  return isV6(k.address().address()) ? kAfInet6 : kAfInet;
}

const char* protoName(pb::Protocol p) {
  switch (p) {
    case pb::PROTOCOL_TCP:
      return "TCP";
    case pb::PROTOCOL_UDP:
      return "UDP";
    case pb::PROTOCOL_SCTP:
      return "SCTP";
    case pb::PROTOCOL_ANY:
      return "IP";
    default:
      return "?";
  }
}

int protoNumber(pb::Protocol p) {
  switch (p) {
    case pb::PROTOCOL_UDP:
      return IPPROTO_UDP;
    case pb::PROTOCOL_SCTP:
      return IPPROTO_SCTP;
    default:
      return IPPROTO_TCP;  // fwmark services are stored as TCP, as ipvsadm -f does
  }
}

const char* protoOption(pb::Protocol p) {
  switch (p) {
    case pb::PROTOCOL_TCP:
      return "-t";
    case pb::PROTOCOL_UDP:
      return "-u";
    case pb::PROTOCOL_SCTP:
      return "--sctp-service";
    default:
      return "--xxx-service";
  }
}

// Host-order 32-bit words of an address (1 word for IPv4, 4 for IPv6).
std::array<uint32_t, 4> addrWords(const std::string& address, int af) {
  std::array<uint32_t, 4> w{};
  if (af == kAfInet6) {
    in6_addr a{};
    inet_pton(AF_INET6, address.c_str(), &a);
    for (size_t i = 0; i < 4; ++i) {
      uint32_t v;
      std::memcpy(&v, a.s6_addr + 4 * i, 4);
      w[i] = ntohl(v);
    }
  } else {
    in_addr a{};
    inet_pton(AF_INET, address.c_str(), &a);
    w[0] = ntohl(a.s_addr);
  }
  return w;
}

// libipvs compares with unsigned subtraction read back as int; keep its (rare) wrap-around
// ordering so lists come out exactly as ipvsadm's.
int wrapDiff(uint32_t a, uint32_t b) {
  return static_cast<int>(a - b);
}

int compareAddrs(const std::string& a1, const std::string& a2, int af) {
  std::array<uint32_t, 4> w1 = addrWords(a1, af), w2 = addrWords(a2, af);
  const size_t n = af == kAfInet6 ? 4 : 1;
  for (size_t i = 0; i < n; ++i) {
    if (int r = wrapDiff(w1[i], w2[i]); r != 0)
      return r;
  }
  return 0;
}

int compareServices(const pb::ServiceStatus& s1, const pb::ServiceStatus& s2) {
  const pb::ServiceKey& k1 = s1.service().key();
  const pb::ServiceKey& k2 = s2.service().key();
  if (int r = wrapDiff(k1.fwmark().mark(), k2.fwmark().mark()); r != 0)
    return r;
  const int af1 = serviceAf(k1), af2 = serviceAf(k2);
  if (af1 != af2)
    return af1 - af2;
  const pb::Protocol p1 = k1.has_fwmark() ? pb::PROTOCOL_TCP : k1.address().protocol();
  const pb::Protocol p2 = k2.has_fwmark() ? pb::PROTOCOL_TCP : k2.address().protocol();
  if (int r = protoNumber(p1) - protoNumber(p2); r != 0)
    return r;
  if (int r = compareAddrs(k1.address().address(), k2.address().address(), af1); r != 0) {
    return r;
  }
  return static_cast<int>(k1.address().port()) - static_cast<int>(k2.address().port());
}

int compareDests(const pb::DestStatus& d1, const pb::DestStatus& d2) {
  const int af1 = isV6(d1.dest().address()) ? kAfInet6 : kAfInet;
  const int af2 = isV6(d2.dest().address()) ? kAfInet6 : kAfInet;
  if (af1 != af2)
    return af1 - af2;
  if (int r = compareAddrs(d1.dest().address(), d2.dest().address(), af1); r != 0)
    return r;
  return static_cast<int>(d1.dest().port()) - static_cast<int>(d2.dest().port());
}

const char* fwdName(pb::ForwardMethod f) {
  switch (f) {
    case pb::FORWARD_METHOD_MASQ:
      return "Masq";
    case pb::FORWARD_METHOD_LOCAL:
      return "Local";
    case pb::FORWARD_METHOD_TUNNEL:
      return "Tunnel";
    case pb::FORWARD_METHOD_DIRECT_ROUTE:
      return "Route";
    case pb::FORWARD_METHOD_FULL_NAT:
      return "FullNat";  // DPVS's name
    case pb::FORWARD_METHOD_BYPASS:
      return "Bypass";
    default:
      return "?";
  }
}

const char* fwdSwitch(pb::ForwardMethod f) {
  switch (f) {
    case pb::FORWARD_METHOD_MASQ:
      return "-m";
    case pb::FORWARD_METHOD_TUNNEL:
      return "-i";
    case pb::FORWARD_METHOD_FULL_NAT:
      return "--fullnat";
    default:
      return "-g";
  }
}

// IP_VS_SVC_F_SCHED1..3 as bits 0..2, from whichever typed options the service carries.
uint32_t schedBits(const pb::Service& s) {
  switch (s.scheduler_options_case()) {
    case pb::Service::kSh:
      return (s.sh().fallback() ? 1u : 0u) | (s.sh().port() ? 2u : 0u);
    case pb::Service::kMh:
      return (s.mh().fallback() ? 1u : 0u) | (s.mh().port() ? 2u : 0u);
    case pb::Service::kFlags:
      return (s.flags().flag_1() ? 1u : 0u) | (s.flags().flag_2() ? 2u : 0u) |
             (s.flags().flag_3() ? 4u : 0u);
    default:
      return 0;
  }
}

// print_sched_flags: names depend on the scheduler.
std::string schedFlagNames(const pb::Service& s) {
  const uint32_t bits = schedBits(s);
  std::vector<std::string> names;
  if (s.scheduler() == "sh" || s.scheduler() == "mh") {
    if ((bits & 1) != 0)
      names.push_back(s.scheduler() + "-fallback");
    if ((bits & 2) != 0)
      names.push_back(s.scheduler() + "-port");
  } else {
    for (int i = 0; i < 3; ++i) {
      if ((bits & (1u << i)) != 0)
        names.push_back(absl::StrCat("flag-", i + 1));
    }
  }
  return absl::StrJoin(names, ",");
}

// " mask 255.255.255.0" / " -M 255.255.255.0", or "" when the prefix is the default.
std::string maskText(const pb::Service& s, int af, const char* word) {
  const uint32_t prefix = s.persistence().netmask_prefix();
  if (af == kAfInet6) {
    if (prefix == 0 || prefix == 128)
      return "";
    return absl::StrFormat(" %s %d", word, prefix);
  }
  if (prefix == 0 || prefix >= 32)
    return "";
  in_addr m{};
  m.s_addr = htonl(~uint32_t{0} << (32 - prefix));
  char buf[INET_ADDRSTRLEN];
  return absl::StrFormat(" %s %s", word, inet_ntop(AF_INET, &m, buf, sizeof(buf)));
}

// The service's name column: "TCP  1.2.3.4:80" (truncated to 33 for IPv4), "FWM  7",
// or in rules "-t 1.2.3.4:80" / "-f 7 -6".
std::string serviceName(const pb::Service& s, bool rule, const Names& names) {
  const pb::ServiceKey& k = s.key();
  const int af = serviceAf(k);
  if (k.has_fwmark()) {
    if (rule)
      return absl::StrFormat(af == kAfInet6 ? "-f %u -6" : "-f %u", k.fwmark().mark());
    return absl::StrFormat(af == kAfInet6 ? "FWM  %u IPv6" : "FWM  %u", k.fwmark().mark());
  }
  const std::string v =
      names.addrPort(k.address().address(), k.address().port(), k.address().protocol());
  if (rule)
    return absl::StrFormat("%s %s", protoOption(k.address().protocol()), v);
  std::string name = absl::StrFormat("%-4s %s", protoName(k.address().protocol()), v);
  if (af != kAfInet6 && name.size() > 33)
    name.resize(33);
  return name;
}

// The service's protocol names the port (TCP for fwmark services, as ipvsadm stores them).
pb::Protocol serviceProto(const pb::Service& s) {
  return s.key().has_fwmark() ? pb::PROTOCOL_TCP : s.key().address().protocol();
}

std::string destName(const pb::Dest& d, pb::Protocol proto, bool rule, const Names& names) {
  std::string name = names.addrPort(d.address(), d.port(), proto);
  if (!rule && !isV6(d.address()) && name.size() > 28)
    name.resize(28);
  return name;
}

// 0 nocsum, 1 csum, 2 remcsum: the index into ipvsadm's flag and option spellings.
int csumIndex(const pb::Tunnel& t) {
  if (t.checksum() == pb::TUNNEL_CHECKSUM_CSUM)
    return 1;
  if (t.checksum() == pb::TUNNEL_CHECKSUM_REMOTE)
    return 2;
  return 0;
}

std::string tunnelInfo(const pb::Dest& d) {
  if (d.forward_method() != pb::FORWARD_METHOD_TUNNEL)
    return "n/a";
  static constexpr const char* kFlags[] = {"-c", "+c", "r+c"};
  const pb::Tunnel& t = d.tunnel();
  const int csum = csumIndex(t);
  switch (t.type()) {
    case pb::TUNNEL_TYPE_GUE:
      return absl::StrFormat("gue:%d:%s", t.port(), kFlags[csum]);
    case pb::TUNNEL_TYPE_GRE:
      return absl::StrFormat("gre:%s", kFlags[csum]);
    default:
      return "ipip";
  }
}

std::string tunnelRuleSuffix(const pb::Dest& d) {
  static constexpr const char* kOpts[] = {"--tun-nocsum", "--tun-csum", "--tun-remcsum"};
  const pb::Tunnel& t = d.tunnel();
  const int csum = csumIndex(t);
  switch (t.type()) {
    case pb::TUNNEL_TYPE_GUE:
      return absl::StrFormat(" --tun-type gue --tun-port %d %s", t.port(), kOpts[csum]);
    case pb::TUNNEL_TYPE_GRE:
      return absl::StrFormat(" --tun-type gre %s", kOpts[csum]);
    default:
      return " --tun-type ipip";
  }
}

std::string fiveNums(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e, bool exact) {
  return absl::StrCat(formatLargeNum(a, exact), formatLargeNum(b, exact), formatLargeNum(c, exact),
                      formatLargeNum(d, exact), formatLargeNum(e, exact));
}

std::string title(const ListOptions& o) {
  constexpr const char* kSecond = "  -> RemoteAddress:Port\n";
  if (o.stats) {
    return absl::StrFormat("%-33s %8s %8s %8s %8s %8s\n%s", "Prot LocalAddress:Port", "Conns",
                           "InPkts", "OutPkts", "InBytes", "OutBytes", kSecond);
  }
  if (o.rate) {
    return absl::StrFormat("%-33s %8s %8s %8s %8s %8s\n%s", "Prot LocalAddress:Port", "CPS",
                           "InPPS", "OutPPS", "InBPS", "OutBPS", kSecond);
  }
  if (o.thresholds) {
    return absl::StrFormat("%-33s %-10s %-10s %-10s %-10s\n%s", "Prot LocalAddress:Port",
                           "Uthreshold", "Lthreshold", "ActiveConn", "InActConn", kSecond);
  }
  if (o.persistent_conn) {
    return absl::StrFormat("%-33s %-9s %-11s %-10s %-10s\n%s", "Prot LocalAddress:Port", "Weight",
                           "PersistConn", "ActiveConn", "InActConn", kSecond);
  }
  if (o.tun_info) {
    return "Prot LocalAddress:Port Scheduler Flags\n"
           "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";
  }
  return "Prot LocalAddress:Port Scheduler Flags\n"
         "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
}

std::string serviceLine(const pb::ServiceStatus& st, const ListOptions& o, const Names& names) {
  const pb::Service& s = st.service();
  const std::string name = serviceName(s, false, names);
  if (o.stats) {
    const pb::Stats& x = st.stats();
    return absl::StrCat(
        absl::StrFormat("%-33s", name),
        fiveNums(x.conns(), x.in_packets(), x.out_packets(), x.in_bytes(), x.out_bytes(), o.exact),
        "\n");
  }
  if (o.rate) {
    const pb::Rates& x = st.rates();
    return absl::StrCat(
        absl::StrFormat("%-33s", name),
        fiveNums(x.conns_per_second(), x.in_packets_per_second(), x.out_packets_per_second(),
                 x.in_bytes_per_second(), x.out_bytes_per_second(), o.exact),
        "\n");
  }
  std::string line = absl::StrFormat("%s %s", name, s.scheduler());
  if (schedBits(s) != 0)
    absl::StrAppend(&line, " (", schedFlagNames(s), ")");
  if (s.has_persistence()) {
    absl::StrAppend(&line, " persistent ", s.persistence().timeout().seconds(),
                    maskText(s, serviceAf(s.key()), "mask"));
    if (!s.persistence().engine().empty()) {
      absl::StrAppend(&line, " pe ", s.persistence().engine());
    }
  }
  if (s.one_packet())
    absl::StrAppend(&line, " ops");
  if (s.synproxy())
    absl::StrAppend(&line, " synproxy");  // DPVS's listing
  return line + "\n";
}

std::string destLine(const pb::DestStatus& ds,
                     pb::Protocol proto,
                     const ListOptions& o,
                     const Names& names) {
  const pb::Dest& d = ds.dest();
  const std::string name = destName(d, proto, false, names);
  if (o.stats) {
    const pb::Stats& x = ds.stats();
    return absl::StrCat(
        absl::StrFormat("  -> %-28s", name),
        fiveNums(x.conns(), x.in_packets(), x.out_packets(), x.in_bytes(), x.out_bytes(), o.exact),
        "\n");
  }
  if (o.rate) {
    const pb::Rates& x = ds.rates();
    return absl::StrCat(absl::StrFormat("  -> %-28s %8u %8u %8u", name, x.conns_per_second(),
                                        x.in_packets_per_second(), x.out_packets_per_second()),
                        formatLargeNum(x.in_bytes_per_second(), o.exact),
                        formatLargeNum(x.out_bytes_per_second(), o.exact), "\n");
  }
  if (o.thresholds) {
    return absl::StrFormat("  -> %-28s %-10u %-10u %-10u %-10u\n", name, d.upper_threshold(),
                           d.lower_threshold(), ds.active_conns(), ds.inactive_conns());
  }
  if (o.persistent_conn) {
    return absl::StrFormat("  -> %-28s %-9u %-11u %-10u %-10u\n", name, d.weight(),
                           ds.persistent_conns(), ds.active_conns(), ds.inactive_conns());
  }
  if (o.tun_info) {
    return absl::StrFormat("  -> %-28s %-7s %-13s %-6d %-10u %-10u\n", name,
                           fwdName(d.forward_method()), tunnelInfo(d), d.weight(),
                           ds.active_conns(), ds.inactive_conns());
  }
  return absl::StrFormat("  -> %-28s %-7s %-6d %-10u %-10u\n", name, fwdName(d.forward_method()),
                         d.weight(), ds.active_conns(), ds.inactive_conns());
}

std::string serviceRules(const pb::ServiceStatus& st, const Names& names) {
  const pb::Service& s = st.service();
  const std::string name = serviceName(s, true, names);
  std::string out = absl::StrFormat("-A %s -s %s", name, s.scheduler());
  if (s.has_persistence()) {
    absl::StrAppend(&out, " -p ", s.persistence().timeout().seconds(),
                    maskText(s, serviceAf(s.key()), "-M"));
    if (!s.persistence().engine().empty())
      absl::StrAppend(&out, " --pe ", s.persistence().engine());
  }
  if (s.one_packet())
    absl::StrAppend(&out, " -o");
  if (s.synproxy())
    absl::StrAppend(&out, " --synproxy");
  if (schedBits(s) != 0)
    absl::StrAppend(&out, " -b ", schedFlagNames(s));
  if (s.has_health_policy())  // lbd's own option: ipvsadm's lines never carry it
    absl::StrAppend(&out, " --health ", ipvsadm::formatHealthOption(s.health_policy()));
  absl::StrAppend(&out, "\n");
  // The pool before the dests: a full-NAT dest then never waits for its local address.
  for (const std::string& laddr : s.local_addresses()) {
    absl::StrAppend(&out, absl::StrFormat("-P %s -z %s\n", name, laddr));
  }
  for (const pb::DestStatus& ds : st.dests()) {
    const pb::Dest& d = ds.dest();
    absl::StrAppend(
        &out, absl::StrFormat(
                  "-a %s -r %s %s -w %d", name, destName(d, serviceProto(s), true, names),
                  fwdSwitch(d.forward_method()),
                  // Held at 0 by a failing check: its own weight.
                  d.weight() == 0 && d.health_weight() != 0 ? d.health_weight() : d.weight()));
    // Thresholds: ipvsadm's -S leaves them out (so its -R loses them); lbctl saves them.
    if (d.upper_threshold() != 0)
      absl::StrAppend(&out, " -x ", d.upper_threshold());
    if (d.lower_threshold() != 0)
      absl::StrAppend(&out, " -y ", d.lower_threshold());
    if (d.forward_method() == pb::FORWARD_METHOD_TUNNEL) {
      absl::StrAppend(&out, tunnelRuleSuffix(d));
    }
    // lbd's own option, last: ipvsadm's part of the line stays as ipvsadm prints it.
    for (const pb::HealthCheck& c : d.health_checks())
      absl::StrAppend(&out, " --check ", ipvsadm::formatCheckOption(c));
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace

std::string formatLargeNum(uint64_t v, bool exact) {
  if (exact) {
    const std::string digits = absl::StrCat(v);
    const int width = digits.size() <= 8 ? 9 : static_cast<int>(digits.size()) + 1;
    return absl::StrFormat("%*u", width, v);
  }
  if (v < 100000000ULL)
    return absl::StrFormat("%9u", v);
  if (v < 1000000000ULL)
    return absl::StrFormat("%8uK", v / 1000);
  if (v < 100000000000ULL)
    return absl::StrFormat("%8uM", v / 1000000);
  if (v < 100000000000000ULL)
    return absl::StrFormat("%8uG", v / 1000000000ULL);
  return absl::StrFormat("%8uT", v / 1000000000000ULL);
}

std::string formatAddrPort(const std::string& address, uint32_t port) {
  if (isV6(address))
    return absl::StrFormat("[%s]:%u", address, port);
  return absl::StrFormat("%s:%u", address, port);
}

std::vector<pb::ServiceStatus> sortedServices(const pb::ListServicesResponse& r, bool nosort) {
  std::vector<pb::ServiceStatus> v(r.services().begin(), r.services().end());
  if (nosort)
    return v;
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  qsort_r(
      order.data(), order.size(), sizeof(size_t),
      [](const void* a, const void* b, void* ctx) {
        const auto& all = *static_cast<const std::vector<pb::ServiceStatus>*>(ctx);
        return compareServices(all[*static_cast<const size_t*>(a)],
                               all[*static_cast<const size_t*>(b)]);
      },
      &v);
  std::vector<pb::ServiceStatus> out;
  out.reserve(v.size());
  for (size_t i : order)
    out.push_back(std::move(v[i]));
  for (pb::ServiceStatus& s : out) {
    std::vector<pb::DestStatus> dests(s.dests().begin(), s.dests().end());
    std::vector<size_t> idx(dests.size());
    for (size_t i = 0; i < idx.size(); ++i)
      idx[i] = i;
    qsort_r(
        idx.data(), idx.size(), sizeof(size_t),
        [](const void* a, const void* b, void* ctx) {
          const auto& all = *static_cast<const std::vector<pb::DestStatus>*>(ctx);
          return compareDests(all[*static_cast<const size_t*>(a)],
                              all[*static_cast<const size_t*>(b)]);
        },
        &dests);
    s.clear_dests();
    for (size_t i : idx)
      *s.add_dests() = dests[i];
  }
  return out;
}

std::string formatServiceList(const pb::ListServicesResponse& r,
                              const ListOptions& o,
                              bool with_header,
                              const Names& names) {
  std::string out;
  if (with_header) {
    out = absl::StrFormat("IP Virtual Server version 1.2.1 (size=%u)\n", r.conn_table_size());
  }
  absl::StrAppend(&out, title(o));
  for (const pb::ServiceStatus& st : sortedServices(r, o.nosort)) {
    absl::StrAppend(&out, serviceLine(st, o, names));
    for (const pb::DestStatus& ds : st.dests())
      absl::StrAppend(&out, destLine(ds, serviceProto(st.service()), o, names));
  }
  return out;
}

std::string formatSave(const pb::ListServicesResponse& r,
                       const ListOptions& o,
                       const Names& names) {
  std::string out;
  for (const pb::ServiceStatus& st : sortedServices(r, o.nosort)) {
    absl::StrAppend(&out, serviceRules(st, names));
  }
  return out;
}

std::string formatConnections(const pb::ListConnectionsResponse& r,
                              const ListOptions& o,
                              const Names& names) {
  std::string out = "IPVS connection entries\n";
  if (o.persistent_conn) {
    absl::StrAppend(
        &out, absl::StrFormat("pro expire %-11s %-18s %-18s %-18s %-16s %s\n", "state", "source",
                              "virtual", "destination", "pe name", "pe_data"));
  } else {
    absl::StrAppend(&out, absl::StrFormat("pro expire %-11s %-18s %-18s %s\n", "state", "source",
                                          "virtual", "destination"));
  }
  for (const pb::Connection& c : r.connections()) {
    const int64_t secs = std::max<int64_t>(0, c.expires().seconds());
    const std::string expire = absl::StrFormat("%02d:%02d", secs / 60, secs % 60);
    const std::string cname = names.addrPort(c.client_address(), c.client_port(), c.protocol());
    const std::string vname = names.addrPort(c.virtual_address(), c.virtual_port(), c.protocol());
    const std::string dname = names.addrPort(c.dest_address(), c.dest_port(), c.protocol());
    if (o.persistent_conn && !c.engine().empty()) {
      absl::StrAppend(&out, absl::StrFormat("%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n",
                                            protoName(c.protocol()), expire, c.state(), cname,
                                            vname, dname, c.engine(), c.engine_data()));
    } else {
      absl::StrAppend(
          &out, absl::StrFormat("%-3s %-6s %-11s %-18s %-18s %s\n", protoName(c.protocol()), expire,
                                c.state(), cname, vname, dname));
    }
  }
  return out;
}

std::string formatSaveSettings(const pb::Config& cfg) {
  std::string out;
  const pb::Timeouts& t = cfg.timeouts();
  // ip_vs_proto_tcp.c / ip_vs_proto_udp.c: ESTABLISHED 900 s, FIN_WAIT 120 s, UDP 300 s.
  if (t.tcp().seconds() != 900 || t.tcp_fin().seconds() != 120 || t.udp().seconds() != 300) {
    absl::StrAppend(&out, absl::StrFormat("--set %d %d %d\n", t.tcp().seconds(),
                                          t.tcp_fin().seconds(), t.udp().seconds()));
  }
  // The kernel's defaults (ipvs-sysctl.rst); the rest are 0 / off.
  pb::Sysctls defaults;
  defaults.set_conn_reuse_mode(1);
  defaults.set_pmtu_disc(true);
  defaults.set_am_droprate(10);
  defaults.mutable_lblc_expiration()->set_seconds(86400);
  defaults.mutable_lblcr_expiration()->set_seconds(86400);
  std::vector<std::string> changed;
  for (const std::string& name : ipvsadm::sysctlNames()) {
    absl::StatusOr<uint64_t> v = ipvsadm::getSysctl(cfg.sysctls(), name);
    absl::StatusOr<uint64_t> d = ipvsadm::getSysctl(defaults, name);
    if (v.ok() && d.ok() && *v != *d)
      changed.push_back(absl::StrCat(name, "=", *v));
  }
  if (!changed.empty())
    absl::StrAppend(&out, "--sysctl ", absl::StrJoin(changed, " "), "\n");
  return out;
}

std::string formatSaveFwmarkRules(const pb::Config& cfg) {
  if (cfg.fwmark_rules().empty())
    return "";
  std::string out = "--clear-fwmark-rules\n";
  for (const pb::FwmarkRule& r : cfg.fwmark_rules())
    absl::StrAppend(&out, ipvsadm::fwmarkRuleLine(r), "\n");
  return out;
}

std::string formatTimeouts(const pb::Timeouts& t) {
  return absl::StrFormat("Timeout (tcp tcpfin udp): %d %d %d\n", t.tcp().seconds(),
                         t.tcp_fin().seconds(), t.udp().seconds());
}

std::string formatLocalAddresses(const pb::ListLocalAddressesResponse& r) {
  std::string out = absl::StrFormat("%-20s %-8s %-20s %-10s %-10s\n", "VIP:VPORT", "TOTAL", "LADDR",
                                    "CONFLICTS", "CONNS");
  for (const pb::ListLocalAddressesResponse::Entry& e : r.services()) {
    pb::Service s;
    *s.mutable_key() = e.key();
    const std::string vname = e.key().has_fwmark() ? serviceName(s, false, Names())
                                                   : formatAddrPort(e.key().address().address(),
                                                                    e.key().address().port());
    absl::StrAppend(&out, absl::StrFormat("%-20s %-8u \n", vname, e.addresses_size()));
    for (const pb::LocalAddressStatus& a : e.addresses()) {
      absl::StrAppend(&out, absl::StrFormat("%-20s %-8s %-20s %-10u %-10u\n", "", "", a.address(),
                                            a.port_conflicts(), a.conns()));
    }
  }
  return out;
}

std::string formatSyncDaemons(const pb::ListSyncDaemonsResponse& r) {
  std::string out;
  for (const pb::SyncDaemon& d : r.daemons()) {
    const char* role = d.role() == pb::SYNC_DAEMON_ROLE_BACKUP ? "backup" : "master";
    absl::StrAppend(&out, absl::StrFormat("%s sync daemon (mcast=%s, syncid=%d", role,
                                          d.mcast_interface(), static_cast<int>(d.syncid())));
    if (d.sync_maxlen() != 0)
      absl::StrAppendFormat(&out, ", maxlen=%u", d.sync_maxlen());
    if (!d.mcast_group().empty())
      absl::StrAppend(&out, ", group=", d.mcast_group());
    if (d.mcast_port() != 0)
      absl::StrAppendFormat(&out, ", port=%u", d.mcast_port());
    if (d.mcast_ttl() != 0)
      absl::StrAppendFormat(&out, ", ttl=%u", d.mcast_ttl());
    out += ")\n";
  }
  return out;
}

}  // namespace lb::lbctl
