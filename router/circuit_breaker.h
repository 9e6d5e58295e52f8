#pragma once
// CircuitBreakerStore: takes the enhanced store out of the request path when it fails (DESIGN §2
// "Automatic fallback"). A decorator in the style of LevelDB's EnvWrapper: it wraps a LockStore
// and is one; the router asks only LockStore::availability().
//
//   closed --(trip)--> open --(reset_timeout)--> half-open --(probes ok, can_close)--> closed
//                        ^                           |
//                        +------(any failure)--------+
//
// Trips: `failure_threshold` consecutive failures; or, over the last `window`, at least
// `min_requests` calls of which a fraction >= `error_rate_threshold` failed. A call slower than
// `latency_threshold` counts as a failure even when it succeeded. Failures are the store's own
// (unavailable, timeout, I/O); a refused lock or bad input is an answer, not a failure.
//
// Open: every call fails at once with kUnavailable naming the trip, and availability() is false,
// so the router hands every key to legacy. Half-open: calls go through (the router's journal
// replayer and pings are the probes); after `half_open_max_requests` successes in a row the
// breaker closes once `can_close()` says every key written while it was open was repaired.
//
// Thread-safety: every method may be called from any thread. Lifetime: `inner` must outlive it.

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>

#include "backends/lock_store.h"

namespace lockshift {

struct BreakerOptions {
  // Consecutive failures that trip the breaker. Lower trips sooner on a dying store but also on
  // a brief blip.
  int failure_threshold = 5;
  // Error rate over `window` that trips it, once at least `min_requests` calls were made.
  double error_rate_threshold = 0.5;
  std::chrono::milliseconds window{10000};
  int min_requests = 20;
  // A call slower than this counts as a failure; 0 disables the latency rule.
  std::chrono::milliseconds latency_threshold{0};
  // Time spent open before probing.
  std::chrono::milliseconds reset_timeout{5000};
  // Successful probes in a row needed to close.
  int half_open_max_requests = 3;
};

struct BreakerHooks {
  // Every key written while open was repaired in the wrapped store. Absent: always true.
  std::function<bool()> can_close;
  // A state change: from, to ("closed", "open", "half-open"), and why.
  std::function<void(const std::string& from, const std::string& to, const std::string& why)> on_transition;
  // The clock; replaceable for tests.
  std::function<std::chrono::steady_clock::time_point()> now;
};

class CircuitBreakerStore final : public LockStore {
 public:
  CircuitBreakerStore(LockStore& inner, BreakerOptions options, BreakerHooks hooks);

  std::string name() const override { return inner_.name(); }
  int databases() const override { return inner_.databases(); }
  asio::awaitable<Result<std::optional<std::string>>> get(int db, std::string key) override;
  asio::awaitable<Result<PutResult>> put(PutRequest request) override;
  asio::awaitable<Result<int64_t>> del(int db, std::vector<std::string> keys) override;
  asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(int db, std::string key,
                                                                         std::string pull_num) override;
  asio::awaitable<Result<ScanPage>> scan(ScanRequest request) override;
  // Answers SCANs on the request path, so admitted and counted like scan().
  asio::awaitable<Result<std::vector<std::string>>> keysWithPrefix(int db,
                                                                  std::string prefix) override;
  asio::awaitable<Result<int64_t>> count(int db) override;
  asio::awaitable<Status> ping() override;
  // Record reads are the operator's (listings), not the request path: passed through, neither
  // admitted nor counted.
  bool hasRecords() const override { return inner_.hasRecords(); }
  asio::awaitable<Result<std::optional<LockRecord>>> getRecord(int db, std::string key) override {
    return inner_.getRecord(db, std::move(key));
  }
  asio::awaitable<Result<std::vector<LockRecord>>> locksByRepo(int db, std::string repo) override {
    return inner_.locksByRepo(db, std::move(repo));
  }
  asio::awaitable<Result<std::vector<LockRecord>>> locksByPull(int db, std::string repo,
                                                               int64_t pull_num) override {
    return inner_.locksByPull(db, std::move(repo), pull_num);
  }
  bool available() const override { return available_.load(std::memory_order_relaxed); }
  StoreAvailability availability() const override;
  std::string warning() const override { return inner_.warning(); }

 private:
  enum class State { kClosed, kOpen, kHalfOpen };
  using Clock = std::chrono::steady_clock;

  // Whether a call may go to the inner store now (moving open -> half-open when due).
  Status admit();
  // Records a call's outcome; `failed` already includes the latency rule.
  void record(bool failed, const Status& status, Clock::duration took);
  template <typename T>
  asio::awaitable<T> guarded(asio::awaitable<T> call);

  void transition(State to, const std::string& why);  // REQUIRES: mu_ held
  void tryClose();                                    // REQUIRES: mu_ held
  static const char* stateName(State s);

  LockStore& inner_;
  BreakerOptions options_;
  BreakerHooks hooks_;

  std::atomic<bool> available_{true};  // state_ == kClosed, readable without mu_
  mutable std::mutex mu_;
  State state_ = State::kClosed;          // GUARDED_BY(mu_)
  int consecutive_failures_ = 0;          // GUARDED_BY(mu_)
  int half_open_successes_ = 0;           // GUARDED_BY(mu_)
  Clock::time_point opened_at_{};         // GUARDED_BY(mu_)
  std::string reason_;                    // GUARDED_BY(mu_)
  int64_t since_unix_ms_ = 0;             // GUARDED_BY(mu_)
  uint64_t trips_ = 0;                    // GUARDED_BY(mu_)
  struct Sample {
    Clock::time_point at;
    bool failed;
  };
  std::deque<Sample> window_;             // GUARDED_BY(mu_): calls within the window, oldest first
  size_t window_failures_ = 0;            // GUARDED_BY(mu_)
};

}  // namespace lockshift
