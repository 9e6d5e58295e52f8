#include "consistency/checker.h"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "common/clock.h"
#include "common/json_compare.h"
#include "common/parallel.h"

namespace lockshift {

namespace {

using Value = std::optional<std::string>;

// A key that differed in the last round. Values are kept only for the first Report::kMaxListed
// suspects (the ones a report can list), so memory grows with the key count, not value sizes.
struct Suspect {
  int db = 0;
  std::string key;
  DivergenceKind kind = DivergenceKind::kValueMismatch;
  Value legacy, enhanced;
};

DivergenceKind kindOf(const Value& legacy, const Value& enhanced) {
  if (!enhanced) return DivergenceKind::kMissingInEnhanced;
  if (!legacy) return DivergenceKind::kMissingInLegacy;
  return DivergenceKind::kValueMismatch;
}

bool sameOptional(const Value& a, const Value& b) {
  if (!a || !b) return !a && !b;
  return sameValue(*a, *b);
}

// Reads keys[i] from both stores for every i, `concurrency` reads in flight per store. The first
// error wins.
struct PairRead {
  Value legacy, enhanced;
};

asio::awaitable<Status> readWorker(LockStore& legacy, LockStore& enhanced, int db,
                                   const std::vector<std::string>* keys, std::vector<PairRead>* out, size_t first,
                                   size_t stride) {
  for (size_t i = first; i < keys->size(); i += stride) {
    auto get_legacy = legacy.get(db, (*keys)[i]);
    auto lv = co_await std::move(get_legacy);
    if (!lv) co_return Status(lv.status().code(), "legacy: " + lv.status().message());
    (*out)[i].legacy = std::move(*lv);
    auto get = enhanced.get(db, (*keys)[i]);
    auto v = co_await std::move(get);
    if (!v) co_return Status(v.status().code(), "enhanced: " + v.status().message());
    (*out)[i].enhanced = std::move(*v);
  }
  co_return Status::ok();
}

// The vector and results live in this frame, which stays suspended until every worker finished,
// so the pointers the workers get stay valid.
asio::awaitable<Result<std::vector<PairRead>>> readBoth(LockStore& legacy, LockStore& enhanced, int db,
                                                        const std::vector<std::string>& keys, size_t concurrency) {
  std::vector<PairRead> out(keys.size());
  if (keys.empty()) co_return out;
  const size_t workers = std::min(std::max<size_t>(concurrency, 1), keys.size());
  auto all = runParallel(workers, [&](size_t w) { return readWorker(legacy, enhanced, db, &keys, &out, w, workers); });
  if (Status s = co_await std::move(all); !s) co_return s;
  co_return out;
}

class Check {
 public:
  Check(LockStore& legacy, LockStore& enhanced, CheckOptions& options, Report& report)
      : legacy_(legacy), enhanced_(enhanced), options_(options), report_(report) {}

  asio::awaitable<Status> run() {
    report_.legacy.store = legacy_.name();
    report_.enhanced.store = enhanced_.name();
    report_.rounds = 1;
    const int databases = std::min({options_.databases, legacy_.databases(), enhanced_.databases()});
    for (int db = 0; db < databases; ++db) {
      auto a = scanLegacy(db);
      if (Status s = co_await std::move(a); !s) co_return s;
      auto b = scanEnhanced(db);
      if (Status s = co_await std::move(b); !s) co_return s;
    }
    for (int round = 2; round <= options_.rounds && !suspects_.empty(); ++round) {
      report_.rounds = round;
      progress("rechecking " + std::to_string(suspects_.size()) + " keys (round " + std::to_string(round) + ")");
      asio::steady_timer timer(co_await asio::this_coro::executor, options_.recheck_delay);
      co_await timer.async_wait(asio::use_awaitable);
      auto r = recheck();
      if (Status s = co_await std::move(r); !s) co_return s;
    }
    finish();
    if (options_.repair && !suspects_.empty()) {
      auto r = repairAll();
      co_await std::move(r);
    }
    co_return Status::ok();
  }

 private:
  void count(StoreCount& c, std::string_view key) {
    c.keys += 1;
    c.by_class[std::string(keyClass(key))] += 1;
    report_.keys_scanned += 1;
  }

  void suspect(int db, std::string key, Value legacy, Value enhanced) {
    Suspect s{.db = db, .key = std::move(key), .kind = kindOf(legacy, enhanced)};
    if (suspects_.size() < Report::kMaxListed) {
      s.legacy = std::move(legacy);
      s.enhanced = std::move(enhanced);
    }
    suspects_.push_back(std::move(s));
  }

  void progress(std::string what) {
    report_.progress = std::move(what);
    if (options_.on_progress) options_.on_progress(report_);
  }

  template <typename OnPage>
  asio::awaitable<Status> scanAll(LockStore& store, int db, const char* name, OnPage on_page) {
    ScanRequest request{.db = db, .cursor = 0, .count = options_.page_size};
    do {
      if (options_.cancelled && options_.cancelled()) co_return Status::unavailable("cancelled: lockshift is stopping");
      auto scan = store.scan(request);
      auto page = co_await std::move(scan);
      if (!page) co_return Status(page.status().code(), std::string(name) + " scan: " + page.status().message());
      auto handle = on_page(db, std::move(page->keys));
      if (Status s = co_await std::move(handle); !s) co_return s;
      request.cursor = page->next_cursor;
      progress(std::string("scanning ") + name + " (db " + std::to_string(db) + ")");
    } while (request.cursor != 0);
    co_return Status::ok();
  }

  // Every legacy key is compared with enhanced.
  asio::awaitable<Status> scanLegacy(int db) {
    auto scan = scanAll(legacy_, db, "legacy", [this](int db, std::vector<std::string> keys) -> asio::awaitable<Status> {
      auto read = readBoth(legacy_, enhanced_, db, keys, options_.concurrency);
      auto values = co_await std::move(read);
      if (!values) co_return values.status();
      for (size_t i = 0; i < keys.size(); ++i) {
        count(report_.legacy, keys[i]);
        auto& v = (*values)[i];
        if (!v.legacy && !v.enhanced) continue;  // deleted since the scan saw it
        report_.compared += 1;
        if (sameOptional(v.legacy, v.enhanced)) {
          report_.matched += 1;
        } else {
          suspect(db, std::move(keys[i]), std::move(v.legacy), std::move(v.enhanced));
        }
      }
      co_return Status::ok();
    });
    co_return co_await std::move(scan);
  }

  // Enhanced keys absent from legacy; the ones legacy has were compared by scanLegacy (or were
  // written since, which a later check sees).
  asio::awaitable<Status> scanEnhanced(int db) {
    auto scan = scanAll(enhanced_, db, "enhanced", [this](int db, std::vector<std::string> keys) -> asio::awaitable<Status> {
      auto read = readBoth(legacy_, enhanced_, db, keys, options_.concurrency);
      auto values = co_await std::move(read);
      if (!values) co_return values.status();
      for (size_t i = 0; i < keys.size(); ++i) {
        count(report_.enhanced, keys[i]);
        auto& v = (*values)[i];
        if (v.legacy || !v.enhanced) continue;
        report_.compared += 1;
        suspect(db, std::move(keys[i]), std::nullopt, std::move(v.enhanced));
      }
      co_return Status::ok();
    });
    co_return co_await std::move(scan);
  }

  // Re-reads every suspect; the ones that agree now were writes in flight.
  asio::awaitable<Status> recheck() {
    std::vector<Suspect> still;
    for (size_t start = 0; start < suspects_.size(); start += options_.page_size) {
      if (options_.cancelled && options_.cancelled()) co_return Status::unavailable("cancelled: lockshift is stopping");
      const size_t end = std::min(suspects_.size(), start + options_.page_size);
      // Group the page by db (almost always one db).
      for (size_t i = start; i < end;) {
        const int db = suspects_[i].db;
        std::vector<std::string> keys;
        size_t j = i;
        for (; j < end && suspects_[j].db == db; ++j) keys.push_back(suspects_[j].key);
        auto read = readBoth(legacy_, enhanced_, db, keys, options_.concurrency);
        auto values = co_await std::move(read);
        if (!values) co_return values.status();
        for (size_t k = 0; k < keys.size(); ++k) {
          auto& v = (*values)[k];
          if (sameOptional(v.legacy, v.enhanced)) {
            if (v.legacy) report_.matched += 1;
            else report_.compared -= 1;  // gone from both: it was never a key to compare
            continue;
          }
          Suspect s{.db = db, .key = std::move(keys[k]), .kind = kindOf(v.legacy, v.enhanced)};
          if (still.size() < Report::kMaxListed) {
            s.legacy = std::move(v.legacy);
            s.enhanced = std::move(v.enhanced);
          }
          still.push_back(std::move(s));
        }
        i = j;
      }
    }
    suspects_ = std::move(still);
    co_return Status::ok();
  }

  // Counts what is left by kind and lists the first Report::kMaxListed.
  void finish() {
    for (auto& s : suspects_) {
      report_.divergent[s.kind] += 1;
      if (report_.divergences.size() == Report::kMaxListed) {
        report_.divergences_truncated = true;
      } else {
        report_.divergences.push_back(Divergence{.kind = s.kind,
                                                 .db = s.db,
                                                 .key = s.key,
                                                 .legacy = std::move(s.legacy),
                                                 .enhanced = std::move(s.enhanced),
                                                 .owner = std::string(roleName(options_.owner(s.db, s.key)))});
      }
    }
  }

  asio::awaitable<void> repairAll() {
    progress("repairing " + std::to_string(suspects_.size()) + " keys");
    for (const auto& s : suspects_) {
      auto call = options_.repair_key(s.db, s.key);
      Status st = co_await std::move(call);
      if (st) report_.repaired += 1;
      else report_.repair_failed += 1;
    }
  }

  LockStore& legacy_;
  LockStore& enhanced_;
  CheckOptions& options_;
  Report& report_;
  std::vector<Suspect> suspects_;
};

}  // namespace

bool sameValue(std::string_view a, std::string_view b) { return sameJsonValue(a, b); }

asio::awaitable<void> runCheck(LockStore& legacy, LockStore& enhanced, CheckOptions options, Report& report) {
  report.state = "running";
  report.repair = options.repair;
  if (report.started_unix_ms == 0) report.started_unix_ms = nowUnixMs();
  Check check(legacy, enhanced, options, report);
  Status status = Status::internal("check did not run");
  try {
    auto run = check.run();
    status = co_await std::move(run);
  } catch (const std::exception& e) {
    status = Status::internal(e.what());
  }
  report.finished_unix_ms = nowUnixMs();
  if (status) {
    report.state = "done";
    report.progress = "done";
  } else {
    report.state = "failed";
    report.error = status.message();
  }
  if (options.on_progress) options.on_progress(report);
}

asio::awaitable<Status> copyKey(LockStore& from, LockStore& to, int db, std::string key) {
  auto get = from.get(db, key);
  auto value = co_await std::move(get);
  if (!value) co_return value.status();
  if (!value->has_value()) {
    auto del = to.del(db, {key});
    auto deleted = co_await std::move(del);
    co_return deleted ? Status::ok() : deleted.status();
  }
  auto put = to.put(PutRequest{.db = db, .key = key, .value = **value});
  auto written = co_await std::move(put);
  co_return written ? Status::ok() : written.status();
}

}  // namespace lockshift
