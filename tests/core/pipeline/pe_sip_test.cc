// SPDX-License-Identifier: Apache-2.0
// The SIP persistence engine (core/pipeline/pe_sip.h): the Call-ID parser against the kernel's
// get_callid / ct_sip_get_header rules, the Call-ID store, and --pe sip services end to end
// through the pipeline (templates keyed by Call-ID, timeouts with a fake clock, drops).
#include "core/pipeline/pe_sip.h"

#include <string>

#include "gtest/gtest.h"

#include "tests/core/pipeline/pipeline_fixture.h"

namespace lb::testing {
namespace {

std::optional<std::string> callId(const std::string& msg) {
  std::optional<absl::string_view> v = sipCallId(msg);
  if (!v)
    return std::nullopt;
  return std::string(*v);
}

// Recorded from sipp 3.6's uac scenario (Call-ID "<n>-<pid>@<ip>") and RFC 3261 §24.2.
const char kInvite[] =
    "INVITE sip:service@198.18.100.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 198.18.1.2:5061;branch=z9hG4bK-1234-1-0\r\n"
    "From: sipp <sip:sipp@198.18.1.2:5061>;tag=1234SIPpTag001\r\n"
    "To: service <sip:service@198.18.100.1:5060>\r\n"
    "Call-ID: 1-1234@198.18.1.2\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: sip:sipp@198.18.1.2:5061\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: Performance Test\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length:   129\r\n"
    "\r\n"
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 198.18.1.2\r\n"
    "s=-\r\n"
    "i=not a call id\r\n"
    "c=IN IP4 198.18.1.2\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n";

const char kBye[] =
    "BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bKnashds10\r\n"
    "Max-Forwards: 70\r\n"
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"
    "Call-ID: a84b4c76e66710\r\n"
    "CSeq: 231 BYE\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

TEST(SipCallIdTest, InviteAndBye) {
  EXPECT_EQ(callId(kInvite), "1-1234@198.18.1.2");
  EXPECT_EQ(callId(kBye), "a84b4c76e66710");
}

TEST(SipCallIdTest, CompactFormAndAnyCase) {
  EXPECT_EQ(callId("ACK sip:x SIP/2.0\r\ni: abc@host\r\n\r\n"), "abc@host");
  EXPECT_EQ(callId("ACK sip:x SIP/2.0\r\nI:abc\r\n"), "abc");
  EXPECT_EQ(callId("ACK sip:x SIP/2.0\r\ncall-id: Abc\r\n"), "Abc");
  EXPECT_EQ(callId("ACK sip:x SIP/2.0\r\nCALL-ID:x\n"), "x");
  // A compact name must be followed by a non-letter: "In-Reply-To" is not "i".
  EXPECT_EQ(callId("ACK sip:x SIP/2.0\r\nIn-Reply-To: zz\r\nCall-ID: id1\r\n"), "id1");
}

TEST(SipCallIdTest, LineEndingsAndWhitespace) {
  // RFC 2543 allows CR or LF alone.
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\nCall-ID: lf\n"), "lf");
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\rCall-ID: cr\r"), "cr");
  // Spaces around the colon, and a folded (continuation) line before the value. The kernel's
  // sip_skip_whitespace lets its loop step past the first character after a continuation
  // line's blanks, so that character is not part of the Call-ID: reproduced as is.
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID   :   spaced\r\n"), "spaced");
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID:\r\n \t folded@h\r\n"), "olded@h");
  // A tab before the colon is not whitespace to sip_skip_whitespace: the search stops.
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID\t: tab\r\n"), std::nullopt);
  // Continuation lines are not headers.
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nSubject: a\r\n Call-ID: no\r\nCall-ID: yes\r\n"), "yes");
  // The request line is never a header.
  EXPECT_EQ(callId("Call-ID: first-line\r\n"), std::nullopt);
}

TEST(SipCallIdTest, MalformedValues) {
  // No Call-ID at all, and an empty payload.
  EXPECT_EQ(callId("OPTIONS sip:x SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n"), std::nullopt);
  EXPECT_EQ(callId(""), std::nullopt);
  // Not followed by a line terminator: the data ends, or a non-word character follows.
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID: end"), std::nullopt);
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID: a b\r\n"), std::nullopt);
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID: a;b\r\n"), std::nullopt);
  // "@" must be followed by a word.
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID: a@\r\n"), std::nullopt);
  // Something other than a colon after the name ends the search, even with a later header.
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-IDx: 1\r\nCall-ID: 2\r\n"), std::nullopt);
  // An unparsable value (callid_len 0) makes the kernel search again from dataoff + matchoff,
  // matchoff counting from the payload's start: the next header is found ...
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID: ;\r\nCall-ID: b\r\n"), "b");
  // ... but after a second bad value the offsets add up past the third header ("c", at 17;
  // the search resumes at 6 + 12 = 18): the kernel takes the fourth.
  EXPECT_EQ(callId("B\r\ni: ;\r\ni: ;\r\ni: c\r\ni: d\r\n"), "d");
}

TEST(SipCallIdTest, FoldAtTheEndOfTheData) {
  // Found by sip_callid_fuzz: a name followed by a continuation line of blanks that ends the
  // payload (the kernel's sip_skip_whitespace steps one byte past the end; it finds nothing).
  EXPECT_EQ(callId(std::string("%\0\x1a\0\0\0\0x S\nCall-ID\r\n ", 21)), std::nullopt);
  EXPECT_EQ(callId("B\r\nCall-ID\r\n \t"), std::nullopt);
  EXPECT_EQ(callId("B\r\nCall-ID:\r\n "), std::nullopt);
  EXPECT_EQ(callId("B\r\ni\n "), std::nullopt);
}

TEST(SipCallIdTest, LengthLimit) {
  std::string id255(255, 'a');
  std::string id256(256, 'a');
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID: " + id255 + "\r\n"), id255);
  EXPECT_EQ(callId("BYE sip:x SIP/2.0\r\nCall-ID: " + id256 + "\r\n"), std::nullopt);
}

TEST(SipCallIdTest, KernelWordCharacters) {
  // iswordc: alnum and ! " % ( ) * + , - . / : < > ? [ \ ] _ ` { } ~ (no ' = $ & # ; |).
  EXPECT_EQ(callId("B\r\nCall-ID: a!\"%()*+,-./:<>?[\\]_`{}~z\r\n"), "a!\"%()*+,-./:<>?[\\]_`{}~z");
  EXPECT_EQ(callId("B\r\nCall-ID: a'b\r\n"), std::nullopt);
  EXPECT_EQ(callId("B\r\nCall-ID: a=b\r\n"), std::nullopt);
  // Latin-1 letters are alnum to the kernel's ctype; 0x80-0xbf are not.
  EXPECT_EQ(callId("B\r\nCall-ID: \xe9t\xe9\r\n"), "\xe9t\xe9");
  EXPECT_EQ(callId("B\r\nCall-ID: a\xa0\r\n"), std::nullopt);
}

TEST(PeTemplatesTest, FindInsertEraseAndFull) {
  PeTemplates store(2, 7);
  PeTemplateKey k{Af::kInet, L4Proto::kUdp, ip("198.18.1.2"), ip("198.18.100.1"), 5060};
  EXPECT_FALSE(store.find(k, "a"));
  ASSERT_TRUE(store.insert(k, "a", 10, 3, 100));
  ASSERT_TRUE(store.insert(k, "b", 11, 4, 101));
  EXPECT_FALSE(store.insert(k, "c", 12, 5, 102));  // full
  EXPECT_EQ(store.full(), 1u);
  auto ra = store.find(k, "a");
  ASSERT_TRUE(ra);
  EXPECT_EQ(ra->conn_index, 10u);
  EXPECT_EQ(ra->generation, 3u);
  EXPECT_EQ(ra->nonce, 100u);
  // Other keys do not match: another client net, vport, protocol.
  PeTemplateKey k2 = k;
  k2.caddr = ip("198.18.1.3");
  EXPECT_FALSE(store.find(k2, "a"));
  k2 = k;
  k2.vport = 5061;
  EXPECT_FALSE(store.find(k2, "a"));
  k2 = k;
  k2.proto = L4Proto::kTcp;
  EXPECT_FALSE(store.find(k2, "a"));
  store.erase(*ra);
  EXPECT_FALSE(store.find(k, "a"));
  EXPECT_EQ(store.size(), 1u);
  ASSERT_TRUE(store.insert(k, "c", 12, 5, 102));  // the freed record is reused
  EXPECT_TRUE(store.find(k, "c"));
  EXPECT_TRUE(store.find(k, "b"));
}

constexpr char kVip[] = "198.18.100.1";
constexpr char kRs1[] = "198.18.2.1";
constexpr char kRs2[] = "198.18.2.2";
constexpr char kClient[] = "198.18.1.2";

std::string request(const std::string& method, const std::string& call_id) {
  return method + " sip:service@198.18.100.1:5060 SIP/2.0\r\n" +
         "Via: SIP/2.0/UDP 198.18.1.2:5061;branch=z9hG4bK-1\r\n" + "Call-ID: " + call_id +
         "\r\nCSeq: 1 " + method + "\r\nContent-Length: 0\r\n\r\n";
}

class PeSipPipelineTest : public PipelineFixture {
 protected:
  void SetUp() override {
    key_ = udpKey(kVip, 5060);
    ServiceConfig s;
    s.key = key_;
    s.scheduler = "rr";
    s.flags = kSvcPersistent;
    s.timeout_s = 60;
    s.pe_name = "sip";
    absl::Status st = table_->addService(s);
    ASSERT_TRUE(st.ok()) << st;
    addDest(key_, dest(kRs1, 5060, FwdMethod::kMasq));
    addDest(key_, dest(kRs2, 5060, FwdMethod::kMasq));
  }

  // The real server a request went to, or "" when it was not forwarded.
  std::string sendSip(const char* client, uint16_t sport, const std::string& msg) {
    Result r = send(PacketBuilder::udp(client, sport, kVip, 5060).payload(msg).build());
    last_ = r;
    if (r.verdict != Verdict::kForward)
      return "";
    return IpAddr::fromBytes(Af::kInet, r.out.data() + 16).toString();
  }

  std::vector<Conn> templates() const {
    std::vector<Conn> out;
    for (const Conn& c : conns()) {
      if ((c.flags & kConnFTemplate) != 0)
        out.push_back(c);
    }
    return out;
  }

  ServiceKey key_;
  Result last_;
};

TEST_F(PeSipPipelineTest, SameCallIdSameServerWhateverTheSourcePort) {
  // rr alone would alternate; each call's requests stick to the server its INVITE got.
  std::string a = sendSip(kClient, 40000, request("INVITE", "call-a@h"));
  std::string b = sendSip(kClient, 40001, request("INVITE", "call-b@h"));
  ASSERT_NE(a, "");
  ASSERT_NE(b, "");
  EXPECT_NE(a, b);
  for (uint16_t port = 40100; port < 40110; ++port) {
    EXPECT_EQ(sendSip(kClient, port, request("ACK", "call-a@h")), a) << port;
    EXPECT_EQ(sendSip(kClient, port + 100, request("BYE", "call-b@h")), b) << port;
  }
  // Compact form, same Call-ID: same template.
  EXPECT_EQ(sendSip(kClient, 40500, "BYE sip:s SIP/2.0\r\ni: call-a@h\r\n\r\n"), a);
  // Two templates, each with caddr = the client (netmask /32), cport 0, vport 5060, and the
  // kernel's pe_data: the Call-ID.
  std::vector<Conn> t = templates();
  ASSERT_EQ(t.size(), 2u);
  int controlled = 0;
  for (const Conn& c : t) {
    EXPECT_EQ(c.caddr, ip(kClient));
    EXPECT_EQ(c.cport, 0);
    EXPECT_EQ(c.vport, 5060);
    controlled += c.n_control.load();
  }
  EXPECT_EQ(controlled, 12 + 11);  // every request made a conn (a new source port each)
  std::map<std::string, std::string> data;
  peTemplatesFor(*conns_).forEach(
      [&](uint32_t, uint32_t, const PeTemplateKey& k, absl::string_view id) {
        EXPECT_EQ(k.caddr, ip(kClient));
        EXPECT_EQ(k.vport, 5060);
        data[std::string(id)] = "x";
      });
  EXPECT_EQ(data.size(), 2u);
  EXPECT_EQ(data.count("call-a@h"), 1u);
  EXPECT_EQ(data.count("call-b@h"), 1u);
  EXPECT_EQ(pipe_->counters().templates_created.value(), 2u);
}

TEST_F(PeSipPipelineTest, AnotherClientAddressIsAnotherTemplate) {
  // ip_vs_sip_ct_match compares the masked client address too: with the default /32 netmask
  // the same Call-ID from another address is scheduled afresh.
  std::string a = sendSip(kClient, 40000, request("INVITE", "same"));
  std::string b = sendSip("198.18.1.3", 40000, request("INVITE", "same"));
  EXPECT_NE(a, b);
  EXPECT_EQ(templates().size(), 2u);
}

TEST_F(PeSipPipelineTest, NoCallIdIsDropped) {
  // ip_vs_sched_persist: fill_param failing is *ignored = -1, NF_DROP (no ICMP).
  EXPECT_EQ(sendSip(kClient, 40000, "OPTIONS sip:s SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n"), "");
  EXPECT_EQ(last_.verdict, Verdict::kDrop);
  EXPECT_EQ(last_.reason, DropReason::kPeData);
  EXPECT_TRUE(last_.icmp.empty());
  EXPECT_EQ(sendSip(kClient, 40001, ""), "");
  EXPECT_EQ(
      sendSip(kClient, 40002, "BYE sip:s SIP/2.0\r\nCall-ID: " + std::string(256, 'x') + "\r\n"),
      "");
  EXPECT_EQ(drops(DropReason::kPeData), 3u);
  EXPECT_TRUE(conns().empty());
}

TEST_F(PeSipPipelineTest, TemplateLivesForThePersistenceTimeout) {
  std::string a = sendSip(kClient, 40000, request("INVITE", "t1"));
  ASSERT_NE(a, "");
  // The UDP conn (300 s default UDP timeout) outlives the 60 s template; the template waits for
  // its controlled conn (expire_later, 60 s at a time).
  clock_.advance(seconds(30));
  EXPECT_EQ(sendSip(kClient, 40001, request("ACK", "t1")), a);  // re-arms the template: 60 s
  std::vector<Conn> t = templates();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].expires, clock_.now() + seconds(60));
  // Once the conns are gone and the template expired, the Call-ID is free: rr goes on.
  clock_.advance(seconds(400));
  conns_->expire(clock_.now());
  clock_.advance(seconds(120));
  conns_->expire(clock_.now());
  EXPECT_TRUE(templates().empty());
  std::string next = sendSip(kClient, 40002, request("INVITE", "t1"));
  EXPECT_NE(next, "");
  EXPECT_NE(next, a);
  // The dead template's record was replaced, not kept beside the new one.
  EXPECT_EQ(peTemplatesFor(*conns_).size(), 1u);
}

TEST_F(PeSipPipelineTest, InvalidTemplateIsReplaced) {
  std::string a = sendSip(kClient, 40000, request("INVITE", "q"));
  ASSERT_NE(a, "");
  // The template's dest goes away: the next request of the call gets the other server.
  absl::Status st = table_->deleteDest(key_, ip(a.c_str()), 5060);
  ASSERT_TRUE(st.ok()) << st;
  std::string b = sendSip(kClient, 40001, request("ACK", "q"));
  EXPECT_NE(b, "");
  EXPECT_NE(b, a);
  EXPECT_EQ(sendSip(kClient, 40002, request("BYE", "q")), b);
}

TEST_F(PeSipPipelineTest, TcpToASipServiceIsDropped) {
  ServiceKey tk = tcpKey(kVip, 5060);
  ServiceConfig s;
  s.key = tk;
  s.scheduler = "rr";
  s.flags = kSvcPersistent;
  s.timeout_s = 60;
  s.pe_name = "sip";
  ASSERT_TRUE(table_->addService(s).ok());
  addDest(tk, dest(kRs1, 5060, FwdMethod::kMasq));
  Result r = send(PacketBuilder::tcp(kClient, 40000, kVip, 5060, kTcpSyn).build());
  EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(r.reason, DropReason::kPeData);
}

}  // namespace
}  // namespace lb::testing
