// The shadow mirror's comparison of answers (a table of cases), and its queue: bounded, never
// blocking, dropping and counting when full, and keeping calls for one key in order.

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <prometheus/registry.h>
#include <thread>

#include "shadow/shadow_mirror.h"

namespace lockshift {
namespace {

PutResult applied() { return PutResult{}; }
PutResult lockedBy(std::string holder) {
  return PutResult{.outcome = PutResult::Outcome::kLockedByOther, .holder = std::move(holder)};
}

MirroredCall put(PutResult legacy) {
  return MirroredCall{.op = MirroredCall::Op::kPut, .key = "pr/a", .put_result = std::move(legacy)};
}

TEST(CompareAnswers, LockDecisions) {
  struct Case {
    const char* name;
    MirroredCall legacy;
    EnhancedAnswer enhanced;
    std::optional<ShadowDivergence> expected;
  };
  const Case cases[] = {
      {"both granted", put(applied()), EnhancedAnswer{.put_result = applied()}, std::nullopt},
      {"both refused, same holder", put(lockedBy("pull #1 (a)")), EnhancedAnswer{.put_result = lockedBy("pull #1 (a)")},
       std::nullopt},
      {"granted vs refused", put(applied()), EnhancedAnswer{.put_result = lockedBy("pull #2 (b)")},
       ShadowDivergence::kDecision},
      {"refused vs granted", put(lockedBy("pull #1 (a)")), EnhancedAnswer{.put_result = applied()},
       ShadowDivergence::kDecision},
      {"different holders", put(lockedBy("pull #1 (a)")), EnhancedAnswer{.put_result = lockedBy("pull #2 (b)")},
       ShadowDivergence::kHolder},
      {"enhanced failed", put(applied()), EnhancedAnswer{.status = Status::unavailable("down")},
       ShadowDivergence::kError},
      {"unlock both", MirroredCall{.op = MirroredCall::Op::kUnlockScript, .key = "k", .value = R"({"a":1,"b":2})"},
       EnhancedAnswer{.value = R"({"b":2,"a":1})"}, std::nullopt},
      {"unlock only legacy", MirroredCall{.op = MirroredCall::Op::kUnlockScript, .key = "k", .value = "{}"},
       EnhancedAnswer{}, ShadowDivergence::kUnlock},
      {"del counts differ", MirroredCall{.op = MirroredCall::Op::kDelete, .key = "k", .deleted = 1},
       EnhancedAnswer{.deleted = 0}, ShadowDivergence::kDelete},
      {"get same JSON, other order", MirroredCall{.op = MirroredCall::Op::kGet, .key = "k", .value = R"({"x":[1],"y":"z"})"},
       EnhancedAnswer{.value = R"({"y":"z","x":[1]})"}, std::nullopt},
      {"get differs", MirroredCall{.op = MirroredCall::Op::kGet, .key = "k", .value = R"({"x":1})"},
       EnhancedAnswer{.value = std::nullopt}, ShadowDivergence::kValue},
      {"scan key missing", MirroredCall{.op = MirroredCall::Op::kScan, .keys = {"a", "b"}},
       EnhancedAnswer{.present = {true, false}}, ShadowDivergence::kScan},
      {"scan all present", MirroredCall{.op = MirroredCall::Op::kScan, .keys = {"a", "b"}},
       EnhancedAnswer{.present = {true, true}}, std::nullopt},
  };
  for (const auto& c : cases) {
    Comparison got = compareAnswers(c.legacy, c.enhanced);
    EXPECT_EQ(got.divergence, c.expected) << c.name << ": " << got.detail;
    if (c.expected) {
      EXPECT_FALSE(got.detail.empty()) << c.name;
    }
  }
}

// A mirror whose replays wait on a gate the test opens; records the order they ran in.
class MirrorTest : public ::testing::Test {
 protected:
  void make(ShadowOptions options, std::function<EnhancedAnswer(const MirroredCall&)> answer) {
    ShadowHooks hooks;
    hooks.replay = [this, answer](MirroredCall call) -> asio::awaitable<EnhancedAnswer> {
      while (!open_) {
        asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(1));
        co_await t.async_wait(asio::use_awaitable);
      }
      {
        std::lock_guard lock(mu_);
        order_.push_back(call.put.value);
      }
      co_return answer(call);
    };
    hooks.mark_dirty = [this](int, std::string key) -> asio::awaitable<void> {
      std::lock_guard lock(mu_);
      dirty_.push_back(key);
      co_return;
    };
    mirror_ = std::make_unique<ShadowMirror>(hooks, registry_, options);
    mirror_->start(io_);
  }
  void runUntil(std::function<bool()> done) {
    for (int i = 0; i < 5000 && !done(); ++i) {
      io_.run_for(std::chrono::milliseconds(1));
      io_.restart();
    }
  }

  asio::io_context io_;
  prometheus::Registry registry_;
  std::atomic<bool> open_{false};
  std::mutex mu_;
  std::vector<std::string> order_, dirty_;
  std::unique_ptr<ShadowMirror> mirror_;
};

TEST_F(MirrorTest, AFullQueueDropsAndCountsWithoutBlocking) {
  make(ShadowOptions{.queue_capacity = 8, .workers = 2}, [](const MirroredCall&) { return EnhancedAnswer{}; });
  const auto start = std::chrono::steady_clock::now();
  int accepted = 0;
  int kept_whole = 0;
  for (int i = 0; i < 1000; ++i) {
    MirroredCall c = put(applied());
    c.key = "k" + std::to_string(i);
    c.put.value = "the lock value of k" + std::to_string(i);
    const std::string value = c.put.value;
    if (mirror_->submit(std::move(c))) {
      ++accepted;
    } else if (c.key == "k" + std::to_string(i) && c.put.value == value) {
      ++kept_whole;  // a dropped call is left to the caller, which journals its key
    }
  }
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(accepted, 8);
  EXPECT_EQ(kept_whole, 992);
  EXPECT_EQ(mirror_->totals().dropped, 992u);
  EXPECT_LT(took, std::chrono::seconds(1));  // nothing waited for a replay
  EXPECT_TRUE(mirror_->pending(0, "k3"));
  EXPECT_FALSE(mirror_->pending(0, "k999"));
  EXPECT_FALSE(mirror_->pending(1, "k3"));  // the db is part of the key
  open_ = true;
  runUntil([&] { return mirror_->totals().compared == 8; });
  EXPECT_EQ(mirror_->totals().compared, 8u);
  EXPECT_FALSE(mirror_->pending(0, "k3"));
  EXPECT_EQ(mirror_->statusJson()["dropped"].to_number<uint64_t>(), 992u);
}

TEST_F(MirrorTest, CallsForOneKeyReplayInOrderAndDivergencesRepair) {
  make(ShadowOptions{.queue_capacity = 1000, .workers = 4}, [](const MirroredCall& c) {
    // Enhanced refuses every third call (v0, v3, ..., v27): a decision divergence.
    return std::stoi(c.put.value.substr(1)) % 3 == 0 ? EnhancedAnswer{.put_result = lockedBy("pull #9 (x)")}
                                       : EnhancedAnswer{.put_result = applied()};
  });
  open_ = true;
  for (int i = 0; i < 30; ++i) {
    MirroredCall c = put(applied());
    c.put.value = "v" + std::to_string(i);
    ASSERT_TRUE(mirror_->submit(std::move(c)));
  }
  runUntil([&] { return mirror_->totals().compared == 30; });
  ASSERT_EQ(order_.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(order_[i], "v" + std::to_string(i));
  const auto totals = mirror_->totals();
  EXPECT_EQ(totals.divergent, 10u);
  EXPECT_EQ(dirty_.size(), 10u);
  auto status = mirror_->statusJson();
  EXPECT_EQ(status["by_kind"].as_object()["decision"].to_number<uint64_t>(), 10u);
  EXPECT_LE(status["examples"].as_array().size(), 20u);
}

// The replay gets the whole request (it hands it to enhanced), and the comparison gets legacy's
// answer: the previous value a SET ... GET returned, and the value an unlock removed.
TEST_F(MirrorTest, TheReplayGetsTheRequestAndTheComparisonLegacysAnswer) {
  std::vector<MirroredCall> seen;
  make(ShadowOptions{.queue_capacity = 100, .workers = 1}, [&seen](const MirroredCall& c) {
    seen.push_back(c);
    if (c.op == MirroredCall::Op::kUnlockScript) return EnhancedAnswer{.value = "{\"enhanced\":1}"};
    return EnhancedAnswer{.put_result = PutResult{.previous = c.put.value == "v1" ? "old" : "other"}};
  });
  open_ = true;
  for (const char* value : {"v1", "v2"}) {
    MirroredCall c = put(PutResult{.previous = "old"});
    c.put = PutRequest{.key = "pr/a", .value = value, .return_previous = true};
    ASSERT_TRUE(mirror_->submit(std::move(c)));
  }
  ASSERT_TRUE(mirror_->submit(MirroredCall{.op = MirroredCall::Op::kUnlockScript, .key = "pr/b",
                                           .pull_num = "7", .value = "{\"legacy\":1}"}));
  runUntil([&] { return mirror_->totals().compared == 3; });
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].key, "pr/a");
  EXPECT_EQ(seen[0].put.key, "pr/a");
  EXPECT_EQ(seen[0].put.value, "v1");
  EXPECT_TRUE(seen[0].put.return_previous);
  EXPECT_EQ(seen[2].pull_num, "7");
  // v1: enhanced's previous value is legacy's; v2: it is not; the unlock removed another value.
  const auto status = mirror_->statusJson();
  EXPECT_EQ(mirror_->totals().divergent, 2u);
  EXPECT_EQ(status.at("by_kind").as_object().at("value").to_number<uint64_t>(), 1u);
  EXPECT_EQ(status.at("by_kind").as_object().at("unlock").to_number<uint64_t>(), 1u);
  EXPECT_EQ(dirty_, (std::vector<std::string>{"pr/a", "pr/b"}));
}

// Stopping: a write still queued, or one whose replay the stop cut short (enhanced failed under
// it), is journaled rather than lost with the in-memory queue; reads are not; nothing of it
// counts as a divergence.
TEST_F(MirrorTest, StoppingJournalsTheWritesNotReplayed) {
  make(ShadowOptions{.queue_capacity = 100, .workers = 1},
       [](const MirroredCall&) { return EnhancedAnswer{.status = Status::unavailable("store closed")}; });
  auto call = [](MirroredCall::Op op, std::string key) {
    MirroredCall c = put(applied());
    c.op = op;
    c.key = std::move(key);
    return c;
  };
  ASSERT_TRUE(mirror_->submit(call(MirroredCall::Op::kPut, "in-flight")));
  // The worker starts the first replay, which waits on the gate.
  for (int i = 0; i < 20; ++i) {
    io_.run_for(std::chrono::milliseconds(1));
    io_.restart();
  }
  for (auto [op, key] : {std::pair{MirroredCall::Op::kGet, "read"}, {MirroredCall::Op::kDelete, "deleted"},
                         {MirroredCall::Op::kUnlockScript, "unlocked"}, {MirroredCall::Op::kPut, "locked"}}) {
    ASSERT_TRUE(mirror_->submit(call(op, key)));
  }
  mirror_->stop();
  open_ = true;
  runUntil([&] { return mirror_->depth() == 0; });
  EXPECT_EQ(mirror_->depth(), 0u);
  EXPECT_EQ(dirty_, (std::vector<std::string>{"in-flight", "deleted", "unlocked", "locked"}));
  EXPECT_EQ(mirror_->totals().divergent, 0u);
  EXPECT_FALSE(mirror_->submit(call(MirroredCall::Op::kPut, "late")));  // the router journals it
}

}  // namespace
}  // namespace lockshift
