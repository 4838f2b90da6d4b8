// SPDX-License-Identifier: Apache-2.0
// HealthService: the commit glue. Results become ApplyBatch operations on the commit thread,
// coalesced over kFlushDelay; an operator's commits are observed (weights, removals).
#include <future>

#include "absl/strings/str_cat.h"
#include <boost/asio/post.hpp>

#include "cmd/lbd/health/health_service_impl.h"
#include "core/base/log.h"

namespace lb::health {

absl::Status HealthService::Impl::commit(const Pool& to) {
  absl::Status st = commitDiff(applied, to);
  applied = to;
  dirty_vs.clear();
  return st;
}

absl::Status HealthService::Impl::commitDiff(const Pool& from, const Pool& to, bool wait) {
  auto req = std::make_shared<pb::ApplyBatchRequest>(diffPools(from, to));
  if (req->operations_size() == 0)
    return absl::OkStatus();
  if (!commit_thread.joinable())
    return applyBatch(*req);  // not started yet (the first commit, tests)
  if (!wait) {
    asio::post(commit_io, [this, req] {
      if (absl::Status st = applyBatch(*req); !st.ok())
        LB_LOG(kError, "health: commit failed: %s", st.ToString());
    });
    return absl::OkStatus();
  }
  std::promise<absl::Status> done;
  std::future<absl::Status> result = done.get_future();
  asio::post(commit_io, [this, req, &done] { done.set_value(applyBatch(*req)); });
  return result.get();
}

absl::Status HealthService::Impl::applyBatch(const pb::ApplyBatchRequest& req) {
  pb::ApplyBatchResponse resp;
  own_commits.fetch_add(1);
  absl::Status st = options.control.apply_batch(req, &resp);
  for (const pb::BatchFailure& f : resp.failures()) {
    LB_LOG(kWarn, "health: operation %d of %d refused: %s", f.index(), req.operations_size(),
           f.message());
  }
  return st;
}

void HealthService::Impl::scheduleFlush(VsRt* vs) {
  dirty_vs.insert(vs);
  if (flush_posted)
    return;
  flush_posted = true;
  if (!flush_timer)
    flush_timer = std::make_unique<asio::steady_timer>(io);
  flush_timer->expires_after(kFlushDelay);
  flush_timer->async_wait([this](const boost::system::error_code& ec) {
    flush_posted = false;
    if (ec)
      return;
    Pool from, to, to_api;
    for (const VsRt* v : dirty_vs)
      desiredFor(*v, v->api ? to_api : to);
    dirty_vs.clear();
    for (const auto& [id, ps] : to) {
      if (auto it = applied.find(id); it != applied.end())
        from.emplace(id, it->second);
    }
    for (const auto& [id, ps] : to_api) {
      if (auto it = api_applied.find(id); it != api_applied.end())
        from.emplace(id, it->second);
    }
    to.merge(to_api);
    (void)commitDiff(from, to, /*wait=*/false);  // logs its own failure
    for (auto& [id, ps] : to)
      (api_applied.contains(id) ? api_applied : applied)[id] = std::move(ps);
  });
}

void HealthService::Impl::onOperatorCommit(const std::vector<Seen>& seen, uint64_t commits_then) {
  if (own_commits.load() != commits_then)
    return;  // this service committed since; what it saw is stale
  bool dirty = false;
  for (const Seen& s : seen) {
    auto it = applied.find(s.key_id);
    if (it == applied.end())
      continue;
    if (!s.present) {
      applied.erase(it);
      continue;
    }
    PoolService& ps = it->second;
    for (auto d = ps.dests.begin(); d != ps.dests.end();) {
      auto w = s.weights.find(d->first);
      if (w == s.weights.end()) {
        d = ps.dests.erase(d);
        continue;
      }
      if (w->second != d->second.weight()) {
        d->second.set_weight(w->second);
        // Which real server is it? Its healthy weight is now the operator's.
        for (auto& v : vss) {
          for (size_t r = 0; r < v->rs.size(); ++r) {
            if (v->plan.keys.empty() || destId(v->rs[r].dest) != d->first ||
                keyId(v->plan.keys[0]) != s.key_id) {
              continue;
            }
            if (!v->health->alive(r) && w->second == 0)
              continue;  // our own quiescing
            LB_LOG(kInfo, "health: %s %s: weight %d set by the operator", v->name, d->first,
                   w->second);
            v->rs[r].dest.set_weight(w->second);
            for (const Transition& t : v->health->setWeight(r, w->second))
              notify(*v, t);
            dirty_vs.insert(v.get());
            dirty = true;
            if (!v->rs[r].checkers.empty())
              updateStatus(*v->rs[r].checkers[0]);
          }
        }
      }
      ++d;
    }
  }
  if (dirty)
    scheduleFlush(*dirty_vs.begin());
}

}  // namespace lb::health
