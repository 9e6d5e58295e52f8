// The backfill (DESIGN §2): the first move past legacy-only copies legacy into enhanced. It runs
// in the background when the shadow phase is entered (new writes are journaled meanwhile, so
// enhanced never falls behind), or inside the request for a direct move to hybrid. Progress is
// saved after every page in <state_dir>/backfill.json, so a restart resumes where it stopped;
// `backfill_rate` throttles it. The keys of a page are copied several at a time.

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/clock.h"
#include "common/files.h"
#include "common/json_text.h"
#include "common/parallel.h"
#include "router/router.h"

namespace lockshift {

namespace json = boost::json;

namespace {

std::string progressPath(const std::string& dir) { return dir + "/backfill.json"; }

// The longest single wait of the throttle: how late the backfill notices a stop.
constexpr auto kThrottleSlice = std::chrono::milliseconds(100);

// Keys of a page copied at once, each under its own lock. One at a time, a key is two store
// round trips in a row, and under the Atlantis mix the copy crawled at about 400 keys/s
// (tools/bench_backfill.sh, BENCHMARKS.md).
constexpr size_t kCopyConcurrency = 16;

json::object progressJson(const BackfillProgress& p) {
  return {{"state", p.state},        {"db", p.db},
          {"pass", p.pass == 0 ? "legacy" : "enhanced"},
          {"cursor", p.cursor},      {"copied", p.copied},
          {"removed", p.removed},    {"started_unix_ms", p.started_unix_ms},
          {"finished_unix_ms", p.finished_unix_ms}, {"error", p.error}};
}

// A saved position, or a fresh start when there is none (or it cannot be read).
BackfillProgress loadProgress(const std::string& dir) {
  BackfillProgress p;
  std::ifstream in(progressPath(dir));
  if (!in) return p;
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec || !v.is_object()) return p;
  const auto& o = v.as_object();
  auto number = [&](const char* field) -> uint64_t {
    const json::value* f = o.if_contains(field);
    return f != nullptr && f->is_number() ? f->to_number<uint64_t>() : 0;
  };
  p.db = static_cast<int>(number("db"));
  const json::value* pass = o.if_contains("pass");
  p.pass = pass != nullptr && pass->is_string() && pass->as_string() == "enhanced" ? 1 : 0;
  p.cursor = number("cursor");
  p.copied = number("copied");
  p.removed = number("removed");
  p.started_unix_ms = static_cast<int64_t>(number("started_unix_ms"));
  p.resumed = true;
  return p;
}

}  // namespace

asio::awaitable<Status> Router::copyWorker(int db, StoreRole from, const std::vector<std::string>* keys,
                                           CopyTally* tally) {
  for (size_t i = tally->next++; i < keys->size() && !tally->failed; i = tally->next++) {
    if (stopping_) {
      // The page is not saved as copied: the next start copies it again.
      tally->failed = true;
      co_return Status::unavailable("stopped; it resumes at the next start");
    }
    const std::string& key = (*keys)[i];
    auto guard = co_await locks_.lock(db, key);
    if (journal_.dirtyTarget(db, key)) continue;  // the replayer owns it
    auto read = legacy_.get(db, key);
    auto value = co_await std::move(read);
    if (!value) {
      tally->failed = true;
      co_return value.status();
    }
    if (from == StoreRole::kEnhanced && value->has_value()) continue;  // copied in pass one
    auto apply = applyTo(StoreRole::kEnhanced, db, key, value->has_value() ? Change::kPut : Change::kDelete,
                         value->value_or(std::string()));
    if (Status s = co_await std::move(apply); !s) {
      tally->failed = true;
      co_return s;
    }
    ++(value->has_value() ? tally->copied : tally->removed);
  }
  co_return Status::ok();
}

json::object Router::backfillJson() const {
  std::lock_guard lock(backfill_mu_);
  return progressJson(backfill_);
}

void Router::forgetBackfillProgress() {
  std::error_code ec;
  std::filesystem::remove(progressPath(control_.dir()), ec);
}

bool Router::backfillRunning() const { return backfill_running_.load(); }

void Router::startBackfill(std::string actor) {
  if (io_ == nullptr || backfill_running_.load()) return;
  spawnBackground([this, actor]() -> asio::awaitable<void> {
    // Retried from the saved position while it fails (a store not connected yet after a restart,
    // a store down for a while), as long as a phase past legacy-only still needs it.
    auto backoff = std::chrono::milliseconds(250);
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int attempt = 0; !stopping_; ++attempt) {
      // (The move that starts it applies its phase after this call: only a retry can see the
      // operator moving back to legacy-only, which ends the need for it.)
      auto state = control_.snapshot();
      if (state->enhanced_filled || (attempt > 0 && state->phase == Phase::kLegacyOnly)) co_return;
      auto fill = fillEnhanced(actor);
      Status s = co_await std::move(fill);
      if (s || stopping_) co_return;
      if (s.code() == ErrorCode::kUnavailable && backfill_running_.load()) co_return;  // another run has it
      if (attempt == 0) control_.audit("enhanced.fill.failed", actor, s.toString() + "; retrying");
      timer.expires_after(backoff);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
    }
  });
}

asio::awaitable<Status> Router::fillEnhanced(std::string actor) {
  if (backfill_running_.exchange(true)) co_return Status::unavailable("the backfill is already running");
  struct Running {
    std::atomic<bool>& flag;
    ~Running() { flag = false; }
  } running{backfill_running_};
  // From here on every write enhanced misses is journaled, so the copy below cannot leave it
  // behind: a key written during the copy is pinned to legacy until the replayer repairs it.
  auto marked = control_.update([this](ControlState& s) {
    s.enhanced_in_use = true;
    if (!options_.keep_legacy_in_sync) s.legacy_behind = true;  // from now on legacy misses writes
  });
  if (!marked) co_return marked.status();
  // Writes let in while legacy was alone hold their key's lock shared, and nothing orders them
  // among themselves. One still in flight copies itself to enhanced once legacy answered, and two
  // to one key (a lock and an unlock) may reach enhanced in the other order than legacy took them;
  // the copy below would not repair that where legacy lacked the key as it passed. Every write
  // let in from here on sees enhanced in use and takes its key's lock exclusively: wait for those
  // still holding one shared, so that the copy comes after them.
  auto settled = locks_.awaitSharedHolders();
  co_await std::move(settled);
  BackfillProgress p = loadProgress(control_.dir());
  if (p.started_unix_ms == 0) p.started_unix_ms = nowUnixMs();
  p.state = "running";
  {
    std::lock_guard lock(backfill_mu_);
    backfill_ = p;
  }
  control_.audit("enhanced.fill.started", actor,
                 p.resumed ? "resuming at db " + std::to_string(p.db) + " after " + std::to_string(p.copied) + " keys"
                           : "copying legacy into enhanced");
  auto fail = [&](Status s) {
    std::lock_guard lock(backfill_mu_);
    backfill_.state = "failed";
    backfill_.error = s.toString();
    return s;
  };
  asio::steady_timer throttle(co_await asio::this_coro::executor);
  const auto began = std::chrono::steady_clock::now();
  uint64_t done_here = 0;  // keys handled by this run, for the throttle
  for (; p.db < databases(); ++p.db, p.pass = 0, p.cursor = 0) {
    for (; p.pass < 2; ++p.pass, p.cursor = 0) {
      const StoreRole from = p.pass == 0 ? StoreRole::kLegacy : StoreRole::kEnhanced;
      do {
        if (stopping_) co_return fail(Status::unavailable("stopped; it resumes at the next start"));
        auto scan = store(from).scan(ScanRequest{.db = p.db, .cursor = p.cursor, .count = 500});
        auto page = co_await std::move(scan);
        if (!page) co_return fail(page.status());
        CopyTally tally;
        const std::vector<std::string>& keys = page->keys;
        auto copy = runParallel(std::min(kCopyConcurrency, keys.size()), [this, &p, from, &keys, &tally](size_t) {
          return copyWorker(p.db, from, &keys, &tally);
        });
        Status copied = co_await std::move(copy);
        p.copied += tally.copied.load();
        p.removed += tally.removed.load();
        if (!copied) co_return fail(copied);
        p.cursor = page->next_cursor;
        done_here += page->keys.size();
        {
          std::lock_guard lock(backfill_mu_);
          backfill_ = p;
        }
        // Resume point: the page just copied. (Re-copying a page after a crash is harmless.)
        writeFileAtomically(control_.dir(), progressPath(control_.dir()), jsonText(progressJson(p)) + "\n");
        if (options_.backfill_rate > 0) {
          const auto due = began + std::chrono::microseconds(done_here * 1000000 / options_.backfill_rate);
          // In slices: a slow throttle waits a page's worth of seconds, and stop() must not.
          for (auto now = std::chrono::steady_clock::now(); due > now && !stopping_;
               now = std::chrono::steady_clock::now()) {
            throttle.expires_at(std::min(due, now + kThrottleSlice));
            co_await throttle.async_wait(asio::as_tuple(asio::use_awaitable));
          }
        }
      } while (p.cursor != 0);
    }
  }
  auto filled = control_.update([](ControlState& s) { s.enhanced_filled = true; });
  if (!filled) co_return fail(filled.status());
  forgetBackfillProgress();
  p.state = "done";
  p.finished_unix_ms = nowUnixMs();
  {
    std::lock_guard lock(backfill_mu_);
    backfill_ = p;
  }
  control_.audit("enhanced.fill.finished", actor,
                 std::to_string(p.copied) + " keys copied, " + std::to_string(p.removed) + " stale keys removed");
  co_return Status::ok();
}

}  // namespace lockshift
