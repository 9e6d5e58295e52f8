// Router control plane: migration changes, rollback, status, the journal replayer and the
// flag-file poller.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "common/clock.h"
#include "common/files.h"
#include "common/parallel.h"
#include "router/router.h"

namespace lockshift {

namespace json = boost::json;

namespace {

// Journaled keys repaired at once (Router::replayOnce).
constexpr size_t kReplayConcurrency = 16;

// Percent of keys a state hands to enhanced, ignoring rules and rollback: what "forward" means
// for the gates.
double enhancedShare(const ControlState& s) {
  switch (s.phase) {
    case Phase::kLegacyOnly:
    case Phase::kShadow: return 0;
    case Phase::kHybrid: return s.traffic_split;
    case Phase::kEnhancedOnly: return 100;
  }
  return 0;
}

// "50%", "12.5%": as an operator wrote it.
std::string percentText(double split) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g%%", split);
  return buf;
}

StoreRole otherRole(StoreRole r) { return r == StoreRole::kLegacy ? StoreRole::kEnhanced : StoreRole::kLegacy; }

// Present while a process serves the state directory; removed by a clean stop.
std::string runningMarkerPath(const std::string& dir) { return dir + "/running"; }

asio::awaitable<void> sleepFor(asio::steady_timer& timer, std::chrono::milliseconds d) {
  timer.expires_after(d);
  auto wait = timer.async_wait(asio::as_tuple(asio::use_awaitable));
  co_await std::move(wait);
}

}  // namespace

void Router::publishStateMetrics() {
  const StoreAvailability breaker = enhanced_.availability();
  metrics_.setState(*control_.snapshot(), breaker.available);
  publishJournal();
  metrics_.setBreaker(breaker);
}

void Router::publishJournal() { metrics_.setJournal(journal_.depth(), journal_.memoryOnlyCount()); }

void Router::start(asio::io_context& io) {
  io_ = &io;
  // A timer must not be used from two threads at once. With several network threads, a loop
  // re-arming its timer (sleepFor) and stop() cancelling it could run together, so each loop
  // runs on a strand of its own, its timer belongs to that strand, and stop() posts the cancel
  // there.
  auto replay_strand = asio::make_strand(io);
  auto flag_strand = asio::make_strand(io);
  replay_timer_ = std::make_unique<asio::steady_timer>(replay_strand);
  flag_timer_ = std::make_unique<asio::steady_timer>(flag_strand);
  publishStateMetrics();
  spawnBackground(replay_strand, [this] { return replayLoop(); });
  spawnBackground(flag_strand, [this] { return flagLoop(); });
  recoverFromUncleanStop();
  if (auto state = control_.snapshot();
      !options_.keep_legacy_in_sync && state->enhanced_in_use && !state->legacy_behind) {
    // Enhanced was in use before this process and legacy is not kept in sync now: remembered, so
    // turning the setting back on later does not make legacy look complete.
    auto marked = control_.update([](ControlState& s) { s.legacy_behind = true; });
    if (!marked) std::cerr << "lockshift: cannot record that legacy is behind: " << marked.status().toString() << "\n";
  }
  // A state seeded past legacy-only (from the config) needs enhanced filled before enhanced owns
  // anything; until then ownerOf() keeps every key on legacy.
  auto state = control_.snapshot();
  // The backfill resumes from its saved position (and retries until the stores answer).
  if (state->phase != Phase::kLegacyOnly && !state->enhanced_filled) startBackfill("startup");
}

void Router::recoverFromUncleanStop() {
  const std::string marker = runningMarkerPath(control_.dir());
  std::error_code ec;
  const bool unclean = std::filesystem::exists(marker, ec);
  unclean_start_ = unclean;
  auto state = control_.snapshot();
  if (unclean && state->phase == Phase::kShadow && state->enhanced_filled) {
    // The last process stopped without journaling its shadow mirror's queue (killed, crashed):
    // writes legacy answered may never have reached enhanced, and nothing records which. Left
    // so, enhanced could later own a key without its lock and grant it a second time. So
    // enhanced is filled from legacy again before it may own a key, with writes journaled
    // meanwhile, exactly as the first time.
    auto updated = control_.update([](ControlState& s) { s.enhanced_filled = false; });
    if (!updated) {
      std::cerr << "lockshift: cannot record that enhanced must be filled again: " << updated.status().toString()
                << "\n";
    } else {
      forgetBackfillProgress();
      control_.audit("enhanced.fill.restarted", "startup",
                     "the last process stopped without a clean shutdown in the shadow phase; its mirror's "
                     "queue may be lost, so legacy is copied into enhanced again");
    }
  }
  if (Status s = writeFileAtomically(control_.dir(), marker, std::to_string(::getpid()) + "\n"); !s) {
    std::cerr << "lockshift: cannot write " << marker << ": " << s.toString() << "\n";
  }
  started_ = true;
}

void Router::removeRunningMarker() {
  std::error_code ec;
  std::filesystem::remove(runningMarkerPath(control_.dir()), ec);
}

void Router::spawnBackground(std::function<asio::awaitable<void>()> task) {
  spawnBackground(io_->get_executor(), std::move(task));
}

void Router::spawnBackground(asio::any_io_executor executor, std::function<asio::awaitable<void>()> task) {
  ++background_;
  // co_spawn keeps `task` (and what it captures) alive until the coroutine returns. An exception
  // escaping a loop is dropped, as with asio::detached.
  asio::co_spawn(executor, std::move(task), [this](std::exception_ptr) { --background_; });
}

void Router::stop() {
  ++background_;  // held until the cancels are posted, so stopped() is not true in between
  if (!stopping_.exchange(true)) {
    for (auto* timer : {replay_timer_.get(), flag_timer_.get()}) {
      if (timer == nullptr) continue;
      // Counted like a background loop: the router must not go (stopped() stays false) before
      // the cancel has run, even when the loop the timer wakes has already returned by itself.
      ++background_;
      asio::post(timer->get_executor(), [this, timer] {
        timer->cancel();
        --background_;
      });
    }
  }
  --background_;
}

asio::awaitable<void> Router::flagLoop() {
  while (!stopping_) {
    if (auto why = legacyIncomplete(); !why.empty()) {
      // The flag file cannot raise a rollback legacy could not honour (raiseRollback); it is
      // reported once per appearance.
      const bool present = control_.flagFilePresent() && !control_.snapshot()->rollback.raised;
      if (present && !flag_refused_) control_.audit("rollback.refused", "flag-file", why);
      flag_refused_ = present;
    } else if (control_.pollFlagFile()) {
      metrics_.countRollback();
      publishStateMetrics();
    }
    co_await sleepFor(*flag_timer_, options_.flag_poll_interval);
  }
}

asio::awaitable<Status> Router::repair(RepairJournal::Entry entry) {
  auto guard = co_await locks_.lock(entry.db, entry.key);
  if (journal_.dirtyTarget(entry.db, entry.key) != entry.target) co_return Status::ok();  // done meanwhile
  // A replay still queued for this key would land on top of the copy: let the mirror skip it
  // first (it skips dirty keys), then copy.
  if (mirror_ != nullptr && mirror_->pending(entry.db, entry.key)) co_return Status::unavailable("mirror replay pending");
  const StoreRole source = otherRole(entry.target);
  auto read = store(source).get(entry.db, entry.key);
  auto value = co_await std::move(read);
  if (!value) co_return value.status();
  auto apply = applyTo(entry.target, entry.db, entry.key, value->has_value() ? Change::kPut : Change::kDelete,
                       value->value_or(std::string()));
  Status s = co_await std::move(apply);
  if (!s) co_return s;
  auto clear = journal_.clear(entry.db, entry.key);
  co_return co_await std::move(clear);
}

asio::awaitable<size_t> Router::replayOnce(size_t max) {
  const std::vector<RepairJournal::Entry> entries = journal_.pending(max, replay_skip_);
  // Several keys at a time: a repair is two store round trips and a durable journal write, and
  // LMDB's group commit takes the writes of all repairs in flight in one commit. One at a time, the
  // journal a rollback leaves drained at 730-860 keys/s; 16 at a time, at 1630-1960 keys/s with
  // no visible cost to clients (tools/bench_drain.sh). The entries are distinct keys, each
  // repaired under its own lock; replayLoop paces the rounds while clients call.
  ReplayTally tally;
  const size_t workers = std::min(kReplayConcurrency, entries.size());
  auto all = runParallel(workers, [this, &entries, &tally](size_t) { return replayWorker(&entries, &tally); });
  co_await std::move(all);
  // Repaired entries leave the index; the next round starts past the ones that failed, so a few
  // keys that fail every time (a store refusing them) cannot starve the rest.
  const size_t failed = tally.failed.load();
  replay_skip_ = failed == 0 ? 0 : replay_skip_ + failed;
  publishStateMetrics();
  co_return tally.repaired.load();
}

asio::awaitable<Status> Router::replayWorker(const std::vector<RepairJournal::Entry>* entries, ReplayTally* tally) {
  for (size_t i = tally->next++; i < entries->size() && !stopping_; i = tally->next++) {
    auto call = repair((*entries)[i]);
    Status s = co_await std::move(call);
    ++(s.isOk() ? tally->repaired : tally->failed);
  }
  co_return Status::ok();
}

asio::awaitable<void> Router::replayLoop() {
  auto delay = options_.replay_interval;
  while (!stopping_) {
    co_await sleepFor(*replay_timer_, delay);
    if (stopping_) break;
    publishStateMetrics();
    if (!enhanced_.available()) {
      // Out of the path: a ping is the probe that moves a breaker to half-open and, once the
      // journal's keys for enhanced are repaired, closed.
      auto probe = enhanced_.ping();
      co_await std::move(probe);
      publishStateMetrics();
    }
    if (journal_.depth() == 0) continue;
    const uint64_t calls_before = client_calls_.load(std::memory_order_relaxed);
    auto call = replayOnce(256);
    size_t repaired = co_await std::move(call);
    const bool clients_quiet = client_calls_.load(std::memory_order_relaxed) == calls_before;
    // Back off while the target store keeps failing. On progress, the next round waits the
    // interval if clients called during this one, so their share of the network thread stays
    // theirs (back to back under the mix, the clients lost about a third of their throughput:
    // BENCHMARKS.md). With no client calling there is no one to share with: the next round
    // starts at once (after the handlers already queued), and the journal a rollback leaves
    // drains about four times faster.
    if (repaired == 0) {
      delay = std::min(options_.replay_backoff_max, std::max(options_.replay_interval, delay * 2));
    } else {
      delay = clients_quiet ? std::chrono::milliseconds(0) : options_.replay_interval;
    }
  }
}

asio::awaitable<ChangeOutcome> Router::changeMigration(MigrationChange change, std::string actor) {
  ChangeOutcome out;
  if (changing_.exchange(true)) {
    out.refusals.push_back("another migration change is in progress");
    out.state = *control_.snapshot();
    co_return out;
  }
  const ControlState before = *control_.snapshot();
  const Phase phase = change.phase.value_or(before.phase);
  const double split = change.traffic_split.value_or(before.traffic_split);
  ControlState after = before;
  after.phase = phase;
  after.traffic_split = split;
  if (enhancedShare(after) < enhancedShare(before)) {
    if (auto why = legacyIncomplete(); !why.empty()) {
      if (!change.force) {
        changing_ = false;
        out.refusals.push_back("moving keys back to legacy: " + why + "; force overrides");
        out.state = before;
        co_return out;
      }
      control_.audit("decommission.overridden", actor, "keys moved back to legacy: " + why);
    }
  }
  if (gate_ != nullptr && enhancedShare(after) > enhancedShare(before)) {
    std::vector<std::string> refusals = gate_->refusals(before, after);
    if (!refusals.empty() && !change.force) {
      changing_ = false;
      out.refusals = std::move(refusals);
      out.state = before;
      co_return out;
    }
    if (!refusals.empty()) {
      std::string reasons;
      for (const auto& r : refusals) reasons += (reasons.empty() ? "" : "; ") + r;
      control_.audit("gate.overridden", actor, reasons);
    }
  }
  if (phase != Phase::kLegacyOnly && !before.enhanced_filled) {
    if (phase == Phase::kShadow) {
      // Shadow owns nothing on enhanced: the backfill runs in the background, writes are
      // journaled meanwhile, and the mirror compares once it is done.
      startBackfill(actor);
    } else if (backfillRunning()) {
      out.refusals.push_back("the backfill into enhanced is still running (" +
                             std::to_string(backfillJson()["copied"].to_number<uint64_t>()) +
                             " keys copied); wait until status shows it done");
    } else {
      auto fill = fillEnhanced(actor);
      Status s = co_await std::move(fill);
      if (!s) out.refusals.push_back("filling enhanced from legacy failed: " + s.toString());
    }
  }
  bool settled = false;
  if (out.refusals.empty() && before.phase == Phase::kShadow && phase != Phase::kShadow) {
    // Replays still queued must not land on enhanced once it owns keys: they are skipped and
    // their keys journaled, and the move waits for the queue to empty.
    auto settle = settleMirror();
    settled = co_await std::move(settle);
    if (!settled) {
      out.refusals.push_back("the shadow mirror still has " + std::to_string(mirror_->depth()) +
                             " calls to replay after " + std::to_string(options_.drain_timeout.count()) +
                             " ms; try again");
    }
  }
  if (out.refusals.empty()) {
    // Drain the journal first so moving keys carry no backlog; keys still journaled after the
    // timeout stay pinned to their current owner, which keeps them safe. It stops early once a
    // round no longer shrinks the journal: clients writing while every write is journaled (a
    // rollback, the end of the shadow phase) refill it as fast as it drains, and waiting out the
    // timeout would only hold the operator's call for nothing (the replayer goes on after).
    const auto deadline = std::chrono::steady_clock::now() + options_.drain_timeout;
    size_t depth = journal_.depth();
    while (depth > 0 && std::chrono::steady_clock::now() < deadline) {
      auto call = replayOnce(1024);
      const size_t repaired = co_await std::move(call);
      const size_t now = journal_.depth();
      if (repaired == 0 || now >= depth) break;
      depth = now;
    }
  }
  if (out.refusals.empty() && enhancedShare(after) > enhancedShare(before) && journal_.memoryOnlyCount() > 0) {
    // Pinned in memory only (the journal was full, or its write failed): a restart would forget these keys' pins and
    // hand them to the store whose copy is behind. Keys move toward enhanced only once they are
    // repaired. Not a gate: force does not override it.
    out.refusals.push_back("the repair journal holds " + std::to_string(journal_.memoryOnlyCount()) +
                           " entries kept only in memory (it was full, or its write failed); they must be "
                           "repaired first");
  }
  if (out.refusals.empty()) {
    auto updated = control_.update([&](ControlState& s) {
      s.phase = phase;
      s.traffic_split = split;
      if (change.phase) s.phase_source = "state";
      if (change.traffic_split) s.split_source = "state";
    });
    if (!updated) {
      out.refusals.push_back("cannot persist the control state: " + updated.status().toString());
    } else {
      out.applied = true;
      control_.audit("migration.changed", actor,
                     std::string(phaseName(before.phase)) + " " + percentText(before.traffic_split) + " -> " +
                         std::string(phaseName(phase)) + " " + percentText(split) +
                         (change.force ? " (force)" : "") + "; journal " + std::to_string(journal_.depth()));
    }
  }
  // Out of shadow now (or refused, and the mirror was unfrozen by settleMirror()); if the state
  // could not be saved, shadow goes on mirroring.
  if (settled) mirror_frozen_ = false;
  changing_ = false;
  publishStateMetrics();
  out.state = *control_.snapshot();
  co_return out;
}

std::string Router::legacyIncomplete() const {
  auto state = control_.snapshot();
  if (!options_.keep_legacy_in_sync && state->enhanced_in_use) {
    return "[migration] keep_legacy_in_sync is off (decommission), so legacy lacks the writes enhanced has taken "
           "since it came into use; legacy would answer for locks enhanced holds and grant them to other pulls";
  }
  if (state->legacy_behind) {
    return "legacy missed enhanced's writes while [migration] keep_legacy_in_sync was off, and would answer for "
           "locks enhanced holds; a consistency check with repair (POST /api/v1/consistency/checks "
           "{\"repair\":true}) copies them into legacy and lifts this";
  }
  return {};
}

void Router::legacyCaughtUp(const std::string& report_id) {
  if (!options_.keep_legacy_in_sync || !control_.snapshot()->legacy_behind) return;
  auto updated = control_.update([](ControlState& s) { s.legacy_behind = false; });
  if (!updated) {
    std::cerr << "lockshift: cannot record that legacy caught up: " << updated.status().toString() << "\n";
    return;
  }
  control_.audit("legacy.caught_up", "consistency",
                 "report " + report_id + " found legacy equal to enhanced, or repaired it; "
                 "rollbacks are possible again");
  publishStateMetrics();
}

Status Router::raiseRollback(std::string reason, std::string actor) {
  if (control_.snapshot()->rollback.raised) return Status::ok();
  // DESIGN: a rollback wins over everything, because legacy holds every lock. Without
  // keep_legacy_in_sync it does not, and a rollback would break mutual exclusion (promise 1).
  if (auto why = legacyIncomplete(); !why.empty()) {
    control_.audit("rollback.refused", actor, reason + ": " + why);
    return Status::invalidArgument("rollback refused: " + why +
                                   ". To hand keys back anyway, move the phase back with force "
                                   "(PUT /api/v1/migration)");
  }
  auto updated = control_.update([&](ControlState& s) { s.rollback = Rollback{true, reason, actor, nowUnixMs()}; });
  if (!updated) return updated.status();
  control_.audit("rollback.raised", actor, reason);
  metrics_.countRollback();
  publishStateMetrics();
  return Status::ok();
}

Status Router::clearRollback(std::string actor) {
  if (control_.flagFilePresent()) {
    return Status::invalidArgument("remove " + control_.flagFilePath() + " first: the flag file raises the rollback");
  }
  if (!control_.snapshot()->rollback.raised) return Status::ok();
  auto updated = control_.update([](ControlState& s) { s.rollback = Rollback{}; });
  if (!updated) return updated.status();
  control_.audit("rollback.cleared", actor, "");
  publishStateMetrics();
  return Status::ok();
}

// Each store's health counts only while it may own a key. In legacy-only and shadow, under a
// rollback, and while the breaker holds enhanced out of the path, legacy answers every key, so an
// enhanced outage must not take lockshift out of a load balancer: that is the outage fallback
// exists for. Likewise in enhanced-only, once no key is pinned to legacy, legacy answers no
// request: its outage only journals the writes it misses, until a rollback makes it count again.
asio::awaitable<bool> Router::ready() {
  if (!enhancedOwnsEveryKey()) {
    auto call = legacy_.ping();
    if (!(co_await std::move(call)).isOk()) co_return false;
  }
  if (!enhancedMayOwnKeys()) co_return true;
  auto call2 = enhanced_.ping();
  co_return (co_await std::move(call2)).isOk();
}

asio::awaitable<json::object> Router::status() {
  auto state = control_.snapshot();
  json::object out = json::parse(encodeControlState(*state)).as_object();
  out["sources"] = json::object{{"phase", state->phase_source},
                                {"traffic_split", state->split_source},
                                {"rules", state->rules_source},
                                {"rollback", state->rollback.raised ? state->rollback.actor : "none"}};
  out["keep_legacy_in_sync"] = options_.keep_legacy_in_sync;
  // Known before an emergency: whether a rollback would be refused, and why (raiseRollback).
  out["rollback_refused_because"] = legacyIncomplete();
  json::array sample;
  for (const auto& e : journal_.pending(10)) {
    sample.push_back(json::object{{"db", e.db}, {"key", e.key}, {"target", roleName(e.target)}});
  }
  out["journal"] = json::object{{"depth", journal_.depth()}, {"overflow", journal_.overflowCount()},
                                {"memory_only", journal_.memoryOnlyCount()},
                                {"sample", std::move(sample)}};
  json::object stores;
  for (StoreRole role : {StoreRole::kLegacy, StoreRole::kEnhanced}) {
    auto call = store(role).ping();
    Status s = co_await std::move(call);
    stores[roleName(role)] = json::object{{"type", store(role).name()}, {"up", s.isOk()},
                                          {"error", s.isOk() ? "" : s.toString()},
                                          {"warning", store(role).warning()}};
  }
  out["stores"] = std::move(stores);
  out["flag_file"] = json::object{{"path", control_.flagFilePath()}, {"present", control_.flagFilePresent()}};
  if (mirror_ != nullptr) out["shadow"] = mirror_->statusJson();
  out["backfill"] = backfillJson();
  StoreAvailability breaker = enhanced_.availability();
  if (!breaker.state.empty()) {
    out["breaker"] = json::object{{"state", breaker.state},
                                  {"available", breaker.available},
                                  {"reason", breaker.reason},
                                  {"since_unix_ms", breaker.since_unix_ms},
                                  {"trips", breaker.trips},
                                  {"journal_for_enhanced", journal_.depthFor(StoreRole::kEnhanced)}};
  }
  co_return out;
}

}  // namespace lockshift
