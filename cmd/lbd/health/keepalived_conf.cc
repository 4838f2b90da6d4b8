// SPDX-License-Identifier: Apache-2.0
#include "cmd/lbd/health/keepalived_conf.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "cmd/lbd/health/keepalived_parse.h"

namespace lb::health::kconf {
namespace {

// --- blocks ----------------------------------------------------------------------------------

// Blocks of keepalived that are not LVS: skipped as a whole.
bool isSkippedRoot(absl::string_view k) {
  static const char* const kSkipped[] = {
      "vrrp_instance",   "vrrp_sync_group", "vrrp_script",         "vrrp_track_process",
      "vrrp_track_file", "track_file",      "bfd_instance",        "static_ipaddress",
      "static_routes",   "static_rules",    "linkbeat_interfaces", "garp_group",
      "vrrp_gname",      "track_process",   "vrrp_track_interface"};
  for (const char* s : kSkipped) {
    if (k == s)
      return true;
  }
  return false;
}

absl::Status parseRealServer(const Node& n, RealServer& rs) {
  rs.file = n.file;
  rs.line = n.line;
  if (absl::Status s = wantArgs(n, 1, 2); !s.ok())
    return s;
  absl::StatusOr<std::string> a = addressArg(n, n.args[0]);
  if (!a.ok())
    return a.status();
  rs.address = *a;
  if (n.args.size() == 2) {
    absl::StatusOr<uint16_t> p = portArg(n, n.args[1]);
    if (!p.ok())
      return p.status();
    rs.port = *p;
  }
  for (const Node& c : n.children) {
    const std::string& k = c.keyword;
    if (std::optional<CheckType> t = checkerKeyword(k); t.has_value()) {
      absl::StatusOr<CheckerSpec> ck = parseChecker(c, *t);
      if (!ck.ok())
        return ck.status();
      rs.checkers.push_back(std::move(*ck));
      continue;
    }
    if (k == "BFD_CHECK" || k == "SMTP_CHECK" || k == "FILE_CHECK")
      return errorAt(c, absl::StrCat(k, ": not supported by lbd"));
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    absl::StatusOr<bool> timing = parseTiming(c, rs);
    if (!timing.ok())
      return timing.status();
    if (*timing)
      continue;
    if (k == "weight") {
      absl::StatusOr<uint32_t> w = uintArg(c, 0, 65535);
      if (!w.ok())
        return w.status();
      rs.weight = *w;
    } else if (k == "lvs_method" || k == "lb_kind") {
      absl::StatusOr<LvsMethod> m = methodArg(c);
      if (!m.ok())
        return m.status();
      rs.method = *m;
    } else if (k == "uthreshold" || k == "lthreshold") {
      absl::StatusOr<uint32_t> v = uintArg(c, 0, 0xffffffffu);
      if (!v.ok())
        return v.status();
      (k == "uthreshold" ? rs.uthreshold : rs.lthreshold) = *v;
    } else if (k == "inhibit_on_failure" || k == "alpha") {
      absl::StatusOr<bool> b = flagArg(c);
      if (!b.ok())
        return b.status();
      (k == "alpha" ? rs.alpha : rs.inhibit_on_failure) = *b;
    } else if (k == "notify_up" || k == "notify_down") {
      absl::StatusOr<std::string> v = scriptArg(c);
      if (!v.ok())
        return v.status();
      (k == "notify_up" ? rs.notify_up : rs.notify_down) = *v;
    } else if (k == "virtualhost") {
      absl::StatusOr<std::string> v = stringArg(c);
      if (!v.ok())
        return v.status();
      rs.virtualhost = *v;
    } else if (k == "smtp_alert" || k == "snmp_name") {
      // Mail and SNMP alerts: lbd has neither; logged instead.
    } else {
      return unknown(c, "real_server");
    }
  }
  if (rs.lthreshold > 0 && rs.uthreshold > 0 && rs.lthreshold > rs.uthreshold)
    return errorAt(n, "real_server: lthreshold above uthreshold");
  return absl::OkStatus();
}

absl::Status parseSchedFlag(const Node& c, VirtualServer& vs) {
  const std::string& k = c.keyword;
  if (k == "ops") {
    vs.ops = true;
  } else if (k == "flag-1" || k == "sh-fallback" || k == "mh-fallback") {
    vs.flag1 = true;
  } else if (k == "flag-2" || k == "sh-port" || k == "mh-port") {
    vs.flag2 = true;
  } else if (k == "flag-3") {
    vs.flag3 = true;
  }
  return absl::OkStatus();
}

bool isSchedFlag(absl::string_view k) {
  return k == "ops" || k == "flag-1" || k == "flag-2" || k == "flag-3" || k == "sh-port" ||
         k == "sh-fallback" || k == "mh-port" || k == "mh-fallback" || k == "hashed";
}

absl::Status parseVsKeyword(const Node& c, VirtualServer& vs) {
  const std::string& k = c.keyword;
  absl::StatusOr<bool> timing = parseTiming(c, vs);
  if (!timing.ok())
    return timing.status();
  if (*timing) {
    return absl::OkStatus();
  }
  if (isSchedFlag(k))
    return parseSchedFlag(c, vs);
  if (k == "lb_algo" || k == "lvs_sched") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    static const char* const kScheds[] = {"rr", "wrr", "lc",  "wlc",   "lblc", "sh", "mh",
                                          "dh", "fo",  "ovf", "lblcr", "sed",  "nq", "twos"};
    if (std::none_of(std::begin(kScheds), std::end(kScheds),
                     [&](const char* s) { return *v == s; })) {
      return errorAt(c, absl::StrCat(k, " '", *v, "': unknown scheduler"));
    }
    vs.scheduler = *v;
  } else if (k == "lb_kind" || k == "lvs_method") {
    absl::StatusOr<LvsMethod> m = methodArg(c);
    if (!m.ok())
      return m.status();
    vs.method = *m;
  } else if (k == "persistence_timeout") {
    if (c.args.empty()) {
      vs.persistence_timeout = 360;
    } else {
      absl::StatusOr<uint32_t> v = uintArg(c, 1, 2678400);
      if (!v.ok())
        return v.status();
      vs.persistence_timeout = *v;
    }
  } else if (k == "persistence_granularity") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    if (!isIpv4(*v)) {
      uint32_t len = 0;
      if (!absl::SimpleAtoi(*v, &len) || len < 1 || len > 128)
        return errorAt(c, absl::StrCat("persistence_granularity '", *v, "': expected a netmask"));
    }
    vs.persistence_granularity = *v;
  } else if (k == "persistence_engine") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    vs.persistence_engine = *v;
  } else if (k == "protocol") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    const std::string p = absl::AsciiStrToUpper(*v);
    if (p != "TCP" && p != "UDP" && p != "SCTP")
      return errorAt(c, absl::StrCat("protocol '", *v, "': expected TCP, UDP or SCTP"));
    vs.protocol = p;
  } else if (k == "quorum" || k == "hysteresis" || k == "weight") {
    absl::StatusOr<uint32_t> v = uintArg(c, k == "quorum" ? 1 : 0, 0xffffffffu);
    if (!v.ok())
      return v.status();
    (k == "quorum" ? vs.quorum : k == "hysteresis" ? vs.hysteresis : vs.default_weight) = *v;
    if (k == "weight" && *v > 65535)
      return errorAt(c, "weight: expected 0..65535");
  } else if (k == "quorum_up" || k == "quorum_down") {
    absl::StatusOr<std::string> v = scriptArg(c);
    if (!v.ok())
      return v.status();
    (k == "quorum_up" ? vs.quorum_up : vs.quorum_down) = *v;
  } else if (k == "sorry_server") {
    if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
      return s;
    absl::StatusOr<std::string> a = addressArg(c, c.args[0]);
    if (!a.ok())
      return a.status();
    vs.sorry_address = *a;
    if (c.args.size() == 2) {
      absl::StatusOr<uint16_t> p = portArg(c, c.args[1]);
      if (!p.ok())
        return p.status();
      vs.sorry_port = *p;
    }
  } else if (k == "sorry_server_lvs_method") {
    absl::StatusOr<LvsMethod> m = methodArg(c);
    if (!m.ok())
      return m.status();
    vs.sorry_method = *m;
  } else if (k == "sorry_server_inhibit" || k == "inhibit_on_failure" || k == "alpha" ||
             k == "omega" || k == "ha_suspend") {
    absl::StatusOr<bool> b = flagArg(c);
    if (!b.ok())
      return b.status();
    if (k == "sorry_server_inhibit")
      vs.sorry_inhibit = *b;
    else if (k == "inhibit_on_failure")
      vs.inhibit_on_failure = *b;
    else if (k == "alpha")
      vs.alpha = *b;
    else if (k == "omega")
      vs.omega = *b;
    else
      vs.ha_suspend = *b;
  } else if (k == "ip_family") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    if (*v != "inet" && *v != "inet6")
      return errorAt(c, absl::StrCat("ip_family '", *v, "': expected inet or inet6"));
    vs.inet6 = *v == "inet6";
  } else if (k == "virtualhost") {
    absl::StatusOr<std::string> v = stringArg(c);
    if (!v.ok())
      return v.status();
    vs.virtualhost = *v;
  } else if (k == "smtp_alert" || k == "snmp_name" || k == "nat_mask") {
    // Mail and SNMP alerts, and the old nat_mask: nothing for lbd to do.
  } else {
    return unknown(c, "virtual_server");
  }
  return absl::OkStatus();
}

absl::Status parseVirtualServer(const Node& n, VirtualServer& vs) {
  vs.file = n.file;
  vs.line = n.line;
  if (!n.block)
    return errorAt(n, "virtual_server: expected a block");
  if (n.args.empty())
    return errorAt(n, "virtual_server: expected ADDRESS PORT, fwmark MARK or group NAME");
  if (n.args[0] == "fwmark" || n.args[0] == "group") {
    if (absl::Status s = wantArgs(n, 2, 2); !s.ok())
      return s;
    if (n.args[0] == "group") {
      vs.kind = VirtualServer::Kind::kGroup;
      vs.group = n.args[1];
    } else {
      vs.kind = VirtualServer::Kind::kFwmark;
      absl::StatusOr<uint32_t> m = parseUint(n, n.args[1], 1, 0xffffffffu);
      if (!m.ok())
        return m.status();
      vs.fwmark = *m;
    }
  } else {
    if (absl::Status s = wantArgs(n, 1, 2); !s.ok())
      return s;
    absl::StatusOr<std::string> a = addressArg(n, n.args[0]);
    if (!a.ok())
      return a.status();
    vs.address = *a;
    vs.inet6 = isIpv6(*a);
    if (n.args.size() == 2) {
      absl::StatusOr<uint16_t> p = portArg(n, n.args[1]);
      if (!p.ok())
        return p.status();
      vs.port = *p;
    }
  }
  for (const Node& c : n.children) {
    if (c.keyword == "real_server") {
      if (!c.block)
        return errorAt(c, "real_server: expected a block");
      RealServer rs;
      if (absl::Status s = parseRealServer(c, rs); !s.ok())
        return s;
      vs.real_servers.push_back(std::move(rs));
      continue;
    }
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    if (absl::Status s = parseVsKeyword(c, vs); !s.ok())
      return s;
  }
  if (vs.kind == VirtualServer::Kind::kAddress && vs.port == 0 && !vs.persistence_timeout)
    return errorAt(n, "virtual_server: port 0 (or none) needs persistence_timeout");
  return absl::OkStatus();
}

absl::Status parseGroup(const Node& n, VirtualServerGroup& g) {
  g.line = n.line;
  if (!n.block)
    return errorAt(n, "virtual_server_group: expected a block");
  if (absl::Status s = wantArgs(n, 1, 1); !s.ok())
    return s;
  g.name = n.args[0];
  for (const Node& c : n.children) {
    if (absl::Status s = noBlock(c); !s.ok())
      return s;
    GroupEntry e;
    if (c.keyword == "fwmark") {
      if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
        return s;
      absl::StatusOr<uint32_t> m = parseUint(c, c.args[0], 1, 0xffffffffu);
      if (!m.ok())
        return m.status();
      e.fwmark = *m;
      if (c.args.size() == 2) {
        if (c.args[1] != "inet" && c.args[1] != "inet6")
          return errorAt(c,
                         absl::StrCat("fwmark family '", c.args[1], "': expected inet or inet6"));
        e.inet6 = c.args[1] == "inet6";
      }
      g.entries.push_back(e);
      continue;
    }
    // ADDRESS[-LAST] [PORT]
    std::string addr = c.keyword;
    const size_t dash = addr.rfind('-');
    if (dash != std::string::npos) {
      const std::string last = addr.substr(dash + 1);
      uint32_t v = 0;
      const bool v6 = isIpv6(addr.substr(0, dash));
      if (last.empty() || last.size() > 4 ||
          !(v6 ? absl::SimpleHexAtoi(last, &v) : absl::SimpleAtoi(last, &v)) ||
          v > (v6 ? 0xffffu : 255u)) {
        return errorAt(c, absl::StrCat("virtual_server_group '", c.keyword, "': bad range"));
      }
      e.range_end = v;
      addr = addr.substr(0, dash);
    }
    if (!isIpv4(addr) && !isIpv6(addr)) {
      return errorAt(c, absl::StrCat("virtual_server_group '", c.keyword,
                                     "': expected ADDRESS[-LAST] PORT or fwmark MARK"));
    }
    e.address = addr;
    e.inet6 = isIpv6(addr);
    if (e.range_end != 0) {
      // The range's last value must not be below the address's own last part.
      uint32_t first = 0;
      const size_t sep = addr.find_last_of(e.inet6 ? ':' : '.');
      const std::string tail = addr.substr(sep + 1);
      const bool ok = e.inet6 ? absl::SimpleHexAtoi(tail, &first) : absl::SimpleAtoi(tail, &first);
      if (!ok || e.range_end < first)
        return errorAt(c, absl::StrCat("virtual_server_group '", c.keyword, "': bad range"));
    }
    if (c.args.size() > 1)
      return errorAt(c, "virtual_server_group: expected ADDRESS[-LAST] PORT");
    if (c.args.size() == 1) {
      absl::StatusOr<uint16_t> p = portArg(c, c.args[0]);
      if (!p.ok())
        return p.status();
      e.port = *p;
    }
    g.entries.push_back(e);
  }
  return absl::OkStatus();
}

absl::Status parseGlobalDefs(const Node& n, KeepalivedConfig& cfg) {
  GlobalDefs& g = cfg.globals;
  std::vector<std::string> ignored;
  for (const Node& c : n.children) {
    const std::string& k = c.keyword;
    if (k == "lvs_notify_fifo" || k == "lvs_notify_fifo_script") {
      if (absl::Status s = noBlock(c); !s.ok())
        return s;
      absl::StatusOr<std::string> v = k == "lvs_notify_fifo" ? stringArg(c) : scriptArg(c);
      if (!v.ok())
        return v.status();
      (k == "lvs_notify_fifo" ? g.lvs_notify_fifo : g.lvs_notify_fifo_script) = *v;
    } else if (k == "lvs_timeouts") {
      if (c.args.empty() || c.args.size() % 2 != 0)
        return errorAt(c, "lvs_timeouts: expected [tcp S] [tcpfin S] [udp S]");
      for (size_t i = 0; i < c.args.size(); i += 2) {
        absl::StatusOr<uint32_t> v = parseUint(c, c.args[i + 1], 1, 2678400);
        if (!v.ok())
          return v.status();
        if (c.args[i] == "tcp")
          g.lvs_timeout_tcp = *v;
        else if (c.args[i] == "tcpfin")
          g.lvs_timeout_tcpfin = *v;
        else if (c.args[i] == "udp")
          g.lvs_timeout_udp = *v;
        else
          return errorAt(
              c, absl::StrCat("lvs_timeouts '", c.args[i], "': expected tcp, tcpfin or udp"));
      }
    } else if (k == "lvs_flush") {
      g.lvs_flush = true;
    } else if (k == "checker_log_all_failures") {
      absl::StatusOr<bool> b = flagArg(c);
      if (!b.ok())
        return b.status();
      g.checker_log_all_failures = *b;
    } else if (k == "script_user") {
      if (absl::Status s = wantArgs(c, 1, 2); !s.ok())
        return s;
      g.script_user = c.args[0];
    } else if (k == "lvs_sync_daemon") {
      return errorAt(c, "lvs_sync_daemon: connection sync is not supported by lbd yet");
    } else {
      ignored.push_back(k);
    }
  }
  if (!ignored.empty())
    cfg.skipped.push_back(absl::StrCat("global_defs: ", absl::StrJoin(ignored, " ")));
  return absl::OkStatus();
}

absl::Status parseRoot(const Node& root, KeepalivedConfig& cfg) {
  absl::flat_hash_set<std::string> group_names;
  for (const Node& n : root.children) {
    const std::string& k = n.keyword;
    if (k == "global_defs") {
      if (!n.block)
        return errorAt(n, "global_defs: expected a block");
      if (absl::Status s = parseGlobalDefs(n, cfg); !s.ok())
        return s;
    } else if (k == "virtual_server") {
      VirtualServer vs;
      if (absl::Status s = parseVirtualServer(n, vs); !s.ok())
        return s;
      cfg.virtual_servers.push_back(std::move(vs));
    } else if (k == "virtual_server_group") {
      VirtualServerGroup g;
      if (absl::Status s = parseGroup(n, g); !s.ok())
        return s;
      if (!group_names.insert(g.name).second)
        return errorAt(n, absl::StrCat("virtual_server_group ", g.name, ": defined twice"));
      cfg.groups.push_back(std::move(g));
    } else if (k == "SSL") {
      // The client certificate for SSL_GET: lbd's SSL_GET does not present one.
      cfg.skipped.push_back(absl::StrCat("SSL (", n.where(), ")"));
    } else if (isSkippedRoot(k)) {
      cfg.skipped.push_back(absl::StrCat(k, n.args.empty() ? "" : " ", absl::StrJoin(n.args, " "),
                                         " (", n.where(), ")"));
    } else if (!k.empty() && (k[0] == '$' || k[0] == '@')) {
      return errorAt(n, absl::StrCat("'", k,
                                     "': parameters and conditional lines are not "
                                     "supported"));
    } else {
      return unknown(n, "the top level");
    }
  }
  for (const VirtualServer& vs : cfg.virtual_servers) {
    if (vs.kind == VirtualServer::Kind::kGroup && !group_names.contains(vs.group)) {
      return errorAt(vs.file, vs.line,
                     absl::StrCat("virtual_server group ", vs.group, ": no such group"));
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace lb::health::kconf

namespace lb::health {

absl::StatusOr<KeepalivedConfig> parseKeepalivedConf(const std::string& path,
                                                     const ConfReader& reader) {
  KeepalivedConfig cfg;
  absl::StatusOr<kconf::Node> root = kconf::readTree(path, reader, cfg);
  if (!root.ok())
    return root.status();
  if (absl::Status s = kconf::parseRoot(*root, cfg); !s.ok())
    return s;
  return cfg;
}

CheckerTiming resolveTiming(const VirtualServer& vs, const RealServer& rs, const CheckerSpec& c) {
  CheckerTiming t;
  t.connect_timeout = c.connect_timeout.value_or(rs.connect_timeout.value_or(vs.connect_timeout));
  t.delay_loop = c.delay_loop.value_or(rs.delay_loop.value_or(vs.delay_loop));
  uint32_t def_retry = 1;
  if (c.type == CheckType::kDns)
    def_retry = 3;
  else if (c.type == CheckType::kMisc)
    def_retry = 0;
  t.retry = c.retry.value_or(rs.retry.value_or(vs.retry.value_or(def_retry)));
  t.warmup = c.warmup.value_or(rs.warmup.value_or(vs.warmup.value_or(t.delay_loop)));
  Micros def_dbr = 1 * kSecond;
  if (c.type == CheckType::kHttp || c.type == CheckType::kSsl)
    def_dbr = 3 * kSecond;
  else if (c.type == CheckType::kDns)
    def_dbr = t.delay_loop;
  t.delay_before_retry = c.delay_before_retry.value_or(
      rs.delay_before_retry.value_or(vs.delay_before_retry.value_or(def_dbr)));
  t.alpha = c.alpha.value_or(rs.alpha.value_or(vs.alpha));
  t.misc_timeout = c.misc_timeout.value_or(0) > 0 ? *c.misc_timeout : t.delay_loop;
  t.inhibit_on_failure = rs.inhibit_on_failure.value_or(vs.inhibit_on_failure);
  return t;
}

}  // namespace lb::health
