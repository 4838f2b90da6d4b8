// SPDX-License-Identifier: Apache-2.0
// ApplyBatch (ipvsadm -R): many mutations, one commit. Each operation runs through the same
// ControlOps::applyOp as its own RPC, but on a small scratch ServiceTable that holds only the
// service it touches (and the table-wide settings), so checking operation k costs the size of
// its service, not of the whole model. The staged model is committed to the live table once,
// then published once (snapshot, kernel reconcile, state file).
#include <sys/resource.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

#include "cmd/lbd/control/api_convert.h"
#include "cmd/lbd/control/control_ops.h"
#include "core/base/log.h"

namespace lb::lbd {
namespace {

namespace pb = ::lbd::v1;
using Op = pb::BatchOperation;

constexpr int kBatchNice = 10;

// The service an operation works on. nullopt for the table-wide operations, and for a key that
// does not parse (the operation then fails on a scratch table without services, with the
// error its RPC gives).
std::optional<ServiceKey> opKey(const Op& op) {
  absl::StatusOr<ServiceKey> k = absl::InvalidArgumentError("no key");
  switch (op.kind_case()) {
    case Op::kCreateService:
      k = serviceKeyFromProto(op.create_service().service().key());
      break;
    case Op::kUpdateService:
      k = serviceKeyFromProto(op.update_service().service().key());
      break;
    case Op::kDeleteService:
      k = serviceKeyFromProto(op.delete_service().key());
      break;
    case Op::kCreateDest:
      k = serviceKeyFromProto(op.create_dest().key());
      break;
    case Op::kUpdateDest:
      k = serviceKeyFromProto(op.update_dest().key());
      break;
    case Op::kDeleteDest:
      k = serviceKeyFromProto(op.delete_dest().key());
      break;
    case Op::kCreateLocalAddress:
      k = serviceKeyFromProto(op.create_local_address().key());
      break;
    case Op::kDeleteLocalAddress:
      k = serviceKeyFromProto(op.delete_local_address().key());
      break;
    default:
      break;
  }
  if (!k.ok())
    return std::nullopt;
  return *k;
}

std::string ownerText(const std::string& owner) {
  return owner.empty() ? std::string("an operator (no owner)")
                       : absl::StrCat("owner \"", owner, "\"");
}

bool isTableWide(const Op& op) {
  switch (op.kind_case()) {
    case Op::kFlushServices:
    case Op::kSetTimeouts:
    case Op::kSetSysctls:
    case Op::kSetFwmarkRules:
      return true;
    default:
      return false;
  }
}

}  // namespace

// The model as the operations so far leave it, kept as the live table's config plus edits.
// Control thread, under ControlOps::mu_.
class ControlOps::Batch {
 public:
  // owner: ApplyBatchRequest.owner ("" = no ownership checks).
  Batch(const FullConfig& base, std::string owner) : owner_(std::move(owner)) { rebase(base); }

  // Starts over from `base` (the live table's config after a commit).
  void rebase(const FullConfig& base) {
    globals_ = FullConfig{{}, base.timeouts, base.sysctls, base.fwmark_rules};
    services_.assign(base.services.begin(), base.services.end());
    index_.clear();
    live_.clear();
    deleted_live_.clear();
    for (size_t i = 0; i < base.services.size(); ++i) {
      index_[base.services[i].service.key] = i;
      live_.insert(base.services[i].service.key);
    }
    scratch_.reset();
  }

  // Whether `op` creates again a service the live table still has but this batch deleted.
  // ipvsadm -D then -A gives a new service (counters and scheduler state start over), which a
  // single commit of the end result would not: the caller commits what is staged first.
  bool recreatesLive(const Op& op) const {
    if (op.kind_case() != Op::kCreateService)
      return false;
    std::optional<ServiceKey> k = opKey(op);
    return k.has_value() && deleted_live_.contains(*k) && !index_.contains(*k);
  }

  // Runs `op` through ControlOps::applyOp on the scratch table and stages the result. On error
  // nothing is staged, and the next operation starts from a scratch table built afresh from
  // the staged model.
  absl::Status apply(const Op& op) {
    if (op.kind_case() == Op::KIND_NOT_SET)
      return absl::InvalidArgumentError("operation: no kind set");
    if (owner_.empty())
      return applyChecked(op);
    if (absl::Status st = checkOwner(op); !st.ok())
      return st;
    if (op.kind_case() == Op::kFlushServices) {
      flushOwned();
      return absl::OkStatus();
    }
    if (op.kind_case() == Op::kCreateService) {
      Op stamped = op;
      stamped.mutable_create_service()->mutable_service()->set_owner(owner_);
      return applyChecked(stamped);
    }
    return applyChecked(op);
  }

  // The staged model; the Batch must be rebased before further use.
  FullConfig take() {
    FullConfig out = std::move(globals_);
    out.services.reserve(index_.size());
    for (std::optional<ServiceWithDests>& s : services_) {
      if (s.has_value())
        out.services.push_back(std::move(*s));
    }
    services_.clear();
    index_.clear();
    scratch_.reset();
    return out;
  }

 private:
  // A batch with an owner acts for that owner only: the settings of the whole table are the
  // operator's, and a service of another owner (or an operator's) is not its to change.
  absl::Status checkOwner(const Op& op) const {
    switch (op.kind_case()) {
      case Op::kSetTimeouts:
      case Op::kSetSysctls:
      case Op::kSetFwmarkRules:
        return absl::FailedPreconditionError(
            absl::StrCat("batch of owner \"", owner_,
                         "\": timeouts, sysctls and fwmark rules are the operator's"));
      case Op::kFlushServices:
        return absl::OkStatus();
      default:
        break;
    }
    const std::optional<ServiceKey> key = opKey(op);
    if (!key.has_value())
      return absl::OkStatus();  // refused by its own RPC's checks
    auto it = index_.find(*key);
    if (it == index_.end())
      return absl::OkStatus();  // created here, or NOT_FOUND as usual
    const std::string& have = services_[it->second]->service.owner;
    if (have == owner_)
      return absl::OkStatus();
    if (op.kind_case() == Op::kCreateService) {
      return absl::AlreadyExistsError(
          absl::StrCat("service ", key->toString(), " already exists, of ", ownerText(have)));
    }
    return absl::FailedPreconditionError(absl::StrCat("service ", key->toString(), " belongs to ",
                                                      ownerText(have), ", not to owner \"", owner_,
                                                      "\""));
  }

  // FlushServices in a batch with an owner: that owner's services only.
  void flushOwned() {
    for (auto it = index_.begin(); it != index_.end();) {
      std::optional<ServiceWithDests>& s = services_[it->second];
      if (s->service.owner != owner_) {
        ++it;
        continue;
      }
      if (live_.contains(it->first))
        deleted_live_.insert(it->first);
      s.reset();
      index_.erase(it++);
    }
    scratch_.reset();
  }

  absl::Status applyChecked(const Op& op) {
    const bool wide = isTableWide(op);
    const std::optional<ServiceKey> key = wide ? std::nullopt : opKey(op);
    if (absl::Status st = prepareScratch(key, wide); !st.ok())
      return st;
    if (absl::Status st = dispatch(*scratch_, op); !st.ok()) {
      scratch_.reset();
      return st;
    }
    if (wide) {
      const FullConfig& c = scratch_->config();
      globals_.timeouts = c.timeouts;
      globals_.sysctls = c.sysctls;
      globals_.fwmark_rules = c.fwmark_rules;
      if (op.kind_case() == Op::kFlushServices)
        flushStaged();
      scratch_.reset();  // service scratches hold the old settings
      return absl::OkStatus();
    }
    writeBack();
    return absl::OkStatus();
  }

  static absl::Status dispatch(ServiceTable& t, const Op& op) {
    switch (op.kind_case()) {
      case Op::kCreateService:
        return applyOp(t, op.create_service());
      case Op::kUpdateService:
        return applyOp(t, op.update_service());
      case Op::kDeleteService:
        return applyOp(t, op.delete_service());
      case Op::kFlushServices:
        return applyOp(t, op.flush_services());
      case Op::kCreateDest:
        return applyOp(t, op.create_dest());
      case Op::kUpdateDest:
        return applyOp(t, op.update_dest());
      case Op::kDeleteDest:
        return applyOp(t, op.delete_dest());
      case Op::kCreateLocalAddress:
        return applyOp(t, op.create_local_address());
      case Op::kDeleteLocalAddress:
        return applyOp(t, op.delete_local_address());
      case Op::kSetTimeouts:
        return applyOp(t, op.set_timeouts());
      case Op::kSetSysctls:
        return applyOp(t, op.set_sysctls());
      case Op::kSetFwmarkRules:
        return applyOp(t, op.set_fwmark_rules());
      case Op::KIND_NOT_SET:
        break;
    }
    return absl::InvalidArgumentError("operation: no kind set");
  }

  // A scratch table holding the staged service `key` (if staged) and the table-wide settings;
  // for a table-wide operation, the settings and the fwmark rules only. Consecutive operations
  // on one service (-A then its -a lines) share one scratch table.
  absl::Status prepareScratch(const std::optional<ServiceKey>& key, bool wide) {
    const ServiceWithDests* staged = nullptr;
    if (key.has_value()) {
      if (auto it = index_.find(*key); it != index_.end())
        staged = &*services_[it->second];
    }
    const size_t dests = staged != nullptr ? staged->dests.size() : 0;
    if (!wide && scratch_ != nullptr && scratch_key_ == key && dests < scratch_cap_)
      return absl::OkStatus();
    FullConfig c{{}, globals_.timeouts, globals_.sysctls, {}};
    if (wide)
      c.fwmark_rules = globals_.fwmark_rules;
    if (staged != nullptr)
      c.services.push_back(*staged);
    // Room for the dests there are and some to come; a full scratch is rebuilt larger.
    scratch_cap_ = 2 * dests + 16;
    ServiceTable::Limits limits;
    limits.max_services = 4;
    limits.max_dests = scratch_cap_;
    limits.workers = 1;
    scratch_ = std::make_unique<ServiceTable>(limits);
    scratch_key_ = key;
    if (absl::Status st = scratch_->replace(c); !st.ok()) {
      scratch_.reset();
      return absl::InternalError(absl::StrCat("batch: staged model refused: ", st.message()));
    }
    return absl::OkStatus();
  }

  // The scratch table's service (or its absence) back into the staged model.
  void writeBack() {
    const std::vector<ServiceWithDests>& now = scratch_->config().services;
    if (scratch_key_.has_value()) {
      auto it = index_.find(*scratch_key_);
      if (now.empty()) {
        if (it != index_.end()) {
          services_[it->second].reset();
          index_.erase(it);
          if (live_.contains(*scratch_key_))
            deleted_live_.insert(*scratch_key_);
        }
        return;
      }
      if (it != index_.end()) {
        services_[it->second] = now.front();
        return;
      }
    }
    if (now.empty())
      return;
    scratch_key_ = now.front().service.key;
    index_[*scratch_key_] = services_.size();
    services_.emplace_back(now.front());
  }

  void flushStaged() {
    for (const auto& [key, idx] : index_) {
      if (live_.contains(key))
        deleted_live_.insert(key);
    }
    services_.clear();
    index_.clear();
  }

  const std::string owner_;  // ApplyBatchRequest.owner
  FullConfig globals_;       // timeouts, sysctls, fwmark rules; no services
  std::vector<std::optional<ServiceWithDests>> services_;  // creation order; nullopt = deleted
  absl::flat_hash_map<ServiceKey, size_t> index_;          // staged services in services_
  absl::flat_hash_set<ServiceKey> live_;                   // services the live table has
  absl::flat_hash_set<ServiceKey> deleted_live_;           // of those, deleted by the batch
  std::unique_ptr<ServiceTable> scratch_;
  std::optional<ServiceKey> scratch_key_;  // the service scratch_ holds (or will hold)
  size_t scratch_cap_ = 0;                 // scratch_'s dest ids
};

// Operations [begin, end) of `req`, staged in `batch` (the refused ones staged nothing), into
// the live table, then published. Returns where the committed run ends: `end`, or, when the
// live table refuses what the scratch tables cannot see (its limits and ids), the first
// operation it refuses (*refused says why; the ones before it are committed). Found by
// bisection over staged prefixes, so the rare case costs O(n log n), never a commit per
// operation.
size_t ControlOps::commitBatchLocked(Batch& batch,
                                     const pb::ApplyBatchRequest& req,
                                     size_t begin,
                                     size_t end,
                                     absl::Status* refused,
                                     absl::Status* publish) {
  if (begin == end)
    return end;
  // Only after a refused commit, when table_ is still the base of the run. An operation
  // refused when it was staged is refused again here (same model before it), staging nothing.
  auto stage = [&](size_t upto) {
    Batch b(table_.config(), req.owner());
    for (size_t i = begin; i < upto; ++i)
      b.apply(req.operations(static_cast<int>(i))).IgnoreError();
    return b.take();
  };
  size_t done = end;
  absl::Status st = table_.replace(batch.take());
  if (!st.ok()) {
    size_t lo = begin, hi = end;  // staged [begin, lo) is accepted, [begin, hi) refused
    while (hi - lo > 1) {
      const size_t mid = lo + (hi - lo) / 2;
      if (absl::Status v = table_.validate(stage(mid)); v.ok()) {
        lo = mid;
      } else {
        hi = mid;
        st = v;
      }
    }
    *refused = st;
    done = lo;
    if (done == begin)
      return done;
    if (absl::Status again = table_.replace(stage(done)); !again.ok()) {
      *refused = again;
      return begin;
    }
  }
  if (absl::Status p = publishLocked(); !p.ok() && publish->ok())
    *publish = p;
  return done;
}

// Operations from `from` on, staged in one Batch and committed once at the end (and once more
// before an operation that creates again a live service the batch deleted). An operation
// refused when staged goes into *refusals and the run goes on with the next one. Returns the
// operation count, or the first operation the live table refused at a commit (in *refusals;
// the ones before it are committed, the ones after it not yet: the caller goes on after it).
size_t ControlOps::runBatchLocked(const pb::ApplyBatchRequest& req,
                                  size_t from,
                                  std::vector<BatchRefusal>* refusals,
                                  absl::Status* publish) {
  const size_t n = static_cast<size_t>(req.operations_size());
  Batch batch(table_.config(), req.owner());
  size_t begin = from;  // the first operation not committed yet
  auto commit = [&](size_t end) {
    size_t refused_here = 0;
    for (auto r = refusals->rbegin(); r != refusals->rend() && r->index >= begin; ++r)
      ++refused_here;
    if (refused_here == end - begin)
      return end;  // nothing staged: no commit
    absl::Status refused;
    const size_t done = commitBatchLocked(batch, req, begin, end, &refused, publish);
    if (done < end) {
      // The refusals after `done` are not final: the caller runs those operations again.
      while (!refusals->empty() && refusals->back().index >= done)
        refusals->pop_back();
      refusals->push_back(BatchRefusal{done, std::move(refused)});
    }
    return done;
  };
  for (size_t i = from; i < n; ++i) {
    const Op& op = req.operations(static_cast<int>(i));
    if (batch.recreatesLive(op)) {
      if (const size_t done = commit(i); done < i)
        return done;
      if (!publish->ok())
        return n;  // the state file refused the commit (rolled back): the batch stops here
      begin = i;
      batch.rebase(table_.config());
    }
    if (absl::Status st = batch.apply(op); !st.ok())
      refusals->push_back(BatchRefusal{i, std::move(st)});
  }
  return commit(n);
}

absl::Status ControlOps::applyBatch(const pb::ApplyBatchRequest& req,
                                    pb::ApplyBatchResponse* resp) {
  std::lock_guard<std::mutex> lock(mu_);
  if (frozen_)
    return frozenError();
  // A big batch is seconds of CPU: it runs on a thread of its own at nice 10 (this one waits,
  // holding mu_ for it), so that on a busy machine the workers preempt it at once.
  absl::Status st;
  std::thread t([&] {
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kBatchNice);
    st = applyBatchLocked(req, resp);
  });
  t.join();
  return st;
}

// ipvsadm's restore_table() runs every line and reports each line the kernel refuses; so does
// a batch: a refused operation changes nothing, and the ones after it still run.
absl::Status ControlOps::applyBatchLocked(const pb::ApplyBatchRequest& req,
                                          pb::ApplyBatchResponse* resp) {
  const size_t n = static_cast<size_t>(req.operations_size());
  std::vector<BatchRefusal> refusals;  // in index order
  absl::Status publish = absl::OkStatus();
  for (size_t from = 0; from < n;) {
    const size_t stop = runBatchLocked(req, from, &refusals, &publish);
    if (stop >= n || !publish.ok())
      break;
    from = stop + 1;
  }
  if (!publish.ok()) {
    ++rejected_;
    LB_LOG(kWarn, "rejected ApplyBatch (%d operations): %s", n, publish.ToString());
    return publish;
  }
  auto next = refusals.begin();
  for (size_t i = 0; i < n; ++i) {
    const Op& op = req.operations(static_cast<int>(i));
    if (next != refusals.end() && next->index == i) {
      ++rejected_;
      LB_LOG(kWarn, "rejected ApplyBatch operation %d %s: %s", i, op.ShortDebugString(),
             next->status.ToString());
      pb::BatchFailure* f = resp->add_failures();
      f->set_index(static_cast<uint32_t>(i));
      f->set_code(static_cast<int32_t>(next->status.code()));
      f->set_message(std::string(next->status.message()));
      ++next;
      continue;
    }
    ++accepted_;
    LB_LOG(kInfo, "applied ApplyBatch operation %d %s", i, op.ShortDebugString());
  }
  resp->set_applied(static_cast<uint32_t>(n - refusals.size()));
  return publish;
}

}  // namespace lb::lbd
