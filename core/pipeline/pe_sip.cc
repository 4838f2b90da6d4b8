// SPDX-License-Identifier: Apache-2.0
#include "core/pipeline/pe_sip.h"

#include <cstring>
#include <mutex>

#include "absl/container/flat_hash_map.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lb {

namespace {

// The kernel's ctype (lib/ctype.c) is Latin-1: bytes 0xc0-0xff other than 0xd7 and 0xf7 are
// letters, so isalpha/isalnum say yes to them; 0x80-0xbf are not letters.
bool kIsAlpha(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
    return true;
  return c >= 0xc0 && c != 0xd7 && c != 0xf7;
}

bool kIsAlnum(unsigned char c) {
  return kIsAlpha(c) || (c >= '0' && c <= '9');
}

// nf_conntrack_sip.c iswordc.
bool isWordChar(unsigned char c) {
  return kIsAlnum(c) || c == '!' || c == '"' || c == '%' || (c >= '(' && c <= '/') || c == ':' ||
         c == '<' || c == '>' || c == '?' || (c >= '[' && c <= ']') || c == '_' || c == '`' ||
         c == '{' || c == '}' || c == '~';
}

size_t wordLen(const char* p, const char* limit) {
  size_t n = 0;
  while (p < limit && isWordChar(static_cast<unsigned char>(*p))) {
    ++p;
    ++n;
  }
  return n;
}

// callid_len: word ["@" word]; a '@' with no word after it makes the whole value invalid.
size_t callidLen(const char* p, const char* limit) {
  size_t len = wordLen(p, limit);
  p += len;
  if (len == 0 || p == limit || *p != '@')
    return len;
  ++p;
  ++len;
  size_t domain = wordLen(p, limit);
  if (domain == 0)
    return 0;
  return len + domain;
}

bool caseEq(const char* p, absl::string_view word) {
  for (size_t i = 0; i < word.size(); ++i) {
    char a = p[i];
    if (a >= 'A' && a <= 'Z')
      a = static_cast<char>(a - 'A' + 'a');
    char b = word[i];
    if (b >= 'A' && b <= 'Z')
      b = static_cast<char>(b - 'A' + 'a');
    if (a != b)
      return false;
  }
  return true;
}

// sip_follow_continuation: p is at a CR or LF. The first non-blank of the continuation line,
// or nullptr when the next line is not one (or the data ends).
const char* followContinuation(const char* p, const char* limit) {
  if (++p >= limit)
    return nullptr;
  if (*(p - 1) == '\r' && *p == '\n') {
    if (++p >= limit)
      return nullptr;
  }
  if (*p != ' ' && *p != '\t')
    return nullptr;
  for (; p < limit; ++p) {
    if (*p != ' ' && *p != '\t')
      break;
  }
  return p;
}

// sip_skip_whitespace: spaces (not tabs) and continuation lines.
const char* skipWhitespace(const char* p, const char* limit) {
  for (; p < limit; ++p) {
    if (*p == ' ')
      continue;
    if (*p != '\r' && *p != '\n')
      break;
    p = followContinuation(p, limit);
    if (p == nullptr)
      return nullptr;
  }
  // A continuation line of blanks that ends the data leaves the kernel's loop one byte past
  // `limit`; every caller then gives up (below), so it is clamped here.
  return p > limit ? limit : p;
}

// ct_sip_get_header(NULL, dptr, dataoff, datalen, SIP_HDR_CALL_ID, ...): 1 with the value's
// offset and length, 0 when no header is found (or the search gives up), -1 when a header was
// found but its value did not parse (*off then is the value's start, as the kernel leaves it).
int getCallIdHeader(const char* start, size_t dataoff, size_t datalen, size_t* off, size_t* len) {
  constexpr absl::string_view kName = "Call-Id";  // SIP_HDR("Call-Id", "i", NULL, callid_len)
  constexpr absl::string_view kCompact = "i";
  const char* limit = start + datalen;
  for (const char* p = start + dataoff; p < limit; ++p) {
    // Find the beginning of a line.
    if (*p != '\r' && *p != '\n')
      continue;
    if (++p >= limit)
      break;
    if (*(p - 1) == '\r' && *p == '\n') {
      if (++p >= limit)
        break;
    }
    // Skip continuation lines.
    if (*p == ' ' || *p == '\t')
      continue;
    // The header name; a compact name must be followed by a non-letter.
    if (static_cast<size_t>(limit - p) >= kName.size() && caseEq(p, kName)) {
      p += kName.size();
    } else if (static_cast<size_t>(limit - p) >= kCompact.size() + 1 && caseEq(p, kCompact) &&
               !kIsAlpha(static_cast<unsigned char>(p[kCompact.size()]))) {
      p += kCompact.size();
    } else {
      continue;
    }
    // The colon, with whitespace around it. Anything else ends the search (kernel: break).
    p = skipWhitespace(p, limit);
    // The kernel reads the byte at `limit` (+1) here, and breaks whatever it holds: with the
    // colon it would still stop at ++dptr >= limit.
    if (p == nullptr || p >= limit)
      break;
    if (*p != ':' || ++p >= limit)
      break;
    p = skipWhitespace(p, limit);
    if (p == nullptr)
      break;
    *off = static_cast<size_t>(p - start);
    *len = callidLen(p, limit);
    if (*len == 0)
      return -1;
    return 1;
  }
  return 0;
}

void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

}  // namespace

std::optional<absl::string_view> sipCallId(absl::string_view payload) noexcept {
  // ip_vs_sip_fill_param: dataoff >= skb->len (no payload) is -EINVAL.
  if (payload.empty())
    return std::nullopt;
  const char* dptr = payload.data();
  const size_t datalen = payload.size();
  size_t dataoff = 0, off = 0, len = 0;
  // get_callid: a header whose value does not parse makes the search go on from dataoff +
  // matchoff; matchoff counts from the payload's start, so the kernel skips that far again
  // (it can overshoot later headers; reproduced as is).
  while (true) {
    int ret = getCallIdHeader(dptr, dataoff, datalen, &off, &len);
    if (ret > 0)
      break;
    if (ret == 0)
      return std::nullopt;
    dataoff += off;
    if (dataoff >= datalen)
      return std::nullopt;
  }
  // Too large is useless.
  if (len > kPeDataMax)
    return std::nullopt;
  // SIP headers are always followed by a line terminator (CR, LF or CRLF).
  if (off + len == datalen)
    return std::nullopt;
  if (dptr[off + len] != '\r' && dptr[off + len] != '\n')
    return std::nullopt;
  return payload.substr(off, len);
}

// --- PeTemplates ---

class PeTemplates::Lock {
 public:
  explicit Lock(const PeTemplates& s) : flag_(s.lock_) {
    while (flag_.exchange(true, std::memory_order_acquire)) {
      while (flag_.load(std::memory_order_relaxed))
        cpuRelax();
    }
  }

  ~Lock() { flag_.store(false, std::memory_order_release); }

  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  std::atomic<bool>& flag_;
};

namespace {

size_t bucketsFor(size_t capacity) {
  size_t n = 1;
  while (n < capacity)
    n <<= 1;
  return n;
}

void copyAddr(uint8_t* out, const IpAddr& a) {
  std::memset(out, 0, 16);
  std::memcpy(out, a.data(), a.size());
}

bool sameAddr(const uint8_t* stored, const IpAddr& a) {
  uint8_t b[16];
  copyAddr(b, a);
  return std::memcmp(stored, b, 16) == 0;
}

}  // namespace

PeTemplates::PeTemplates(size_t capacity, uint64_t seed, PageProvider* pages)
    : capacity_(capacity == 0 ? 1 : capacity),
      bucket_mask_(bucketsFor(capacity_) - 1),
      seed_(seed),
      records_(capacity_, pages),
      heads_(bucket_mask_ + 1, pages) {}

uint64_t PeTemplates::hashOf(const PeTemplateKey& key, absl::string_view callid) const noexcept {
  // The kernel hashes SIP templates by jhash(callid, len, random); the key's other fields go in
  // too, which only shortens chains.
  uint64_t h = seed_ ^ (static_cast<uint64_t>(key.af) << 56) ^
               (static_cast<uint64_t>(key.proto) << 48) ^ (uint64_t{key.vport} << 32) ^
               callid.size();
  uint64_t w[2];
  std::memcpy(w, key.caddr.data(), sizeof(w));
  h = mix64(h ^ w[0]) ^ w[1];
  std::memcpy(w, key.vaddr.data(), sizeof(w));
  h = mix64(h ^ w[0]) ^ w[1];
  size_t i = 0;
  for (; i + 8 <= callid.size(); i += 8) {
    uint64_t v;
    std::memcpy(&v, callid.data() + i, 8);
    h = mix64(h ^ v);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, callid.data() + i, callid.size() - i);
  return mix64(h ^ tail ^ seed_);
}

bool PeTemplates::matches(const Record& r,
                          uint64_t h,
                          const PeTemplateKey& key,
                          absl::string_view callid) const noexcept {
  return r.nonce != 0 && r.hash == h && r.len == callid.size() && r.vport == key.vport &&
         r.af == static_cast<uint8_t>(key.af) && r.proto == static_cast<uint8_t>(key.proto) &&
         sameAddr(r.caddr, key.caddr) && sameAddr(r.vaddr, key.vaddr) &&
         std::memcmp(r.data, callid.data(), callid.size()) == 0;
}

std::optional<PeTemplates::Ref> PeTemplates::find(const PeTemplateKey& key,
                                                  absl::string_view callid) noexcept {
  if (callid.size() > kPeDataMax)
    return std::nullopt;
  const uint64_t h = hashOf(key, callid);
  Lock lock(*this);
  for (uint32_t link = heads_[h & bucket_mask_]; link != 0; link = records_[link - 1].next) {
    const Record& r = records_[link - 1];
    if (matches(r, h, key, callid))
      return Ref{link - 1, r.conn_index, r.generation, r.nonce};
  }
  return std::nullopt;
}

bool PeTemplates::insert(const PeTemplateKey& key,
                         absl::string_view callid,
                         uint32_t conn_index,
                         uint32_t generation,
                         uint32_t nonce) noexcept {
  if (callid.size() > kPeDataMax || nonce == 0)
    return false;
  const uint64_t h = hashOf(key, callid);
  Lock lock(*this);
  uint32_t slot;
  if (free_head_ != 0) {
    slot = free_head_ - 1;
    free_head_ = records_[slot].next;
  } else if (used_ < capacity_) {
    slot = used_++;
  } else {
    full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  Record& r = records_[slot];
  r.nonce = nonce;
  r.conn_index = conn_index;
  r.generation = generation;
  r.hash = h;
  copyAddr(r.caddr, key.caddr);
  copyAddr(r.vaddr, key.vaddr);
  r.vport = key.vport;
  r.af = static_cast<uint8_t>(key.af);
  r.proto = static_cast<uint8_t>(key.proto);
  r.len = static_cast<uint8_t>(callid.size());
  std::memcpy(r.data, callid.data(), callid.size());
  // Newest first, as the kernel's hlist_add_head_rcu.
  uint32_t& head = heads_[h & bucket_mask_];
  r.next = head;
  head = slot + 1;
  size_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void PeTemplates::unlinkLocked(uint32_t slot) noexcept {
  Record& r = records_[slot];
  uint32_t* link = &heads_[r.hash & bucket_mask_];
  while (*link != 0 && *link != slot + 1)
    link = &records_[*link - 1].next;
  if (*link == slot + 1)
    *link = r.next;
  r.nonce = 0;
  r.next = free_head_;
  free_head_ = slot + 1;
  size_.fetch_sub(1, std::memory_order_relaxed);
}

void PeTemplates::erase(const Ref& ref) noexcept {
  if (ref.slot >= capacity_)
    return;
  Lock lock(*this);
  const Record& r = records_[ref.slot];
  if (ref.slot < used_ && r.nonce != 0 && r.nonce == ref.nonce && r.conn_index == ref.conn_index)
    unlinkLocked(ref.slot);
}

bool PeTemplates::holds(const ConnGuard& g, const Ref& ref, const PeTemplateKey& key) noexcept {
  // An invalidated template (ip_vs_check_template) has vport 0xffff: it no longer matches.
  return g && (g->flags & kConnFTemplate) != 0 && g.seqDelta() == ref.nonce &&
         g->vport == key.vport && g->caddr == key.caddr && g->vaddr == key.vaddr &&
         g->proto == key.proto && g->af == key.af;
}

size_t PeTemplates::sweep(ConnTable& conns, size_t budget) noexcept {
  size_t removed = 0;
  for (size_t n = 0; n < budget; ++n) {
    Ref ref;
    {
      Lock lock(*this);
      if (used_ == 0)
        return removed;
      if (cursor_ >= used_)
        cursor_ = 0;
      const uint32_t slot = cursor_++;
      const Record& r = records_[slot];
      if (r.nonce == 0)
        continue;
      ref = Ref{slot, r.conn_index, r.generation, r.nonce};
    }
    ConnGuard g = conns.get(ref.conn_index, ref.generation);
    bool alive =
        g && (g->flags & kConnFTemplate) != 0 && g.seqDelta() == ref.nonce && g->vport != 0xffff;
    g.release();
    if (!alive) {
      erase(ref);
      ++removed;
    }
  }
  return removed;
}

uint32_t PeTemplates::nextNonce() noexcept {
  static std::atomic<uint32_t> next{1};
  uint32_t n = next.fetch_add(1, std::memory_order_relaxed);
  if (n == 0)
    n = next.fetch_add(1, std::memory_order_relaxed);
  return n;
}

void PeTemplates::forEach(const RecordFn& fn) const {
  Lock lock(*this);
  for (uint32_t slot = 0; slot < used_; ++slot) {
    const Record& r = records_[slot];
    if (r.nonce == 0)
      continue;
    PeTemplateKey key;
    key.af = static_cast<Af>(r.af);
    key.proto = static_cast<L4Proto>(r.proto);
    key.caddr = IpAddr::fromBytes(key.af, r.caddr);
    key.vaddr = IpAddr::fromBytes(key.af, r.vaddr);
    key.vport = r.vport;
    fn(r.conn_index, r.generation, key, absl::string_view(r.data, r.len));
  }
}

namespace {

// The stores of live tables: references held by pipelines (acquirePeTemplates) and whether
// peTemplatesFor keeps the store for the process.
struct PeRegistryEntry {
  PeTemplates* store = nullptr;
  size_t refs = 0;
  bool kept = false;
};

std::mutex& peRegistryMutex() {
  static std::mutex mu;
  return mu;
}

absl::flat_hash_map<const ConnTable*, PeRegistryEntry>& peRegistry() {
  // Never freed: stores kept for the process outlive static destruction order.
  static auto* registry = new absl::flat_hash_map<const ConnTable*, PeRegistryEntry>();
  return *registry;
}

PeRegistryEntry& peEntryLocked(const ConnTable& table) {
  PeRegistryEntry& e = peRegistry()[&table];
  if (e.store == nullptr)
    e.store = new PeTemplates(size_t{1} << 16, mix64(table.seed() ^ 0x5349505045ull));
  return e;
}

}  // namespace

PeTemplates& peTemplatesFor(const ConnTable& table) {
  std::lock_guard<std::mutex> lock(peRegistryMutex());
  PeRegistryEntry& e = peEntryLocked(table);
  e.kept = true;
  return *e.store;
}

PeTemplates& acquirePeTemplates(const ConnTable& table) {
  std::lock_guard<std::mutex> lock(peRegistryMutex());
  PeRegistryEntry& e = peEntryLocked(table);
  ++e.refs;
  return *e.store;
}

void releasePeTemplates(const ConnTable& table) {
  std::lock_guard<std::mutex> lock(peRegistryMutex());
  auto it = peRegistry().find(&table);
  if (it == peRegistry().end() || it->second.refs == 0)
    return;
  if (--it->second.refs == 0 && !it->second.kept) {
    delete it->second.store;
    peRegistry().erase(it);
  }
}

}  // namespace lb
