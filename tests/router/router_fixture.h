#pragma once
// Two real LMDB stores behind a Router, with fault injection on either store (a decorator that
// fails calls on demand: a real store cannot fail at an exact step), and a restartable stack.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <memory>
#include <mutex>
#include <prometheus/registry.h>
#include <random>
#include <thread>

#include "backends/lmdb_store.h"
#include "router/router.h"
#include "tests/support/atlantis.h"
#include "tests/support/process.h"

namespace lockshift::testing {

// The value of the counter or gauge `name` in `registry` whose labels include every one of
// `labels` (-1 and a test failure when there is none).
inline double metricValue(const prometheus::Registry& registry, const std::string& name,
                          const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      size_t matched = 0;
      for (const auto& label : metric.label) {
        auto it = labels.find(label.name);
        if (it != labels.end() && it->second == label.value) ++matched;
      }
      if (matched != labels.size()) continue;
      return family.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value;
    }
  }
  ADD_FAILURE() << "no sample " << name;
  return -1;
}

// Fails every call with kUnavailable while failing() is set; otherwise forwards. While writes are
// held, a put or del waits (without blocking its thread) until they are released: a write in
// flight at an exact step. With jitter, every write waits a random while before it reaches the
// store, so that writes sent one after another may overtake each other. With lost replies, a
// share of the writes that fail reach the store first and then fail with kTimeout, as a command
// Redis ran whose reply never came back: the caller cannot tell whether it was applied.
class FaultyStore final : public LockStore {
 public:
  explicit FaultyStore(LockStore& inner) : inner_(inner) {}
  void setFailing(bool f) { failing_ = f; }
  bool failing() const { return failing_; }
  // What available() answers: false as an open circuit breaker would (pair it with setFailing).
  void setAvailable(bool a) { available_ = a; }
  void holdWrites(bool h) { hold_writes_ = h; }
  // Delays each put, del and deleteIfOwnedByPull by a pseudo-random 0 to `max` (0: none) drawn
  // from `seed`. LMDB applies writes in the order they were sent; Redis over a pool of
  // connections need not, and the router must order the writes to one key itself.
  void setJitter(std::chrono::microseconds max, uint32_t seed = 0) {
    std::lock_guard lock(jitter_mu_);
    jitter_max_ = max;
    jitter_random_.seed(seed);
  }
  // While failing, each put, del and deleteIfOwnedByPull is applied before it fails with
  // probability `share` (0: none, 1: all), drawn from `seed`.
  void setLostReplies(double share, uint32_t seed = 0) {
    std::lock_guard lock(jitter_mu_);
    lost_share_ = share;
    lost_random_.seed(seed);
  }
  // The keys of the writes applied before they failed (setLostReplies), in that order; the
  // journal's repairs are writes too, so they may be among them.
  std::vector<std::string> appliedThenLost() const {
    std::lock_guard lock(jitter_mu_);
    return lost_keys_;
  }
  // Puts and dels waiting for holdWrites(false).
  size_t heldWrites() const { return held_writes_; }
  // How many scan() calls reached this store (failed ones included).
  size_t scans() const { return scans_; }
  // Called (on the io thread) each time a read of keys (scan, name or lock index) reaches this
  // store, before it is forwarded; afterScan() once it answered, before the caller sees it.
  // Either may be set from any thread while a scan runs.
  void beforeScan(std::function<void()> f) {
    std::lock_guard lock(hooks_mu_);
    before_scan_ = std::move(f);
  }
  void afterScan(std::function<void()> f) {
    std::lock_guard lock(hooks_mu_);
    after_scan_ = std::move(f);
  }

  std::string name() const override { return inner_.name(); }
  int databases() const override { return inner_.databases(); }
  asio::awaitable<Result<std::optional<std::string>>> get(int db, std::string key) override {
    if (failing_) co_return down();
    auto c = inner_.get(db, std::move(key));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<PutResult>> put(PutRequest r) override {
    auto hold = holdWhileAsked();
    co_await std::move(hold);
    auto late = jitter();
    co_await std::move(late);
    if (failing_) {
      if (!replyLost()) co_return down();
      const std::vector<std::string> keys{r.key};
      auto c = inner_.put(std::move(r));
      co_await std::move(c);
      co_return lost(keys);
    }
    auto c = inner_.put(std::move(r));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<int64_t>> del(int db, std::vector<std::string> keys) override {
    auto hold = holdWhileAsked();
    co_await std::move(hold);
    auto late = jitter();
    co_await std::move(late);
    if (failing_) {
      if (!replyLost()) co_return down();
      auto c = inner_.del(db, keys);
      co_await std::move(c);
      co_return lost(keys);
    }
    auto c = inner_.del(db, std::move(keys));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(int db, std::string key,
                                                                         std::string pull) override {
    auto late = jitter();
    co_await std::move(late);
    if (failing_) {
      if (!replyLost()) co_return down();
      auto c = inner_.deleteIfOwnedByPull(db, key, std::move(pull));
      co_await std::move(c);
      co_return lost({key});
    }
    auto c = inner_.deleteIfOwnedByPull(db, std::move(key), std::move(pull));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<ScanPage>> scan(ScanRequest r) override {
    ++scans_;
    if (failing_) co_return down();
    hook(before_scan_);
    auto c = inner_.scan(std::move(r));
    auto page = co_await std::move(c);
    hook(after_scan_);
    co_return page;
  }
  bool hasRecords() const override { return inner_.hasRecords(); }
  bool available() const override { return available_; }
  // What warning() answers ("" by default, as an LMDB store).
  void setWarning(std::string warning) { warning_ = std::move(warning); }
  std::string warning() const override { return warning_; }
  asio::awaitable<Result<std::vector<std::string>>> keysWithPrefix(int db,
                                                                  std::string prefix) override {
    if (failing_) co_return down();
    auto c = inner_.keysWithPrefix(db, std::move(prefix));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<std::vector<LockRecord>>> locksByPull(int db, std::string repo, int64_t pull) override {
    if (failing_) co_return down();
    hook(before_scan_);
    auto c = inner_.locksByPull(db, std::move(repo), pull);
    auto found = co_await std::move(c);
    hook(after_scan_);
    co_return found;
  }
  asio::awaitable<Result<std::vector<LockRecord>>> locksByRepo(int db, std::string repo) override {
    if (failing_) co_return down();
    hook(before_scan_);
    auto c = inner_.locksByRepo(db, std::move(repo));
    auto found = co_await std::move(c);
    hook(after_scan_);
    co_return found;
  }
  asio::awaitable<Result<int64_t>> count(int db) override {
    if (failing_) co_return down();
    auto c = inner_.count(db);
    co_return co_await std::move(c);
  }
  asio::awaitable<Status> ping() override {
    if (failing_) co_return down();
    auto c = inner_.ping();
    co_return co_await std::move(c);
  }

 private:
  static Status down() { return Status::unavailable("injected fault"); }
  // A write applied before it failed: noted for appliedThenLost().
  Status lost(const std::vector<std::string>& keys) {
    std::lock_guard lock(jitter_mu_);
    lost_keys_.insert(lost_keys_.end(), keys.begin(), keys.end());
    return Status::timeout("injected fault: the reply was lost");
  }
  bool replyLost() {
    std::lock_guard lock(jitter_mu_);
    return lost_share_ > 0 && std::uniform_real_distribution<double>(0, 1)(lost_random_) < lost_share_;
  }
  // Runs a copy of `f` taken under the lock, so that the hook may run code that sets hooks.
  void hook(const std::function<void()>& f) {
    std::function<void()> copy;
    {
      std::lock_guard lock(hooks_mu_);
      copy = f;
    }
    if (copy) copy();
  }
  asio::awaitable<void> holdWhileAsked() {
    if (!hold_writes_) co_return;
    ++held_writes_;
    asio::steady_timer t(co_await asio::this_coro::executor);
    for (int i = 0; i < 10000 && hold_writes_; ++i) {  // bounded: at most about 10 s
      t.expires_after(std::chrono::milliseconds(1));
      co_await t.async_wait(asio::use_awaitable);
    }
    --held_writes_;
  }
  asio::awaitable<void> jitter() {
    std::chrono::microseconds delay{0};
    {
      std::lock_guard lock(jitter_mu_);
      if (jitter_max_.count() > 0) {
        delay = std::chrono::microseconds(
            std::uniform_int_distribution<int64_t>(0, jitter_max_.count())(jitter_random_));
      }
    }
    if (delay.count() == 0) co_return;
    asio::steady_timer t(co_await asio::this_coro::executor, delay);
    co_await t.async_wait(asio::use_awaitable);
  }
  LockStore& inner_;
  std::atomic<bool> failing_{false};
  std::atomic<bool> available_{true};
  std::string warning_;  // set before the router runs
  std::atomic<bool> hold_writes_{false};
  std::atomic<size_t> held_writes_{0};
  std::atomic<size_t> scans_{0};
  std::mutex hooks_mu_;
  std::function<void()> before_scan_, after_scan_;
  mutable std::mutex jitter_mu_;
  std::chrono::microseconds jitter_max_{0};
  std::minstd_rand jitter_random_;
  double lost_share_ = 0;
  std::vector<std::string> lost_keys_;  // GUARDED_BY(jitter_mu_)
  std::minstd_rand lost_random_;
};

// What lockshift's main wires around the router that lives in a layer above this one (the shadow
// mirror): `opened` runs each time the stack is built, once the router exists and before it
// starts; `closing` once the router was told to stop, before the stack waits for its background
// loops and destroys it, and must leave the router referring to nothing it set up; `pending`
// counts the calls it still has queued (the shadow mirror's depth), for checks that wait until
// everything written has reached both stores.
struct StackHooks {
  std::function<void(Router&, asio::io_context&)> opened;
  std::function<void(Router&)> closing;
  std::function<size_t()> pending;
};

// The whole router stack on a temp dir; restart() rebuilds it from disk like a process restart.
// With `enhanced_records`, enhanced keeps enhanced records and their indexes.
class RouterStack {
 public:
  explicit RouterStack(ControlState initial = {}, bool enhanced_records = false, size_t journal_max = 100000,
                       std::chrono::milliseconds replay_interval = std::chrono::milliseconds(20),
                       StackHooks hooks = {})
      : initial_(std::move(initial)),
        enhanced_records_(enhanced_records),
        journal_max_(journal_max),
        replay_interval_(replay_interval),
        hooks_(std::move(hooks)) {
    guard_ = std::make_unique<WorkGuard>(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
    open();
  }
  ~RouterStack() {
    close();
    guard_.reset();
    thread_.join();
  }

  void restart() {
    close();
    open();
  }
  // The backfill's throttle (RouterOptions::backfill_rate) from the next open(), i.e. restart().
  void setBackfillRate(int64_t keys_per_second) { backfill_rate_ = keys_per_second; }

  // Starts `aw` on the io thread; the future holds its result once it finished. Calls started one
  // after another run concurrently, interleaved at their suspension points.
  template <typename T>
  std::future<std::optional<T>> start(asio::awaitable<T> aw) {
    return asio::co_spawn(
        io_, [aw = std::move(aw)]() mutable -> asio::awaitable<std::optional<T>> { co_return co_await std::move(aw); },
        asio::use_future);
  }
  template <typename T>
  T run(asio::awaitable<T> aw) {
    return std::move(*start(std::move(aw)).get());
  }

  Router& router() { return *router_; }
  asio::io_context& io() { return io_; }
  FaultyStore& legacy() { return *legacy_faulty_; }
  FaultyStore& enhanced() { return *enhanced_faulty_; }
  LmdbStore& legacyStore() { return *legacy_; }
  LmdbStore& enhancedStore() { return *enhanced_; }
  ControlStore& control() { return *control_; }
  RepairJournal& journal() { return *journal_; }
  // Whether enhanced is filled (the backfill finished) within `limit`, waiting for it.
  bool filledWithin(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!control_->snapshot()->enhanced_filled && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return control_->snapshot()->enhanced_filled;
  }
  // Calls queued outside the journal by what the hooks wired in (0 without hooks).
  size_t pendingOutsideJournal() const { return hooks_.pending ? hooks_.pending() : 0; }
  // Whether the journal and the calls queued outside it are empty within `limit`, waiting for them.
  bool drainedWithin(std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto drained = [this] { return journal_->depth() == 0 && pendingOutsideJournal() == 0; };
    while (!drained() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return drained();
  }
  const std::string& stateDir() const { return dir_.path(); }
  // A label-less gauge's value as GET /metrics would show it (-1 and a failure when absent).
  double gauge(const std::string& name) const { return metricValue(*registry_, name); }
  // The counter or gauge `name` whose labels include every one of `labels`.
  double sample(const std::string& name, const std::map<std::string, std::string>& labels) const {
    return metricValue(*registry_, name, labels);
  }

  // Convenience calls.
  std::optional<std::string> get(const std::string& key) { return run(router_->get(0, key)).value(); }
  std::optional<std::string> getFrom(LockStore& s, const std::string& key) { return run(s.get(0, key)).value(); }
  // Atlantis's TryLock of `l`: a strict acquire.
  static PutRequest tryLock(const LockSpec& l) {
    PutRequest r;
    r.key = lockKey(l);
    r.value = lockJson(l);
    r.strict_owner = parseProjectLock(r.value).value();
    return r;
  }
  PutResult::Outcome lock(const LockSpec& l) {
    auto res = run(router_->put(tryLock(l)));
    EXPECT_TRUE(res.isOk()) << res.status().toString();
    return res.isOk() ? res->outcome : PutResult::Outcome::kConditionFailed;
  }
  ChangeOutcome move(std::optional<Phase> phase, std::optional<double> split) {
    return run(router_->changeMigration(MigrationChange{phase, split, false}, "test"));
  }

 private:
  using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;
  void open() {
    LmdbOptions o;
    o.map_size = 64 << 20;
    o.path = dir_.file("legacy");
    legacy_ = std::move(LmdbStore::open(o).value());
    o.path = dir_.file("enhanced");
    o.records = enhanced_records_;
    enhanced_ = std::move(LmdbStore::open(o).value());
    // A restart keeps the injected faults, and an open breaker (as a real one would open again).
    bool lf = legacy_faulty_ && legacy_faulty_->failing(), ef = enhanced_faulty_ && enhanced_faulty_->failing();
    bool ea = !enhanced_faulty_ || enhanced_faulty_->available();
    legacy_faulty_ = std::make_unique<FaultyStore>(*legacy_);
    enhanced_faulty_ = std::make_unique<FaultyStore>(*enhanced_);
    legacy_faulty_->setFailing(lf);
    enhanced_faulty_->setFailing(ef);
    enhanced_faulty_->setAvailable(ea);
    control_ = std::move(ControlStore::open(dir_.path(), initial_).value());
    journal_ = std::move(RepairJournal::open(dir_.file("journal"), 16, journal_max_).value());
    registry_ = std::make_unique<prometheus::Registry>();
    metrics_ = std::make_unique<RouterMetrics>(*registry_);
    RouterOptions ro;
    ro.replay_interval = replay_interval_;
    ro.flag_poll_interval = std::chrono::milliseconds(50);
    ro.drain_timeout = std::chrono::milliseconds(500);
    ro.backfill_rate = backfill_rate_;
    router_ = std::make_unique<Router>(*legacy_faulty_, *enhanced_faulty_, *control_, *journal_, *metrics_, ro);
    if (hooks_.opened) hooks_.opened(*router_, io_);
    router_->start(io_);
  }
  void close() {
    if (router_) {
      router_->stop();
      if (hooks_.closing) hooks_.closing(*router_);
      // The io thread keeps running: the router's background loops may still be suspended in a
      // store call, and must return before the router and the stores they use go away.
      for (int i = 0; i < 2000 && !router_->stopped(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      if (!router_->stopped()) ADD_FAILURE() << "the router's background loops did not stop within 10 s";
    }
    router_.reset();
    metrics_.reset();
    registry_.reset();
    journal_.reset();
    control_.reset();
    legacy_.reset();
    enhanced_.reset();
  }

  ControlState initial_;
  const bool enhanced_records_;
  const size_t journal_max_;
  const std::chrono::milliseconds replay_interval_;
  const StackHooks hooks_;
  int64_t backfill_rate_ = 0;
  TempDir dir_;
  asio::io_context io_;
  std::unique_ptr<WorkGuard> guard_;
  std::thread thread_;
  std::unique_ptr<LmdbStore> legacy_, enhanced_;
  std::unique_ptr<FaultyStore> legacy_faulty_, enhanced_faulty_;
  std::unique_ptr<ControlStore> control_;
  std::unique_ptr<RepairJournal> journal_;
  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<RouterMetrics> metrics_;
  std::unique_ptr<Router> router_;
};

}  // namespace lockshift::testing
