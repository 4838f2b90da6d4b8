// SPDX-License-Identifier: Apache-2.0
// Fuzzes ConnTable with op sequences decoded from the input bytes and checks every result
// against a std::map model: create / findIn / findOut / findTemplate / setTimeout /
// expireNow / advance clock + expire / stale get. Aborts on the first disagreement. Conns with
// an even id are assured; a create on a full table must early-drop an unassured conn (odd id,
// not a template) when there is one, and fail otherwise.
#include "core/conn/conn_table.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <vector>

namespace lb {
namespace {

constexpr size_t kCapacity = 8;
constexpr uint16_t kIds = 16;

enum class Kind : uint8_t { kNat, kDr, kFullNat, kNoCport, kTemplate };

struct ModelConn {
  Kind kind;
  MonoTime expires;
  uint32_t index;
  uint32_t generation;
};

class Events : public ConnEvents {
 public:
  void onConnFreed(const Conn& c) noexcept override {
    ++freed;
    last_caddr = c.caddr;
  }

  size_t freed = 0;
  IpAddr last_caddr;
};

[[noreturn]] void fail(const char* what, unsigned id) {
  std::fprintf(stderr, "conn_table_fuzz: %s (id %u)\n", what, id);
  std::abort();
}

#define FUZZ_CHECK(cond, what, id) \
  do {                             \
    if (!(cond))                   \
      fail(what, id);              \
  } while (0)

const IpAddr kVip = IpAddr::v4(0xc6126401);
const IpAddr kRs = IpAddr::v4(0xc6120101);
const IpAddr kLocal = IpAddr::v4(0xc6120201);

IpAddr clientOf(uint16_t id) {
  return IpAddr::v4(0xc6130000u + id);
}

uint16_t cportOf(uint16_t id) {
  return static_cast<uint16_t>(1000 + id);
}

uint16_t vportOf(Kind k, uint16_t id) {
  return k == Kind::kNoCport ? static_cast<uint16_t>(100 + id) : uint16_t{80};
}

ConnParams paramsFor(uint16_t id, Kind k, Duration timeout) {
  ConnParams p;
  p.proto = L4Proto::kTcp;
  p.caddr = clientOf(id);
  p.cport = cportOf(id);
  p.vaddr = kVip;
  p.vport = vportOf(k, id);
  p.daddr = kRs;
  p.dport = 8080;
  p.timeout = timeout;
  if (id % 2 == 0)
    p.flags |= kConnFAssured;
  switch (k) {
    case Kind::kNat:
      break;
    case Kind::kDr:
      p.flags |= static_cast<uint32_t>(FwdMethod::kDirectRoute);
      break;
    case Kind::kFullNat:
      p.flags |= kConnFFullNat;
      p.laddr = kLocal;
      p.lport = static_cast<uint16_t>(5000 + id);
      break;
    case Kind::kNoCport:
      p.flags |= kConnFNoCport;
      p.cport = 0;
      break;
    case Kind::kTemplate:
      p.flags = kConnFTemplate;
      p.cport = 0;
      break;
  }
  return p;
}

ConnTuple inTupleFor(uint16_t id, Kind k, uint16_t cport) {
  return ConnTuple{Af::kInet, L4Proto::kTcp, clientOf(id), kVip, cport, vportOf(k, id)};
}

// The reply as the wire shows it.
ConnTuple outTupleFor(uint16_t id, Kind k) {
  switch (k) {
    case Kind::kDr:
      return ConnTuple{Af::kInet, L4Proto::kTcp, kVip, clientOf(id), 80, cportOf(id)};
    case Kind::kFullNat:
      return ConnTuple{Af::kInet, L4Proto::kTcp, kRs,
                       kLocal,    8080,          static_cast<uint16_t>(5000 + id)};
    default:
      return ConnTuple{Af::kInet, L4Proto::kTcp, kRs, clientOf(id), 8080, cportOf(id)};
  }
}

int inClass(Kind k) {
  return k == Kind::kNoCport ? 1 : k == Kind::kTemplate ? 2 : 0;
}

ConnGuard findById(ConnTable& t, uint16_t id, Kind k) {
  if (k == Kind::kTemplate)
    return t.findTemplate(inTupleFor(id, k, 0));
  return t.findIn(inTupleFor(id, k, k == Kind::kNoCport ? uint16_t{4242} : cportOf(id)));
}

class Runner {
 public:
  Runner() : table_(options(), &events_) {}

  void run(const uint8_t* data, size_t size) {
    size_t i = 0;
    auto next = [&]() -> uint8_t { return i < size ? data[i++] : 0; };
    while (i < size) {
      uint8_t op = next();
      uint16_t id = static_cast<uint16_t>(next() % kIds);
      uint8_t arg = next();
      step(op % 8, id, arg);
      FUZZ_CHECK(table_.stats().entries == model_.size(), "entry count", id);
      FUZZ_CHECK(events_.freed == freed_, "freed count", id);
    }
  }

 private:
  static ConnTable::Options options() {
    ConnTable::Options o;
    o.capacity = kCapacity;
    o.shards = 2;
    return o;
  }

  void step(uint8_t op, uint16_t id, uint8_t arg) {
    auto it = model_.find(id);
    const bool live = it != model_.end();
    switch (op) {
      case 0: {  // create
        if (live)
          return;  // the model keeps tuples unique
        Kind k = static_cast<Kind>(arg % 5);
        Duration timeout = millis(250) * (1 + arg / 5 % 16);
        ConnGuard g = table_.create(paramsFor(id, k, timeout), now_);
        if (model_.size() == kCapacity) {
          bool droppable = false;
          for (const auto& [mid, m] : model_)
            droppable = droppable || (mid % 2 == 1 && m.kind != Kind::kTemplate);
          if (!droppable) {
            FUZZ_CHECK(!g, "create beyond capacity", id);
            return;
          }
          FUZZ_CHECK(static_cast<bool>(g), "early drop refused", id);
          uint16_t victim = kIds;
          for (uint16_t v = 0; v < kIds; ++v) {
            if (clientOf(v) == events_.last_caddr)
              victim = v;
          }
          auto vit = model_.find(victim);
          FUZZ_CHECK(vit != model_.end(), "early drop freed an unknown conn", id);
          FUZZ_CHECK(victim % 2 == 1 && vit->second.kind != Kind::kTemplate,
                     "early drop freed an assured conn or a template", id);
          stale_.push_back(vit->second);
          model_.erase(vit);
          ++freed_;
        } else {
          FUZZ_CHECK(static_cast<bool>(g), "create failed below capacity", id);
        }
        model_[id] = ModelConn{k, now_ + timeout, g.index(), g->generation};
        return;
      }
      case 1: {  // findIn / findTemplate for every kind
        for (uint8_t kk = 0; kk < 5; ++kk) {
          Kind k = static_cast<Kind>(kk);
          ConnGuard g = findById(table_, id, k);
          // NAT, DR and full-NAT conns share one in-tuple: the method does not matter there.
          bool want = live && inClass(it->second.kind) == inClass(k);
          FUZZ_CHECK(static_cast<bool>(g) == want, "findIn/findTemplate", id);
          if (g)
            FUZZ_CHECK(g.index() == it->second.index, "found wrong index", id);
        }
        return;
      }
      case 2: {  // findOut for every kind of reply
        for (uint8_t kk = 0; kk < 3; ++kk) {
          Kind k = static_cast<Kind>(kk);
          ConnGuard g = table_.findOut(outTupleFor(id, k));
          bool want = live && it->second.kind == k;
          FUZZ_CHECK(static_cast<bool>(g) == want, "findOut", id);
          if (g)
            FUZZ_CHECK(g.index() == it->second.index, "findOut wrong index", id);
        }
        return;
      }
      case 3: {  // expireNow
        if (!live)
          return;
        ConnGuard g = findById(table_, id, it->second.kind);
        FUZZ_CHECK(static_cast<bool>(g), "expireNow lookup", id);
        table_.expireNow(g);
        stale_.push_back(it->second);
        model_.erase(it);
        ++freed_;
        return;
      }
      case 4: {  // setTimeout
        if (!live)
          return;
        ConnGuard g = table_.get(it->second.index, it->second.generation);
        FUZZ_CHECK(static_cast<bool>(g), "get live", id);
        Duration timeout = millis(250) * (1 + arg % 40);
        g.setTimeout(timeout, now_);
        it->second.expires = now_ + timeout;
        return;
      }
      case 5:
      case 6: {  // advance the clock and expire
        now_ = now_ + millis(125) * (arg % 24);
        size_t due = 0;
        for (auto m = model_.begin(); m != model_.end();) {
          if (m->second.expires <= now_) {
            stale_.push_back(m->second);
            m = model_.erase(m);
            ++due;
          } else {
            ++m;
          }
        }
        FUZZ_CHECK(table_.expire(now_) == due, "expire count", id);
        freed_ += due;
        return;
      }
      default: {  // stale handles never match
        if (stale_.empty())
          return;
        const ModelConn& s = stale_[arg % stale_.size()];
        FUZZ_CHECK(!table_.get(s.index, s.generation), "stale get matched", id);
        return;
      }
    }
  }

  Events events_;
  ConnTable table_;
  MonoTime now_ = MonoTime::fromSeconds(1000);
  std::map<uint16_t, ModelConn> model_;
  std::vector<ModelConn> stale_;
  size_t freed_ = 0;
};

}  // namespace
}  // namespace lb

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lb::Runner runner;
  runner.run(data, size);
  return 0;
}
