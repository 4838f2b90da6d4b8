// SPDX-License-Identifier: Apache-2.0
// IPVS's FTP application helper, the pure part: the command and reply parsers of
// net/netfilter/ipvs/ip_vs_ftp.c (ip_vs_ftp_get_addrport, the PASV/EPSV scan of ip_vs_ftp_in,
// the 227/229 replies of ip_vs_ftp_out, PORT and EPRT), the text the rewrites put in, the
// payload surgery (nf_nat_mangle_tcp_packet's job: replace bytes, fix the IP length and both
// checksums) and the sequence adjustment of net/netfilter/ipvs/ip_vs_app.c (struct ip_vs_seq,
// vs_fix_seq, vs_fix_ack_seq, vs_seq_update) that keeps a connection whose payload grew or
// shrank consistent in both directions for the rest of its life.
//
// Everything here is a pure function of its arguments: no allocation, no clock. Hot path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "absl/strings/string_view.h"

#include "core/base/addr.h"
#include "core/packet/packet_buffer.h"
#include "core/packet/parse.h"

namespace lb::ftp {

// The module's `ports=` parameter: up to IP_VS_APP_MAX_PORTS (8) control ports, default {21}.
inline constexpr size_t kMaxPorts = 8;
inline constexpr uint16_t kDefaultPort = 21;

// struct ip_vs_seq (include/net/ip_vs.h): `init_seq` is the sender's (original) sequence number
// of the segment whose payload changed length, `delta` the total length change from there on,
// `previous_delta` the total before it (for retransmissions of older segments).
struct SeqAdjust {
  uint32_t init_seq = 0;
  uint32_t delta = 0;  // two's complement: a shrink is a "negative" delta
  uint32_t previous_delta = 0;
};

// The kernel's after(a, b): a is later than b in sequence space (wraparound-safe).
inline bool seqAfter(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(b - a) < 0;
}

// vs_fix_seq: the sender's sequence number as the receiver must see it.
uint32_t fixSeq(const SeqAdjust& s, uint32_t seq) noexcept;

// vs_fix_ack_seq: the receiver's acknowledgement number as the sender must see it (the
// receiver acknowledges in the adjusted space; init_seq + delta is where that space changes).
uint32_t fixAck(const SeqAdjust& s, uint32_t ack) noexcept;

// vs_seq_update: a segment with original sequence number `seq` had its payload changed by
// `diff` bytes. `active` is the conn's IP_VS_CONN_F_{IN,OUT}_SEQ flag for this direction: the
// first change always records; later ones only for segments after the last one recorded (a
// retransmission of the mangled segment does not add its diff twice).
void seqUpdate(SeqAdjust& s, bool& active, uint32_t seq, int32_t diff) noexcept;

// What the client's last command asked for (cp->app_data: IP_VS_FTP_ACTIVE/PORT, PASV, EPSV).
enum class Mode : uint8_t { kActive = 0, kPasv = 1, kEpsv = 3 };

// ip_vs_ftp_get_addrport's result: 0 no match, -1 a match that is incomplete or malformed,
// 1 parsed.
enum class ParseResult : int8_t { kNoMatch = 0, kMalformed = -1, kFound = 1 };

// What a parse found: the address and port, and the byte range [start, end) of the payload
// that the rewrite replaces (the kernel's start/end pointers).
struct AddrPort {
  IpAddr addr;
  uint16_t port = 0;
  size_t start = 0, end = 0;
};

// ip_vs_ftp_get_addrport over `data` (the TCP payload). `pattern` matched case-insensitively
// at the start; `skip` skips to after a run of that character (for the old format a digit ends
// the skip: "(" is optional); `ext` parses RFC 2428's |af|addr|port| with any delimiter 33..126;
// `epsv` allows the empty af and address of a 229 reply (then `out.addr` is left as preset).
// `af` is the control conn's family: EPRT only with an address of that family.
// Deviations from the kernel, deliberate: the kernel accumulates each decimal field in an
// unsigned char / __u16 and so wraps "300" to 44 and "70000" to 4464; here a field over 255 (an
// old-format byte) or 65535 (an extended port) is kMalformed, as a data conn to a wrapped
// address serves nobody. Pure.
ParseResult getAddrPort(absl::string_view data,
                        absl::string_view pattern,
                        char skip,
                        bool ext,
                        bool epsv,
                        Af af,
                        AddrPort& out) noexcept;

// What a client's segment to the control port holds (ip_vs_ftp_in).
struct ClientScan {
  enum class Kind : uint8_t { kNone, kPasv, kEpsv, kPort, kEprt, kMalformed };
  Kind kind = Kind::kNone;
  AddrPort ap;  // kPort, kEprt
};

// ip_vs_ftp_in's scan: "PASV\r\n" (IPv4 only) or "EPSV\r\n" / "EPSV <af>\r\n" (the conn's
// family) anywhere in the payload switch the mode; otherwise "PORT a,b,c,d,p1,p2" (IPv4 only)
// or "EPRT |af|addr|port|" at the payload's start. kMalformed: PORT or EPRT matched but did not
// parse (the kernel ignores the segment; lbd counts it). Pure.
ClientScan scanClient(absl::string_view payload, Af af) noexcept;

// ip_vs_ftp_out's parse of a server's segment when the mode is kPasv ("227 ...(a,b,c,d,p1,p2)")
// or kEpsv ("229 ...(|||port|)"; `daddr`, the real server, is the address when none is given).
ParseResult parseReply(
    absl::string_view payload, Mode mode, Af af, const IpAddr& daddr, AddrPort& out) noexcept;

// The replacement texts, written to `buf` (at least kMaxText bytes); returns the length.
inline constexpr size_t kMaxText = 64;
// "a,b,c,d,p1,p2" (227 replies and PORT commands; IPv4 `addr`).
size_t formatOld(const IpAddr& addr, uint16_t port, char* buf) noexcept;
// "|||port|" (229 replies: the client uses the address it talks to).
size_t formatEpsv(uint16_t port, char* buf) noexcept;
// "|1|a.b.c.d|port|" or "|2|v6|port|" (EPRT), with the delimiter `delim`.
size_t formatEprt(const IpAddr& addr, uint16_t port, char delim, char* buf) noexcept;

// nf_nat_mangle_tcp_packet: replaces payload bytes [start, end) of the TCP segment in `pkt`
// (parsed as `o`, without GSO) by `text`, moving the rest of the payload, and fixes the IP
// length (IPv4 header checksum too) and the TCP checksum (computed whole; a CHECKSUM_PARTIAL
// packet becomes a complete one). Returns the length change, or nullopt with `pkt` untouched
// when the range is outside the payload, the result would not fit the buffer or 64 KB, or the
// packet is a GSO super-packet. `o.tot_len` is stale afterwards (re-parse). Hot path.
std::optional<int32_t> mangle(
    PacketBuffer& pkt, const L3L4& o, size_t start, size_t end, absl::string_view text) noexcept;

// The TCP payload of a parsed packet (empty for a non-TCP or truncated one).
absl::string_view tcpPayload(const PacketBuffer& pkt, const L3L4& o) noexcept;

// Rewrites the sequence number (`ack` false) or acknowledgement number (`ack` true) of the
// parsed TCP packet to `value`, keeping its checksum right.
void setSeqField(PacketBuffer& pkt, const L3L4& o, uint32_t value, bool ack) noexcept;

// The helper's per-control-conn state, shared by all workers: the client's last mode
// (cp->app_data) and both directions' sequence adjustment (cp->in_seq, cp->out_seq and the
// IP_VS_CONN_F_IN_SEQ / OUT_SEQ flags). It lives beside the conn table, not in its entries
// (a slab entry has no byte to spare and FTP control conns are few): an open-addressed table
// keyed by the conn's slab index and generation, so a slot whose conn was freed is stale and
// taken over by the next conn that needs one. Fixed capacity; no allocation after construction.
class StateTable {
 public:
  struct State {
    uint32_t index = 0xffffffffu;  // the control conn's slab index (kNoConn: free)
    uint32_t generation = 0;
    Mode mode = Mode::kActive;
    Mode last_reply = Mode::kActive;  // the mode of the last reply rewritten (retransmissions)
    bool in_active = false;           // IP_VS_CONN_F_IN_SEQ
    bool out_active = false;          // IP_VS_CONN_F_OUT_SEQ
    SeqAdjust in, out;
  };

  // Control thread: `capacity` slots (rounded up to a power of two, at least 64).
  explicit StateTable(size_t capacity);

  // Hot path. Locks the table and returns the state of conn (index, generation), taking a free
  // or stale slot when `create` (a new state starts in active mode, no adjustment); nullptr
  // (and unlocked) when there is none or no room. `live(index, generation)` says whether a
  // slot's conn still exists (the conn table's word), so stale slots can be reused. Call
  // unlock() after using a non-null result; take no conn lock while holding it... except the
  // ones the caller needs to create conns (the table is always locked first).
  template <typename Live>
  State* lock(uint32_t index, uint32_t generation, bool create, Live&& live) noexcept {
    acquire();
    const size_t mask = slots_size_ - 1;
    State* free_slot = nullptr;
    for (size_t i = 0; i < kProbe; ++i) {
      State& s = slots_[(index + i) & mask];
      if (s.index == index && s.generation == generation)
        return &s;
      if (free_slot == nullptr && (s.index == 0xffffffffu || !live(s.index, s.generation)))
        free_slot = &s;
    }
    if (create && free_slot != nullptr) {
      *free_slot = State{};
      free_slot->index = index;
      free_slot->generation = generation;
      return free_slot;
    }
    release();
    return nullptr;
  }

  void unlock() noexcept { release(); }

  size_t capacity() const { return slots_size_; }

 private:
  static constexpr size_t kProbe = 16;

  void acquire() noexcept {
    while (flag_.exchange(true, std::memory_order_acquire)) {
      while (flag_.load(std::memory_order_relaxed)) {
      }
    }
  }

  void release() noexcept { flag_.store(false, std::memory_order_release); }

  std::atomic<bool> flag_{false};
  size_t slots_size_ = 0;
  std::unique_ptr<State[]> slots_;
};

}  // namespace lb::ftp
