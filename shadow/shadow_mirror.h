#pragma once
// ShadowMirror: the shadow phase's mirror (DESIGN §2). The router answers every call from legacy
// and submits it here; the mirror replays it on enhanced afterwards and compares the answers as
// lock decisions (shadow/compare.h). Nothing here can slow or fail a client:
//   - submit() never blocks: a bounded queue; when full the call is dropped and counted (the
//     router then journals the key, so enhanced is repaired instead of left behind);
//   - replays run on the io_context after the client was answered, `workers` at a time; calls
//     for one key always go to the same worker, in the order the router decided them.
// A divergence is counted by kind, kept among the last `examples`, and the key is marked dirty
// for enhanced so the journal copies legacy's value over it. Scans are compared on a sample of
// pages (`scan_sample_rate`); reads only with `mirror_reads`.
//
// Thread-safety: every method may be called from any thread. Lifetime: the hooks' targets and
// the registry must outlive the mirror; stop() before destroying it.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "router/mirror.h"
#include "shadow/compare.h"

namespace lockshift {

struct ShadowOptions {
  // Calls waiting for replay at most. Larger rides out longer enhanced slowdowns; each waiting
  // call holds its key and value in memory.
  size_t queue_capacity = 10000;
  // Replays in flight at once (calls for one key stay on one worker, in order).
  int workers = 64;
  // Mirror GET and SCAN as well as writes.
  bool mirror_reads = false;
  // Fraction of mirrored scan pages whose keys are checked in enhanced (0..1).
  double scan_sample_rate = 0.1;
  // Divergence examples kept for status and reports.
  size_t examples = 20;
};

struct ShadowHooks {
  // Replays a call on enhanced (Router::replayOnEnhanced). Required.
  std::function<asio::awaitable<EnhancedAnswer>(MirroredCall)> replay;
  // Marks a key dirty for enhanced so it is repaired from legacy (Router::markEnhancedDirty).
  std::function<asio::awaitable<void>(int db, std::string key)> mark_dirty;
};

class ShadowMirror final : public MirrorSink {
 public:
  ShadowMirror(ShadowHooks hooks, prometheus::Registry& registry, ShadowOptions options);
  ~ShadowMirror() override;

  void start(asio::io_context& io);
  // Stops taking calls. Writes still queued, and writes whose replay the stop cut short, are
  // journaled through mark_dirty instead of replayed: the queue lives in memory, and enhanced
  // must not be left silently behind legacy by a restart.
  void stop();

  bool submit(MirroredCall&& call) override;
  bool mirrorReads() const override { return options_.mirror_reads; }
  bool pending(int db, std::string_view key) const override;
  size_t depth() const override { return depth_.load(); }
  boost::json::object statusJson() const override;

  struct Totals {
    uint64_t compared = 0;
    uint64_t divergent = 0;
    uint64_t dropped = 0;
  };
  Totals totals() const;

 private:
  struct Shard {
    std::mutex mu;
    std::deque<MirroredCall> queue;  // GUARDED_BY(mu)
    bool draining = false;           // GUARDED_BY(mu): a worker coroutine is running
  };
  struct Example {
    int64_t time_unix_ms;
    ShadowDivergence kind;
    int db;
    std::string key;
    std::string detail;
  };

  asio::awaitable<void> drain(Shard* shard);
  // `call` is drain()'s, which awaits this at once.
  asio::awaitable<void> process(MirroredCall& call);
  void record(const MirroredCall& call, const Comparison& c);
  static bool isWrite(MirroredCall::Op op);

  ShadowHooks hooks_;
  ShadowOptions options_;
  asio::io_context* io_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<size_t> depth_{0};
  std::atomic<uint64_t> scans_seen_{0};

  // Keys by (db, key); looked up by (db, string_view) without building a key string: every
  // client request in the shadow phase asks pending() and every mirrored call passes here twice.
  using PendingKey = std::pair<int, std::string>;
  using PendingView = std::pair<int, std::string_view>;
  struct PendingHash {
    using is_transparent = void;
    size_t operator()(const PendingView& k) const {
      return std::hash<std::string_view>()(k.second) ^ (static_cast<size_t>(k.first) * 0x9e3779b97f4a7c15ULL);
    }
    size_t operator()(const PendingKey& k) const { return (*this)(PendingView(k.first, k.second)); }
  };
  struct PendingEq {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return a.first == b.first && std::string_view(a.second) == std::string_view(b.second);
    }
  };
  mutable std::mutex pending_mu_;
  // GUARDED_BY(pending_mu_): calls queued or in flight per key.
  std::unordered_map<PendingKey, int, PendingHash, PendingEq> pending_;

  mutable std::mutex stats_mu_;
  Totals totals_;                                                  // GUARDED_BY(stats_mu_)
  std::array<uint64_t, kShadowDivergences.size()> by_kind_{};      // GUARDED_BY(stats_mu_)
  uint64_t skipped_ = 0;                                           // GUARDED_BY(stats_mu_)
  std::deque<Example> examples_;                                   // GUARDED_BY(stats_mu_)

  prometheus::Counter& compared_metric_;
  prometheus::Counter& dropped_metric_;
  prometheus::Counter& skipped_metric_;
  prometheus::Gauge& depth_metric_;
  std::array<prometheus::Counter*, kShadowDivergences.size()> divergence_metrics_{};
};

}  // namespace lockshift
