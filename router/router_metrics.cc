#include "router/router_metrics.h"

namespace lockshift {

namespace {

constexpr std::array<std::string_view, RouterMetrics::kOps> kOpNames = {
    "get", "put", "delete", "unlock_script", "scan", "count", "ping", "mirror"};

const prometheus::Histogram::BucketBoundaries kBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                                          0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                                          0.5,     1,      2.5,     5};

prometheus::Gauge* gauge(prometheus::Registry& r, const std::string& name, const std::string& help,
                         const prometheus::Labels& labels = {}) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add(labels);
}

}  // namespace

RouterMetrics::RouterMetrics(prometheus::Registry& registry)
    : registry_(registry),
      requests_(prometheus::BuildCounter()
                    .Name("lockshift_store_requests_total")
                    .Help("Calls from the router to a store, by store, operation and outcome.")
                    .Register(registry)),
      latency_(prometheus::BuildHistogram()
                   .Name("lockshift_store_request_duration_seconds")
                   .Help("Latency of calls from the router to a store.")
                   .Register(registry)) {
  for (StoreRole role : {StoreRole::kLegacy, StoreRole::kEnhanced}) {
    size_t s = role == StoreRole::kLegacy ? 0 : 1;
    std::string store(roleName(role));
    for (size_t op = 0; op < kOps; ++op) {
      std::string name(kOpNames[op]);
      counters_[s][op * 2] = &requests_.Add({{"store", store}, {"operation", name}, {"outcome", "error"}});
      counters_[s][op * 2 + 1] = &requests_.Add({{"store", store}, {"operation", name}, {"outcome", "ok"}});
      histograms_[s][op] = &latency_.Add({{"store", store}, {"operation", name}}, kBuckets);
    }
  }
  auto& up = prometheus::BuildGauge().Name("lockshift_store_up").Help("1 when the store answered its last call.")
                 .Register(registry);
  up_[0] = &up.Add({{"store", "legacy"}});
  up_[1] = &up.Add({{"store", "enhanced"}});
  auto& phase = prometheus::BuildGauge().Name("lockshift_phase").Help("1 for the current migration phase.")
                    .Register(registry);
  for (Phase p : {Phase::kLegacyOnly, Phase::kShadow, Phase::kHybrid, Phase::kEnhancedOnly}) {
    phase_[static_cast<size_t>(p)] = &phase.Add({{"phase", std::string(phaseName(p))}});
  }
  split_ = gauge(registry, "lockshift_traffic_split_percent",
                 "Configured hybrid split: the percent of buckets enhanced owns in the hybrid phase. Kept in "
                 "other phases; see lockshift_enhanced_owned_percent for what enhanced owns now.");
  enhanced_owned_ = gauge(registry, "lockshift_enhanced_owned_percent",
                          "Percent of buckets enhanced owns now: 0 in legacy-only and shadow, during a rollback "
                          "and while its breaker keeps it out; the split in hybrid; 100 in enhanced-only. "
                          "Keys matched by migration rules are not counted.");
  rollback_active_ = gauge(registry, "lockshift_rollback_active", "1 while an emergency rollback is raised.");
  epoch_ = gauge(registry, "lockshift_control_epoch", "Epoch of the control state.");
  journal_depth_ = gauge(registry, "lockshift_journal_depth", "Keys waiting in the repair journal.");
  journal_memory_only_ = gauge(registry, "lockshift_journal_memory_only",
                               "Repair journal entries kept in memory only: a restart would forget them.");
  rollbacks_ = &prometheus::BuildCounter().Name("lockshift_rollbacks_total").Help("Emergency rollbacks raised.")
                    .Register(registry).Add({});
  auto& prop = prometheus::BuildCounter()
                   .Name("lockshift_propagation_failures_total")
                   .Help("Writes to the non-owner store that failed and were journaled, by target.")
                   .Register(registry);
  propagation_failures_[0] = &prop.Add({{"target", "legacy"}});
  propagation_failures_[1] = &prop.Add({{"target", "enhanced"}});
}

bool RouterMetrics::answered(const Status& status) {
  return status.isOk() || status.code() == ErrorCode::kInvalidArgument || status.code() == ErrorCode::kStoreFull;
}

void RouterMetrics::observe(StoreRole store, Op op, const Status& status, double seconds) {
  const bool ok = answered(status);
  size_t s = store == StoreRole::kLegacy ? 0 : 1;
  size_t o = static_cast<size_t>(op);
  counters_[s][o * 2 + (ok ? 1 : 0)]->Increment();
  histograms_[s][o]->Observe(seconds);
  up_[s]->Set(ok ? 1 : 0);
}

void RouterMetrics::setState(const ControlState& state, bool enhanced_available) {
  for (size_t i = 0; i < phase_.size(); ++i) phase_[i]->Set(i == static_cast<size_t>(state.phase) ? 1 : 0);
  split_->Set(state.traffic_split);
  enhanced_owned_->Set(enhanced_available ? state.enhancedOwnedPercent() : 0);
  rollback_active_->Set(state.rollback.raised ? 1 : 0);
  epoch_->Set(static_cast<double>(state.epoch));
}

void RouterMetrics::setJournal(size_t depth, size_t memory_only) {
  journal_depth_->Set(static_cast<double>(depth));
  journal_memory_only_->Set(static_cast<double>(memory_only));
}

void RouterMetrics::countRollback() { rollbacks_->Increment(); }

void RouterMetrics::countPropagationFailure(StoreRole target) {
  propagation_failures_[target == StoreRole::kLegacy ? 0 : 1]->Increment();
}

void RouterMetrics::setBreaker(const StoreAvailability& breaker) {
  if (breaker.state.empty()) return;
  std::lock_guard lock(breaker_mu_);
  if (breaker_open_ == nullptr) {
    breaker_open_ = gauge(registry_, "lockshift_breaker_open",
                          "1 while the enhanced store's circuit breaker keeps it out of the path (open or half-open).");
    auto& state = prometheus::BuildGauge()
                      .Name("lockshift_breaker_state")
                      .Help("1 for the circuit breaker's current state.")
                      .Register(registry_);
    breaker_state_ = {&state.Add({{"state", "closed"}}), &state.Add({{"state", "open"}}),
                      &state.Add({{"state", "half-open"}})};
    breaker_trips_ = &prometheus::BuildCounter()
                          .Name("lockshift_breaker_trips_total")
                          .Help("Times the circuit breaker took the enhanced store out of the path.")
                          .Register(registry_)
                          .Add({});
  }
  breaker_open_->Set(breaker.available ? 0 : 1);  // half-open keeps enhanced out too
  const char* names[] = {"closed", "open", "half-open"};
  for (size_t i = 0; i < 3; ++i) breaker_state_[i]->Set(breaker.state == names[i] ? 1 : 0);
  if (breaker.trips > breaker_trips_seen_) {
    breaker_trips_->Increment(static_cast<double>(breaker.trips - breaker_trips_seen_));
    breaker_trips_seen_ = breaker.trips;
  }
}

}  // namespace lockshift
