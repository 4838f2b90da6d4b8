// SPDX-License-Identifier: Apache-2.0
// The SIP persistence engine (ipvsadm --pe sip): the analogue of net/netfilter/ipvs/ip_vs_pe_sip.c
// with the part of nf_conntrack_sip.c it calls (ct_sip_get_header for SIP_HDR_CALL_ID), and the
// store that ties a persistence template to its Call-ID (the kernel's cp->pe_data).
//
// The kernel keeps pe_data in the template itself and hashes such templates by
// jhash(callid) (ip_vs_conn_hashkey_param -> pe->hashkey_raw); its ct_match compares af, the
// masked client address, vaddr, vport, the TEMPLATE flag, the protocol and the Call-ID bytes.
// lbd's conn table entry is three cache lines with no room for 255 bytes, so the Call-IDs live
// in PeTemplates beside the table: each record holds the template's key, its Call-ID and a
// handle to the template (slab index, generation, and a nonce the template carries in its
// ConnGuard::seqDelta, unused by templates), so a record whose template is gone never matches.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "absl/strings/string_view.h"

#include "core/base/addr.h"
#include "core/base/page_provider.h"
#include "core/conn/conn_table.h"

namespace lb {

inline constexpr size_t kPeDataMax = 255;  // IP_VS_PEDATA_MAXLEN (include/net/ip_vs.h)
inline constexpr absl::string_view kPeSipName = "sip";

// ip_vs_sip_fill_param's get_callid over a UDP payload (the bytes after the UDP header): the
// first "Call-ID:" header (any case) or compact "i:" header at the start of a line (after CR,
// LF or CRLF; never the request line), continuation lines and spaces allowed around the colon,
// its value a word (nf_conntrack_sip.c iswordc) with an optional "@word". nullopt where the
// kernel returns -EINVAL: no such header, an empty or unparsable value, longer than 255 bytes,
// or not followed by CR or LF. The view points into `payload`. Any thread; pure. Hot path.
std::optional<absl::string_view> sipCallId(absl::string_view payload) noexcept;

// What a SIP template is found by besides its Call-ID (ip_vs_sip_ct_match): the template's af,
// protocol, client network (caddr & netmask), vaddr (or fwmark) and vport.
struct PeTemplateKey {
  Af af = Af::kInet;
  L4Proto proto = L4Proto::kUdp;
  IpAddr caddr, vaddr;
  uint16_t vport = 0;
};

// The Call-IDs of SIP templates, shared by every worker of one conn table. Bounded: `capacity`
// records, address space from a PageProvider (pages cost nothing until used). One spinlock
// (SIP signalling rates are far below the packet path's); never held with a conn's shard
// lock. Records whose template died are removed when a lookup meets them and by sweep().
class PeTemplates {
 public:
  struct Ref {
    uint32_t slot = 0;
    uint32_t conn_index = kNoConn;  // the template's ConnGuard::index()
    uint32_t generation = 0;        // its Conn::generation
    uint32_t nonce = 0;             // its ConnGuard::seqDelta()
  };

  // Control thread. May allocate.
  explicit PeTemplates(size_t capacity = 1 << 16, uint64_t seed = 0, PageProvider* pages = nullptr);
  PeTemplates(const PeTemplates&) = delete;
  PeTemplates& operator=(const PeTemplates&) = delete;

  // Worker thread. Hot path. The newest record for (key, callid), or nullopt.
  std::optional<Ref> find(const PeTemplateKey& key, absl::string_view callid) noexcept;
  // Worker thread. Hot path. Records a template; false when every record is taken (counted in
  // full()). `callid` is at most kPeDataMax bytes.
  bool insert(const PeTemplateKey& key,
              absl::string_view callid,
              uint32_t conn_index,
              uint32_t generation,
              uint32_t nonce) noexcept;
  // Any thread. Removes the record `ref` names if it still holds that template. Hot path.
  void erase(const Ref& ref) noexcept;
  // Any thread. Looks at up to `budget` records from a rotating cursor and removes those whose
  // template is no longer in `conns` (expired, invalidated, or another table's). Returns how
  // many it removed. Takes shard locks one at a time, never under the store's lock. Hot path.
  size_t sweep(ConnTable& conns, size_t budget) noexcept;
  // Whether the template `g` (locked) is the one `ref` names and still matches `key`.
  static bool holds(const ConnGuard& g, const Ref& ref, const PeTemplateKey& key) noexcept;

  // A fresh nonce for a new template: never 0, unique in the process. Any thread.
  static uint32_t nextNonce() noexcept;

  // Control thread. Calls fn for every record (the template's slab index and generation, its
  // key and Call-ID) under the store's lock: fn must not call the store or a conn table. May
  // allocate.
  using RecordFn = std::function<void(
      uint32_t index, uint32_t generation, const PeTemplateKey& key, absl::string_view callid)>;
  void forEach(const RecordFn& fn) const;

  size_t size() const { return size_.load(std::memory_order_relaxed); }

  size_t capacity() const { return capacity_; }

  uint64_t full() const { return full_.load(std::memory_order_relaxed); }

 private:
  struct Record {
    uint32_t next;   // bucket chain or free list: slot + 1, 0 = end
    uint32_t nonce;  // 0 = free
    uint32_t conn_index;
    uint32_t generation;
    uint64_t hash;
    uint8_t caddr[16];
    uint8_t vaddr[16];
    uint16_t vport;
    uint8_t af;
    uint8_t proto;
    uint8_t len;
    char data[kPeDataMax];
  };
  class Lock;
  uint64_t hashOf(const PeTemplateKey& key, absl::string_view callid) const noexcept;
  bool matches(const Record& r,
               uint64_t h,
               const PeTemplateKey& key,
               absl::string_view callid) const noexcept;
  void unlinkLocked(uint32_t slot) noexcept;

  size_t capacity_;
  size_t bucket_mask_;
  uint64_t seed_;
  ZeroedArray<Record> records_;
  ZeroedArray<uint32_t> heads_;  // bucket heads: slot + 1, 0 = empty
  mutable std::atomic<bool> lock_{false};
  uint32_t free_head_ = 0;  // freed slots, slot + 1 through Record::next; 0 = none
  uint32_t used_ = 0;       // slots [0, used_) were handed out at least once
  uint32_t cursor_ = 0;     // sweep()'s next slot
  std::atomic<size_t> size_{0};
  std::atomic<uint64_t> full_{0};
};

// The PeTemplates of `table`, created (empty) on first use and kept for the process; a table
// built later at the same address gets the same store, whose old records never match its
// templates (their nonces differ). Control thread (listings, tests); never the packet path:
// it locks a registry and may allocate.
PeTemplates& peTemplatesFor(const ConnTable& table);

// The store a Pipeline of `table` uses, taken when the pipeline is built (worker creation), so
// that its packet path never locks or allocates for it: the same store as peTemplatesFor's,
// created (empty) when there is none. Each acquire is one reference; releasePeTemplates(table)
// gives it back, and the last one frees the store unless peTemplatesFor() kept it. Control
// thread; locks a registry and may allocate.
PeTemplates& acquirePeTemplates(const ConnTable& table);
void releasePeTemplates(const ConnTable& table);

}  // namespace lb
