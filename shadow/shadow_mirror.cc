#include "shadow/shadow_mirror.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <algorithm>

#include "common/clock.h"
#include "common/stable_hash.h"

namespace lockshift {

ShadowMirror::ShadowMirror(ShadowHooks hooks, prometheus::Registry& registry, ShadowOptions options)
    : hooks_(std::move(hooks)),
      options_(options),
      compared_metric_(prometheus::BuildCounter()
                           .Name("lockshift_shadow_compared_total")
                           .Help("Calls replayed on enhanced in the shadow phase and compared.")
                           .Register(registry)
                           .Add({})),
      dropped_metric_(prometheus::BuildCounter()
                          .Name("lockshift_shadow_dropped_total")
                          .Help("Calls not mirrored because the queue was full (writes are journaled instead).")
                          .Register(registry)
                          .Add({})),
      skipped_metric_(prometheus::BuildCounter()
                          .Name("lockshift_shadow_skipped_total")
                          .Help("Mirrored calls not compared because the key was waiting for repair.")
                          .Register(registry)
                          .Add({})),
      depth_metric_(prometheus::BuildGauge()
                        .Name("lockshift_shadow_queue_depth")
                        .Help("Calls waiting to be replayed on enhanced.")
                        .Register(registry)
                        .Add({})) {
  auto& family = prometheus::BuildCounter()
                     .Name("lockshift_shadow_divergences_total")
                     .Help("Calls enhanced answered differently from legacy in the shadow phase, by kind.")
                     .Register(registry);
  for (size_t i = 0; i < kShadowDivergences.size(); ++i) {
    divergence_metrics_[i] = &family.Add({{"kind", std::string(shadowDivergenceName(kShadowDivergences[i]))}});
  }
  const int workers = std::max(1, options_.workers);
  for (int i = 0; i < workers; ++i) shards_.push_back(std::make_unique<Shard>());
}

ShadowMirror::~ShadowMirror() { stop(); }

void ShadowMirror::start(asio::io_context& io) { io_ = &io; }

void ShadowMirror::stop() { stopping_ = true; }

bool ShadowMirror::isWrite(MirroredCall::Op op) {
  return op == MirroredCall::Op::kPut || op == MirroredCall::Op::kDelete || op == MirroredCall::Op::kUnlockScript;
}

bool ShadowMirror::submit(MirroredCall&& call) {
  if (io_ == nullptr || stopping_) return false;
  if (call.op == MirroredCall::Op::kScan) {
    // A deterministic sample: every k-th page.
    const uint64_t n = scans_seen_.fetch_add(1);
    const double rate = std::clamp(options_.scan_sample_rate, 0.0, 1.0);
    if (rate <= 0 || static_cast<double>(n % 1000) >= rate * 1000) return true;
  }
  if (depth_.fetch_add(1) >= options_.queue_capacity) {
    depth_.fetch_sub(1);
    dropped_metric_.Increment();
    std::lock_guard lock(stats_mu_);
    ++totals_.dropped;
    return false;
  }
  // Increment/Decrement, not Set(depth_): with several network threads a Set of a value read
  // earlier can land after a newer one and leave the gauge stale; the steps commute.
  depth_metric_.Increment();
  if (!call.key.empty()) {
    std::lock_guard lock(pending_mu_);
    auto it = pending_.find(PendingView(call.db, call.key));
    if (it == pending_.end()) it = pending_.emplace(PendingKey(call.db, call.key), 0).first;
    ++it->second;
  }
  Shard* shard = shards_[call.key.empty() ? 0 : stableHash64(call.key) % shards_.size()].get();
  bool start_worker = false;
  {
    std::lock_guard lock(shard->mu);
    shard->queue.push_back(std::move(call));
    start_worker = !shard->draining;
    shard->draining = true;
  }
  // Posted, so the replay starts only after the caller (the router, answering a client) goes on.
  if (start_worker) asio::post(*io_, [this, shard] { asio::co_spawn(*io_, drain(shard), asio::detached); });
  return true;
}

asio::awaitable<void> ShadowMirror::drain(Shard* shard) {
  for (;;) {
    MirroredCall call;
    {
      std::lock_guard lock(shard->mu);
      if (shard->queue.empty()) {
        shard->draining = false;
        co_return;
      }
      call = std::move(shard->queue.front());
      shard->queue.pop_front();
    }
    if (!stopping_) {
      auto p = process(call);
      co_await std::move(p);
    } else if (isWrite(call.op) && hooks_.mark_dirty) {
      // Stopping: a write legacy answered and enhanced has not seen yet is journaled (durably),
      // so the next process repairs enhanced instead of leaving it behind without a trace.
      auto mark = hooks_.mark_dirty(call.db, call.key);
      co_await std::move(mark);
    }
    depth_.fetch_sub(1);
    depth_metric_.Decrement();
    if (!call.key.empty()) {
      std::lock_guard lock(pending_mu_);
      auto it = pending_.find(PendingView(call.db, call.key));
      if (it != pending_.end() && --it->second == 0) pending_.erase(it);
    }
  }
}

asio::awaitable<void> ShadowMirror::process(MirroredCall& call) {
  // The replay gets the request and the comparison keeps legacy's answer, so the request's
  // strings move instead of being copied: a put carries the whole lock value.
  MirroredCall request{.op = call.op,
                       .db = call.db,
                       .key = call.key,
                       .put = std::move(call.put),
                       .pull_num = std::move(call.pull_num),
                       .keys = call.keys};
  call.put.return_previous = request.put.return_previous;  // all compareAnswers() reads of put
  auto replay = hooks_.replay(std::move(request));
  EnhancedAnswer answer = co_await std::move(replay);
  if (answer.skipped) {
    skipped_metric_.Increment();
    std::lock_guard lock(stats_mu_);
    ++skipped_;
    co_return;
  }
  if (stopping_ && !answer.status.isOk()) {
    // Cut short by the stop (the store closing under it): not a divergence, but enhanced may have
    // missed the write, so it is journaled like the calls still queued.
    if (isWrite(call.op) && hooks_.mark_dirty) {
      auto mark = hooks_.mark_dirty(call.db, call.key);
      co_await std::move(mark);
    }
    co_return;
  }
  Comparison c = compareAnswers(call, answer);
  record(call, c);
  // A write enhanced answered differently left it in another state: repair it from legacy. A
  // differing read means the same. (A scan's missing key is found by the consistency checker.)
  if (c.divergence && !call.key.empty() && hooks_.mark_dirty) {
    auto mark = hooks_.mark_dirty(call.db, call.key);
    co_await std::move(mark);
  }
}

void ShadowMirror::record(const MirroredCall& call, const Comparison& c) {
  compared_metric_.Increment();
  std::lock_guard lock(stats_mu_);
  ++totals_.compared;
  if (!c.divergence) return;
  ++totals_.divergent;
  const size_t i = static_cast<size_t>(*c.divergence);
  ++by_kind_[i];
  divergence_metrics_[i]->Increment();
  examples_.push_back(Example{nowUnixMs(), *c.divergence, call.db, call.key, c.detail});
  while (examples_.size() > options_.examples) examples_.pop_front();
}

bool ShadowMirror::pending(int db, std::string_view key) const {
  std::lock_guard lock(pending_mu_);
  return pending_.contains(PendingView(db, key));
}

ShadowMirror::Totals ShadowMirror::totals() const {
  std::lock_guard lock(stats_mu_);
  return totals_;
}

boost::json::object ShadowMirror::statusJson() const {
  std::lock_guard lock(stats_mu_);
  boost::json::object by_kind;
  for (size_t i = 0; i < kShadowDivergences.size(); ++i) by_kind[shadowDivergenceName(kShadowDivergences[i])] = by_kind_[i];
  boost::json::array examples;
  for (const auto& e : examples_) {
    examples.push_back(boost::json::object{{"time_unix_ms", e.time_unix_ms},
                                           {"kind", shadowDivergenceName(e.kind)},
                                           {"db", e.db},
                                           {"key", e.key},
                                           {"detail", e.detail}});
  }
  const double rate = totals_.compared == 0 ? 0.0 : static_cast<double>(totals_.divergent) / static_cast<double>(totals_.compared);
  return {{"mirror_reads", options_.mirror_reads},
          {"queue_depth", depth_.load()},
          {"queue_capacity", options_.queue_capacity},
          {"compared", totals_.compared},
          {"divergent", totals_.divergent},
          {"divergence_rate", rate},
          {"dropped", totals_.dropped},
          {"skipped", skipped_},
          {"by_kind", std::move(by_kind)},
          {"examples", std::move(examples)}};
}

}  // namespace lockshift
