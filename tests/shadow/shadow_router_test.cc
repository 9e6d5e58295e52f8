// The shadow mirror wired to a real router (two LMDB stores), at the steps where the shadow phase
// ends: a write whose replay is decided while the phase is shadow must never let enhanced grant a
// lock legacy holds once enhanced owns the key (promises 1 and 2).

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <prometheus/registry.h>

#include "shadow/shadow_mirror.h"
#include "tests/router/router_fixture.h"

namespace lockshift {
namespace {

using testing::LockSpec;
using testing::RouterStack;

ControlState filledShadow() {
  ControlState s;
  s.phase = Phase::kShadow;
  s.enhanced_in_use = true;
  s.enhanced_filled = true;
  return s;
}

// A router stack with the shadow mirror wired in as lockshift's main does.
class ShadowRouter {
 public:
  explicit ShadowRouter(ControlState initial, size_t journal_max = 100000, size_t queue_capacity = 100)
      : stack_(std::move(initial), /*enhanced_records=*/false, journal_max),
        mirror_(ShadowHooks{.replay = [this](MirroredCall c) { return stack_.router().replayOnEnhanced(std::move(c)); },
                            .mark_dirty =
                                [this](int db, std::string key) {
                                  return stack_.router().markEnhancedDirty(db, std::move(key));
                                }},
                registry_, ShadowOptions{.queue_capacity = queue_capacity, .workers = 2}) {
    mirror_.start(stack_.io());
    stack_.router().setMirror(&mirror_);
  }
  ~ShadowRouter() {
    mirror_.stop();
    // Let replays in flight finish before the mirror goes away.
    for (int i = 0; i < 1000 && mirror_.depth() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    // On the io thread, which reads the router's mirror: once this ran, nothing reads it any more.
    asio::post(stack_.io(), asio::use_future([this] { stack_.router().setMirror(nullptr); })).get();
  }
  RouterStack& stack() { return stack_; }
  ShadowMirror& mirror() { return mirror_; }

 private:
  RouterStack stack_;
  prometheus::Registry registry_;
  ShadowMirror mirror_;
};

// Starts a put on the stack's io thread without waiting for it.
std::future<std::optional<Result<PutResult>>> startPut(RouterStack& stack, PutRequest request) {
  auto call = [&stack, request = std::move(request)]() mutable -> asio::awaitable<std::optional<Result<PutResult>>> {
    co_return co_await stack.router().put(std::move(request));
  };
  return asio::co_spawn(stack.io(), std::move(call), asio::use_future);
}

// Waits (bounded) until `done` holds; false when it never did.
bool eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

// Holds enhanced's writes, then takes `lock` through the router: legacy grants it and its
// replay waits inside enhanced until holdWrites(false).
::testing::AssertionResult lockWithItsReplayHeld(RouterStack& stack, const LockSpec& lock) {
  stack.enhanced().holdWrites(true);
  if (PutResult::Outcome outcome = stack.lock(lock); outcome != PutResult::Outcome::kApplied) {
    return ::testing::AssertionFailure() << "the lock was not granted (outcome " << static_cast<int>(outcome) << ")";
  }
  if (!eventually([&] { return stack.enhanced().heldWrites() == 1; })) {
    return ::testing::AssertionFailure() << "the lock's replay never reached enhanced";
  }
  return ::testing::AssertionSuccess();
}

TEST(ShadowEnds, AWriteInFlightWhenEnhancedTakesOverIsNeitherGrantedTwiceNorLost) {
  ShadowRouter shadow(filledShadow());
  RouterStack& stack = shadow.stack();
  const LockSpec first{.path = "net", .pull = 1, .user = "alice"};
  const LockSpec second{.path = "net", .pull = 2, .user = "bob"};
  const std::string key = testing::lockKey(first);

  // Pull 1's lock reaches legacy while the phase is shadow, and waits there.
  stack.legacy().holdWrites(true);
  auto granted_first = startPut(stack, RouterStack::tryLock(first));
  ASSERT_TRUE(eventually([&] { return stack.legacy().heldWrites() == 1; }));

  // Enhanced takes every key meanwhile: the mirror is empty, so the move completes.
  ChangeOutcome moved = stack.move(Phase::kEnhancedOnly, std::nullopt);
  ASSERT_TRUE(moved.applied) << (moved.refusals.empty() ? "" : moved.refusals.front());

  // Pull 2 asks for the same lock and waits behind pull 1 on the key.
  auto granted_second = startPut(stack, RouterStack::tryLock(second));
  stack.run([]() -> asio::awaitable<bool> { co_return true; }());  // pull 2's call has started
  stack.legacy().holdWrites(false);

  auto one = *granted_first.get();
  ASSERT_TRUE(one.isOk()) << one.status().toString();
  EXPECT_EQ(one->outcome, PutResult::Outcome::kApplied);
  auto two = *granted_second.get();
  ASSERT_TRUE(two.isOk()) << two.status().toString();
  EXPECT_EQ(two->outcome, PutResult::Outcome::kLockedByOther) << "the lock was granted to both pulls";

  // Pull 1 still holds it, through lockshift and, once repaired, in both stores.
  EXPECT_EQ(stack.get(key), testing::lockJson(first));
  ASSERT_TRUE(eventually([&] { return stack.journal().depth() == 0 && shadow.mirror().depth() == 0; }));
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), key), testing::lockJson(first));
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), key), testing::lockJson(first));
}

// A full mirror queue drops the replay and never delays the client; the router journals the key
// instead, so enhanced is repaired from legacy rather than left without the lock.
TEST(ShadowMirrorFull, AWriteTheMirrorDroppedIsJournaledAndRepaired) {
  ShadowRouter shadow(filledShadow(), 100000, /*queue_capacity=*/1);
  RouterStack& stack = shadow.stack();
  const LockSpec queued{.path = "dns", .pull = 4};
  const LockSpec dropped{.path = "vpc", .pull = 5};
  ASSERT_TRUE(lockWithItsReplayHeld(stack, queued));  // fills the queue

  ASSERT_EQ(stack.lock(dropped), PutResult::Outcome::kApplied);
  EXPECT_EQ(shadow.mirror().totals().dropped, 1u);
  EXPECT_EQ(stack.journal().dirtyTarget(0, testing::lockKey(dropped)), StoreRole::kEnhanced)
      << "the write the mirror dropped was not journaled";

  stack.enhanced().holdWrites(false);
  ASSERT_TRUE(eventually([&] { return stack.journal().depth() == 0 && shadow.mirror().depth() == 0; }));
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), testing::lockKey(dropped)), testing::lockJson(dropped));
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), testing::lockKey(queued)), testing::lockJson(queued));
}

// Stopping, the mirror journals the writes it has not replayed. When the journal cannot take one
// (full here), the next start must not trust enhanced: it starts as after a crash and fills
// enhanced from legacy again, rather than let enhanced later own a key whose write it missed.
TEST(ShadowEnds, AStopThatCannotJournalAMirroredWriteMakesTheNextStartFillEnhancedAgain) {
  ShadowRouter shadow(filledShadow(), /*journal_max=*/0);
  RouterStack& stack = shadow.stack();
  const LockSpec lock{.path = "dns", .pull = 3};
  // The first replay waits in enhanced; the second queues behind it (same key, same shard).
  ASSERT_TRUE(lockWithItsReplayHeld(stack, lock));
  auto unlocked = stack.run(stack.router().del(0, {testing::lockKey(lock)}));
  ASSERT_TRUE(unlocked.isOk()) << unlocked.status().toString();
  ASSERT_EQ(shadow.mirror().depth(), 2u);

  shadow.mirror().stop();
  stack.enhanced().holdWrites(false);
  ASSERT_TRUE(eventually([&] { return shadow.mirror().depth() == 0; }));
  // Counted, not read from memoryOnlyCount(): the journal's replayer may already have repaired
  // the key from legacy and cleared its memory-only pin.
  EXPECT_EQ(stack.journal().overflowCount(), 1u)
      << "the unlock's replay was to be journaled, and the journal is full";

  stack.restart();
  bool refilled = false;
  for (const auto& e : stack.control().events()) refilled |= e.find("enhanced.fill.restarted") != std::string::npos;
  EXPECT_TRUE(refilled) << "the next start trusted an enhanced store that missed a write";
  EXPECT_TRUE(stack.router().uncleanStart());
}

// A repair of a key whose replays are still in the mirror waits for them: copying legacy's value
// meanwhile could land before a replay already past its dirty check, which would then overwrite
// the copy with an older write.
TEST(ShadowEnds, ARepairWaitsForTheKeysQueuedReplays) {
  ShadowRouter shadow(filledShadow());
  RouterStack& stack = shadow.stack();
  const LockSpec lock{.path = "iam", .pull = 4};
  const std::string key = testing::lockKey(lock);
  // The lock's replay waits in enhanced; the unlock's queues behind it (same key, same shard).
  ASSERT_TRUE(lockWithItsReplayHeld(stack, lock));
  ASSERT_TRUE(stack.run(stack.router().del(0, {key})).isOk());
  ASSERT_EQ(shadow.mirror().depth(), 2u);
  // The key turns dirty for enhanced (as when a later write's replay is dropped).
  ASSERT_TRUE(stack.run(stack.journal().mark(0, key, StoreRole::kEnhanced)).isOk());

  // The replayer (every 20 ms here) leaves enhanced alone while the mirror holds the key.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(stack.enhanced().heldWrites(), 1u) << "a repair wrote to enhanced under a pending replay";
  EXPECT_EQ(stack.journal().dirtyTarget(0, key), StoreRole::kEnhanced);

  stack.enhanced().holdWrites(false);
  ASSERT_TRUE(eventually([&] { return shadow.mirror().depth() == 0 && stack.journal().depth() == 0; }));
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), key), std::nullopt);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), key), std::nullopt);
}

// With several network threads a write can decide to mirror just before the shadow phase ends
// and queue its replay after the move found the mirror empty. While the mirror holds a replay of
// a key, the key stays with legacy, which has its value (a replay that finds the phase over
// journals the key, which then keeps it with legacy until it is repaired).
TEST(ShadowEnds, AKeyWithAReplayStillQueuedStaysWithLegacyAfterThePhaseEnds) {
  ShadowRouter shadow(filledShadow());
  RouterStack& stack = shadow.stack();
  const LockSpec lock{.path = "kms", .pull = 5};
  const std::string key = testing::lockKey(lock);
  ASSERT_TRUE(lockWithItsReplayHeld(stack, lock));
  // The phase changes under the queued replay, as the race above leaves it (the admin move
  // itself would wait for the mirror to empty).
  ASSERT_TRUE(stack.control().update([](ControlState& s) { s.phase = Phase::kEnhancedOnly; }).isOk());
  EXPECT_EQ(stack.router().ownerOf(0, key), StoreRole::kLegacy) << "enhanced owns a key it has not seen";
  EXPECT_EQ(stack.router().ownerOf(0, testing::lockKey(LockSpec{.path = "other"})), StoreRole::kEnhanced);

  stack.enhanced().holdWrites(false);
  ASSERT_TRUE(eventually([&] { return shadow.mirror().depth() == 0 && stack.journal().depth() == 0; }));
  EXPECT_EQ(stack.router().ownerOf(0, key), StoreRole::kEnhanced);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), key), testing::lockJson(lock));
}

// A mirrored call whose replay comes after the shadow phase ended is skipped. A write is journaled
// (enhanced must get it from legacy); a read changed nothing enhanced lacks, so it neither journals
// nor pins its key.
TEST(ShadowEnds, AReadReplayedAfterTheShadowPhaseEndedJournalsNothing) {
  ControlState hybrid = filledShadow();
  hybrid.phase = Phase::kHybrid;
  ShadowRouter shadow(hybrid);
  RouterStack& stack = shadow.stack();
  const LockSpec held{.path = "vpc", .pull = 8};
  ASSERT_EQ(stack.lock(held), PutResult::Outcome::kApplied);
  const std::string key = testing::lockKey(held);

  EnhancedAnswer read = stack.run(stack.router().replayOnEnhanced(
      MirroredCall{.op = MirroredCall::Op::kGet, .db = 0, .key = key, .value = testing::lockJson(held)}));
  EXPECT_TRUE(read.skipped);
  EXPECT_EQ(stack.journal().depth(), 0u) << "a late read replay journaled its key";

  stack.enhanced().setFailing(true);  // the replayer must not repair the entry before it is seen
  EnhancedAnswer write = stack.run(stack.router().replayOnEnhanced(
      MirroredCall{.op = MirroredCall::Op::kDelete, .db = 0, .key = key, .deleted = 1}));
  EXPECT_TRUE(write.skipped);
  EXPECT_EQ(stack.journal().dirtyTarget(0, key), StoreRole::kEnhanced) << "a late write replay must be journaled";
  stack.enhanced().setFailing(false);
}

}  // namespace
}  // namespace lockshift
