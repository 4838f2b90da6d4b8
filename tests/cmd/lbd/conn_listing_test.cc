// SPDX-License-Identifier: Apache-2.0
// ipvsadm -Lnc on a non-empty table: a real core ConnTable filled with synthetic conns (TCP in
// several states, UDP, SCTP, persistence templates: NONE, ASSURED, invalidated, fwmark, IPv6),
// served through DataplaneHooks::conns() and listed by lbctl over the gRPC server. Each row is
// compared byte for byte with what ipvsadm's print_conn makes of /proc/net/ip_vs_conn
// ("%-3s %-6s %-11s %-18s %-18s %s\n", expire "%02d:%02d" of the whole seconds left, which the
// kernel computes as jiffies_delta_to_msecs(expires - jiffies) / 1000: rounded down, never
// negative). The rows' order is the kernel's hash order in ipvsadm and lbd's table order in
// lbctl (neither sorts: --sort/--nosort do not apply to -c), so rows are compared as a sorted
// multiset and the header exactly.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"

#include "cmd/lbctl/lbctl.h"
#include "cmd/lbd/control/control_plane.h"
#include "core/pipeline/pe_sip.h"
#include "core/proto/proto.h"
#include "tests/testlib/temp_dir.h"

namespace lb::lbd {
namespace {

class NoEvents : public ConnEvents {
 public:
  void onConnFreed(const Conn&) noexcept override {}
};

class TableHooks : public DataplaneHooks {
 public:
  explicit TableHooks(const ConnTable* t) : table_(t) {}

  absl::Status onCommit(const ServiceTable&) override { return absl::OkStatus(); }

  const ConnTable* conns() const override { return table_; }

  std::vector<std::pair<std::string, uint64_t>> metrics() const override { return {}; }

 private:
  const ConnTable* table_;
};

constexpr MonoTime kT0 = MonoTime::fromSeconds(5000);
// The listing happens 1.4 s after the conns were created: 900 s left becomes 898.6 -> "14:58".
constexpr MonoTime kListAt = kT0 + millis(1400);

IpAddr ip(const char* text) {
  std::optional<IpAddr> a = IpAddr::parse(text);
  EXPECT_TRUE(a.has_value()) << text;
  return a.value_or(IpAddr());
}

struct ConnSpec {
  L4Proto proto;
  const char *caddr, *vaddr, *daddr;
  uint16_t cport, vport, dport;
  uint8_t state;
  int64_t timeout_s;
  bool is_template = false;
  bool invalidate = false;
  uint32_t fwmark = 0;
  MonoTime created = kT0;
};

class ConnListingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = tmp_.path();
    server_ = "unix://" + dir_ + "/lbd.sock";
    ConnTable::Options to;
    to.capacity = 64;
    to.shards = 4;
    conns_ = std::make_unique<ConnTable>(to, &events_);
    hooks_ = std::make_unique<TableHooks>(conns_.get());
    ControlOptions o;
    o.listen = server_;
    o.clock = [this] { return now_; };
    plane_ = std::make_unique<ControlPlane>(table_, hooks_.get(), o);
    ASSERT_TRUE(plane_->start().ok());
  }

  void add(const ConnSpec& s) {
    ConnParams p;
    p.af = ip(s.caddr).af();
    p.daf = ip(s.daddr).af();
    p.proto = s.proto;
    p.caddr = ip(s.caddr);
    p.vaddr = ip(s.vaddr);
    p.daddr = ip(s.daddr);
    p.cport = s.cport;
    p.vport = s.vport;
    p.dport = s.dport;
    p.fwmark = s.fwmark;
    p.flags = static_cast<uint32_t>(FwdMethod::kMasq) |
              (s.is_template ? kConnFTemplate | kConnFNoCport : 0u);
    p.timeout = seconds(s.timeout_s);
    ConnGuard g = conns_->create(p, s.created);
    ASSERT_TRUE(static_cast<bool>(g));
    g->state = s.state;
    if (s.invalidate)
      conns_->invalidateTemplate(g);
  }

  std::string run(const std::string& line) {
    std::vector<std::string> args = absl::StrSplit(line, ' ', absl::SkipEmpty());
    args.push_back("--server=" + server_);
    std::istringstream in;
    std::ostringstream out, err;
    EXPECT_EQ(lbctl::runLbctl("ipvsadm", args, in, out, err, lbctl::makeStub), 0) << err.str();
    return out.str();
  }

  MonoTime now_ = kListAt;                        // the dataplane clock the listing reads
  lb::testing::TempDir tmp_{"lbd_conn_listing"};  // removed last, with what the test left in it
  std::string dir_, server_;
  NoEvents events_;
  std::unique_ptr<ConnTable> conns_;
  std::unique_ptr<TableHooks> hooks_;
  ServiceTable table_;
  std::unique_ptr<ControlPlane> plane_;
};

// Header lines kept, the rest sorted.
std::vector<std::string> headerAndSortedRows(const std::string& listing, size_t header_lines) {
  std::vector<std::string> lines = absl::StrSplit(listing, '\n');
  EXPECT_EQ(lines.back(), "");  // every line ends in \n
  lines.pop_back();
  std::sort(lines.begin() + static_cast<std::ptrdiff_t>(std::min(header_lines, lines.size())),
            lines.end());
  return lines;
}

TEST_F(ConnListingTest, EveryKindOfEntry) {
  const uint8_t kNone = kTemplateNone, kAssured = kTemplateAssured;
  const L4Proto kAny = L4Proto::kNone;
  // clang-format off
  const ConnSpec specs[] = {
      {L4Proto::kTcp, "10.0.0.2", "198.18.0.1", "198.18.1.1", 45678, 80, 80, kTcpEstablished, 900},
      {L4Proto::kTcp, "10.0.0.2", "198.18.0.1", "198.18.1.2", 45679, 80, 80, kTcpFinWait, 120},
      {L4Proto::kTcp, "10.0.0.5", "198.18.0.1", "198.18.1.1", 1024, 80, 80, kTcpSynRecv, 30},
      {L4Proto::kTcp, "10.0.0.6", "198.18.0.1", "198.18.1.2", 2000, 80, 80, kTcpTimeWait, 120},
      {L4Proto::kTcp, "10.0.0.7", "198.18.0.1", "198.18.1.1", 3000, 80, 80, kTcpCloseWait, 60},
      // Overdue (the timer has not run yet): 00:00, as the kernel clamps a negative delta.
      {L4Proto::kTcp, "10.0.0.11", "198.18.0.1", "198.18.1.1", 4000, 80, 80, kTcpEstablished, 1,
       false, false, 0, kT0 - seconds(2)},
      {L4Proto::kUdp, "10.0.0.9", "198.18.0.2", "198.18.1.3", 33000, 53, 5353, kUdpStateNormal,
       300},
      {L4Proto::kSctp, "10.0.0.10", "198.18.0.4", "198.18.1.7", 5000, 3868, 3868,
       kSctpEstablished, 900},
      // Persistence templates: no client port; NONE until a controlled conn is assured.
      {L4Proto::kTcp, "10.0.0.2", "198.18.0.3", "198.18.1.4", 0, 443, 443, kNone, 360, true},
      {L4Proto::kTcp, "10.0.0.8", "198.18.0.3", "198.18.1.4", 0, 443, 443, kAssured, 7200, true},
      // ip_vs_check_template: an invalidated template shows vport and dport 65535.
      {L4Proto::kTcp, "10.0.0.3", "198.18.0.3", "198.18.1.5", 0, 443, 443, kNone, 360, true,
       true},
      // A fwmark service's template: protocol IP, vaddr = htonl(fwmark) as an address, port 0.
      {kAny, "10.0.0.4", "0.0.0.7", "198.18.1.6", 0, 0, 0, kNone, 360, true, false, 7},
      {L4Proto::kTcp, "2001:db8::2", "2001:2::80", "2001:2::a0a0", 40000, 80, 80,
       kTcpEstablished, 900},
      // IPv6 fwmark template: htonl(7) in the first 32 bits of the address.
      {kAny, "2001:db8::3", "0:7::", "2001:2::a0a1", 0, 0, 0, kNone, 360, true, false, 7},
  };
  // clang-format on
  for (const ConnSpec& s : specs)
    add(s);

  const std::string want =
      "IPVS connection entries\n"
      "pro expire state       source             virtual            destination\n"
      "TCP 14:58  ESTABLISHED 10.0.0.2:45678     198.18.0.1:80      198.18.1.1:80\n"
      "TCP 01:58  FIN_WAIT    10.0.0.2:45679     198.18.0.1:80      198.18.1.2:80\n"
      "TCP 00:28  SYN_RECV    10.0.0.5:1024      198.18.0.1:80      198.18.1.1:80\n"
      "TCP 01:58  TIME_WAIT   10.0.0.6:2000      198.18.0.1:80      198.18.1.2:80\n"
      "TCP 00:58  CLOSE_WAIT  10.0.0.7:3000      198.18.0.1:80      198.18.1.1:80\n"
      "TCP 00:00  ESTABLISHED 10.0.0.11:4000     198.18.0.1:80      198.18.1.1:80\n"
      "UDP 04:58  UDP         10.0.0.9:33000     198.18.0.2:53      198.18.1.3:5353\n"
      "SCTP 14:58  ESTABLISHED 10.0.0.10:5000     198.18.0.4:3868    198.18.1.7:3868\n"
      "TCP 05:58  NONE        10.0.0.2:0         198.18.0.3:443     198.18.1.4:443\n"
      "TCP 119:58 ASSURED     10.0.0.8:0         198.18.0.3:443     198.18.1.4:443\n"
      "TCP 05:58  NONE        10.0.0.3:0         198.18.0.3:65535   198.18.1.5:65535\n"
      "IP  05:58  NONE        10.0.0.4:0         0.0.0.7:0          198.18.1.6:0\n"
      "TCP 14:58  ESTABLISHED [2001:db8::2]:40000 [2001:2::80]:80    [2001:2::a0a0]:80\n"
      "IP  05:58  NONE        [2001:db8::3]:0    [0:7::]:0          [2001:2::a0a1]:0\n";
  const std::string got = run("-Lnc");
  EXPECT_EQ(headerAndSortedRows(got, 2), headerAndSortedRows(want, 2)) << got;

  // --persistent-conn: the wider header; rows without persistence-engine data keep the short
  // format (print_conn only uses the long one when sscanf found the PE fields).
  const std::string pc = run("-Lnc --persistent-conn");
  EXPECT_EQ(pc.substr(0, pc.find('\n', pc.find('\n') + 1) + 1),
            "IPVS connection entries\n"
            "pro expire state       source             virtual            destination        "
            "pe name          pe_data\n");
  EXPECT_EQ(pc.substr(pc.find('\n', pc.find('\n') + 1) + 1),
            got.substr(got.find('\n', got.find('\n') + 1) + 1));

  // ipvsadm's list_conn neither sorts nor takes --sort/--nosort into account: same bytes.
  EXPECT_EQ(run("-Lnc --nosort"), got);
  EXPECT_EQ(run("-L -n -c --sort"), got);
  EXPECT_EQ(run("--list --numeric --connection"), got);

  // The header of -Ln shows the table's real capacity.
  EXPECT_EQ(run("-Ln").substr(0, 43), "IP Virtual Server version 1.2.1 (size=64)\nP");
}

TEST_F(ConnListingTest, ExpireCountsDownWithTheClock) {
  // One conn expiring at kT0 + 900 s: the exact listing at several instants of the dataplane
  // clock (ControlOptions::clock); the seconds left are rounded down, and never negative.
  add({L4Proto::kTcp, "10.0.0.2", "198.18.0.1", "198.18.1.1", 45678, 80, 80, kTcpEstablished, 900});
  const std::string head =
      "IPVS connection entries\n"
      "pro expire state       source             virtual            destination\n";
  const std::string tail = "  ESTABLISHED 10.0.0.2:45678     198.18.0.1:80      198.18.1.1:80\n";
  const std::pair<MonoTime, const char*> cases[] = {
      {kT0, "15:00"},
      {kT0 + millis(1), "14:59"},
      {kT0 + seconds(1), "14:59"},
      {kT0 + millis(1001), "14:58"},
      {kT0 + seconds(60), "14:00"},
      {kT0 + seconds(841), "00:59"},
      {kT0 + seconds(899), "00:01"},
      {kT0 + millis(899999), "00:00"},
      {kT0 + seconds(950), "00:00"},
  };
  for (const auto& [now, expire] : cases) {
    now_ = now;
    EXPECT_EQ(run("-Lnc"), head + "TCP " + expire + tail) << (now - kT0).count();
  }
}

TEST_F(ConnListingTest, JsonCarriesTheFields) {
  add({L4Proto::kTcp, "10.0.0.3", "198.18.0.3", "198.18.1.5", 0, 443, 443, kTemplateNone, 360, true,
       true});
  const std::string json = run("-Lnc --output=json");
  for (const char* field : {"\"protocol\": \"PROTOCOL_TCP\"", "\"virtual_port\": 65535",
                            "\"dest_port\": 65535", "\"state\": \"NONE\"", "\"expires\": \"358s\"",
                            "\"template\": true", "\"forward_method\": \"FORWARD_METHOD_MASQ\""}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
}

TEST_F(ConnListingTest, SipTemplateShowsItsCallIdWithPersistentConn) {
  // A --pe sip template (ip_vs_pe_sip.c): /proc/net/ip_vs_conn appends " sip <callid>", and
  // ipvsadm -Lnc --persistent-conn prints the long row "%-3s %-6s %-11s %-18s %-18s %-16s %-18s
  // %s"; plain -Lnc keeps the short one. The Call-ID is found in the table's PeTemplates.
  add({L4Proto::kUdp, "198.18.1.2", "198.18.1.100", "198.18.2.11", 0, 5060, 5060, kTemplateNone, 60,
       true});
  add({L4Proto::kUdp, "198.18.1.2", "198.18.1.100", "198.18.2.11", 40000, 5060, 5060,
       kUdpStateNormal, 300});
  uint32_t index = kNoConn, gen = 0;
  conns_->forEachIndexed([&](uint32_t i, const Conn& c) {
    if ((c.flags & kConnFTemplate) != 0) {
      index = i;
      gen = c.generation;
    }
  });
  ASSERT_NE(index, kNoConn);
  PeTemplateKey key{Af::kInet, L4Proto::kUdp, ip("198.18.1.2"), ip("198.18.1.100"), 5060};
  PeTemplates& pe = peTemplatesFor(*conns_);
  ASSERT_TRUE(pe.insert(key, "1-42@198.18.1.2", index, gen, PeTemplates::nextNonce()));
  const std::string pc = run("-Lnc --persistent-conn");
  EXPECT_EQ(headerAndSortedRows(pc, 2),
            headerAndSortedRows(
                "IPVS connection entries\n"
                "pro expire state       source             virtual            destination        "
                "pe name          pe_data\n"
                "UDP 00:58  NONE        198.18.1.2:0       198.18.1.100:5060  198.18.2.11:5060 "
                "sip                1-42@198.18.1.2\n"
                "UDP 04:58  UDP         198.18.1.2:40000   198.18.1.100:5060  198.18.2.11:5060\n",
                2))
      << pc;
  EXPECT_NE(run("-Lnc").find("UDP 00:58  NONE        198.18.1.2:0       198.18.1.100:5060  "
                             "198.18.2.11:5060\n"),
            std::string::npos);
  // A record naming another entry of the table is not shown on it.
  std::optional<PeTemplates::Ref> ref = pe.find(key, "1-42@198.18.1.2");
  ASSERT_TRUE(ref.has_value());
  pe.erase(*ref);
  EXPECT_EQ(run("-Lnc --persistent-conn").find("sip "), std::string::npos);
}

}  // namespace
}  // namespace lb::lbd
