// SPDX-License-Identifier: Apache-2.0
#include "core/sync/sync_codec.h"

#include <algorithm>
#include <cstring>

#include "core/proto/proto.h"

namespace lb {

namespace {

constexpr uint8_t kTypeInet6 = 0x1;  // STYPE_F_INET6
constexpr int kSverShift = 12;       // SVER_SHIFT
constexpr uint16_t kSverMask = 0x0fff;
constexpr size_t kIpv4UdpHeaders = 20 + 8;
constexpr size_t kIpv6UdpHeaders = 40 + 8;
// Option-seen bits (IPVS_OPT_F_*), plus lbd's.
constexpr uint32_t kSeenSeq = 1u << (kSyncOptSeqData - 1);
constexpr uint32_t kSeenPeData = 1u << (kSyncOptPeData - 1);
constexpr uint32_t kSeenPeName = 1u << (kSyncOptPeName - 1);
constexpr uint32_t kSeenLbd = 1u << 16;

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

uint32_t get32le(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

void put32le(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// struct ip_vs_seq: three u32 in network order (v1, hton_seq) or host order (v0's memcpy).
void putSeq(uint8_t* p, const SyncSeq& s, bool le) {
  auto put = le ? put32le : put32;
  put(p, s.init_seq);
  put(p + 4, s.delta);
  put(p + 8, s.previous_delta);
}

SyncSeq getSeq(const uint8_t* p, bool le) {
  auto get = le ? get32le : get32;
  return SyncSeq{get(p), get(p + 4), get(p + 8)};
}

void count(SyncDecodeCounters& c, SyncDropReason r) {
  ++c.drops[static_cast<size_t>(r)];
}

// ip_vs_proto_get + pp->num_states: the protocols IPVS registers that lbd keeps conns for
// (TCP, UDP, SCTP; the kernel's AH/ESP register no conns that sync) and their state counts.
bool protocolKnown(uint8_t protocol, uint16_t state, bool* state_ok) {
  switch (static_cast<L4Proto>(protocol)) {
    case L4Proto::kTcp:
      *state_ok = state < kTcpStateCount;
      return true;
    case L4Proto::kUdp:
      *state_ok = state < 1;  // IP_VS_UDP_S_LAST
      return true;
    case L4Proto::kSctp:
      *state_ok = state < kSctpStateCount;
      return true;
    default:
      return false;
  }
}

size_t lbdOptionLen(const SyncLbdData& d) {
  if (d.laddr.af() == Af::kInet)
    return 16;
  if (d.laddr.af() == Af::kInet6)
    return 28;
  return 12;
}

// Decodes kSyncOptLbd's data; false when its length is not 12, 16 or 28.
bool parseLbd(const uint8_t* p, size_t len, SyncLbdData* d) {
  if (len != 12 && len != 16 && len != 28)
    return false;
  d->flags = get32(p);
  d->seq_delta = get32(p + 4);
  d->lport = get16(p + 8);
  if (len == 16)
    d->laddr = IpAddr::fromBytes(Af::kInet, p + 12);
  else if (len == 28)
    d->laddr = IpAddr::fromBytes(Af::kInet6, p + 12);
  return true;
}

// Outcome of one v1 entry (ip_vs_proc_sync_conn's return: < 0 drops the rest of the datagram,
// > 0 skips the entry).
enum class EntryOutcome : uint8_t { kDelivered, kSkipped, kDropMessage };

EntryOutcome decodeV1Entry(const uint8_t* p,
                           const uint8_t* end,
                           absl::FunctionRef<void(const SyncConn&)> fn,
                           SyncDecodeCounters& counters) {
  SyncConn c;
  const uint8_t type = p[0];
  size_t fixed;
  if ((type & kTypeInet6) != 0) {
    c.af = Af::kInet6;
    fixed = kSyncConnV6Size;
  } else if (type == 0) {
    c.af = Af::kInet;
    fixed = kSyncConnV4Size;
  } else {
    count(counters, SyncDropReason::kBadType);
    return EntryOutcome::kDropMessage;
  }
  if (static_cast<size_t>(end - p) < fixed) {
    count(counters, SyncDropReason::kConnShort);
    return EntryOutcome::kDropMessage;
  }
  c.protocol = p[1];
  c.flags = get32(p + 4);
  c.state = get16(p + 8);
  c.cport = get16(p + 10);
  c.vport = get16(p + 12);
  c.dport = get16(p + 14);
  c.fwmark = get32(p + 16);
  c.timeout_s = get32(p + 20);
  const size_t alen = c.af == Af::kInet ? 4 : 16;
  c.caddr = IpAddr::fromBytes(c.af, p + 24);
  c.vaddr = IpAddr::fromBytes(c.af, p + 24 + alen);
  c.daddr = IpAddr::fromBytes(c.af, p + 24 + 2 * alen);

  // Options: type, length (> 0), data; all within the entry's size.
  const uint8_t* o = p + fixed;
  uint32_t seen = 0;
  bool unknown_mandatory = false;
  while (o < end) {
    if (end - o < 2) {
      count(counters, SyncDropReason::kOptionTruncated);
      return EntryOutcome::kDropMessage;
    }
    const uint8_t ptype = o[0];
    const size_t plen = o[1];
    o += 2;
    if (plen == 0 || static_cast<size_t>(end - o) < plen) {
      count(counters, SyncDropReason::kOptionLength);
      return EntryOutcome::kDropMessage;
    }
    // lbd's option is matched whole: the kernel reads it as an optional (F_PARAM) unknown one.
    if (ptype == kSyncOptLbd) {
      if ((seen & kSeenLbd) != 0 || !parseLbd(o, plen, &c.lbd)) {
        count(counters, SyncDropReason::kLbdOption);
        return EntryOutcome::kDropMessage;
      }
      seen |= kSeenLbd;
      c.has_lbd = true;
      o += plen;
      continue;
    }
    switch (ptype & ~kSyncOptFParam) {
      case kSyncOptSeqData:
        if (plen != kSyncConnOptionsSize || (seen & kSeenSeq) != 0) {
          count(counters, SyncDropReason::kSeqOption);
          return EntryOutcome::kDropMessage;
        }
        seen |= kSeenSeq;
        c.has_seq = true;
        c.in_seq = getSeq(o, false);
        c.out_seq = getSeq(o + 12, false);
        break;
      case kSyncOptPeData:
        if (plen > kSyncPeDataMax || (seen & kSeenPeData) != 0) {
          count(counters, SyncDropReason::kPeDataOption);
          return EntryOutcome::kDropMessage;
        }
        seen |= kSeenPeData;
        c.pe_data = absl::string_view(reinterpret_cast<const char*>(o), plen);
        break;
      case kSyncOptPeName:
        if (plen > kSyncPeNameMax || (seen & kSeenPeName) != 0) {
          count(counters, SyncDropReason::kPeNameOption);
          return EntryOutcome::kDropMessage;
        }
        seen |= kSeenPeName;
        c.pe_name = absl::string_view(reinterpret_cast<const char*>(o), plen);
        break;
      default:
        // "Unknown mandatory param": the kernel stops parsing and skips the entry (retc 20),
        // but only after the options before it passed; so do we, without reading further.
        if ((ptype & kSyncOptFParam) == 0)
          unknown_mandatory = true;
        break;
    }
    if (unknown_mandatory)
      break;
    o += plen;
  }
  if (unknown_mandatory) {
    count(counters, SyncDropReason::kUnknownOption);
    return EntryOutcome::kSkipped;
  }
  // Protocol and state, for conns only (templates: any state, the kernel only logs).
  if ((c.flags & kConnFTemplate) == 0) {
    bool state_ok = false;
    if (!protocolKnown(c.protocol, c.state, &state_ok)) {
      count(counters, SyncDropReason::kBadProtocol);
      return EntryOutcome::kSkipped;
    }
    if (!state_ok) {
      count(counters, SyncDropReason::kBadState);
      return EntryOutcome::kSkipped;
    }
  }
  // ip_vs_conn_fill_param_sync: PE data needs a PE name (whether that engine exists is the
  // receiver's business).
  if (!c.pe_data.empty() && c.pe_name.empty()) {
    count(counters, SyncDropReason::kPeWithoutName);
    return EntryOutcome::kSkipped;
  }
  ++counters.conns;
  fn(c);
  return EntryOutcome::kDelivered;
}

// ip_vs_process_message's v1 branch.
size_t decodeV1(absl::Span<const uint8_t> d,
                absl::FunctionRef<void(const SyncConn&)> fn,
                SyncDecodeCounters& counters) {
  const uint8_t* const buf = d.data();
  const uint8_t* const buf_end = buf + d.size();
  const size_t nr_conns = buf[4];
  const uint8_t* next = buf + kSyncMesgHeaderSize;
  size_t delivered = 0;
  for (size_t i = 0; i < nr_conns; ++i) {
    const uint8_t* p = next;
    // The kernel's pointer checks, as lengths (next may lie past the end after padding).
    if (p > buf_end || static_cast<size_t>(buf_end - p) < kSyncConnV4Size) {
      count(counters, SyncDropReason::kConnTruncated);
      return delivered;
    }
    const uint16_t ver_size = get16(p + 2);
    const size_t size = ver_size & kSverMask;
    if (static_cast<size_t>(buf_end - p) < size) {
      count(counters, SyncDropReason::kConnOverrun);
      return delivered;
    }
    if ((ver_size >> kSverShift) != 0) {
      count(counters, SyncDropReason::kConnVersion);
      return delivered;
    }
    EntryOutcome r = decodeV1Entry(p, p + size, fn, counters);
    if (r == EntryOutcome::kDropMessage)
      return delivered;
    if (r == EntryOutcome::kDelivered)
      ++delivered;
    next = p + ((size + 3) & ~size_t{3});
  }
  return delivered;
}

// ip_vs_process_message_v0.
size_t decodeV0(absl::Span<const uint8_t> d,
                absl::FunctionRef<void(const SyncConn&)> fn,
                SyncDecodeCounters& counters) {
  const uint8_t* const buf = d.data();
  const uint8_t* const buf_end = buf + d.size();
  const size_t nr_conns = buf[0];
  const uint8_t* p = buf + kSyncMesgV0HeaderSize;
  size_t delivered = 0;
  for (size_t i = 0; i < nr_conns; ++i) {
    if (static_cast<size_t>(buf_end - p) < kSyncConnV0Size) {
      count(counters, SyncDropReason::kV0ConnTruncated);
      return delivered;
    }
    SyncConn c;
    c.af = Af::kInet;
    c.protocol = p[1];
    c.cport = get16(p + 2);
    c.vport = get16(p + 4);
    c.dport = get16(p + 6);
    c.caddr = IpAddr::fromBytes(Af::kInet, p + 8);
    c.vaddr = IpAddr::fromBytes(Af::kInet, p + 12);
    c.daddr = IpAddr::fromBytes(Af::kInet, p + 16);
    c.flags = get16(p + 20);
    c.state = get16(p + 22);
    const uint8_t* opt = p + kSyncConnV0Size;
    if ((c.flags & kSyncConnFSeqMask) != 0) {
      if (static_cast<size_t>(buf_end - p) < kSyncConnV0Size + kSyncConnOptionsSize) {
        count(counters, SyncDropReason::kV0OptionsTruncated);
        return delivered;
      }
      c.has_seq = true;
      c.in_seq = getSeq(opt, true);
      c.out_seq = getSeq(opt + 12, true);
      p += kSyncConnV0Size + kSyncConnOptionsSize;
    } else {
      p += kSyncConnV0Size;
    }
    if ((c.flags & kConnFTemplate) == 0) {
      bool state_ok = false;
      if (!protocolKnown(c.protocol, c.state, &state_ok)) {
        count(counters, SyncDropReason::kBadProtocol);
        continue;
      }
      if (!state_ok) {
        count(counters, SyncDropReason::kBadState);
        continue;
      }
    }
    ++counters.conns;
    ++delivered;
    fn(c);
  }
  return delivered;
}

}  // namespace

absl::string_view syncDropReasonName(SyncDropReason r) {
  static constexpr absl::string_view kNames[] = {
#define LB_SYNC_DROP_NAME(name, str) str,
      LB_SYNC_DROP_REASONS(LB_SYNC_DROP_NAME)
#undef LB_SYNC_DROP_NAME
  };
  const auto i = static_cast<size_t>(r);
  return i < kSyncDropReasonCount ? kNames[i] : absl::string_view("unknown");
}

size_t decodeSyncMessage(absl::Span<const uint8_t> datagram,
                         uint8_t backup_syncid,
                         absl::FunctionRef<void(const SyncConn&)> fn,
                         SyncDecodeCounters& counters) noexcept {
  ++counters.messages;
  if (datagram.size() < kSyncMesgV0HeaderSize) {
    count(counters, SyncDropReason::kTooShort);
    return 0;
  }
  const uint8_t* m = datagram.data();
  if (get16(m + 2) != datagram.size()) {
    count(counters, SyncDropReason::kBadSize);
    return 0;
  }
  if (backup_syncid != 0 && m[1] != backup_syncid) {
    count(counters, SyncDropReason::kSyncId);
    return 0;
  }
  // The kernel reads version and spare of struct ip_vs_sync_mesg even from a 4..7-byte
  // datagram (beyond its length, in its receive buffer); here such a datagram is v0.
  if (datagram.size() >= kSyncMesgHeaderSize && static_cast<int8_t>(m[5]) == kSyncProtoVersion &&
      m[0] == 0 && m[6] == 0 && m[7] == 0) {
    return decodeV1(datagram, fn, counters);
  }
  ++counters.messages_v0;
  return decodeV0(datagram, fn, counters);
}

uint32_t syncMaxLen(SyncRole role, bool ipv6_group, uint32_t configured, uint32_t dev_mtu) {
  const uint32_t hlen = static_cast<uint32_t>(ipv6_group ? kIpv6UdpHeaders : kIpv4UdpHeaders);
  if (configured != 0) {
    const uint32_t lo = role == SyncRole::kBackup ? 1024 : 1;
    return std::clamp(configured, lo, 65535 - hlen);
  }
  const uint32_t mtu = role == SyncRole::kBackup ? std::clamp(dev_mtu, 1500u, 65535u) : 1500u;
  return mtu - hlen;
}

SyncMessageBuilder::SyncMessageBuilder(absl::Span<uint8_t> buf,
                                       size_t maxlen,
                                       uint8_t syncid,
                                       int version)
    : buf_(buf), maxlen_(maxlen), syncid_(syncid), version_(version == 0 ? 0 : 1) {
  reset();
}

void SyncMessageBuilder::reset() noexcept {
  nr_conns_ = 0;
  const size_t hdr = version_ == 0 ? kSyncMesgV0HeaderSize : kSyncMesgHeaderSize;
  if (buf_.size() < hdr) {
    size_ = 0;
    return;
  }
  std::memset(buf_.data(), 0, hdr);
  // ip_vs_sync_buff_create / _v0.
  if (version_ == 0) {
    buf_[0] = 0;  // nr_conns
    buf_[1] = syncid_;
  } else {
    buf_[0] = 0;  // reserved: "old nr_conns i.e. must be zero now"
    buf_[1] = syncid_;
    buf_[4] = 0;  // nr_conns
    buf_[5] = static_cast<uint8_t>(kSyncProtoVersion);
  }
  size_ = hdr;
  put16(buf_.data() + 2, static_cast<uint16_t>(size_));
}

size_t SyncMessageBuilder::entrySize(const SyncConn& c, int version) noexcept {
  if (version == 0) {
    if (c.af != Af::kInet)
      return 0;
    return (c.flags & kSyncConnFSeqMask) != 0 ? kSyncConnV0Size + kSyncConnOptionsSize
                                              : kSyncConnV0Size;
  }
  if (c.af != Af::kInet && c.af != Af::kInet6)
    return 0;
  if (c.pe_data.size() > kSyncPeDataMax || c.pe_name.size() > kSyncPeNameMax)
    return 0;
  size_t len = c.af == Af::kInet6 ? kSyncConnV6Size : kSyncConnV4Size;
  if (c.has_seq)
    len += 2 + kSyncConnOptionsSize;
  // The kernel sends PE_NAME only with PE_DATA.
  if (!c.pe_data.empty()) {
    len += 2 + c.pe_data.size();
    if (!c.pe_name.empty())
      len += 2 + c.pe_name.size();
  }
  if (c.has_lbd)
    len += 2 + lbdOptionLen(c.lbd);
  return len;
}

SyncMessageBuilder::AddResult SyncMessageBuilder::add(const SyncConn& c) noexcept {
  const size_t len = entrySize(c, version_);
  if (len == 0 || size_ == 0)
    return AddResult::kUnencodable;
  if (nr_conns_ == 255)
    return AddResult::kFull;
  const size_t pad = version_ == 0 ? 0 : ((4 - size_) & 3);
  const size_t need = size_ + pad + len;
  // ip_vs_sync_buff_create: a fresh buffer holds max(entry + header, sync_maxlen).
  if (need > buf_.size() || need > 0xffff || (need > maxlen_ && nr_conns_ != 0))
    return nr_conns_ == 0 ? AddResult::kUnencodable : AddResult::kFull;
  uint8_t* p = buf_.data() + size_;
  std::memset(p, 0, pad + len);
  p += pad;
  if (version_ == 0) {
    // ip_vs_sync_conn_v0: reserved, protocol, ports, addresses, flags (16 bits), state.
    p[0] = 0;
    p[1] = c.protocol;
    put16(p + 2, c.cport);
    put16(p + 4, c.vport);
    put16(p + 6, c.dport);
    std::memcpy(p + 8, c.caddr.data(), 4);
    std::memcpy(p + 12, c.vaddr.data(), 4);
    std::memcpy(p + 16, c.daddr.data(), 4);
    put16(p + 20, static_cast<uint16_t>(c.flags & kSyncConnFWireMask));
    put16(p + 22, c.state);
    if ((c.flags & kSyncConnFSeqMask) != 0) {
      putSeq(p + 24, c.in_seq, true);
      putSeq(p + 36, c.out_seq, true);
    }
    buf_[0] = static_cast<uint8_t>(nr_conns_ + 1);
  } else {
    // ip_vs_sync_conn: type, protocol, ver_size (version 0), flags, state, ports, fwmark,
    // timeout, addresses, then SEQ_DATA, PE_DATA, PE_NAME; lbd's option last.
    p[0] = c.af == Af::kInet6 ? kTypeInet6 : 0;
    p[1] = c.protocol;
    put16(p + 2, static_cast<uint16_t>(len & kSverMask));
    put32(p + 4, c.flags & kSyncConnFWireMask);
    put16(p + 8, c.state);
    put16(p + 10, c.cport);
    put16(p + 12, c.vport);
    put16(p + 14, c.dport);
    put32(p + 16, c.fwmark);
    put32(p + 20, c.timeout_s);
    const size_t alen = c.af == Af::kInet ? 4 : 16;
    std::memcpy(p + 24, c.caddr.data(), alen);
    std::memcpy(p + 24 + alen, c.vaddr.data(), alen);
    std::memcpy(p + 24 + 2 * alen, c.daddr.data(), alen);
    uint8_t* o = p + 24 + 3 * alen;
    if (c.has_seq) {
      o[0] = kSyncOptSeqData;
      o[1] = static_cast<uint8_t>(kSyncConnOptionsSize);
      putSeq(o + 2, c.in_seq, false);
      putSeq(o + 14, c.out_seq, false);
      o += 2 + kSyncConnOptionsSize;
    }
    if (!c.pe_data.empty()) {
      o[0] = kSyncOptPeData;
      o[1] = static_cast<uint8_t>(c.pe_data.size());
      std::memcpy(o + 2, c.pe_data.data(), c.pe_data.size());
      o += 2 + c.pe_data.size();
      if (!c.pe_name.empty()) {
        o[0] = kSyncOptPeName;
        o[1] = static_cast<uint8_t>(c.pe_name.size());
        std::memcpy(o + 2, c.pe_name.data(), c.pe_name.size());
        o += 2 + c.pe_name.size();
      }
    }
    if (c.has_lbd) {
      const size_t olen = lbdOptionLen(c.lbd);
      o[0] = kSyncOptLbd;
      o[1] = static_cast<uint8_t>(olen);
      put32(o + 2, c.lbd.flags);
      put32(o + 6, c.lbd.seq_delta);
      put16(o + 10, c.lbd.lport);
      if (olen > 12)
        std::memcpy(o + 14, c.lbd.laddr.data(), olen - 12);
    }
    buf_[4] = static_cast<uint8_t>(nr_conns_ + 1);
  }
  ++nr_conns_;
  size_ = need;
  put16(buf_.data() + 2, static_cast<uint16_t>(size_));
  return AddResult::kAdded;
}

}  // namespace lb
