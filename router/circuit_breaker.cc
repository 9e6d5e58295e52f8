#include "router/circuit_breaker.h"

#include "common/clock.h"

namespace lockshift {

namespace {

const Status& statusOf(const Status& s) { return s; }
template <typename T>
Status statusOf(const Result<T>& r) {
  return r.status();
}

// The store's own failures; anything else (a refused lock, bad input, a full map) is an answer.
bool isStoreFailure(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kUnavailable:
    case ErrorCode::kTimeout:
    case ErrorCode::kIoError: return true;
    default: return false;
  }
}

}  // namespace

CircuitBreakerStore::CircuitBreakerStore(LockStore& inner, BreakerOptions options, BreakerHooks hooks)
    : inner_(inner), options_(options), hooks_(std::move(hooks)), since_unix_ms_(nowUnixMs()) {
  if (!hooks_.now) hooks_.now = [] { return Clock::now(); };
}

const char* CircuitBreakerStore::stateName(State s) {
  switch (s) {
    case State::kClosed: return "closed";
    case State::kOpen: return "open";
    case State::kHalfOpen: return "half-open";
  }
  return "unknown";
}

void CircuitBreakerStore::transition(State to, const std::string& why) {
  const State from = state_;
  state_ = to;
  available_ = to == State::kClosed;
  since_unix_ms_ = nowUnixMs();
  if (to == State::kOpen) {
    opened_at_ = hooks_.now();
    reason_ = why;
    if (from == State::kClosed) ++trips_;
  }
  half_open_successes_ = 0;
  consecutive_failures_ = 0;
  window_.clear();
  window_failures_ = 0;
  if (hooks_.on_transition) hooks_.on_transition(stateName(from), stateName(to), why);
}

void CircuitBreakerStore::tryClose() {
  if (state_ != State::kHalfOpen || half_open_successes_ < options_.half_open_max_requests) return;
  if (hooks_.can_close && !hooks_.can_close()) return;  // keys written while open still need repair
  transition(State::kClosed, std::to_string(half_open_successes_) + " probes succeeded and every key written while open was repaired");
}

Status CircuitBreakerStore::admit() {
  std::lock_guard lock(mu_);
  if (state_ == State::kOpen) {
    if (hooks_.now() - opened_at_ < options_.reset_timeout) {
      return Status::unavailable("the " + inner_.name() + " store is out of the path (circuit breaker open: " + reason_ + ")");
    }
    transition(State::kHalfOpen, "reset timeout elapsed; probing");
  }
  return Status::ok();
}

void CircuitBreakerStore::record(bool failed, const Status& status, Clock::duration took) {
  std::lock_guard lock(mu_);
  const auto now = hooks_.now();
  if (state_ == State::kOpen) return;  // a call admitted before the trip finished late
  if (state_ == State::kHalfOpen) {
    if (failed) {
      transition(State::kOpen, "probe failed: " + (status ? std::string("slower than the latency threshold") : status.message()));
    } else {
      ++half_open_successes_;
      tryClose();
    }
    return;
  }
  consecutive_failures_ = failed ? consecutive_failures_ + 1 : 0;
  window_.push_back(Sample{now, failed});
  window_failures_ += failed ? 1 : 0;
  while (!window_.empty() && now - window_.front().at > options_.window) {
    window_failures_ -= window_.front().failed ? 1 : 0;
    window_.pop_front();
  }
  // Built only for a trip: this runs after every call to the store.
  auto what = [&] {
    return status ? "slower than " + std::to_string(options_.latency_threshold.count()) + " ms" : status.message();
  };
  if (consecutive_failures_ >= options_.failure_threshold) {
    transition(State::kOpen, std::to_string(consecutive_failures_) + " consecutive failures, last: " + what());
    return;
  }
  const size_t calls = window_.size();
  if (failed && calls >= static_cast<size_t>(options_.min_requests) &&
      static_cast<double>(window_failures_) >= options_.error_rate_threshold * static_cast<double>(calls)) {
    transition(State::kOpen, std::to_string(window_failures_) + " of " + std::to_string(calls) +
                                 " calls failed within the window, last: " + what());
  }
  (void)took;
}

template <typename T>
asio::awaitable<T> CircuitBreakerStore::guarded(asio::awaitable<T> call) {
  if (Status s = admit(); !s) co_return T(s);
  const auto start = hooks_.now();
  T result = co_await std::move(call);
  const auto took = hooks_.now() - start;
  const Status status = statusOf(result);
  const bool slow = options_.latency_threshold.count() > 0 && took > options_.latency_threshold;
  record(isStoreFailure(status) || slow, status, took);
  co_return result;
}

asio::awaitable<Result<std::optional<std::string>>> CircuitBreakerStore::get(int db, std::string key) {
  return guarded(inner_.get(db, std::move(key)));
}

asio::awaitable<Result<PutResult>> CircuitBreakerStore::put(PutRequest request) {
  return guarded(inner_.put(std::move(request)));
}

asio::awaitable<Result<int64_t>> CircuitBreakerStore::del(int db, std::vector<std::string> keys) {
  return guarded(inner_.del(db, std::move(keys)));
}

asio::awaitable<Result<std::optional<std::string>>> CircuitBreakerStore::deleteIfOwnedByPull(int db, std::string key,
                                                                                            std::string pull_num) {
  return guarded(inner_.deleteIfOwnedByPull(db, std::move(key), std::move(pull_num)));
}

asio::awaitable<Result<ScanPage>> CircuitBreakerStore::scan(ScanRequest request) {
  return guarded(inner_.scan(std::move(request)));
}

asio::awaitable<Result<std::vector<std::string>>> CircuitBreakerStore::keysWithPrefix(
    int db, std::string prefix) {
  return guarded(inner_.keysWithPrefix(db, std::move(prefix)));
}

asio::awaitable<Result<int64_t>> CircuitBreakerStore::count(int db) { return guarded(inner_.count(db)); }

asio::awaitable<Status> CircuitBreakerStore::ping() { return guarded(inner_.ping()); }

StoreAvailability CircuitBreakerStore::availability() const {
  std::lock_guard lock(mu_);
  return StoreAvailability{.available = state_ == State::kClosed,
                           .state = stateName(state_),
                           .reason = reason_,
                           .since_unix_ms = since_unix_ms_,
                           .trips = trips_};
}

}  // namespace lockshift
