#include "consistency/service.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <iostream>

#include "common/clock.h"

namespace lockshift {

ConsistencyService::ConsistencyService(LockStore& legacy, LockStore& enhanced, ReportStore& reports,
                                       prometheus::Registry& registry, ConsistencyHooks hooks,
                                       ConsistencyOptions options)
    : legacy_(legacy),
      enhanced_(enhanced),
      reports_(reports),
      hooks_(std::move(hooks)),
      options_(std::move(options)),
      gate_(reports, options_.gate),
      last_run_(prometheus::BuildGauge()
                    .Name("lockshift_consistency_last_run_timestamp_seconds")
                    .Help("Unix time the last finished consistency check ended")
                    .Register(registry)
                    .Add({})),
      last_clean_(prometheus::BuildGauge()
                      .Name("lockshift_consistency_last_clean")
                      .Help("1 if the last finished consistency check was clean, else 0 (also when "
                            "\"repaired\": the gates wait for a clean check)")
                      .Register(registry)
                      .Add({})),
      last_duration_(prometheus::BuildGauge()
                         .Name("lockshift_consistency_last_duration_seconds")
                         .Help("How long the last finished consistency check took")
                         .Register(registry)
                         .Add({})),
      running_gauge_(prometheus::BuildGauge()
                         .Name("lockshift_consistency_running")
                         .Help("1 while a consistency check runs")
                         .Register(registry)
                         .Add({})),
      last_divergent_(prometheus::BuildGauge()
                          .Name("lockshift_consistency_last_divergent_keys")
                          .Help("Divergent keys found by the last finished consistency check, by kind")
                          .Register(registry)),
      checks_(prometheus::BuildCounter()
                  .Name("lockshift_consistency_checks_total")
                  .Help("Consistency checks finished, by verdict")
                  .Register(registry)) {
  for (DivergenceKind kind : kDivergenceKinds) last_divergent_.Add({{"kind", std::string(divergenceName(kind))}});
  for (const char* verdict : {"clean", "divergent", "repaired", "failed"}) checks_.Add({{"verdict", verdict}});
  if (auto last = reports_.latestDone()) publish(*last);
}

ConsistencyService::~ConsistencyService() { stop(); }

void ConsistencyService::start(asio::io_context& io) {
  io_ = &io;
  if (options_.interval.count() <= 0) return;
  timer_ = std::make_unique<asio::steady_timer>(io);
  asio::co_spawn(io, scheduleLoop(), asio::detached);
}

void ConsistencyService::stop() {
  if (stopping_.exchange(true)) return;
  if (timer_) asio::post(timer_->get_executor(), [t = timer_.get()] { t->cancel(); });
}

StartOutcome ConsistencyService::startCheck(bool repair, std::string actor) {
  auto report = std::make_shared<Report>();
  {
    std::lock_guard lock(mu_);
    if (running_) return StartOutcome{false, running_->id};
    if (io_ == nullptr || stopping_) return StartOutcome{false, ""};
    report->started_unix_ms = nowUnixMs();
    report->id = ReportStore::newId(report->started_unix_ms);
    report->mode = "online";
    report->repair = repair;
    report->progress = "starting";
    running_ = *report;
    running_gauge_.Set(1);
  }
  // Outside the lock: co_spawn may start the check inline on this thread, and its progress
  // callback takes the lock.
  asio::co_spawn(*io_, runOne(report, std::move(actor)), asio::detached);
  return StartOutcome{true, report->id};
}

asio::awaitable<void> ConsistencyService::runOne(std::shared_ptr<Report> report, std::string actor) {
  if (hooks_.audit) hooks_.audit("consistency.started", actor, report->id + (report->repair ? " (repair)" : " (dry run)"));
  CheckOptions o;
  o.rounds = options_.rounds;
  o.recheck_delay = options_.recheck_delay;
  o.databases = options_.databases;
  o.repair = report->repair;
  o.owner = hooks_.owner;
  o.repair_key = hooks_.repair_key;
  o.cancelled = [this] { return stopping_.load(); };
  o.on_progress = [this](const Report& now) {
    std::lock_guard lock(mu_);
    running_ = now;
    // Finished, but not saved yet: readers keep seeing it running until the saved report (which
    // the gates read) exists.
    if (now.state != "running") {
      running_->state = "running";
      running_->progress = "saving the report";
    }
  };
  auto check = runCheck(legacy_, enhanced_, o, *report);
  co_await std::move(check);
  if (Status s = reports_.save(*report); !s) {
    std::cerr << "lockshift: cannot save consistency report " << report->id << ": " << s.message() << "\n";
  }
  publish(*report);
  checks_.Add({{"verdict", report->verdict()}}).Increment();
  if (hooks_.audit) {
    hooks_.audit("consistency.finished", actor,
                 report->id + ": " + report->verdict() + ", " + std::to_string(report->totalDivergent()) +
                     " divergent of " + std::to_string(report->compared) +
                     (report->error.empty() ? "" : "; " + report->error));
  }
  if (hooks_.finished && report->state == "done") hooks_.finished(*report);
  std::lock_guard lock(mu_);
  running_.reset();
  running_gauge_.Set(0);
}

void ConsistencyService::publish(const Report& r) {
  if (r.state != "done") return;
  last_run_.Set(static_cast<double>(r.finished_unix_ms) / 1000.0);
  last_clean_.Set(r.verdict() == "clean" ? 1 : 0);
  last_duration_.Set(static_cast<double>(r.finished_unix_ms - r.started_unix_ms) / 1000.0);
  for (DivergenceKind kind : kDivergenceKinds) {
    auto it = r.divergent.find(kind);
    last_divergent_.Add({{"kind", std::string(divergenceName(kind))}})
        .Set(it == r.divergent.end() ? 0 : static_cast<double>(it->second));
  }
}

asio::awaitable<void> ConsistencyService::scheduleLoop() {
  while (!stopping_) {
    timer_->expires_after(options_.interval);
    auto wait = timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    co_await std::move(wait);
    if (stopping_) break;
    if (hooks_.enhanced_in_use && hooks_.enhanced_in_use()) startCheck(false, "schedule");
  }
}

std::optional<Report> ConsistencyService::report(const std::string& id) const {
  {
    std::lock_guard lock(mu_);
    if (running_ && running_->id == id) return running_;
  }
  return reports_.load(id);
}

std::vector<Report> ConsistencyService::list(size_t max) const {
  std::vector<Report> out;
  {
    std::lock_guard lock(mu_);
    if (running_ && max > 0) out.push_back(*running_);
  }
  if (out.size() < max) {
    for (auto& r : reports_.list(max - out.size())) out.push_back(std::move(r));
  }
  return out;
}

}  // namespace lockshift
