#pragma once
// lockshift's Prometheus metrics (prefix `lockshift_`), registered with prometheus-cpp.
// Served by the admin server's /metrics; until then readable through serialize().
//
// Thread-safety: every metric may be updated from any thread. Metric objects live as long as the
// Metrics instance; the per-command handles returned by command() stay valid for that lifetime.

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace lockshift {

class Metrics {
 public:
  // Handles for one command name against one store, resolved once and cached by the caller.
  struct CommandMetrics {
    prometheus::Counter* requests;
    prometheus::Histogram* latency;  // seconds
  };

  Metrics();

  // `store` is the store that answered ("legacy", "enhanced", or "proxy" for commands answered
  // by lockshift itself such as PING).
  CommandMetrics& command(std::string_view name, std::string_view store);
  // An error reply, by kind: "protocol", "unknown_command", "arity", "syntax", "noauth",
  // "wrongpass", "locked", "invalid_value", "store_unavailable", "store_full", "store_error", ...
  void countError(std::string_view kind);

  prometheus::Counter& connectionsAccepted() { return *connections_accepted_; }
  prometheus::Counter& connectionsRejected() { return *connections_rejected_; }
  prometheus::Gauge& connectionsActive() { return *connections_active_; }

  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The Prometheus text exposition of every metric.
  std::string serialize() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Counter* connections_accepted_;
  prometheus::Counter* connections_rejected_;
  prometheus::Gauge* connections_active_;

  std::mutex mu_;
  std::map<std::string, CommandMetrics, std::less<>> commands_;       // GUARDED_BY(mu_)
  std::map<std::string, prometheus::Counter*, std::less<>> error_kinds_;  // GUARDED_BY(mu_)
};

}  // namespace lockshift
