// SPDX-License-Identifier: Apache-2.0
// ipvsadm's option tables and parsing helpers (ipvsadm.c: commands_v_options, optnames,
// the popt table, string_to_number, parse_service), shared by the parser. Internal to
// the ipvsadm grammar library.
#pragma once

#include <getopt.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "api/ipvsadm/parser.h"

#include "lbd/v1/lbd.pb.h"

namespace lb::ipvsadm {

inline constexpr int kMaxTimeout = 86400 * 31;  // ipvsadm's MAX_TIMEOUT
inline constexpr int kDefaultPersistTimeout = 360;

// Option columns of ipvsadm's commands_v_options table (OPTC_*), plus lbctl's -z (DPVS).
enum Opt : int {
  kOptNumeric,
  kOptConnection,
  kOptService,
  kOptScheduler,
  kOptPersistent,
  kOptNetmask,
  kOptServer,
  kOptForward,
  kOptWeight,
  kOptUThreshold,
  kOptLThreshold,
  kOptMcast,
  kOptTimeout,
  kOptDaemon,
  kOptStats,
  kOptRate,
  kOptThresholds,
  kOptPersistentConn,
  kOptNoSort,
  kOptSyncId,
  kOptExact,
  kOptOnePacket,
  kOptPe,
  kOptSchedFlags,
  kOptMcastGroup,
  kOptMcastPort,
  kOptMcastTtl,
  kOptSyncMaxlen,
  kOptTunInfo,
  kOptTunType,
  kOptTunPort,
  kOptTunNoCsum,
  kOptTunCsum,
  kOptTunRemCsum,
  kOptLaddr,
  kOptSynproxy,  // DPVS's --synproxy
  kOptCheck,     // lbd's --check (health_option.h)
  kOptHealth,    // lbd's --health
  kOptCount
};

inline constexpr std::array<const char*, kOptCount> kOptNames = {"numeric",
                                                                 "connection",
                                                                 "service-address",
                                                                 "scheduler",
                                                                 "persistent",
                                                                 "netmask",
                                                                 "real-server",
                                                                 "forwarding-method",
                                                                 "weight",
                                                                 "u-threshold",
                                                                 "l-threshold",
                                                                 "mcast-interface",
                                                                 "timeout",
                                                                 "daemon",
                                                                 "stats",
                                                                 "rate",
                                                                 "thresholds",
                                                                 "persistent-conn",
                                                                 "nosort",
                                                                 "syncid",
                                                                 "exact",
                                                                 "ops",
                                                                 "pe",
                                                                 "sched-flags",
                                                                 "mcast-group",
                                                                 "mcast-port",
                                                                 "mcast-ttl",
                                                                 "sync-maxlen",
                                                                 "tun-info",
                                                                 "tun-type",
                                                                 "tun-port",
                                                                 "tun-nocsum",
                                                                 "tun-csum",
                                                                 "tun-remcsum",
                                                                 "laddr",
                                                                 "synproxy",
                                                                 "check",
                                                                 "health"};

struct CommandInfo {
  CommandKind kind;
  const char* name;
  // One character per option column: '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional
  // (ipvsadm.c commands_v_options; then lbctl's -z, --synproxy, --check and --health).
  const char* legal;
};

// Rows in ipvsadm's CMD_* order, then the DPVS local-address commands.
inline constexpr std::array<CommandInfo, 17> kCommands = {{
    {CommandKind::kAddService, "add-service", "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx x "},
    {CommandKind::kEditService, "edit-service", "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx x "},
    {CommandKind::kDeleteService, "delete-service", "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {CommandKind::kFlush, "flush", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {CommandKind::kList, "list", " 11xxxxxxxxx11       xxxxxxx xxxxxxxxx"},
    {CommandKind::kAddDest, "add-server", "xx+xxx+    xxxxxxxxxxxxxxxxxx     xx x"},
    {CommandKind::kDeleteDest, "delete-server", "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {CommandKind::kEditDest, "edit-server", "xx+xxx+    xxxxxxxxxxxxxxxxxx     xx x"},
    {CommandKind::kSetTimeout, "set", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {CommandKind::kStartDaemon, "start-daemon", "xxxxxxxxxxx xxxxxxx xxxx    xxxxxxxxxx"},
    {CommandKind::kStopDaemon, "stop-daemon", "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxxxxx"},
    {CommandKind::kRestore, "restore", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {CommandKind::kSave, "save", " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {CommandKind::kZero, "zero", "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
    {CommandKind::kAddLaddr, "add-laddr", "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+xxx"},
    {CommandKind::kDelLaddr, "del-laddr", "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx+xxx"},
    {CommandKind::kGetLaddr, "get-laddr", "  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
}};

// Long-only option tags (ipvsadm's TAG_*), outside the ASCII range.
enum Tag : int {
  kTagSet = 256,
  kTagStartDaemon,
  kTagStopDaemon,
  kTagMcastInterface,
  kTagTimeout,
  kTagDaemon,
  kTagStats,
  kTagRate,
  kTagThresholds,
  kTagPersistentConn,
  kTagSort,
  kTagNoSort,
  kTagPe,
  kTagSctp,
  kTagMcastGroup,
  kTagMcastPort,
  kTagMcastTtl,
  kTagSyncMaxlen,
  kTagTunInfo,
  kTagTunType,
  kTagTunPort,
  kTagTunNoCsum,
  kTagTunCsum,
  kTagTunRemCsum,
  kTagFullNat,
  kTagSyncId,
  kTagSynproxy,
  kTagCheck,
  kTagHealth,
};

inline constexpr char kShortOpts[] = "+:AEDCRSaedLlZhvt:u:f:s:p::M:r:migw:x:y:ncXo6b:PQGz:";

inline const struct option kLongOpts[] = {
    {"add-service", no_argument, nullptr, 'A'},
    {"edit-service", no_argument, nullptr, 'E'},
    {"delete-service", no_argument, nullptr, 'D'},
    {"clear", no_argument, nullptr, 'C'},
    {"list", no_argument, nullptr, 'L'},
    {"zero", no_argument, nullptr, 'Z'},
    {"add-server", no_argument, nullptr, 'a'},
    {"edit-server", no_argument, nullptr, 'e'},
    {"delete-server", no_argument, nullptr, 'd'},
    {"set", no_argument, nullptr, kTagSet},
    {"help", no_argument, nullptr, 'h'},
    {"version", no_argument, nullptr, 'v'},
    {"restore", no_argument, nullptr, 'R'},
    {"save", no_argument, nullptr, 'S'},
    {"start-daemon", required_argument, nullptr, kTagStartDaemon},
    {"stop-daemon", required_argument, nullptr, kTagStopDaemon},
    {"add-laddr", no_argument, nullptr, 'P'},
    {"del-laddr", no_argument, nullptr, 'Q'},
    {"get-laddr", no_argument, nullptr, 'G'},
    {"tcp-service", required_argument, nullptr, 't'},
    {"udp-service", required_argument, nullptr, 'u'},
    {"sctp-service", required_argument, nullptr, kTagSctp},
    {"fwmark-service", required_argument, nullptr, 'f'},
    {"scheduler", required_argument, nullptr, 's'},
    {"persistent", optional_argument, nullptr, 'p'},
    {"netmask", required_argument, nullptr, 'M'},
    {"real-server", required_argument, nullptr, 'r'},
    {"masquerading", no_argument, nullptr, 'm'},
    {"ipip", no_argument, nullptr, 'i'},
    {"gatewaying", no_argument, nullptr, 'g'},
    {"fullnat", no_argument, nullptr, kTagFullNat},
    {"weight", required_argument, nullptr, 'w'},
    {"u-threshold", required_argument, nullptr, 'x'},
    {"l-threshold", required_argument, nullptr, 'y'},
    {"numeric", no_argument, nullptr, 'n'},
    {"connection", no_argument, nullptr, 'c'},
    {"mcast-interface", required_argument, nullptr, kTagMcastInterface},
    {"syncid", required_argument, nullptr, kTagSyncId},
    {"timeout", no_argument, nullptr, kTagTimeout},
    {"daemon", no_argument, nullptr, kTagDaemon},
    {"stats", no_argument, nullptr, kTagStats},
    {"rate", no_argument, nullptr, kTagRate},
    {"thresholds", no_argument, nullptr, kTagThresholds},
    {"persistent-conn", no_argument, nullptr, kTagPersistentConn},
    {"nosort", no_argument, nullptr, kTagNoSort},
    {"sort", no_argument, nullptr, kTagSort},
    {"exact", no_argument, nullptr, 'X'},
    {"ipv6", no_argument, nullptr, '6'},
    {"ops", no_argument, nullptr, 'o'},
    {"pe", required_argument, nullptr, kTagPe},
    {"sched-flags", required_argument, nullptr, 'b'},
    {"mcast-group", required_argument, nullptr, kTagMcastGroup},
    {"mcast-port", required_argument, nullptr, kTagMcastPort},
    {"mcast-ttl", required_argument, nullptr, kTagMcastTtl},
    {"sync-maxlen", required_argument, nullptr, kTagSyncMaxlen},
    {"tun-info", no_argument, nullptr, kTagTunInfo},
    {"tun-type", required_argument, nullptr, kTagTunType},
    {"tun-port", required_argument, nullptr, kTagTunPort},
    {"tun-nocsum", no_argument, nullptr, kTagTunNoCsum},
    {"tun-csum", no_argument, nullptr, kTagTunCsum},
    {"tun-remcsum", no_argument, nullptr, kTagTunRemCsum},
    {"laddr", required_argument, nullptr, 'z'},
    {"synproxy", no_argument, nullptr, kTagSynproxy},
    {"check", required_argument, nullptr, kTagCheck},
    {"health", required_argument, nullptr, kTagHealth},
    {nullptr, 0, nullptr, 0},
};

inline constexpr int kSvcNone = 0, kSvcAddr = 1, kSvcPort = 2;

struct ParsedAddr {
  int af = AF_INET;
  std::string address;  // canonical text
  uint16_t port = 0;
};

// ipvsadm's string_to_number: the whole string, base 10, within [min, max]; -1 otherwise.
int64_t stringToNumber(const char* s, int64_t min, int64_t max);
// ipvsadm's parse_service: host[:port], [v6]:port, bare v6. Returns kSvc* bits.
int parseService(const std::string& text, ::lbd::v1::Protocol proto, ParsedAddr* out);
// gethostbyname's IPv4 answer.
std::optional<in_addr> hostToAddr(const std::string& name);
// IPv4 dotted mask -> prefix length; nullopt when not contiguous.
std::optional<int> maskToPrefix(in_addr mask);
// The command a first option selects, if it is one.
std::optional<CommandKind> commandFor(int c);
// The legality row of a command, or nullptr.
const CommandInfo* commandInfo(CommandKind k);

}  // namespace lb::ipvsadm
