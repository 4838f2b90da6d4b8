// SPDX-License-Identifier: Apache-2.0
#include "core/conn/conn_snapshot.h"

#include <cstring>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

#include "core/conn/conn_table_impl.h"

namespace lb {

void ConnTable::forEachIndexed(const std::function<void(uint32_t, const Conn&)>& fn) const {
  Impl& m = *impl_;
  std::vector<std::pair<uint32_t, Conn>> copies;
  for (ConnShard& s : m.shards) {
    copies.clear();
    s.lock.lock();
    m.forEachLocked(s, [&](uint32_t idx) {
      m.foldAssured(idx);
      copies.emplace_back(idx, m.entries[idx].conn);
    });
    s.lock.unlock();
    for (const auto& [idx, c] : copies)
      fn(idx, c);
  }
}

namespace {

constexpr char kMagic[8] = {'L', 'B', 'D', 'C', 'O', 'N', 'N', 'S'};
constexpr uint32_t kVersion = 2;  // 2: seq_delta

bool isTemplate(const ConnParams& p) {
  return (p.flags & kConnFTemplate) != 0;
}

class Writer {
 public:
  template <typename T>
  void put(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    out_.append(p, sizeof(T));
  }

  void addr(const IpAddr& a) {
    put(static_cast<uint8_t>(a.af()));
    out_.append(reinterpret_cast<const char*>(a.data()), 16);
  }

  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}

  template <typename T>
  bool get(T& v) {
    if (in_.size() < sizeof(T))
      return false;
    std::memcpy(&v, in_.data(), sizeof(T));
    in_.remove_prefix(sizeof(T));
    return true;
  }

  bool addr(IpAddr& a) {
    uint8_t af = 0;
    if (!get(af) || in_.size() < 16)
      return false;
    const auto f = static_cast<Af>(af);
    if (f == Af::kInet || f == Af::kInet6) {
      a = IpAddr::fromBytes(f, reinterpret_cast<const uint8_t*>(in_.data()));
    } else if (f == Af::kUnspec) {
      a = IpAddr();
    } else {
      return false;
    }
    in_.remove_prefix(16);
    return true;
  }

  bool empty() const { return in_.empty(); }

 private:
  absl::string_view in_;
};

}  // namespace

std::vector<ConnRecord> exportConns(ConnTable& table) {
  std::vector<ConnRecord> templates, conns;
  absl::flat_hash_map<uint32_t, uint32_t> template_record;  // slab index -> record index
  std::vector<uint32_t> conn_controls;                      // slab index of each conn's template
  table.forEachIndexed([&](uint32_t idx, const Conn& c) {
    ConnRecord r;
    r.params = c;
    r.state = c.state;
    r.old_state = c.old_state;
    r.in_pkts = c.in_pkts;
    r.expires = c.expires;
    if ((c.flags & kConnFSynproxy) != 0) {
      // The SYN proxy's sequence offset lives beside the conn, not in forEach's copies.
      if (ConnGuard g = table.get(idx, c.generation))
        r.seq_delta = g.seqDelta();
    }
    if (isTemplate(c)) {
      template_record[idx] = static_cast<uint32_t>(templates.size());
      r.params.control = kNoConn;
      templates.push_back(r);
    } else {
      conn_controls.push_back(c.control);
      conns.push_back(r);
    }
  });
  for (size_t i = 0; i < conns.size(); ++i) {
    auto it = template_record.find(conn_controls[i]);
    conns[i].params.control = it == template_record.end() ? kNoConn : it->second;
  }
  templates.insert(templates.end(), conns.begin(), conns.end());
  return templates;
}

std::string encodeConns(absl::Span<const ConnRecord> records) {
  Writer w;
  for (char c : kMagic)
    w.put(c);
  w.put(kVersion);
  w.put(static_cast<uint64_t>(records.size()));
  for (const ConnRecord& r : records) {
    const ConnParams& p = r.params;
    w.put(static_cast<uint8_t>(p.af));
    w.put(static_cast<uint8_t>(p.daf));
    w.put(static_cast<uint8_t>(p.proto));
    w.put(p.flags);
    w.put(p.cport);
    w.put(p.vport);
    w.put(p.dport);
    w.put(p.lport);
    w.addr(p.caddr);
    w.addr(p.vaddr);
    w.addr(p.daddr);
    w.addr(p.laddr);
    w.put(p.fwmark);
    w.put(p.svc);
    w.put(p.dest);
    w.put(p.control);
    w.put(static_cast<int64_t>(p.timeout.count()));
    w.put(r.state);
    w.put(r.old_state);
    w.put(r.in_pkts);
    w.put(r.expires.ns);
    w.put(r.seq_delta);
  }
  return w.take();
}

absl::StatusOr<std::vector<ConnRecord>> decodeConns(absl::string_view bytes) {
  Reader rd(bytes);
  char magic[sizeof(kMagic)];
  for (char& c : magic) {
    if (!rd.get(c))
      return absl::InvalidArgumentError("conn snapshot: truncated header");
  }
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0)
    return absl::InvalidArgumentError("conn snapshot: not a conn snapshot");
  uint32_t version = 0;
  uint64_t count = 0;
  if (!rd.get(version) || !rd.get(count))
    return absl::InvalidArgumentError("conn snapshot: truncated header");
  if (version != kVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("conn snapshot: version ", version, ", this lbd reads ", kVersion));
  }
  if (count > bytes.size() / 64)  // every record is more than 64 bytes
    return absl::InvalidArgumentError(absl::StrCat("conn snapshot: ", count, " records?"));
  std::vector<ConnRecord> out(static_cast<size_t>(count));
  for (ConnRecord& r : out) {
    ConnParams& p = r.params;
    uint8_t af = 0, daf = 0, proto = 0;
    int64_t timeout = 0;
    const bool ok = rd.get(af) && rd.get(daf) && rd.get(proto) && rd.get(p.flags) &&
                    rd.get(p.cport) && rd.get(p.vport) && rd.get(p.dport) && rd.get(p.lport) &&
                    rd.addr(p.caddr) && rd.addr(p.vaddr) && rd.addr(p.daddr) && rd.addr(p.laddr) &&
                    rd.get(p.fwmark) && rd.get(p.svc) && rd.get(p.dest) && rd.get(p.control) &&
                    rd.get(timeout) && rd.get(r.state) && rd.get(r.old_state) &&
                    rd.get(r.in_pkts) && rd.get(r.expires.ns) && rd.get(r.seq_delta);
    if (!ok)
      return absl::InvalidArgumentError("conn snapshot: truncated record");
    p.af = static_cast<Af>(af);
    p.daf = static_cast<Af>(daf);
    p.proto = static_cast<L4Proto>(proto);
    p.timeout = Duration(timeout);
  }
  if (!rd.empty())
    return absl::InvalidArgumentError("conn snapshot: trailing bytes");
  for (const ConnRecord& r : out) {
    const uint32_t c = r.params.control;
    if (c != kNoConn && (c >= out.size() || !isTemplate(out[c].params) || isTemplate(r.params)))
      return absl::InvalidArgumentError(absl::StrCat("conn snapshot: bad template link ", c));
  }
  return out;
}

ConnImportResult importConns(ConnTable& table,
                             absl::Span<const ConnRecord> records,
                             absl::FunctionRef<bool(ConnParams&)> rebind,
                             absl::FunctionRef<void(const Conn&)> bound,
                             MonoTime now) {
  ConnImportResult res;
  std::vector<uint32_t> slab(records.size(), kNoConn);  // record index -> new slab index
  // Templates come first in an export, but the links are followed whatever the order.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < records.size(); ++i) {
      const ConnRecord& r = records[i];
      if (isTemplate(r.params) != (pass == 0))
        continue;
      ConnParams p = r.params;
      // An invalidated template (ip_vs_check_template) is unhashed and matches nothing; its
      // conns carry on without it.
      const bool invalidated = isTemplate(p) && p.vport == 0xffff && p.dport == 0xffff;
      if (invalidated || (p.flags & kConnFOnePacket) != 0 || !rebind(p)) {
        ++res.skipped;
        continue;
      }
      uint32_t control = kNoConn;
      if (p.control != kNoConn && p.control < slab.size())
        control = slab[p.control];
      if (control != kNoConn)
        table.nControl(control).fetch_add(1, std::memory_order_acq_rel);
      p.control = control;
      // Hashed and offloaded are the table's and the fast path's business, not the record's.
      p.flags &= ~(kConnFHashed | kConnFOffloaded);
      ConnGuard g = table.create(p, now);
      if (!g) {
        if (control != kNoConn)
          table.nControl(control).fetch_sub(1, std::memory_order_acq_rel);
        ++res.skipped;
        continue;
      }
      g->state = r.state;
      g->old_state = r.old_state;
      g->in_pkts = r.in_pkts;
      g.setSeqDelta(r.seq_delta);
      // The same instant as in the old table: now' + timeout == expires.
      g.setTimeout(p.timeout, r.expires - p.timeout);
      slab[i] = g.index();
      bound(*g);
      ++res.imported;
    }
  }
  return res;
}

}  // namespace lb
