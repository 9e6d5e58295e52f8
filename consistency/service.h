#pragma once
// The consistency checker inside the running proxy: checks on demand (admin API, lockshiftctl)
// and on a schedule, one at a time, with reports persisted in <state_dir>/reports, Prometheus
// gauges for the last result, and the rollout gate over those reports.
//
// Online checks compare the raw stores; repairs go through `repair_key` (the router's
// reconcileKey, which holds the key's lock), so a repair never races a client's write.
//
// Thread-safety: every method may be called from any thread. Lifetime: the stores, the report
// store and the registry must outlive the service; stop() before destroying it.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "consistency/checker.h"
#include "consistency/gate.h"
#include "consistency/report_store.h"

namespace lockshift {

struct ConsistencyOptions {
  // Time between scheduled dry-run checks; 0 disables the schedule. A scheduled check runs only
  // while enhanced is in use (before, everything would be "missing in enhanced").
  std::chrono::milliseconds interval{std::chrono::hours(1)};
  int rounds = 3;
  std::chrono::milliseconds recheck_delay{1000};
  int databases = 16;
  // Gates on forward moves; false lets every move through (moving back is never gated).
  bool gates = true;
  GateOptions gate;
};

struct ConsistencyHooks {
  std::function<StoreRole(int db, std::string_view key)> owner;                      // required
  std::function<asio::awaitable<Status>(int db, std::string key)> repair_key;         // required
  std::function<bool()> enhanced_in_use;                                               // required
  std::function<void(const std::string& kind, const std::string& actor, const std::string& detail)> audit;
  // Called with every check that ran to its end (saved, verdict known). Optional.
  std::function<void(const Report& report)> finished;
};

struct StartOutcome {
  bool started = false;
  std::string id;  // the new check, or the one already running
};

class ConsistencyService {
 public:
  ConsistencyService(LockStore& legacy, LockStore& enhanced, ReportStore& reports, prometheus::Registry& registry,
                     ConsistencyHooks hooks, ConsistencyOptions options);
  ~ConsistencyService();

  // Starts the schedule on `io`; checks run there too.
  void start(asio::io_context& io);
  void stop();

  // Starts a check in the background unless one is running.
  StartOutcome startCheck(bool repair, std::string actor);
  // The running check's report (in progress) or a persisted one; "latest" names the newest.
  std::optional<Report> report(const std::string& id) const;
  // The newest `max` reports, newest first; a running check comes first.
  std::vector<Report> list(size_t max) const;
  // nullptr when gates are off.
  MigrationGate* gate() { return options_.gates ? &gate_ : nullptr; }

 private:
  asio::awaitable<void> runOne(std::shared_ptr<Report> report, std::string actor);
  asio::awaitable<void> scheduleLoop();
  void publish(const Report& report);

  LockStore& legacy_;
  LockStore& enhanced_;
  ReportStore& reports_;
  ConsistencyHooks hooks_;
  ConsistencyOptions options_;
  ReportGate gate_;
  asio::io_context* io_ = nullptr;
  std::unique_ptr<asio::steady_timer> timer_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::optional<Report> running_;  // GUARDED_BY(mu_): a copy, refreshed on progress

  prometheus::Gauge& last_run_;
  prometheus::Gauge& last_clean_;
  prometheus::Gauge& last_duration_;
  prometheus::Gauge& running_gauge_;
  prometheus::Family<prometheus::Gauge>& last_divergent_;
  prometheus::Family<prometheus::Counter>& checks_;
};

}  // namespace lockshift
