#pragma once
// The router's Prometheus metrics: per-store request counts and latency, store health, phase and
// split, journal depth, rollbacks. Registered on the process registry.
//
// Thread-safety: every method may be called from any thread.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <string_view>

#include <mutex>

#include "backends/lock_store.h"
#include "router/control_state.h"

namespace lockshift {

class RouterMetrics {
 public:
  // kMirror: a shadow replay of a client call on enhanced (not a journal repair).
  enum class Op { kGet, kPut, kDelete, kUnlockScript, kScan, kCount, kPing, kMirror };
  static constexpr size_t kOps = 8;

  explicit RouterMetrics(prometheus::Registry& registry);

  // One call to a store: its latency, and outcome "ok" when the store answered. A store answers
  // unless the call failed for reasons of the store itself: refused bad input (a non-JSON lock
  // value, an expired cursor) or a full store is an answer, so it neither counts as an error nor
  // marks the store down.
  void observe(StoreRole store, Op op, const Status& status, double seconds);
  static bool answered(const Status& status);
  // The control state, and whether enhanced is in the path (false while its breaker is open or
  // half-open: every key is then on legacy).
  void setState(const ControlState& state, bool enhanced_available);
  // Keys waiting for repair, and those of them whose entry lives in memory only.
  void setJournal(size_t depth, size_t memory_only);
  void countRollback();
  void countPropagationFailure(StoreRole target);
  // The enhanced store's circuit breaker (nothing is published for a store without one).
  void setBreaker(const StoreAvailability& breaker);

 private:
  prometheus::Registry& registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  std::array<std::array<prometheus::Counter*, kOps * 2>, 2> counters_{};  // [store][op*2+ok]
  std::array<std::array<prometheus::Histogram*, kOps>, 2> histograms_{};
  std::array<prometheus::Gauge*, 2> up_{};
  std::array<prometheus::Gauge*, 4> phase_{};
  prometheus::Gauge* split_;
  prometheus::Gauge* enhanced_owned_;
  prometheus::Gauge* rollback_active_;
  prometheus::Gauge* epoch_;
  prometheus::Gauge* journal_depth_;
  prometheus::Gauge* journal_memory_only_;
  prometheus::Counter* rollbacks_;
  std::array<prometheus::Counter*, 2> propagation_failures_{};
  prometheus::Gauge* breaker_open_ = nullptr;  // registered on the first setBreaker()
  std::array<prometheus::Gauge*, 3> breaker_state_{};
  prometheus::Counter* breaker_trips_ = nullptr;
  std::mutex breaker_mu_;
  uint64_t breaker_trips_seen_ = 0;  // GUARDED_BY(breaker_mu_)
};

}  // namespace lockshift
