// The circuit breaker around a real LMDB store, with failures injected at exact calls (a fault
// decorator) and a controllable clock: it trips by consecutive failures, by error rate and by
// latency; fails fast while open; probes when half-open; closes only once repairs are done.

#include <gtest/gtest.h>

#include "backends/lmdb_store.h"
#include "router/circuit_breaker.h"
#include "tests/router/router_fixture.h"
#include "tests/support/process.h"
#include "tests/support/run_sync.h"

namespace lockshift {
namespace {

using testing::FaultyStore;
using testing::runSync;
using Clock = std::chrono::steady_clock;

// Counts calls reaching the store and advances the test clock by `delay` during each.
class CountingStore final : public LockStore {
 public:
  CountingStore(LockStore& inner, Clock::time_point* now) : inner_(inner), now_(now) {}
  std::string name() const override { return "counting"; }
  int databases() const override { return inner_.databases(); }
  std::string warning() const override { return inner_.warning(); }
  asio::awaitable<Result<std::optional<std::string>>> get(int db, std::string key) override {
    ++calls;
    *now_ += delay;
    auto c = inner_.get(db, std::move(key));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<PutResult>> put(PutRequest r) override {
    ++calls;
    auto c = inner_.put(std::move(r));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<int64_t>> del(int db, std::vector<std::string> keys) override {
    auto c = inner_.del(db, std::move(keys));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(int db, std::string key,
                                                                         std::string pull) override {
    auto c = inner_.deleteIfOwnedByPull(db, std::move(key), std::move(pull));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<ScanPage>> scan(ScanRequest r) override {
    auto c = inner_.scan(std::move(r));
    co_return co_await std::move(c);
  }
  asio::awaitable<Result<int64_t>> count(int db) override {
    auto c = inner_.count(db);
    co_return co_await std::move(c);
  }
  asio::awaitable<Status> ping() override {
    ++calls;
    auto c = inner_.ping();
    co_return co_await std::move(c);
  }
  int calls = 0;
  Clock::duration delay{};

 private:
  LockStore& inner_;
  Clock::time_point* now_;
};

class BreakerTest : public ::testing::Test {
 protected:
  BreakerTest() {
    LmdbOptions o;
    o.path = dir_.file("store");
    o.map_size = 16 << 20;
    o.sync = false;
    lmdb_ = std::move(LmdbStore::open(o).value());
    faulty_ = std::make_unique<FaultyStore>(*lmdb_);
    counting_ = std::make_unique<CountingStore>(*faulty_, &now_);
  }

  void make(BreakerOptions options) {
    breaker_ = std::make_unique<CircuitBreakerStore>(
        *counting_, options,
        BreakerHooks{.can_close = [this] { return repaired_; },
                     .on_transition = [this](const std::string& from, const std::string& to,
                                             const std::string& why) { transitions_.push_back(from + "->" + to + ": " + why); },
                     .now = [this] { return now_; }});
  }

  static asio::awaitable<Status> getStatus(LockStore& s) {
    auto c = s.get(0, "k");
    auto r = co_await std::move(c);
    co_return r.status();
  }
  Status get() { return runSync(getStatus(*breaker_)); }
  Status ping() { return runSync(breaker_->ping()); }

  testing::TempDir dir_;
  Clock::time_point now_ = Clock::now();
  bool repaired_ = true;
  std::vector<std::string> transitions_;
  std::unique_ptr<LmdbStore> lmdb_;
  std::unique_ptr<FaultyStore> faulty_;
  std::unique_ptr<CountingStore> counting_;
  std::unique_ptr<CircuitBreakerStore> breaker_;
};

TEST_F(BreakerTest, TripsAfterConsecutiveFailuresAndFailsFastWhileOpen) {
  make(BreakerOptions{.failure_threshold = 3, .min_requests = 1000, .reset_timeout = std::chrono::seconds(5)});
  EXPECT_TRUE(get().isOk());
  faulty_->setFailing(true);
  EXPECT_FALSE(get().isOk());
  EXPECT_FALSE(get().isOk());
  EXPECT_TRUE(breaker_->available());
  EXPECT_FALSE(get().isOk());  // the third in a row
  EXPECT_FALSE(breaker_->available());
  ASSERT_EQ(transitions_.size(), 1u);
  EXPECT_NE(transitions_[0].find("closed->open: 3 consecutive failures"), std::string::npos) << transitions_[0];

  const int calls = counting_->calls;
  faulty_->setFailing(false);
  Status s = get();
  EXPECT_EQ(s.code(), ErrorCode::kUnavailable);
  EXPECT_NE(s.message().find("circuit breaker open"), std::string::npos) << s.message();
  EXPECT_EQ(counting_->calls, calls);  // never reached the store
  StoreAvailability a = breaker_->availability();
  EXPECT_EQ(a.state, "open");
  EXPECT_EQ(a.trips, 1u);
}

// The breaker is a decorator: what the store warns of reaches status through it.
TEST_F(BreakerTest, PassesOnWhatTheStoreWarnsOf) {
  make({});
  EXPECT_EQ(breaker_->warning(), "");
  faulty_->setWarning("not fenced");
  EXPECT_EQ(breaker_->warning(), "not fenced");
}

TEST_F(BreakerTest, ASuccessResetsTheConsecutiveCount) {
  make(BreakerOptions{.failure_threshold = 3, .min_requests = 1000});
  for (int i = 0; i < 10; ++i) {
    faulty_->setFailing(true);
    get();
    get();
    faulty_->setFailing(false);
    get();
  }
  EXPECT_TRUE(breaker_->available());
}

TEST_F(BreakerTest, TripsOnErrorRateOnceEnoughCallsWereMade) {
  make(BreakerOptions{.failure_threshold = 1000, .error_rate_threshold = 0.5,
                      .window = std::chrono::seconds(10), .min_requests = 10});
  for (int i = 0; i < 4; ++i) {  // every other call fails
    faulty_->setFailing(true);
    get();
    faulty_->setFailing(false);
    get();
  }
  faulty_->setFailing(true);
  get();  // 5 of 9 failed, but fewer than min_requests calls
  EXPECT_TRUE(breaker_->available());
  faulty_->setFailing(false);
  get();  // 5 of 10: a success never trips it
  EXPECT_TRUE(breaker_->available());
  faulty_->setFailing(true);
  get();  // 6 of 11
  ASSERT_FALSE(breaker_->available());
  ASSERT_FALSE(transitions_.empty());
  EXPECT_NE(transitions_.back().find("calls failed within the window"), std::string::npos) << transitions_.back();
}

TEST_F(BreakerTest, OldCallsLeaveTheWindow) {
  make(BreakerOptions{.failure_threshold = 1000, .error_rate_threshold = 0.5,
                      .window = std::chrono::seconds(10), .min_requests = 4});
  faulty_->setFailing(true);
  get();
  get();
  get();
  now_ += std::chrono::seconds(11);  // those three age out
  faulty_->setFailing(false);
  get();
  get();
  get();
  faulty_->setFailing(true);
  get();  // 1 of 4 within the window
  EXPECT_TRUE(breaker_->available());
}

TEST_F(BreakerTest, SlowCallsCountAsFailures) {
  make(BreakerOptions{.failure_threshold = 2, .min_requests = 1000,
                      .latency_threshold = std::chrono::milliseconds(100)});
  counting_->delay = std::chrono::milliseconds(250);
  EXPECT_TRUE(get().isOk());  // answered, but slowly
  EXPECT_TRUE(get().isOk());
  ASSERT_FALSE(breaker_->available());
  ASSERT_FALSE(transitions_.empty());
  EXPECT_NE(transitions_.back().find("slower than 100 ms"), std::string::npos) << transitions_.back();
}

TEST_F(BreakerTest, AnswersThatRefuseAreNotFailures) {
  make(BreakerOptions{.failure_threshold = 1, .min_requests = 1000});
  auto refuse = [](LockStore& s) -> asio::awaitable<bool> {
    auto c = s.put(PutRequest{.key = "k", .value = "v", .condition = PutRequest::Condition::kIfPresent});
    auto r = co_await std::move(c);
    co_return r.isOk() && r->outcome == PutResult::Outcome::kConditionFailed;
  };
  EXPECT_TRUE(runSync(refuse(*breaker_)));
  EXPECT_TRUE(breaker_->available());
}

TEST_F(BreakerTest, HalfOpenProbesThenClosesOnlyOnceRepaired) {
  make(BreakerOptions{.failure_threshold = 1, .min_requests = 1000, .reset_timeout = std::chrono::seconds(5),
                      .half_open_max_requests = 2});
  faulty_->setFailing(true);
  get();
  ASSERT_FALSE(breaker_->available());
  now_ += std::chrono::seconds(6);
  // A failed probe opens it again, with a fresh reset timeout.
  EXPECT_FALSE(ping().isOk());
  EXPECT_EQ(breaker_->availability().state, "open");
  EXPECT_EQ(get().code(), ErrorCode::kUnavailable);

  now_ += std::chrono::seconds(6);
  faulty_->setFailing(false);
  repaired_ = false;  // keys written while open are still journaled
  EXPECT_TRUE(ping().isOk());
  EXPECT_TRUE(ping().isOk());
  EXPECT_TRUE(ping().isOk());
  EXPECT_EQ(breaker_->availability().state, "half-open");
  EXPECT_FALSE(breaker_->available());  // still out of the path for clients
  repaired_ = true;
  EXPECT_TRUE(ping().isOk());
  EXPECT_EQ(breaker_->availability().state, "closed");
  EXPECT_TRUE(breaker_->available());
  ASSERT_GE(transitions_.size(), 4u);
  EXPECT_EQ(transitions_.back().substr(0, 17), "half-open->closed");
  EXPECT_EQ(breaker_->availability().trips, 1u);  // re-opening from half-open is the same outage
}

}  // namespace
}  // namespace lockshift
