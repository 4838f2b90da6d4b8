// SPDX-License-Identifier: Apache-2.0
// keepalived.conf, the LVS part: a pure parser (files come through an injected reader, so it
// is unit-tested and fuzzed without a filesystem) into a model of virtual servers, real
// servers and their checkers, with keepalived's defaults (keepalived/check/check_parser.c,
// check_api.c, check_data.c, check_{tcp,http,udp,dns,misc,ping}.c; keepalived.conf(5)).
//
// Syntax, as keepalived reads it: one keyword and its arguments per line; `{` opens a block
// (on the keyword's line or the next), `}` closes it; `#` or `!` at the start of a word begin
// a comment; "double quotes" make one word of spaces; `include GLOB` reads files (relative
// paths from the including file's directory). The VRRP and BFD parts are skipped (named in
// KeepalivedConfig::skipped). Every error is "FILE:LINE: reason".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lb::health {

// Durations are kept in microseconds (keepalived's TIMER_HZ).
using Micros = int64_t;
constexpr Micros kSecond = 1'000'000;

enum class CheckType { kTcp, kHttp, kSsl, kUdp, kDns, kPing, kMisc };

// keepalived's keyword for a checker type: "TCP_CHECK", "HTTP_GET", ...
const char* checkTypeName(CheckType t);

enum class LvsMethod { kUnset, kNat, kDr, kTun };

struct StatusRange {
  int lo = 200;
  int hi = 299;
};

// HTTP_GET / SSL_GET `url { }`.
struct UrlSpec {
  std::string path;
  std::string digest;                 // lower-case hex MD5 of the body; empty = not checked
  std::vector<StatusRange> statuses;  // empty = 200-299
  std::string virtualhost;            // empty = the checker's, else the RS's, else the VS's
  int line = 0;
};

// One checker of a real server. Optional timings fall back to the real server, then the
// virtual server, then the checker type's default (resolve()).
struct CheckerSpec {
  CheckType type = CheckType::kTcp;
  std::string file;
  int line = 0;
  // Connection options (not MISC_CHECK).
  std::string connect_ip;  // empty = the real server's address
  std::optional<uint16_t> connect_port;
  std::string bindto;
  std::optional<uint16_t> bind_port;
  std::string bind_if;
  std::optional<uint32_t> fwmark;
  std::optional<Micros> connect_timeout;
  // Timing.
  std::optional<Micros> delay_loop;
  std::optional<Micros> delay_before_retry;
  std::optional<Micros> warmup;
  std::optional<uint32_t> retry;
  std::optional<bool> alpha;
  bool log_all_failures = false;
  // HTTP_GET / SSL_GET.
  std::vector<UrlSpec> urls;
  std::string virtualhost;
  std::string http_protocol;  // "1.0" (default), "1.0C", "1.1", "1.0K"
  bool enable_sni = false;
  std::string sni_name;
  bool fast_recovery = false;
  // UDP_CHECK.
  std::string payload;            // bytes; empty = a random payload per check
  bool require_reply = false;     // any reply needed
  std::string reply_pattern;      // bytes to match, with reply_mask (0 = wildcard nibble)
  std::string reply_mask;         // one byte per pattern byte: 0xff, 0xf0, 0x0f or 0x00
  uint32_t min_reply_length = 0;  // keepalived's defaults
  uint32_t max_reply_length = 255;
  // DNS_CHECK.
  std::string dns_type = "SOA";
  std::string dns_name = ".";
  // MISC_CHECK.
  std::string misc_path;
  std::optional<Micros> misc_timeout;  // unset = delay_loop
  bool misc_dynamic = false;
  std::string user;
};

// Timings after inheritance (checker → real server → virtual server → type default).
struct CheckerTiming {
  Micros connect_timeout = 5 * kSecond;
  Micros delay_loop = 60 * kSecond;
  Micros delay_before_retry = 1 * kSecond;
  Micros warmup = 60 * kSecond;  // the random first delay is drawn from [0, warmup]
  uint32_t retry = 1;
  bool alpha = false;
  Micros misc_timeout = 60 * kSecond;  // misc_timeout, else delay_loop
  bool inhibit_on_failure = false;     // the real server's, else the virtual server's
};

struct RealServer {
  std::string address;
  uint16_t port = 0;                     // 0 = the virtual server's port
  std::optional<uint32_t> weight;        // unset = the virtual server's `weight` (1)
  LvsMethod method = LvsMethod::kUnset;  // unset = the virtual server's
  uint32_t uthreshold = 0;
  uint32_t lthreshold = 0;
  std::optional<bool> inhibit_on_failure;
  std::string notify_up;
  std::string notify_down;
  std::string virtualhost;
  std::optional<Micros> connect_timeout, delay_loop, delay_before_retry, warmup;
  std::optional<uint32_t> retry;
  std::optional<bool> alpha;
  std::vector<CheckerSpec> checkers;
  std::string file;
  int line = 0;
};

// One virtual_server block.
struct VirtualServer {
  enum class Kind { kAddress, kFwmark, kGroup };
  Kind kind = Kind::kAddress;
  std::string address;  // kAddress
  uint16_t port = 0;    // kAddress; 0 only with persistence
  uint32_t fwmark = 0;  // kFwmark
  std::string group;    // kGroup: a virtual_server_group name
  bool inet6 = false;   // ip_family inet6 (fwmark services); an IPv6 address implies it
  std::string protocol = "TCP";
  std::string scheduler = "wlc";
  bool flag1 = false, flag2 = false, flag3 = false, ops = false;
  LvsMethod method = LvsMethod::kNat;
  std::optional<uint32_t> persistence_timeout;  // seconds
  std::string persistence_granularity;          // netmask, empty = none
  std::string persistence_engine;
  uint32_t quorum = 1;
  uint32_t hysteresis = 0;
  std::string quorum_up;
  std::string quorum_down;
  std::string sorry_address;
  uint16_t sorry_port = 0;
  bool sorry_inhibit = false;
  LvsMethod sorry_method = LvsMethod::kUnset;
  bool inhibit_on_failure = false;
  bool alpha = false;
  bool omega = false;
  bool ha_suspend = false;
  std::string virtualhost;
  uint32_t default_weight = 1;  // `weight` in the virtual server: its real servers' default
  Micros connect_timeout = 5 * kSecond;
  Micros delay_loop = 60 * kSecond;
  std::optional<Micros> delay_before_retry, warmup;
  std::optional<uint32_t> retry;
  std::vector<RealServer> real_servers;
  std::string file;
  int line = 0;
};

// virtual_server_group: addresses (a last-part range "198.18.0.1-10"), ports and fwmarks.
struct GroupEntry {
  std::string address;     // first address; empty for a fwmark entry
  uint32_t range_end = 0;  // last value of the address's final octet / hextet; 0 = no range
  uint16_t port = 0;
  uint32_t fwmark = 0;
  bool inet6 = false;  // fwmark entries: "fwmark N inet6"
};

struct VirtualServerGroup {
  std::string name;
  std::vector<GroupEntry> entries;
  int line = 0;
};

struct GlobalDefs {
  std::string lvs_notify_fifo;
  std::string lvs_notify_fifo_script;
  std::optional<uint32_t> lvs_timeout_tcp, lvs_timeout_tcpfin, lvs_timeout_udp;  // seconds
  bool lvs_flush = false;
  bool checker_log_all_failures = false;
  std::string script_user;
};

struct KeepalivedConfig {
  GlobalDefs globals;
  std::vector<VirtualServerGroup> groups;
  std::vector<VirtualServer> virtual_servers;
  // What was read and left out: "vrrp_instance VI_1 (FILE:LINE)", and global_defs keywords
  // that do not concern LVS. The caller logs them on one line.
  std::vector<std::string> skipped;
  std::vector<std::string> files;  // every file read, in order
};

// How the parser reaches files. `read` returns a file's text (NotFound, or any error naming
// the path); `glob` expands a pattern into sorted paths (none = an empty list).
struct ConfReader {
  std::function<absl::StatusOr<std::string>(const std::string& path)> read;
  std::function<std::vector<std::string>(const std::string& pattern)> glob;
};

// The real filesystem: std::ifstream and glob(3).
ConfReader fileSystemReader();

// Parses `path` and everything it includes. InvalidArgument "FILE:LINE: reason" for the first
// error; NotFound for a missing top-level file.
absl::StatusOr<KeepalivedConfig> parseKeepalivedConf(const std::string& path,
                                                     const ConfReader& reader);

// Effective timings of checker `c` of real server `rs` in `vs`, as keepalived inherits them.
CheckerTiming resolveTiming(const VirtualServer& vs, const RealServer& rs, const CheckerSpec& c);

}  // namespace lb::health
