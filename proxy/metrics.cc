#include "proxy/metrics.h"

#include <prometheus/text_serializer.h>

#include <sstream>

namespace lockshift {

namespace {

// Latency buckets from 50µs to 5s: a proxy hop is sub-millisecond, a slow store is seconds.
const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("lockshift_requests_total")
                    .Help("Commands handled, by command and by where they were answered: store=\"router\" through the "
                          "stores (per store: lockshift_store_requests_total), store=\"proxy\" by lockshift itself.")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("lockshift_request_duration_seconds")
                   .Help("Time from a parsed command to its reply, by command and by where it was answered (router or "
                         "proxy, as for lockshift_requests_total).")
                   .Register(*registry_)),
      errors_(prometheus::BuildCounter()
                  .Name("lockshift_errors_total")
                  .Help("Error replies and protocol errors, by kind.")
                  .Register(*registry_)) {
  auto& accepted = prometheus::BuildCounter()
                       .Name("lockshift_connections_accepted_total")
                       .Help("Client connections accepted on the RESP listener.")
                       .Register(*registry_);
  connections_accepted_ = &accepted.Add({});
  auto& rejected = prometheus::BuildCounter()
                       .Name("lockshift_connections_rejected_total")
                       .Help("Client connections refused because max_clients was reached.")
                       .Register(*registry_);
  connections_rejected_ = &rejected.Add({});
  auto& active = prometheus::BuildGauge()
                     .Name("lockshift_connections_active")
                     .Help("Client connections open now.")
                     .Register(*registry_);
  connections_active_ = &active.Add({});
}

Metrics::CommandMetrics& Metrics::command(std::string_view name, std::string_view store) {
  std::string id(name);
  id.push_back('\0');
  id.append(store);
  std::lock_guard lock(mu_);
  auto it = commands_.find(id);
  if (it != commands_.end()) return it->second;
  prometheus::Labels labels{{"command", std::string(name)}, {"store", std::string(store)}};
  CommandMetrics m{&requests_.Add(labels), &latency_.Add(labels, kLatencyBuckets)};
  return commands_.emplace(std::move(id), m).first->second;
}

void Metrics::countError(std::string_view kind) {
  prometheus::Counter* counter = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = error_kinds_.find(kind);
    if (it == error_kinds_.end()) {
      it = error_kinds_.emplace(std::string(kind), &errors_.Add({{"kind", std::string(kind)}})).first;
    }
    counter = it->second;
  }
  counter->Increment();
}

std::string Metrics::serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace lockshift
