// SPDX-License-Identifier: Apache-2.0
// IPVS connection-sync messages on the wire, versions 1 and 0: the codec half of the kernel's
// net/netfilter/ipvs/ip_vs_sync.c (struct ip_vs_sync_mesg / ip_vs_sync_mesg_v0,
// ip_vs_sync_v4 / ip_vs_sync_v6 / ip_vs_sync_conn_v0, the option TLVs; ip_vs_sync_conn's
// encoding, ip_vs_process_message / ip_vs_proc_sync_conn / ip_vs_process_message_v0's checks).
// Flag values from include/uapi/linux/ip_vs.h. Pure: no sockets, no clock, no allocation.
//
// Wire layout (all integers big-endian unless said otherwise):
//   v1 header (8 B): reserved=0 u8 | syncid u8 | size u16 | nr_conns u8 | version=1 s8 | spare=0
//     u16. Then nr_conns entries, each starting on a 4-byte boundary (padding is not counted in
//     the entry's size, and the last entry is not padded).
//   v1 entry: type u8 (bit 0: IPv6) | protocol u8 | ver_size u16 (version 0 in the top 4 bits,
//     the entry's length with its options in the low 12) | flags u32 | state u16 | cport u16 |
//     vport u16 | dport u16 | fwmark u32 | timeout u32 (seconds) | caddr | vaddr | daddr (4 or
//     16 B each): 36 B (IPv4) or 72 B (IPv6), then options: type u8 | len u8 (> 0) | data.
//       IPVS_OPT_SEQ_DATA 1: in_seq, out_seq (init_seq, delta, previous_delta, u32 each): 24 B.
//       IPVS_OPT_PE_DATA 2: 1..255 B; IPVS_OPT_PE_NAME 3: 1..16 B (sent after PE_DATA).
//       A type with bit 0x40 (IPVS_OPT_F_PARAM) set is optional: receivers that do not know it
//       skip it. Any other unknown type makes the receiver skip the entry.
//       lbd's option kSyncOptLbd = 0x4C ('L', bit 0x40 set, so kernels skip it): full NAT's
//       local address and port, and lbd's own conn bits (see SyncLbdData). DPVS syncs full NAT
//       with a format of its own (dpvs include/ipvs/sync.h struct dp_vs_sync_conn: laddr, lport,
//       host-order fields), which neither kernels nor tshark read; lbd keeps the kernel's format
//       and puts what the kernel has no field for in the option space the kernel ignores.
//   v0 header (4 B): nr_conns u8 | syncid u8 | size u16. Entries (24 B, IPv4 only): reserved u8 |
//     protocol u8 | cport | vport | dport (u16) | caddr | vaddr | daddr (4 B) | flags u16 |
//     state u16, followed when flags has IN_SEQ or OUT_SEQ by struct ip_vs_sync_conn_options
//     (24 B) copied from the kernel's memory: in the sender's byte order (little-endian here;
//     ip_vs_sync.c: "In ver.1 ip_vs_sync_conn_options will be sent in netw. order").
// A receiver parses a datagram as v1 iff version == 1 && reserved == 0 && spare == 0, else as v0.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

#include "core/base/addr.h"
#include "core/conn/conn.h"

namespace lb {

// Daemon defaults (ip_vs_sync.c IP_VS_SYNC_GROUP, IP_VS_SYNC_PORT; start_sync_thread).
inline constexpr uint32_t kSyncGroupV4 = 0xe0000051;  // 224.0.0.81, host order
inline constexpr uint16_t kSyncPort = 8848;
inline constexpr uint8_t kSyncTtl = 1;
inline constexpr int8_t kSyncProtoVersion = 1;  // SYNC_PROTO_VER

// Sizes of the kernel's structs.
inline constexpr size_t kSyncMesgV0HeaderSize = 4;  // struct ip_vs_sync_mesg_v0
inline constexpr size_t kSyncMesgHeaderSize = 8;    // struct ip_vs_sync_mesg
inline constexpr size_t kSyncConnV0Size = 24;       // struct ip_vs_sync_conn_v0 (SIMPLE_CONN_SIZE)
inline constexpr size_t kSyncConnOptionsSize = 24;  // struct ip_vs_sync_conn_options
inline constexpr size_t kSyncConnV4Size = 36;       // struct ip_vs_sync_v4
inline constexpr size_t kSyncConnV6Size = 72;       // struct ip_vs_sync_v6
inline constexpr size_t kSyncPeNameMax = 16;        // IP_VS_PENAME_MAXLEN
inline constexpr size_t kSyncPeDataMax = 255;       // IP_VS_PEDATA_MAXLEN
// The longest v1 entry lbd can write: IPv6, SEQ, PE data + name, the lbd option.
inline constexpr size_t kSyncMaxConnSize = kSyncConnV6Size + (2 + kSyncConnOptionsSize) +
                                           (2 + kSyncPeDataMax) + (2 + kSyncPeNameMax) + (2 + 28);

// Option types (ip_vs_sync.c IPVS_OPT_*).
inline constexpr uint8_t kSyncOptSeqData = 1;
inline constexpr uint8_t kSyncOptPeData = 2;
inline constexpr uint8_t kSyncOptPeName = 3;
inline constexpr uint8_t kSyncOptFParam = 0x40;  // IPVS_OPT_F_PARAM: optional, skip if unknown
inline constexpr uint8_t kSyncOptLbd = 0x4C;     // lbd's (see above)

// IP_VS_CONN_F_* bits the sync protocol names that core/conn/conn.h does not (uapi ip_vs.h).
inline constexpr uint32_t kSyncConnFOutSeq = 0x0200;   // IP_VS_CONN_F_OUT_SEQ
inline constexpr uint32_t kSyncConnFInSeq = 0x0400;    // IP_VS_CONN_F_IN_SEQ
inline constexpr uint32_t kSyncConnFSeqMask = 0x0600;  // IP_VS_CONN_F_SEQ_MASK
inline constexpr uint32_t kSyncConnFNfct = 0x10000;    // IP_VS_CONN_F_NFCT, never synced
// IP_VS_CONN_F_BACKUP_MASK: the bits a backup takes from a message (v1; v0 takes all 16 bits
// but HASHED). FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE.
inline constexpr uint32_t kSyncConnFBackupMask = kConnFFwdMask | kConnFNoOutput | kConnFInactive |
                                                 kSyncConnFSeqMask | kConnFNoCport | kConnFTemplate;
// IP_VS_CONN_F_BACKUP_UPD_MASK: the bits an update changes on an existing backup conn.
inline constexpr uint32_t kSyncConnFBackupUpdMask = kConnFInactive | kSyncConnFSeqMask;
// What lbd puts in the wire flags: the kernel's 16 bits minus HASHED (ip_vs_sync_conn sends
// cp->flags & ~HASHED; lbd's own bits above bit 16 travel in the lbd option instead).
inline constexpr uint32_t kSyncConnFWireMask = 0xffff & ~kConnFHashed;

// struct ip_vs_seq, host order.
struct SyncSeq {
  uint32_t init_seq = 0;
  uint32_t delta = 0;
  uint32_t previous_delta = 0;
  friend bool operator==(const SyncSeq&, const SyncSeq&) = default;
};

// lbd option bits (SyncLbdData::flags): lbd conn bits the kernel has no IP_VS_CONN_F_ for.
inline constexpr uint32_t kSyncLbdFullNat = 0x1;   // kConnFFullNat: laddr:lport are valid
inline constexpr uint32_t kSyncLbdSynproxy = 0x2;  // kConnFSynproxy: seq_delta is valid

// The lbd option's data (kSyncOptLbd): flags u32 | seq_delta u32 | lport u16 | 0 u16 | laddr
// (none, 4 or 16 B): length 12, 16 or 28.
struct SyncLbdData {
  uint32_t flags = 0;      // kSyncLbd*
  uint32_t seq_delta = 0;  // SYN proxy: ConnGuard::seqDelta
  IpAddr laddr;            // full NAT: the local address the real server sees (unspec: none)
  uint16_t lport = 0;
  friend bool operator==(const SyncLbdData&, const SyncLbdData&) = default;
};

// One connection as the messages carry it (both versions), host order. Decoded entries point
// into the message (pe_data, pe_name) and are valid only during the callback.
struct SyncConn {
  Af af = Af::kInet;     // v1 type bit 0; v0: always IPv4
  uint8_t protocol = 0;  // IPPROTO_*, 0 for fwmark templates
  uint32_t flags = 0;    // as on the wire (v0: 16 bits); the receiver masks (kSyncConnFBackupMask)
  uint16_t state = 0;
  uint16_t cport = 0, vport = 0, dport = 0;
  uint32_t fwmark = 0;     // v1 only
  uint32_t timeout_s = 0;  // v1 only: cp->timeout / HZ; 0 in v0 (receiver uses its table)
  IpAddr caddr, vaddr, daddr;
  bool has_seq = false;  // IPVS_OPT_SEQ_DATA (v1) or the v0 options (flags & SEQ_MASK)
  SyncSeq in_seq, out_seq;
  absl::string_view pe_data;  // IPVS_OPT_PE_DATA, empty for none
  absl::string_view pe_name;  // IPVS_OPT_PE_NAME, empty for none
  bool has_lbd = false;       // kSyncOptLbd
  SyncLbdData lbd;
};

// Why a received datagram, or one entry of it, was dropped. Message-level reasons drop the rest
// of the datagram (entries before the bad one were delivered already, as in the kernel, which
// applies them as it parses); entry-level reasons skip one entry. Each has a counter.
// X(enumerator, metric label) /* the kernel's check */
#define LB_SYNC_DROP_REASONS(X)                                                                   \
  X(kTooShort, "too_short")                /* datagram shorter than the v0 header */              \
  X(kBadSize, "bad_size")                  /* header size != datagram length */                   \
  X(kSyncId, "syncid")                     /* backup syncid != 0 and the message's differs */     \
  X(kV0ConnTruncated, "v0_conn_truncated") /* "BACKUP v0, bogus conn" */                          \
  X(kV0OptionsTruncated,                                                                          \
    "v0_options_truncated")               /* "BACKUP v0, Dropping buffer bogus conn options" */   \
  X(kConnTruncated, "conn_truncated")     /* v1: fewer bytes left than ip_vs_sync_v4 */           \
  X(kConnOverrun, "conn_overrun")         /* v1: entry size past the datagram ("msg > buffer") */ \
  X(kConnVersion, "conn_version")         /* v1: ver_size's version != 0 */                       \
  X(kBadType, "bad_type")                 /* v1: type not 0 or STYPE_F_INET6 (-10) */             \
  X(kConnShort, "conn_short")             /* v1: entry size shorter than its addresses (-20) */   \
  X(kOptionTruncated, "option_truncated") /* option header past the entry (-30) */                \
  X(kOptionLength, "option_length")       /* option length 0 or past the entry (-40) */           \
  X(kSeqOption, "seq_option")             /* SEQ_DATA length != 24 or twice (-50) */              \
  X(kPeDataOption, "pe_data_option")      /* PE_DATA too long or twice (-60) */                   \
  X(kPeNameOption, "pe_name_option")      /* PE_NAME too long or twice (-70) */                   \
  X(kLbdOption, "lbd_option")         /* lbd option malformed or twice (lbd's, drops like -50) */ \
  X(kUnknownOption, "unknown_option") /* entry skipped: unknown mandatory option (20) */          \
  X(kBadProtocol, "bad_protocol")     /* entry skipped: protocol not TCP/UDP/SCTP (30, v0 too) */ \
  X(kBadState, "bad_state") /* entry skipped: state >= the protocol's state count (40) */         \
  X(kPeWithoutName, "pe_without_name") /* entry skipped: PE data without PE name (50) */

enum class SyncDropReason : uint8_t {
#define LB_SYNC_DROP_ENUM(name, str) name,
  LB_SYNC_DROP_REASONS(LB_SYNC_DROP_ENUM)
#undef LB_SYNC_DROP_ENUM
      kCount
};

inline constexpr size_t kSyncDropReasonCount = static_cast<size_t>(SyncDropReason::kCount);

// "too_short", ... for lb_sync_drops_total{reason=...}.
absl::string_view syncDropReasonName(SyncDropReason r);

// Receive-side counters. Single writer (the backup's receive thread); plain integers.
struct SyncDecodeCounters {
  uint64_t messages = 0;     // datagrams looked at
  uint64_t messages_v0 = 0;  // of which parsed as v0
  uint64_t conns = 0;        // entries delivered to the callback
  std::array<uint64_t, kSyncDropReasonCount> drops{};

  uint64_t drop(SyncDropReason r) const { return drops[static_cast<size_t>(r)]; }
};

// Any thread. Decodes one received datagram the way ip_vs_process_message does, calling `fn`
// for every entry that passes the kernel's checks, in order. `backup_syncid` is the backup's
// syncid (0: accept every syncid). Returns the number of entries delivered; every drop is
// counted in `counters`. Hot path: no allocation.
size_t decodeSyncMessage(absl::Span<const uint8_t> datagram,
                         uint8_t backup_syncid,
                         absl::FunctionRef<void(const SyncConn&)> fn,
                         SyncDecodeCounters& counters) noexcept;

// The kernel's sync_maxlen (start_sync_thread): the payload bound of one datagram. `configured`
// 0 means the default: 1500 (master) or clamp(dev_mtu, 1500, 65535) (backup), minus the
// IP + UDP headers (28 or 48 B); an explicit value is clamped to [1 (master) or 1024 (backup),
// 65535 - headers]. Pure.
enum class SyncRole : uint8_t { kMaster = 1, kBackup = 2 };  // IP_VS_STATE_MASTER / _BACKUP
uint32_t syncMaxLen(SyncRole role, bool ipv6_group, uint32_t configured, uint32_t dev_mtu);

// Builds one datagram in caller-provided storage, the way ip_vs_sync_conn fills its sync_buff.
// Not thread-safe; one per sender. Never allocates.
class SyncMessageBuilder {
 public:
  enum class AddResult : uint8_t {
    kAdded,
    kFull,         // does not fit (or 255 entries already): send this one, reset(), add again
    kUnencodable,  // v0 and an IPv6 conn (ip_vs_sync_conn_v0 skips those), or a field too long
  };

  // `buf` must outlive the builder. An entry is added while the message stays within `maxlen`
  // (syncMaxLen); into an empty message an entry is added even past maxlen when buf can hold
  // it (the kernel sizes a new buffer max(entry + header, sync_maxlen)). `version` 1 or 0.
  SyncMessageBuilder(absl::Span<uint8_t> buf, size_t maxlen, uint8_t syncid, int version = 1);

  // Appends one entry (with its options; v1 pads the previous entry to 4 bytes first).
  AddResult add(const SyncConn& c) noexcept;
  // Starts a new, empty message (same syncid and version).
  void reset() noexcept;

  bool empty() const { return nr_conns_ == 0; }

  uint8_t nrConns() const { return nr_conns_; }

  // The datagram so far: header plus entries (size field kept up to date).
  absl::Span<const uint8_t> bytes() const { return {buf_.data(), size_}; }

  // The encoded length of `c` without padding (ver_size's size for v1); 0 when unencodable.
  static size_t entrySize(const SyncConn& c, int version) noexcept;

 private:
  absl::Span<uint8_t> buf_;
  size_t maxlen_;
  uint8_t syncid_;
  int version_;
  size_t size_ = 0;
  uint8_t nr_conns_ = 0;
};

}  // namespace lb
