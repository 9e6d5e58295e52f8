// The migration engine with two real LMDB stores: ownership, dual writes, fill, journal and
// pinning, rollback (API and flag file), persistence across restarts, and the merged scan.

#include <gmock/gmock.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <set>

#include "common/stable_hash.h"
#include "tests/router/router_fixture.h"
#include "tests/support/run_sync.h"

namespace lockshift::testing {
namespace {

LockSpec lockNo(int i, int pull = 1) { return LockSpec{.path = "mod" + std::to_string(i), .project = "p", .pull = pull}; }

TEST(Ownership, ByPhaseSplitRulesAndRollback) {
  ControlState s;
  EXPECT_EQ(s.ownerOf("pr/a"), StoreRole::kLegacy);
  s.phase = Phase::kEnhancedOnly;
  EXPECT_EQ(s.ownerOf("pr/a"), StoreRole::kLegacy);  // enhanced not filled yet
  s.enhanced_filled = true;
  EXPECT_EQ(s.ownerOf("pr/a"), StoreRole::kEnhanced);
  s.phase = Phase::kHybrid;
  s.traffic_split = 0;
  EXPECT_EQ(s.ownerOf("pr/a"), StoreRole::kLegacy);
  s.traffic_split = 100;
  EXPECT_EQ(s.ownerOf("pr/a"), StoreRole::kEnhanced);
  s.traffic_split = 50;
  int enhanced = 0;
  for (int i = 0; i < 10000; ++i) enhanced += s.ownerOf("pr/k" + std::to_string(i)) == StoreRole::kEnhanced;
  EXPECT_NEAR(enhanced, 5000, 250);
  // A key keeps its owner while the split grows past it (buckets below the split move).
  s.traffic_split = 10;
  std::vector<std::string> moved;
  for (int i = 0; i < 1000; ++i) {
    if (s.ownerOf("pr/k" + std::to_string(i)) == StoreRole::kEnhanced) moved.push_back("pr/k" + std::to_string(i));
  }
  s.traffic_split = 60;
  for (const auto& k : moved) EXPECT_EQ(s.ownerOf(k), StoreRole::kEnhanced);
  s.rules = {{"pr/acme/staging-*", StoreRole::kEnhanced}, {"pr/acme/*", StoreRole::kLegacy}};
  s.traffic_split = 0;
  EXPECT_EQ(s.ownerOf("pr/acme/staging-1/x"), StoreRole::kEnhanced);
  s.traffic_split = 100;
  EXPECT_EQ(s.ownerOf("pr/acme/prod/x"), StoreRole::kLegacy);
  s.rollback.raised = true;
  EXPECT_EQ(s.ownerOf("pr/acme/staging-1/x"), StoreRole::kLegacy);
}

// A key is enhanced's when its bucket is below the split's bucket count (split × 100), exactly:
// split 0 gives enhanced nothing, a 0.01 step moves one bucket, and a split whose product with
// 100 is not exact in binary (0.29 × 100 = 28.999…) still counts its own buckets.
TEST(Ownership, TheSplitTakesTheBucketsBelowIt) {
  std::map<uint32_t, std::string> key_of;  // a key for each bucket the test needs
  for (int i = 0; key_of.size() < 4 && i < 1000000; ++i) {
    const std::string key = "pr/b" + std::to_string(i);
    const uint32_t b = stableBucket(key);
    if (b == 0 || b == 1 || b == 28 || b == 29) key_of.emplace(b, key);
  }
  ASSERT_EQ(key_of.size(), 4u);
  ControlState s;
  s.phase = Phase::kHybrid;
  s.enhanced_filled = true;
  s.traffic_split = 0;
  EXPECT_EQ(s.ownerOf(key_of[0]), StoreRole::kLegacy);
  s.traffic_split = 0.01;
  EXPECT_EQ(s.ownerOf(key_of[0]), StoreRole::kEnhanced);
  EXPECT_EQ(s.ownerOf(key_of[1]), StoreRole::kLegacy);
  s.traffic_split = 0.29;
  EXPECT_EQ(s.ownerOf(key_of[28]), StoreRole::kEnhanced);
  EXPECT_EQ(s.ownerOf(key_of[29]), StoreRole::kLegacy);
  EXPECT_EQ(s.enhancedOwnedPercent(), 0.29);
}

TEST(ControlStateCodec, RoundTripsAndRejectsBadFields) {
  ControlState s;
  s.phase = Phase::kHybrid;
  s.traffic_split = 12.5;
  s.rules = {{"pr/x*", StoreRole::kEnhanced}};
  s.rollback = {true, "bad deploy", "admin", 123};
  s.enhanced_filled = true;
  s.epoch = 7;
  auto back = decodeControlState(encodeControlState(s));
  ASSERT_TRUE(back.isOk()) << back.status().toString();
  EXPECT_EQ(back->phase, Phase::kHybrid);
  EXPECT_EQ(back->traffic_split, 12.5);
  EXPECT_EQ(back->rules.size(), 1u);
  EXPECT_TRUE(back->rollback.raised);
  EXPECT_EQ(back->rollback.reason, "bad deploy");
  EXPECT_TRUE(back->enhanced_filled);
  EXPECT_EQ(back->epoch, 7u);
  s.traffic_split = 50;
  EXPECT_NE(encodeControlState(s).find(R"("traffic_split":50,)"), std::string::npos) << encodeControlState(s);
  EXPECT_EQ(decodeControlState(encodeControlState(s))->traffic_split, 50);
  EXPECT_FALSE(decodeControlState("{").isOk());
  EXPECT_FALSE(decodeControlState(R"({"phase":"sideways","traffic_split":0})").isOk());
  EXPECT_FALSE(decodeControlState(R"({"phase":"hybrid","traffic_split":101})").isOk());
  // legacy_behind: kept across a round trip, false in a file from before it existed, a bool.
  s.legacy_behind = true;
  EXPECT_TRUE(decodeControlState(encodeControlState(s))->legacy_behind);
  EXPECT_FALSE(decodeControlState(R"({"phase":"hybrid","traffic_split":1})")->legacy_behind);
  auto bad = decodeControlState(R"({"phase":"hybrid","traffic_split":1,"legacy_behind":"yes"})");
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.status().message().find("legacy_behind"), std::string::npos) << bad.status().toString();
}

TEST(Router, LegacyOnlyTouchesOnlyLegacyUntilEnhancedIsFilled) {
  RouterStack stack;
  EXPECT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  EXPECT_TRUE(stack.getFrom(stack.legacyStore(), lockKey(lockNo(1))).has_value());
  EXPECT_FALSE(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(1))).has_value());
}

// Status shows what each store warns of (a Redis store that cannot fence, say), and "" for a store
// with nothing to say.
TEST(Router, StatusShowsWhatEachStoreWarnsOf) {
  RouterStack stack;
  stack.enhanced().setWarning("commands left unanswered are not fenced off (CLIENT KILL failed: NOPERM)");
  boost::json::object status = stack.run(stack.router().status());
  const boost::json::object& stores = status.at("stores").as_object();
  EXPECT_EQ(stores.at("legacy").at("warning").as_string(), "");
  EXPECT_EQ(stores.at("enhanced").at("warning").as_string(),
            "commands left unanswered are not fenced off (CLIENT KILL failed: NOPERM)");
}

// Writes to one key, spawned on the stack's io thread: each a future of its result.
std::future<std::optional<Result<PutResult>>> spawnPut(RouterStack& stack, PutRequest request) {
  auto call = [&stack, request = std::move(request)]() mutable -> asio::awaitable<std::optional<Result<PutResult>>> {
    co_return co_await stack.router().put(std::move(request));
  };
  return asio::co_spawn(stack.io(), std::move(call), asio::use_future);
}
PutRequest plainSet(const std::string& key, const std::string& value) {
  PutRequest r;
  r.key = key;
  r.value = value;
  return r;
}
// Polls (every 5 ms, 5 s at most) until `done` holds; whether it did.
bool waitUntil(const std::function<bool()>& done) {
  for (int i = 0; i < 1000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return done();
}

// Before the migration starts (legacy-only, enhanced never in use) a write goes to legacy alone,
// and writes to one key do not wait for each other: all three reach legacy at once.
TEST(Router, BeforeTheMigrationWritesToOneKeyDoNotWaitForEachOther) {
  RouterStack stack;
  const std::string key = lockKey(lockNo(1));
  stack.legacy().holdWrites(true);
  auto a = spawnPut(stack, plainSet(key, lockJson(lockNo(1, 1))));
  auto b = spawnPut(stack, plainSet(key, lockJson(lockNo(1, 2))));
  auto del = [&]() -> asio::awaitable<std::optional<Result<int64_t>>> {
    auto call = stack.router().del(0, std::vector<std::string>{key});
    co_return co_await std::move(call);
  };
  auto c = asio::co_spawn(stack.io(), del, asio::use_future);
  EXPECT_TRUE(waitUntil([&] { return stack.legacy().heldWrites() == 3; })) << stack.legacy().heldWrites();
  stack.legacy().holdWrites(false);
  ASSERT_TRUE(a.get()->isOk());
  ASSERT_TRUE(b.get()->isOk());
  ASSERT_TRUE(c.get()->isOk());
}

// Such writes still exclude everything else that takes the key's lock, in order: a forced unlock
// asked while one is in flight waits for it (and reports the holder it wrote), and a write asked
// after the unlock waits for the unlock, not beside the write before it.
TEST(Router, BeforeTheMigrationAForcedUnlockWaitsForTheWritesBeforeIt) {
  RouterStack stack;
  const std::string key = lockKey(lockNo(1));
  ASSERT_EQ(stack.lock(lockNo(1, 1)), PutResult::Outcome::kApplied);
  stack.legacy().holdWrites(true);
  auto before = spawnPut(stack, plainSet(key, lockJson(lockNo(1, 2))));
  ASSERT_TRUE(waitUntil([&] { return stack.legacy().heldWrites() == 1; }));
  auto unlock = [&]() -> asio::awaitable<std::optional<Result<std::optional<std::string>>>> {
    co_return co_await stack.router().forceUnlock(0, key, "test");
  };
  auto unlocked = asio::co_spawn(stack.io(), unlock, asio::use_future);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto after = spawnPut(stack, plainSet(key, lockJson(lockNo(1, 3))));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // Neither the unlock's delete nor the later write reached legacy beside the first write.
  EXPECT_EQ(stack.legacy().heldWrites(), 1u);
  EXPECT_EQ(unlocked.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  stack.legacy().holdWrites(false);
  ASSERT_TRUE(before.get()->isOk());
  auto released = *unlocked.get();
  ASSERT_TRUE(released.isOk()) << released.status().toString();
  EXPECT_EQ(*released, lockJson(lockNo(1, 2)));  // the lock the write before it took
  ASSERT_TRUE(after.get()->isOk());
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), key), lockJson(lockNo(1, 3)));
}

// Writes let in while legacy was alone hold their key's lock shared: nothing orders them among
// themselves, and the migration may start while they are in flight. What they then copy to
// enhanced may reach it in another order than legacy applied them; the backfill waits for them
// before it copies, so that its copy comes last. Here a lock and an unlock of one key race across
// the start of the migration, ten times, each store taking them in whichever order they come.
TEST(Router, TheBackfillWaitsForWritesLetInBeforeTheMigrationStarted) {
  for (int round = 0; round < 10; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    RouterStack stack;
    const std::string key = lockKey(lockNo(1));
    stack.legacy().holdWrites(true);
    stack.enhanced().holdWrites(true);
    auto locked = spawnPut(stack, RouterStack::tryLock(lockNo(1, 2)));
    auto unlocked = stack.start(stack.router().del(0, {key}));
    ASSERT_TRUE(waitUntil([&] { return stack.legacy().heldWrites() == 2; }));
    auto moved = stack.start(stack.router().changeMigration(MigrationChange{Phase::kHybrid, 50, false}, "test"));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stack.legacy().holdWrites(false);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    stack.enhanced().holdWrites(false);
    ASSERT_TRUE(locked.get()->isOk());
    ASSERT_TRUE(unlocked.get()->isOk());
    ASSERT_TRUE(moved.get()->applied);
    ASSERT_TRUE(stack.filledWithin());
    ASSERT_TRUE(stack.drainedWithin());
    EXPECT_EQ(stack.getFrom(stack.enhancedStore(), key), stack.getFrom(stack.legacyStore(), key));
  }
}

// Once the migration has started, writes to one key are ordered again, one at a time.
TEST(Router, AfterTheMigrationStartsWritesToOneKeyWaitForEachOther) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kHybrid, 0).applied);
  ASSERT_TRUE(stack.control().snapshot()->enhanced_in_use);
  const std::string key = lockKey(lockNo(1));
  stack.legacy().holdWrites(true);
  auto a = spawnPut(stack, plainSet(key, lockJson(lockNo(1, 1))));
  auto b = spawnPut(stack, plainSet(key, lockJson(lockNo(1, 2))));
  ASSERT_TRUE(waitUntil([&] { return stack.legacy().heldWrites() >= 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(stack.legacy().heldWrites(), 1u);
  stack.legacy().holdWrites(false);
  ASSERT_TRUE(a.get()->isOk());
  ASSERT_TRUE(b.get()->isOk());
  // Both stores end with the same value, whichever write came last.
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), key), stack.getFrom(stack.enhancedStore(), key));
}

// A write in flight when the backfill starts is waited for: the copy of its key is its value.
TEST(Router, BeforeTheMigrationAWriteInFlightWhenTheBackfillStartsIsCopied) {
  RouterStack stack;
  const std::string key = lockKey(lockNo(1));
  ASSERT_EQ(stack.lock(lockNo(1, 1)), PutResult::Outcome::kApplied);
  stack.legacy().holdWrites(true);
  auto write = spawnPut(stack, plainSet(key, lockJson(lockNo(1, 2))));
  ASSERT_TRUE(waitUntil([&] { return stack.legacy().heldWrites() == 1; }));
  auto moved = asio::co_spawn(
      stack.io(),
      [&]() -> asio::awaitable<std::optional<ChangeOutcome>> {
        co_return co_await stack.router().changeMigration(MigrationChange{Phase::kHybrid, 0, false}, "test");
      },
      asio::use_future);
  ASSERT_TRUE(waitUntil([&] { return stack.control().snapshot()->enhanced_in_use; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(moved.wait_for(std::chrono::seconds(0)), std::future_status::timeout) << "the fill did not wait";
  stack.legacy().holdWrites(false);
  ASSERT_TRUE(write.get()->isOk());
  auto out = *moved.get();
  ASSERT_TRUE(out.applied) << (out.refusals.empty() ? "" : out.refusals[0]);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), key), lockJson(lockNo(1, 2)));
  EXPECT_EQ(stack.journal().depth(), 0u);
}

TEST(Router, FirstMoveFillsEnhancedThenHybridWritesBoth) {
  RouterStack stack;
  for (int i = 0; i < 100; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  auto out = stack.move(Phase::kHybrid, 50);
  ASSERT_TRUE(out.applied) << (out.refusals.empty() ? "" : out.refusals[0]);
  EXPECT_TRUE(out.state.enhanced_filled);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(i))), lockJson(lockNo(i))) << i;
  }
  // New writes reach both stores whoever owns the key.
  for (int i = 100; i < 200; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  for (int i = 100; i < 200; ++i) {
    EXPECT_TRUE(stack.getFrom(stack.legacyStore(), lockKey(lockNo(i))).has_value());
    EXPECT_TRUE(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(i))).has_value());
  }
  // Deletes too.
  EXPECT_EQ(stack.run(stack.router().del(0, {lockKey(lockNo(5))})).value(), 1);
  EXPECT_FALSE(stack.getFrom(stack.legacyStore(), lockKey(lockNo(5))).has_value());
  EXPECT_FALSE(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(5))).has_value());
}

TEST(Router, StrictAcquireHoldsAcrossSplitChangesAndRollback) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kHybrid, 0).applied);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(stack.lock(lockNo(i, 1)), PutResult::Outcome::kApplied);
  for (double split : {10.0, 50.0, 90.0, 100.0}) {
    ASSERT_TRUE(stack.move(std::nullopt, split).applied);
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(stack.lock(lockNo(i, 2)), PutResult::Outcome::kLockedByOther) << "split " << split << " key " << i;
      EXPECT_EQ(stack.get(lockKey(lockNo(i, 1))), lockJson(lockNo(i, 1)));  // no lost lock
    }
  }
  ASSERT_TRUE(stack.router().raiseRollback("test", "test").isOk());
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(stack.lock(lockNo(i, 2)), PutResult::Outcome::kLockedByOther);
    EXPECT_EQ(stack.get(lockKey(lockNo(i, 1))), lockJson(lockNo(i, 1)));
  }
}

TEST(Router, FailedEnhancedWriteIsJournaledPinnedAndRepaired) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kHybrid, 100).applied);  // enhanced owns every key
  ASSERT_TRUE(stack.move(Phase::kHybrid, 0).applied);    // legacy owns every key again
  stack.enhanced().setFailing(true);
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);  // the client is not failed
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lockNo(1))), StoreRole::kEnhanced);
  // Moving the split does not hand the key to the stale store.
  ASSERT_TRUE(stack.move(std::nullopt, 100).applied);
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(1))), StoreRole::kLegacy);
  EXPECT_EQ(stack.get(lockKey(lockNo(1))), lockJson(lockNo(1)));
  EXPECT_EQ(stack.lock(lockNo(1, 2)), PutResult::Outcome::kLockedByOther);
  // Enhanced recovers: the replayer repairs the key and it moves.
  stack.enhanced().setFailing(false);
  EXPECT_TRUE(stack.drainedWithin());
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(1))), StoreRole::kEnhanced);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(1))), lockJson(lockNo(1)));
}

// At its bound the journal can no longer record durably that a store's copy is behind. A write
// that would depend on such an entry is answered with an error, never acknowledged: a restart
// would forget the entry and hand the key to the stale store. The key is still pinned in memory
// to the store that has it, and repaired once the other store is back.
TEST(Router, AFullJournalAnswersTheWriteWithAnErrorAndStillPinsTheKey) {
  RouterStack stack({}, false, /*journal_max=*/2);
  ASSERT_TRUE(stack.move(Phase::kHybrid, 100).applied);  // enhanced in use
  ASSERT_TRUE(stack.move(Phase::kHybrid, 0).applied);    // legacy owns every key
  stack.enhanced().setFailing(true);
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  ASSERT_EQ(stack.lock(lockNo(2)), PutResult::Outcome::kApplied);
  EXPECT_EQ(stack.journal().depth(), 2u);
  EXPECT_EQ(stack.journal().overflowCount(), 0u);

  auto answer = stack.run(stack.router().put(RouterStack::tryLock(lockNo(3))));
  ASSERT_FALSE(answer.isOk());
  EXPECT_NE(answer.status().message().find("repair journal is full"), std::string::npos) << answer.status().toString();
  EXPECT_EQ(stack.journal().overflowCount(), 1u);
  EXPECT_EQ(stack.gauge("lockshift_journal_memory_only"), 1);
  // Pinned in memory to legacy, which has the lock: no other pull gets it.
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lockNo(3))), StoreRole::kEnhanced);
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), lockKey(lockNo(3))), lockJson(lockNo(3)));
  EXPECT_EQ(stack.lock(lockNo(3, 2)), PutResult::Outcome::kLockedByOther);
  // The holder's retry finds the key already journaled, but only in memory: still an error.
  auto again = stack.run(stack.router().put(RouterStack::tryLock(lockNo(3))));
  EXPECT_FALSE(again.isOk());
  // A delete of a fourth, unjournaled key is refused the same way; one already journaled is not.
  auto del_new = stack.run(stack.router().del(0, {lockKey(lockNo(4))}));
  EXPECT_FALSE(del_new.isOk());
  auto del_known = stack.run(stack.router().del(0, {lockKey(lockNo(1))}));
  ASSERT_TRUE(del_known.isOk()) << del_known.status().toString();
  EXPECT_EQ(*del_known, 1);
  // Keys do not move toward enhanced while a pin lives only in memory, even forced; back is free.
  EXPECT_EQ(stack.journal().memoryOnlyCount(), 2u);  // lock 3's and the fourth key's
  EXPECT_EQ(stack.gauge("lockshift_journal_memory_only"), 2);
  EXPECT_EQ(stack.journal().overflowCount(), 3u);  // every refusal counts, the retry too
  ChangeOutcome forward = stack.run(stack.router().changeMigration(MigrationChange{std::nullopt, 50, true}, "test"));
  EXPECT_FALSE(forward.applied);
  ASSERT_EQ(forward.refusals.size(), 1u);
  EXPECT_NE(forward.refusals[0].find("kept only in memory"), std::string::npos) << forward.refusals[0];
  EXPECT_TRUE(stack.move(Phase::kLegacyOnly, std::nullopt).applied);
  ASSERT_TRUE(stack.move(Phase::kHybrid, 0).applied);

  // Enhanced is back: every entry, the one kept in memory too, is repaired from legacy.
  stack.enhanced().setFailing(false);
  EXPECT_TRUE(stack.drainedWithin());
  EXPECT_EQ(stack.journal().memoryOnlyCount(), 0u);
  // The gauge the critical alert watches clears with them.
  for (int i = 0; i < 100 && stack.gauge("lockshift_journal_memory_only") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stack.gauge("lockshift_journal_memory_only"), 0);
  EXPECT_EQ(stack.gauge("lockshift_journal_depth"), 0);
  EXPECT_TRUE(stack.move(std::nullopt, 50).applied);
  ASSERT_TRUE(stack.move(std::nullopt, 0).applied);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(1))), std::nullopt);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(2))), lockJson(lockNo(2)));
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(3))), lockJson(lockNo(3)));
  // With room again, writes are acknowledged.
  stack.enhanced().setFailing(true);
  EXPECT_EQ(stack.lock(lockNo(5)), PutResult::Outcome::kApplied);
}

// What the router publishes: the share of buckets enhanced owns now (not the configured split),
// and every call to a store by operation, where bad input a store refuses is an answer (the
// store is up) and a failing store is an error (down).
TEST(Router, MetricsShowTheShareEnhancedOwnsAndEveryStoreCall) {
  RouterStack stack;
  auto owned = [&] { return stack.gauge("lockshift_enhanced_owned_percent"); };
  auto split = [&] { return stack.gauge("lockshift_traffic_split_percent"); };
  auto calls = [&](const char* store, const char* op, const char* outcome) {
    return stack.sample("lockshift_store_requests_total", {{"store", store}, {"operation", op}, {"outcome", outcome}});
  };
  auto up = [&](const char* store) { return stack.sample("lockshift_store_up", {{"store", store}}); };
  EXPECT_EQ(owned(), 0);
  ASSERT_TRUE(stack.move(Phase::kHybrid, 50).applied);
  EXPECT_EQ(owned(), 50);
  EXPECT_EQ(split(), 50);
  ASSERT_TRUE(stack.router().raiseRollback("test", "test").isOk());
  EXPECT_EQ(owned(), 0);  // every key is on legacy, whatever the split says
  EXPECT_EQ(split(), 50);
  ASSERT_TRUE(stack.router().clearRollback("test").isOk());
  EXPECT_EQ(owned(), 50);
  ASSERT_TRUE(stack.move(Phase::kShadow, std::nullopt).applied);
  EXPECT_EQ(owned(), 0);
  EXPECT_EQ(split(), 50);
  ASSERT_TRUE(stack.move(Phase::kEnhancedOnly, std::nullopt).applied);
  EXPECT_EQ(owned(), 100);

  // PING reaches both stores while enhanced is in use; COUNT reads legacy, kept complete.
  ASSERT_TRUE(stack.run(stack.router().ping()).isOk());
  EXPECT_EQ(calls("legacy", "ping", "ok"), 1);
  EXPECT_EQ(calls("enhanced", "ping", "ok"), 1);
  ASSERT_TRUE(stack.run(stack.router().count(0)).isOk());
  EXPECT_EQ(calls("legacy", "count", "ok"), 1);

  // A database index the store does not have: the owner refuses it, and that is an answer.
  const double gets_ok = calls("enhanced", "get", "ok");
  auto refused = stack.run(stack.router().get(999, "k"));
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument) << refused.status().toString();
  EXPECT_EQ(calls("enhanced", "get", "ok"), gets_ok + 1);
  EXPECT_EQ(calls("enhanced", "get", "error"), 0);
  EXPECT_EQ(up("enhanced"), 1);

  // A failing store is an error, and down.
  stack.enhanced().setFailing(true);
  EXPECT_FALSE(stack.run(stack.router().get(0, "k")).isOk());
  EXPECT_EQ(calls("enhanced", "get", "error"), 1);
  EXPECT_EQ(up("enhanced"), 0);
  stack.enhanced().setFailing(false);
  ASSERT_TRUE(stack.run(stack.router().ping()).isOk());
  EXPECT_EQ(up("enhanced"), 1);
}

// A half-open breaker still keeps enhanced out of the path: the breaker gauge the critical alert
// watches stays 1 and enhanced owns nothing until the breaker has closed.
TEST(RouterMetrics, HalfOpenBreakerStillKeepsEnhancedOut) {
  prometheus::Registry registry;
  RouterMetrics metrics(registry);
  ControlState hybrid;
  hybrid.phase = Phase::kHybrid;
  hybrid.traffic_split = 30;
  hybrid.enhanced_filled = true;
  const struct {
    const char* state;
    bool available;
    double open, owned;
  } steps[] = {{"closed", true, 0, 30}, {"open", false, 1, 0}, {"half-open", false, 1, 0}, {"closed", true, 0, 30}};
  for (const auto& step : steps) {
    StoreAvailability breaker{.available = step.available, .state = step.state};
    metrics.setState(hybrid, breaker.available);
    metrics.setBreaker(breaker);
    EXPECT_EQ(metricValue(registry, "lockshift_breaker_open"), step.open) << step.state;
    EXPECT_EQ(metricValue(registry, "lockshift_breaker_state", {{"state", step.state}}), 1) << step.state;
    EXPECT_EQ(metricValue(registry, "lockshift_enhanced_owned_percent"), step.owned) << step.state;
    EXPECT_EQ(metricValue(registry, "lockshift_traffic_split_percent"), 30) << step.state;
  }
}

TEST(Router, FailedLegacyWriteInEnhancedOnlyKeepsTheKeyOnEnhancedThroughRollback) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kEnhancedOnly, std::nullopt).applied);
  stack.legacy().setFailing(true);
  ASSERT_EQ(stack.lock(lockNo(7)), PutResult::Outcome::kApplied);
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lockNo(7))), StoreRole::kLegacy);
  stack.legacy().setFailing(false);
  // Even under rollback, the key stays with the store that has it until legacy is repaired.
  ASSERT_TRUE(stack.router().raiseRollback("test", "test").isOk());
  EXPECT_EQ(stack.get(lockKey(lockNo(7))), lockJson(lockNo(7)));
  EXPECT_TRUE(stack.drainedWithin());
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), lockKey(lockNo(7))), lockJson(lockNo(7)));
}

// A write the owner failed may still have been applied there: Redis ran the command and its reply
// was lost (a timeout, a connection torn down). While legacy is current, it stays the truth for
// the key: the key falls back to legacy, which answers for it at once, and enhanced is repaired
// from legacy once it answers, so the failed write leaves no trace the client was not told of.
TEST(Router, AWriteEnhancedMayHaveAppliedBeforeFailingIsUndoneFromLegacy) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kEnhancedOnly, std::nullopt).applied);
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  stack.enhanced().setLostReplies(1);
  stack.enhanced().setFailing(true);
  auto taken = stack.run(stack.router().put(RouterStack::tryLock(lockNo(2))));
  EXPECT_EQ(taken.status().code(), ErrorCode::kTimeout);
  auto deleted = stack.run(stack.router().del(0, {lockKey(lockNo(1))}));
  EXPECT_EQ(deleted.status().code(), ErrorCode::kTimeout);
  auto released = stack.run(stack.router().deleteIfOwnedByPull(0, lockKey(lockNo(3)), "1"));
  EXPECT_EQ(released.status().code(), ErrorCode::kTimeout);
  // Each was applied there. (Not read back from enhanced: the replayer may already have undone
  // them, its repairs applied under the same fault.)
  for (const LockSpec& lock : {lockNo(2), lockNo(1), lockNo(3)}) {
    EXPECT_THAT(stack.enhanced().appliedThenLost(), ::testing::Contains(lockKey(lock)));
  }
  // Legacy answers for both keys while enhanced is down, with what the clients were told.
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(1))), StoreRole::kLegacy);
  EXPECT_EQ(stack.get(lockKey(lockNo(1))), lockJson(lockNo(1)));
  EXPECT_EQ(stack.get(lockKey(lockNo(2))), std::nullopt);
  EXPECT_EQ(stack.lock(lockNo(1, 2)), PutResult::Outcome::kLockedByOther);

  stack.enhanced().setFailing(false);
  EXPECT_TRUE(stack.drainedWithin());
  for (LockStore* s : std::initializer_list<LockStore*>{&stack.legacyStore(), &stack.enhancedStore()}) {
    EXPECT_EQ(stack.getFrom(*s, lockKey(lockNo(1))), lockJson(lockNo(1))) << s->name();
    EXPECT_EQ(stack.getFrom(*s, lockKey(lockNo(2))), std::nullopt) << s->name();
  }
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(1))), StoreRole::kEnhanced);
  EXPECT_EQ(stack.lock(lockNo(2, 2)), PutResult::Outcome::kApplied);
}

// So does an operator's forced unlock the owner failed: the lock stays held, in both stores.
TEST(Router, AForcedUnlockEnhancedMayHaveAppliedBeforeFailingIsUndoneFromLegacy) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kEnhancedOnly, std::nullopt).applied);
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  // Enhanced fails once the forced unlock read the lock and sent its delete.
  stack.enhanced().setLostReplies(1);
  stack.enhanced().holdWrites(true);
  auto forced = stack.start(stack.router().forceUnlock(0, lockKey(lockNo(1)), "test"));
  ASSERT_TRUE(waitUntil([&] { return stack.enhanced().heldWrites() == 1; }));
  stack.enhanced().setFailing(true);
  stack.enhanced().holdWrites(false);
  auto answer = std::move(*forced.get());
  EXPECT_EQ(answer.status().code(), ErrorCode::kTimeout);
  EXPECT_THAT(stack.enhanced().appliedThenLost(), ::testing::Contains(lockKey(lockNo(1))));  // applied there
  EXPECT_EQ(stack.get(lockKey(lockNo(1))), lockJson(lockNo(1)));  // from legacy meanwhile
  stack.enhanced().setFailing(false);
  EXPECT_TRUE(stack.drainedWithin());
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(1))), lockJson(lockNo(1)));
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), lockKey(lockNo(1))), lockJson(lockNo(1)));
  EXPECT_EQ(stack.get(lockKey(lockNo(1))), lockJson(lockNo(1)));
}

// The same where legacy owns the key: whatever legacy ended up with reaches enhanced once legacy
// answers, so the key's next owner agrees with what legacy showed.
TEST(Router, AWriteLegacyMayHaveAppliedBeforeFailingReachesEnhanced) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kHybrid, 0).applied);  // enhanced filled; legacy owns every key
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  stack.legacy().setLostReplies(1);
  stack.legacy().setFailing(true);
  EXPECT_EQ(stack.run(stack.router().put(RouterStack::tryLock(lockNo(2)))).status().code(), ErrorCode::kTimeout);
  EXPECT_EQ(stack.run(stack.router().del(0, {lockKey(lockNo(1))})).status().code(), ErrorCode::kTimeout);
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lockNo(2))), StoreRole::kEnhanced);
  stack.legacy().setFailing(false);
  EXPECT_TRUE(stack.drainedWithin());
  ASSERT_TRUE(stack.move(std::nullopt, 100).applied);  // enhanced owns every key
  EXPECT_EQ(stack.get(lockKey(lockNo(1))), std::nullopt);
  EXPECT_EQ(stack.get(lockKey(lockNo(2))), lockJson(lockNo(2)));
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(2))), lockJson(lockNo(2)));
}

// With enhanced out of the path (an open or half-open breaker), legacy owns every key, even in
// enhanced-only: it has every lock, since each write reached it. Writes go on there, enhanced's
// copies are journaled, and the keys return to enhanced once it is back and repaired.
TEST(Router, WhileEnhancedIsOutOfThePathLegacyOwnsEveryKey) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kEnhancedOnly, std::nullopt).applied);
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  stack.enhanced().setAvailable(false);
  stack.enhanced().setFailing(true);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(i))), StoreRole::kLegacy) << i;
  EXPECT_EQ(stack.get(lockKey(lockNo(1))), lockJson(lockNo(1)));
  EXPECT_EQ(stack.lock(lockNo(1, 2)), PutResult::Outcome::kLockedByOther);
  ASSERT_EQ(stack.lock(lockNo(2)), PutResult::Outcome::kApplied);
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lockNo(2))), StoreRole::kEnhanced);

  stack.enhanced().setFailing(false);
  stack.enhanced().setAvailable(true);
  EXPECT_TRUE(stack.drainedWithin());
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(2))), StoreRole::kEnhanced);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(2))), lockJson(lockNo(2)));
  EXPECT_EQ(stack.lock(lockNo(2, 2)), PutResult::Outcome::kLockedByOther);
}

// A legacy that missed enhanced's writes (keep_legacy_in_sync was off) would answer for locks
// enhanced holds: a rollback is refused, with the way out named, until a check finds legacy equal.
TEST(Router, ARollbackIsRefusedWhileLegacyIsBehind) {
  ControlState behind;
  behind.phase = Phase::kEnhancedOnly;
  behind.enhanced_in_use = true;
  behind.enhanced_filled = true;
  behind.legacy_behind = true;
  RouterStack stack(behind);
  Status refused = stack.router().raiseRollback("enhanced is slow", "test");
  ASSERT_FALSE(refused.isOk());
  EXPECT_NE(refused.message().find("legacy missed enhanced's writes"), std::string::npos) << refused.toString();
  EXPECT_FALSE(stack.control().snapshot()->rollback.raised);
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(1))), StoreRole::kEnhanced);

  stack.router().legacyCaughtUp("report-1");
  EXPECT_FALSE(stack.control().snapshot()->legacy_behind);
  ASSERT_TRUE(stack.router().raiseRollback("enhanced is slow", "test").isOk());
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(1))), StoreRole::kLegacy);
}

TEST(Router, RollbackJournalsEnhancedWritesAndNeverWaitsForIt) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kHybrid, 100).applied);
  ASSERT_TRUE(stack.router().raiseRollback("enhanced is broken", "test").isOk());
  stack.enhanced().setFailing(true);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(stack.get(lockKey(lockNo(i))), lockJson(lockNo(i)));
  EXPECT_EQ(stack.journal().depth(), 20u);
  // Clearing the rollback does not move dirty keys to enhanced before they are repaired.
  ASSERT_TRUE(stack.router().clearRollback("test").isOk());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(i))), StoreRole::kLegacy);
  stack.enhanced().setFailing(false);
  EXPECT_TRUE(stack.drainedWithin());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(i))), StoreRole::kEnhanced);
}

TEST(Router, ConfigSeededPhaseFillsEnhancedBeforeItOwnsKeys) {
  ControlState seeded;
  seeded.phase = Phase::kEnhancedOnly;
  RouterStack stack(seeded);
  EXPECT_TRUE(stack.filledWithin(std::chrono::milliseconds(2000)));
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  EXPECT_EQ(stack.router().ownerOf(0, lockKey(lockNo(1))), StoreRole::kEnhanced);
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), lockKey(lockNo(1))), lockJson(lockNo(1)));  // kept in sync
}

TEST(Router, ControlStateAndJournalSurviveRestart) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kHybrid, 30).applied);
  stack.enhanced().setFailing(true);
  ASSERT_EQ(stack.lock(lockNo(1)), PutResult::Outcome::kApplied);
  ASSERT_TRUE(stack.router().raiseRollback("why", "test").isOk());
  stack.restart();
  auto state = stack.control().snapshot();
  EXPECT_EQ(state->phase, Phase::kHybrid);
  EXPECT_EQ(state->traffic_split, 30);
  EXPECT_TRUE(state->rollback.raised);
  EXPECT_EQ(state->rollback.reason, "why");
  EXPECT_EQ(state->phase_source, "state");
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lockNo(1))), StoreRole::kEnhanced);
  EXPECT_EQ(stack.get(lockKey(lockNo(1))), lockJson(lockNo(1)));
}

TEST(Router, FlagFileRaisesRollbackAndBlocksClearing) {
  RouterStack stack;
  ASSERT_TRUE(stack.move(Phase::kHybrid, 100).applied);
  std::ofstream(stack.stateDir() + "/ROLLBACK") << "pager says so\n";
  const auto start = std::chrono::steady_clock::now();
  while (!stack.control().snapshot()->rollback.raised && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  auto state = stack.control().snapshot();
  EXPECT_TRUE(state->rollback.raised);
  EXPECT_EQ(state->rollback.reason, "pager says so");
  EXPECT_EQ(state->rollback.actor, "flag-file");
  EXPECT_FALSE(stack.router().clearRollback("test").isOk());
  std::filesystem::remove(stack.stateDir() + "/ROLLBACK");
  EXPECT_TRUE(stack.router().clearRollback("test").isOk());
  bool audited = false;
  for (const auto& e : stack.control().events()) audited |= e.find("rollback.raised") != std::string::npos;
  EXPECT_TRUE(audited);
}

TEST(Router, MergedScanReturnsEveryKeyOnceInEveryPhase) {
  RouterStack stack;
  for (int i = 0; i < 300; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  auto scanAll = [&] {
    std::multiset<std::string> keys;
    ScanRequest req{.db = 0, .cursor = 0, .count = 7, .match = "pr*"};
    for (int rounds = 0; rounds < 10000; ++rounds) {
      auto page = stack.run(stack.router().scan(req));
      EXPECT_TRUE(page.isOk()) << page.status().toString();
      if (!page) break;
      for (auto& k : page->keys) keys.insert(k);
      req.cursor = page->next_cursor;
      if (req.cursor == 0) break;
    }
    return keys;
  };
  for (auto [phase, split] : std::vector<std::pair<Phase, double>>{
           {Phase::kLegacyOnly, 0}, {Phase::kHybrid, 10}, {Phase::kHybrid, 50}, {Phase::kEnhancedOnly, 0}}) {
    ASSERT_TRUE(stack.move(phase, split).applied);
    auto keys = scanAll();
    EXPECT_EQ(keys.size(), 300u) << phaseName(phase) << " " << split;
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size()) << "duplicates";
  }
}

// Every key of a scan from cursor 0, and whether any came twice.
std::multiset<std::string> scanEvery(RouterStack& stack, const std::string& match, size_t count = 7) {
  std::multiset<std::string> keys;
  ScanRequest req{.db = 0, .cursor = 0, .count = count, .match = match};
  for (int rounds = 0; rounds < 10000; ++rounds) {
    auto page = stack.run(stack.router().scan(req));
    EXPECT_TRUE(page.isOk()) << match << ": " << page.status().toString();
    if (!page) break;
    for (auto& k : page->keys) keys.insert(k);
    req.cursor = page->next_cursor;
    if (req.cursor == 0) break;
  }
  return keys;
}

// Atlantis's List and UnlockByPull scans while enhanced is out of the path in enhanced-only, before
// any write was journaled: legacy, which owns every key then, answers them. The scan of one owner
// straight from an embedded store used to go to enhanced all the same, and failed.
TEST(Router, ScansWhileEnhancedIsOutOfThePathInEnhancedOnlyComeFromLegacy) {
  for (bool records : {false, true}) {
    RouterStack stack({}, records);
    ASSERT_TRUE(stack.move(Phase::kEnhancedOnly, std::nullopt).applied);
    std::set<std::string> want;
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
      want.insert(lockKey(lockNo(i)));
    }
    ASSERT_TRUE(stack.drainedWithin());
    stack.enhanced().setAvailable(false);
    stack.enhanced().setFailing(true);
    const size_t scans_before = stack.enhanced().scans();
    for (const std::string match : {"pr*", "pr/acme/infra*"}) {
      auto keys = scanEvery(stack, match, 3);
      EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), want) << match << (records ? " records" : "");
      EXPECT_EQ(keys.size(), want.size()) << match << (records ? " records" : "");
    }
    EXPECT_EQ(stack.enhanced().scans(), scans_before);
    stack.enhanced().setFailing(false);
    stack.enhanced().setAvailable(true);
  }
}

// Atlantis's UnlockByPull scans `pr/<repo>*`. With records, enhanced answers its part from the
// name index and is never scanned; legacy is not touched once enhanced owns every key. The answer
// is what a scan of every key would give: repositories whose names extend the prefix included.
TEST(Router, RepositoryScanComesFromTheNameIndexWhereEnhancedOwns) {
  RouterStack stack({}, /*enhanced_records=*/true);
  std::set<std::string> want;
  for (int i = 0; i < 60; ++i) {
    for (const std::string repo : {"acme/infra", "acme/infra-live", "acme/infra/sub", "other/x"}) {
      LockSpec lock{.repo = repo, .path = "mod" + std::to_string(i), .project = "p", .pull = 1};
      ASSERT_EQ(stack.lock(lock), PutResult::Outcome::kApplied);
      if (repo != "other/x") want.insert(lockKey(lock));
    }
  }
  for (auto [phase, split] : std::vector<std::pair<Phase, double>>{
           {Phase::kLegacyOnly, 0}, {Phase::kHybrid, 50}, {Phase::kEnhancedOnly, 0}}) {
    SCOPED_TRACE(std::string(phaseName(phase)) + " " + std::to_string(split));
    ASSERT_TRUE(stack.move(phase, split).applied);
    const size_t legacy_scans = stack.legacy().scans(), enhanced_scans = stack.enhanced().scans();
    auto keys = scanEvery(stack, "pr/acme/infra*");
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()), want);
    EXPECT_EQ(keys.size(), want.size()) << "a key came twice";
    EXPECT_EQ(stack.enhanced().scans(), enhanced_scans) << "enhanced was scanned";
    if (phase == Phase::kEnhancedOnly) {
      EXPECT_EQ(stack.legacy().scans(), legacy_scans) << "legacy was scanned";
    }
    // A pattern the index does not cover is still answered, by scanning.
    EXPECT_EQ(scanEvery(stack, "pr*").size(), 240u);
  }
}

// With a rollback raised while enhanced fails, legacy owns every key: a scan must not need
// enhanced, even with writes journaled for it.
TEST(Router, ScanDuringARollbackDoesNotNeedAFailingEnhanced) {
  for (bool records : {false, true}) {
    SCOPED_TRACE(records ? "enhanced with records" : "plain enhanced");
    RouterStack stack({}, records);
    for (int i = 0; i < 20; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
    ASSERT_TRUE(stack.move(Phase::kHybrid, 50).applied);
    ASSERT_TRUE(stack.router().raiseRollback("enhanced is down", "test").isOk());
    stack.enhanced().setFailing(true);
    for (int i = 20; i < 30; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
    ASSERT_GT(stack.journal().depth(), 0u);
    auto keys = scanEvery(stack, "pr/acme/infra/*");
    EXPECT_EQ(keys.size(), 30u);
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), 30u);
    stack.enhanced().setFailing(false);
  }
}

// Ownership that changes between the legacy and the enhanced pass of a snapshot scan (a rollback,
// a split move) must not drop a key: each key is judged once, after both stores were read.
TEST(Router, AnOwnershipChangeDuringAScanLosesNoKey) {
  const std::vector<std::pair<std::string, std::function<void(RouterStack&)>>> changes = {
      {"rollback raised", [](RouterStack& s) { ASSERT_TRUE(s.router().raiseRollback("test", "test").isOk()); }},
      {"split 90 -> 10",
       [](RouterStack& s) { ASSERT_TRUE(s.control().update([](ControlState& c) { c.traffic_split = 10; }).isOk()); }},
  };
  for (const auto& [name, change] : changes) {
    SCOPED_TRACE(name);
    RouterStack stack;
    ASSERT_TRUE(stack.move(Phase::kHybrid, name == "rollback raised" ? 50 : 90).applied);
    for (int i = 0; i < 200; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
    bool changed = false;
    // Enhanced is read after legacy: the change lands between the two passes.
    stack.enhanced().beforeScan([&] {
      if (!std::exchange(changed, true)) change(stack);
    });
    auto keys = scanEvery(stack, "pr*");
    stack.enhanced().beforeScan(nullptr);
    ASSERT_TRUE(changed);
    EXPECT_EQ(keys.size(), 200u);
    EXPECT_EQ(std::set<std::string>(keys.begin(), keys.end()).size(), keys.size()) << "duplicates";
  }
}

// The same for a repository's locks (GET /api/v1/locks?repo=, and unlocking a pull): legacy is
// scanned first, enhanced's index read next, and ownership changes between the two.
TEST(Router, AnOwnershipChangeDuringAPullQueryLosesNoLockAndListsNoneTwice) {
  const std::vector<std::tuple<std::string, double, std::function<void(RouterStack&)>>> changes = {
      {"split 10 -> 90", 10,
       [](RouterStack& s) { ASSERT_TRUE(s.control().update([](ControlState& c) { c.traffic_split = 90; }).isOk()); }},
      {"rollback raised", 50,
       [](RouterStack& s) { ASSERT_TRUE(s.router().raiseRollback("test", "test").isOk()); }},
  };
  for (const auto& [name, split, change] : changes) {
    SCOPED_TRACE(name);
    RouterStack stack({}, /*enhanced_records=*/true);
    ASSERT_TRUE(stack.move(Phase::kHybrid, split).applied);
    for (int i = 0; i < 100; ++i) ASSERT_EQ(stack.lock(lockNo(i, /*pull=*/7)), PutResult::Outcome::kApplied);
    bool changed = false;
    stack.enhanced().beforeScan([&] {
      if (!std::exchange(changed, true)) change(stack);
    });
    auto found = stack.run(stack.router().findLocks(LockQuery{.repo = "acme/infra", .pull = 7}, 1000));
    stack.enhanced().beforeScan(nullptr);
    ASSERT_TRUE(found.isOk()) << found.status().toString();
    ASSERT_TRUE(changed) << found->source << " " << found->locks.size();
    EXPECT_EQ(found->source, "index+scan");
    std::set<std::string> keys;
    for (const auto& e : found->locks) keys.insert(e.key);
    EXPECT_EQ(keys.size(), 100u) << "a lock was missed";
    EXPECT_EQ(found->locks.size(), 100u) << "a lock was listed twice";
    EXPECT_FALSE(found->truncated);
  }
}

// Entries that fail every time (here keys too long for the LMDB stores, which refuse them) must
// not keep the replayer from the others: it moves past them from one round to the next.
TEST(Router, JournalEntriesThatKeepFailingDoNotStarveTheOthers) {
  RouterStack stack;
  const LockSpec lock = lockNo(1);
  ASSERT_EQ(stack.lock(lock), PutResult::Outcome::kApplied);  // legacy-only: legacy alone has it
  // Stop the replayer from repairing it before the failing entries are in (enhanced refuses it).
  stack.enhanced().setFailing(true);
  ASSERT_TRUE(stack.run(stack.journal().mark(0, lockKey(lock), StoreRole::kEnhanced)).isOk());
  // Enough failing entries that the good one is well past the replayer's first batch of 256 in
  // the journal's order (a hash table's: where it lands depends on the others).
  auto position = [&] {
    auto all = stack.journal().pending(100000);
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].key == lockKey(lock)) return i;
    }
    return all.size();
  };
  size_t failing = 0;
  for (; failing < 5000 && (failing < 600 || position() < 300); ++failing) {
    const std::string key = std::string(600, 'x') + std::to_string(failing);
    Status s = stack.run(stack.journal().mark(0, key, StoreRole::kEnhanced));
    ASSERT_TRUE(s.isOk()) << s.toString();
  }
  ASSERT_GE(position(), 300u);
  stack.enhanced().setFailing(false);
  for (int i = 0; i < 1000 && stack.journal().dirtyTarget(0, lockKey(lock)); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lock)), std::nullopt) << "never repaired";
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lock)), lockJson(lock));
  EXPECT_EQ(stack.journal().depth(), failing);
}

// `count` journal entries for enhanced, made at once (LMDB's group commit takes them together),
// for keys legacy holds every tenth one of; returns the journal's depth once they are in.
size_t journalForEnhanced(RouterStack& stack, int count) {
  for (int i = 0; i < count; i += 10) EXPECT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  std::vector<std::future<Status>> marks;
  for (int i = 0; i < count; ++i) {
    marks.push_back(asio::co_spawn(stack.io(), stack.journal().mark(0, lockKey(lockNo(i)), StoreRole::kEnhanced),
                                   asio::use_future));
  }
  for (auto& m : marks) EXPECT_TRUE(m.get().isOk());
  return stack.journal().depth();
}

// Seconds until the journal is empty (at most `limit`).
double secondsToDrain(RouterStack& stack, std::chrono::seconds limit) {
  const auto start = std::chrono::steady_clock::now();
  while (stack.journal().depth() > 0 && std::chrono::steady_clock::now() - start < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// With no client calling, the replayer starts its next round (256 entries) as soon as one ends:
// what a rollback left drains without waiting out the interval between rounds.
TEST(Router, WithNoClientCallingTheReplayerRunsItsRoundsBackToBack) {
  const auto interval = std::chrono::seconds(3);
  RouterStack stack({}, false, 100000, interval);
  const size_t depth = journalForEnhanced(stack, 1000);
  // More than two rounds' worth: paced, the rounds after the first would start at least two
  // intervals after it did.
  ASSERT_GT(depth, 2 * 256u) << "the marks took longer than expected; the test proves nothing";
  // The first round comes after the loop's first wait; timing starts once it is under way.
  for (int i = 0; i < 2000 && stack.journal().depth() == depth; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_LT(stack.journal().depth(), depth) << "no round started";
  const double seconds = secondsToDrain(stack, std::chrono::seconds(30));
  EXPECT_EQ(stack.journal().depth(), 0u);
  EXPECT_LT(seconds, 3.0) << "rounds waited the interval with no client calling";
  for (int i = 0; i < 1000; i += 250) {
    const std::string key = lockKey(lockNo(i));
    EXPECT_EQ(stack.getFrom(stack.enhancedStore(), key), stack.getFrom(stack.legacyStore(), key)) << key;
  }
}

// While clients call, every round is followed by the interval (the clients' share of the network
// thread stays theirs, DESIGN §6 promise 5), as before.
TEST(Router, WhileClientsCallTheReplayersRoundsKeepTheirInterval) {
  const auto interval = std::chrono::seconds(1);
  RouterStack stack({}, false, 100000, interval);
  std::atomic<int> calls{0};
  struct Client {
    std::atomic<bool> done{false};
    std::thread thread;
    ~Client() {
      done = true;
      if (thread.joinable()) thread.join();
    }
  } client;
  client.thread = std::thread([&] {
    while (!client.done) {
      stack.get(lockKey(lockNo(1)));
      ++calls;
    }
  });
  const size_t depth = journalForEnhanced(stack, 1000);
  ASSERT_GT(depth, 2 * 256u) << "the marks took longer than expected; the test proves nothing";
  const double seconds = secondsToDrain(stack, std::chrono::seconds(30));
  EXPECT_EQ(stack.journal().depth(), 0u);
  EXPECT_GE(seconds, 1.9) << "rounds did not wait the interval while a client called";
  EXPECT_GT(calls.load(), 0);
}

// While the backfill is copying legacy into enhanced, a write to a legacy-owned key is journaled
// for enhanced before legacy applies it: a process killed in between must not leave legacy changed
// with no entry, when the backfill it resumes may already be past the key.
TEST(Router, DuringTheBackfillAWriteIsJournaledBeforeLegacyAppliesIt) {
  RouterStack stack;
  ASSERT_EQ(stack.lock(lockNo(0)), PutResult::Outcome::kApplied);
  const LockSpec forced = lockNo(2);  // force-unlocked through the admin API below
  ASSERT_EQ(stack.lock(forced), PutResult::Outcome::kApplied);
  stack.enhanced().setFailing(true);  // the backfill fails and retries: enhanced stays unfilled
  ASSERT_TRUE(stack.move(Phase::kShadow, std::nullopt).applied);
  for (int i = 0; i < 500 && !stack.control().snapshot()->enhanced_in_use; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(stack.control().snapshot()->enhanced_in_use);
  ASSERT_FALSE(stack.control().snapshot()->enhanced_filled);

  const LockSpec lock = lockNo(1);
  stack.legacy().holdWrites(true);
  auto call = [&]() -> asio::awaitable<std::optional<Result<PutResult>>> {
    co_return co_await stack.router().put(RouterStack::tryLock(lock));
  };
  auto granted = asio::co_spawn(stack.io(), call, asio::use_future);
  for (int i = 0; i < 1000 && stack.legacy().heldWrites() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(stack.legacy().heldWrites(), 1u);
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(lock)), StoreRole::kEnhanced)
      << "legacy is applying the write and nothing records that enhanced lacks it";
  stack.legacy().holdWrites(false);
  auto result = *granted.get();
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ(result->outcome, PutResult::Outcome::kApplied);

  // The same for the admin API's force unlock.
  stack.legacy().holdWrites(true);
  auto unlock = [&]() -> asio::awaitable<std::optional<Result<std::optional<std::string>>>> {
    co_return co_await stack.router().forceUnlock(0, lockKey(forced), "test");
  };
  auto unlocked = asio::co_spawn(stack.io(), unlock, asio::use_future);
  for (int i = 0; i < 1000 && stack.legacy().heldWrites() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(stack.legacy().heldWrites(), 1u);
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(forced)), StoreRole::kEnhanced);
  stack.legacy().holdWrites(false);
  auto released = *unlocked.get();
  ASSERT_TRUE(released.isOk()) << released.status().toString();
  EXPECT_EQ(*released, lockJson(forced));

  // Enhanced back: the backfill finishes, the journal drains, enhanced has both locks.
  stack.enhanced().setFailing(false);
  for (int i = 0; i < 2000 && !(stack.control().snapshot()->enhanced_filled && stack.journal().depth() == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(stack.control().snapshot()->enhanced_filled);
  EXPECT_EQ(stack.journal().depth(), 0u);
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(0))), lockJson(lockNo(0)));
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lock)), lockJson(lock));
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(forced)), std::nullopt);
}

// A write the backfill overlaps has its key repaired in the background right after it returns,
// not in the replayer's rounds (here an hour apart): otherwise every key written during the copy
// would wait for those rounds, and a move out of shadow for all of them. The client never waits
// for enhanced (DESIGN §6, promise 5): with enhanced stalled the write is answered, and its key
// repaired once enhanced answers. One enhanced fails keeps its entry. The backfill is throttled
// to 10 keys/s, so after its first page it waits for about a minute, which a restart must not.
TEST(Router, DuringTheBackfillAWrittenKeyIsRepairedAtOnceWithoutTheClientWaiting) {
  RouterStack stack({}, false, 100000, std::chrono::hours(1));
  constexpr int kKeys = 600;  // more than the backfill's first page of 500
  for (int i = 0; i < kKeys; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  stack.setBackfillRate(10);
  stack.restart();
  ASSERT_TRUE(stack.move(Phase::kShadow, std::nullopt).applied);
  // The first page copied: the backfill waits out its throttle.
  auto copied = [&] { return stack.run(stack.enhancedStore().count(0)).value(); };
  for (int i = 0; i < 2000 && copied() < 500; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(copied(), 500) << "the backfill did not stop after its first page";
  ASSERT_TRUE(stack.control().snapshot()->enhanced_in_use);
  ASSERT_FALSE(stack.control().snapshot()->enhanced_filled);
  ASSERT_EQ(stack.journal().depth(), 0u);
  auto drained = [&] {
    secondsToDrain(stack, std::chrono::seconds(5));
    return stack.journal().depth() == 0;
  };

  // A new lock, a refusal, Atlantis's unlock script (releasing, and not), and a DEL of a key the
  // backfill has copied: each leaves enhanced equal to legacy and nothing journaled.
  const LockSpec fresh = lockNo(kKeys);
  EXPECT_EQ(stack.lock(fresh), PutResult::Outcome::kApplied);
  EXPECT_TRUE(drained());
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(fresh)), lockJson(fresh));
  EXPECT_EQ(stack.lock(lockNo(kKeys, 2)), PutResult::Outcome::kLockedByOther);
  EXPECT_TRUE(drained());
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(fresh)), lockJson(fresh));
  auto released = stack.run(stack.router().deleteIfOwnedByPull(0, lockKey(fresh), "1"));
  ASSERT_TRUE(released.isOk()) << released.status().toString();
  EXPECT_EQ(*released, lockJson(fresh));
  auto kept = stack.run(stack.router().deleteIfOwnedByPull(0, lockKey(lockNo(1)), "2"));
  ASSERT_TRUE(kept.isOk()) << kept.status().toString();
  EXPECT_EQ(*kept, std::nullopt);
  EXPECT_TRUE(drained());
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(fresh)), std::nullopt);
  int copied_key = -1;
  for (int i = 0; i < kKeys && copied_key < 0; ++i) {
    if (stack.getFrom(stack.enhancedStore(), lockKey(lockNo(i)))) copied_key = i;
  }
  ASSERT_GE(copied_key, 0);
  EXPECT_EQ(stack.run(stack.router().del(0, {lockKey(lockNo(copied_key))})).value(), 1);
  EXPECT_TRUE(drained());
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(copied_key))), std::nullopt);

  // Enhanced stalled: the write is answered all the same, and its key repaired once enhanced is
  // back.
  stack.enhanced().holdWrites(true);
  const LockSpec stalled = lockNo(kKeys + 1);
  auto call = [&]() -> asio::awaitable<std::optional<Result<PutResult>>> {
    co_return co_await stack.router().put(RouterStack::tryLock(stalled));
  };
  auto answer = asio::co_spawn(stack.io(), call, asio::use_future);
  ASSERT_EQ(answer.wait_for(std::chrono::seconds(5)), std::future_status::ready) << "the client waited for enhanced";
  auto granted = *answer.get();
  ASSERT_TRUE(granted.isOk()) << granted.status().toString();
  EXPECT_EQ(granted->outcome, PutResult::Outcome::kApplied);
  for (int i = 0; i < 1000 && stack.enhanced().heldWrites() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(stack.enhanced().heldWrites(), 1u) << "no repair reached enhanced";
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(stalled)), StoreRole::kEnhanced);
  stack.enhanced().holdWrites(false);
  EXPECT_TRUE(drained());
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(stalled)), lockJson(stalled));

  // Enhanced failing: the write is granted, its entry stays for the replayer.
  stack.enhanced().setFailing(true);
  const LockSpec pinned = lockNo(kKeys + 2);
  EXPECT_EQ(stack.lock(pinned), PutResult::Outcome::kApplied);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(stack.journal().dirtyTarget(0, lockKey(pinned)), StoreRole::kEnhanced);
  stack.enhanced().setFailing(false);
  EXPECT_FALSE(stack.control().snapshot()->enhanced_filled) << "the backfill ended early; the test proves less";

  // A restart while the throttle waits: the router stops at once, not when the wait is over.
  const auto before = std::chrono::steady_clock::now();
  stack.restart();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(5));
}

// A key pinned to legacy (journaled for enhanced) and repaired into enhanced after enhanced was
// read, but before the answer is put together, belongs to enhanced by then, which was read without
// it. Legacy owned it when legacy was read, which keeps it: in SCAN and in the pull query alike.
TEST(Router, AKeyRepairedIntoEnhancedDuringAScanIsStillListed) {
  RouterStack stack({}, /*enhanced_records=*/true);
  for (int i = 0; i < 20; ++i) ASSERT_EQ(stack.lock(lockNo(i, /*pull=*/7)), PutResult::Outcome::kApplied);
  ASSERT_TRUE(stack.move(Phase::kEnhancedOnly, std::nullopt).applied);
  const LockSpec pinned = lockNo(100, /*pull=*/7);
  auto pinToLegacy = [&] {
    PutRequest put;
    put.key = lockKey(pinned);
    put.value = lockJson(pinned);
    ASSERT_TRUE(stack.run(stack.legacyStore().put(std::move(put))).isOk());
    ASSERT_TRUE(stack.run(stack.journal().mark(0, lockKey(pinned), StoreRole::kEnhanced)).isOk());
    ASSERT_EQ(stack.router().ownerOf(0, lockKey(pinned)), StoreRole::kLegacy);
  };
  // What the replayer does: copy to enhanced, then clear the entry; on runSync()'s io_context,
  // not the stack's. (The coroutine lambdas live until runSync() returns.)
  auto repair = [&] {
    PutRequest put;
    put.key = lockKey(pinned);
    put.value = lockJson(pinned);
    EXPECT_TRUE(runSync([&]() -> asio::awaitable<bool> {
      auto r = co_await stack.enhancedStore().put(std::move(put));
      co_return r.isOk();
    }()));
    EXPECT_TRUE(runSync([&]() -> asio::awaitable<bool> {
      auto s = co_await stack.journal().clear(0, lockKey(pinned));
      co_return s.isOk();
    }()));
  };
  stack.enhanced().setFailing(true);  // the replayer must not repair it before the test does
  pinToLegacy();
  stack.enhanced().setFailing(false);

  bool repaired = false;
  stack.enhanced().afterScan([&] {
    if (!std::exchange(repaired, true)) repair();
  });
  auto keys = scanEvery(stack, "pr*", 1000);
  ASSERT_TRUE(repaired);
  EXPECT_EQ(keys.count(lockKey(pinned)), 1u) << "SCAN lost the key";
  EXPECT_EQ(keys.size(), 21u);

  // Again for the pull query, whose enhanced read is the pull index.
  ASSERT_EQ(stack.run(stack.router().del(0, {lockKey(pinned)})).value(), 1);
  stack.enhanced().setFailing(true);
  stack.enhanced().afterScan(nullptr);
  pinToLegacy();
  stack.enhanced().setFailing(false);
  repaired = false;
  stack.enhanced().afterScan([&] {
    if (!std::exchange(repaired, true)) repair();
  });
  auto found = stack.run(stack.router().findLocks(LockQuery{.repo = "acme/infra", .pull = 7}, 1000));
  stack.enhanced().afterScan(nullptr);
  ASSERT_TRUE(repaired);
  ASSERT_TRUE(found.isOk()) << found.status().toString();
  size_t listed = 0;
  for (const auto& e : found->locks) listed += e.key == lockKey(pinned) ? 1 : 0;
  EXPECT_EQ(listed, 1u) << "the pull query lost the lock, or listed it twice";
  EXPECT_EQ(found->locks.size(), 21u);
}

// Readiness follows what requests need: enhanced's health counts only while it may own a key, so
// an enhanced outage that legacy covers (shadow, rollback) does not take lockshift out of a load
// balancer; a failing legacy always does.
TEST(Router, ReadinessNeedsEnhancedOnlyWhileItMayOwnKeys) {
  RouterStack stack;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  EXPECT_TRUE(stack.run(stack.router().ready()));
  ASSERT_TRUE(stack.move(Phase::kShadow, std::nullopt).applied);
  ASSERT_TRUE(stack.filledWithin());
  stack.enhanced().setFailing(true);
  EXPECT_TRUE(stack.run(stack.router().ready())) << "shadow: legacy answers every key";
  stack.enhanced().setFailing(false);
  auto moved = stack.move(Phase::kHybrid, 50);
  ASSERT_TRUE(moved.applied) << (moved.refusals.empty() ? "" : moved.refusals[0]);
  EXPECT_TRUE(stack.run(stack.router().ready()));
  stack.enhanced().setFailing(true);
  EXPECT_FALSE(stack.run(stack.router().ready())) << "hybrid: enhanced owns keys and fails";
  ASSERT_TRUE(stack.router().raiseRollback("enhanced down", "test").isOk());
  EXPECT_TRUE(stack.run(stack.router().ready())) << "rollback: legacy answers every key";
  stack.legacy().setFailing(true);
  EXPECT_FALSE(stack.run(stack.router().ready())) << "legacy fails";
  stack.legacy().setFailing(false);
  stack.enhanced().setFailing(false);
}

// Legacy's health counts too only while it may own a key: in enhanced-only it answers no request
// once nothing is pinned to it, so its outage keeps lockshift ready. A key written under a rollback
// stays with legacy until enhanced has its value; while one does, or a rollback is raised, a
// failing legacy takes lockshift out.
TEST(Router, ReadinessNeedsLegacyOnlyWhileItMayOwnKeys) {
  RouterStack stack;
  for (int i = 0; i < 5; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  auto moved = stack.move(Phase::kEnhancedOnly, std::nullopt);
  ASSERT_TRUE(moved.applied) << (moved.refusals.empty() ? "" : moved.refusals[0]);
  stack.legacy().setFailing(true);
  EXPECT_TRUE(stack.run(stack.router().ready())) << "enhanced-only: enhanced answers every key";
  EXPECT_EQ(stack.lock(lockNo(5)), PutResult::Outcome::kApplied);
  EXPECT_EQ(stack.get(lockKey(lockNo(5))), lockJson(lockNo(5)));
  EXPECT_EQ(stack.journal().depthFor(StoreRole::kLegacy), 1u) << "the write legacy missed is journaled";
  ASSERT_TRUE(stack.router().raiseRollback("test", "test").isOk());
  EXPECT_FALSE(stack.run(stack.router().ready())) << "rollback: legacy owns keys and fails";
  stack.legacy().setFailing(false);
  ASSERT_TRUE(stack.drainedWithin());
  EXPECT_EQ(stack.getFrom(stack.legacyStore(), lockKey(lockNo(5))), lockJson(lockNo(5)));

  // Under the rollback a write reaches legacy alone (enhanced fails): the key is pinned to legacy
  // after the rollback is cleared, until the journal gives enhanced its value.
  stack.enhanced().setFailing(true);
  ASSERT_EQ(stack.lock(lockNo(6)), PutResult::Outcome::kApplied);
  ASSERT_TRUE(stack.router().clearRollback("test").isOk());
  stack.legacy().setFailing(true);
  stack.enhanced().setFailing(false);
  EXPECT_FALSE(stack.run(stack.router().ready())) << "a key only legacy has is pinned to it";
  stack.legacy().setFailing(false);
  ASSERT_TRUE(stack.drainedWithin());
  EXPECT_EQ(stack.getFrom(stack.enhancedStore(), lockKey(lockNo(6))), lockJson(lockNo(6)));
  stack.legacy().setFailing(true);
  EXPECT_TRUE(stack.run(stack.router().ready())) << "nothing is pinned to legacy any more";
  stack.legacy().setFailing(false);
}

// Atlantis pages a long List while other operations scan too, and a Go client can pause between
// pages. A long scan must not push another scan's cursor out: each scan keeps only the cursor it
// was last given (and the one before, for a retry), not one per page.
TEST(Router, ALongScanDoesNotExpireAnotherScansCursor) {
  RouterStack stack;
  for (int i = 0; i < 600; ++i) ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
  ASSERT_TRUE(stack.move(Phase::kHybrid, 50).applied);  // two owners: scans page a snapshot
  ScanRequest paused{.db = 0, .cursor = 0, .count = 10, .match = "pr*"};
  auto first = stack.run(stack.router().scan(paused));
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  ASSERT_NE(first->next_cursor, 0u);
  paused.cursor = first->next_cursor;
  // Another client lists everything one key per page: far more pages than snapshots kept (256).
  std::set<std::string> listed;
  ScanRequest long_scan{.db = 0, .cursor = 0, .count = 1, .match = "pr*"};
  for (int page = 0; page < 1000; ++page) {
    auto got = stack.run(stack.router().scan(long_scan));
    ASSERT_TRUE(got.isOk()) << got.status().toString();
    listed.insert(got->keys.begin(), got->keys.end());
    long_scan.cursor = got->next_cursor;
    if (long_scan.cursor == 0) break;
  }
  EXPECT_EQ(long_scan.cursor, 0u);
  EXPECT_EQ(listed.size(), 600u);
  // The paused scan resumes where it was, and a retry of its cursor gives the same page.
  auto resumed = stack.run(stack.router().scan(paused));
  ASSERT_TRUE(resumed.isOk()) << resumed.status().toString();
  auto retried = stack.run(stack.router().scan(paused));
  ASSERT_TRUE(retried.isOk()) << retried.status().toString();
  EXPECT_EQ(resumed->keys, retried->keys);
  std::set<std::string> rest(first->keys.begin(), first->keys.end());
  ScanRequest next = paused;
  for (int page = 0; page < 1000 && next.cursor != 0; ++page) {
    auto got = stack.run(stack.router().scan(next));
    ASSERT_TRUE(got.isOk()) << got.status().toString();
    rest.insert(got->keys.begin(), got->keys.end());
    next.cursor = got->next_cursor;
  }
  EXPECT_EQ(rest.size(), 600u);
}

// A scan that LMDB answered page by page goes on when a write to the other store fails between
// two pages (the journal is no longer empty, so the router answers from a snapshot from then
// on): Atlantis's List is paging while enhanced blips in the shadow phase. Every key present
// for the whole scan is listed once. A snapshot cursor the router has let go of is refused.
TEST(Router, AScanTheStoreBeganGoesOnWhenTheJournalFills) {
  RouterStack stack;
  std::set<std::string> held;
  for (int i = 0; i < 60; ++i) {
    ASSERT_EQ(stack.lock(lockNo(i)), PutResult::Outcome::kApplied);
    held.insert(lockKey(lockNo(i)));
  }
  ASSERT_TRUE(stack.move(Phase::kShadow, std::nullopt).applied);
  ASSERT_TRUE(stack.filledWithin());
  ASSERT_EQ(stack.journal().depth(), 0u);

  ScanRequest req{.db = 0, .cursor = 0, .count = 10, .match = "pr*"};
  auto first = stack.run(stack.router().scan(req));
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  ASSERT_NE(first->next_cursor, 0u);
  std::multiset<std::string> listed(first->keys.begin(), first->keys.end());

  stack.enhanced().setFailing(true);  // the next write reaches legacy only, and is journaled
  ASSERT_EQ(stack.lock(lockNo(1000)), PutResult::Outcome::kApplied);
  ASSERT_GT(stack.journal().depth(), 0u);

  req.cursor = first->next_cursor;
  for (int page = 0; page < 1000 && req.cursor != 0; ++page) {
    auto got = stack.run(stack.router().scan(req));
    ASSERT_TRUE(got.isOk()) << "page " << page + 1 << ": " << got.status().toString();
    listed.insert(got->keys.begin(), got->keys.end());
    req.cursor = got->next_cursor;
  }
  EXPECT_EQ(req.cursor, 0u);
  listed.erase(lockKey(lockNo(1000)));  // written during the scan: may or may not be listed
  EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), held);
  EXPECT_EQ(listed.size(), held.size()) << "a key was listed twice";

  // Snapshot pages now: once a client used the cursor after next, the first is let go.
  ScanRequest snap{.db = 0, .cursor = 0, .count = 10, .match = "pr*"};
  auto a = stack.run(stack.router().scan(snap));
  ASSERT_TRUE(a.isOk() && a->next_cursor != 0);
  snap.cursor = a->next_cursor;
  auto b = stack.run(stack.router().scan(snap));
  ASSERT_TRUE(b.isOk() && b->next_cursor != 0);
  snap.cursor = b->next_cursor;
  ASSERT_TRUE(stack.run(stack.router().scan(snap)).isOk());
  snap.cursor = a->next_cursor;
  auto stale = stack.run(stack.router().scan(snap));
  ASSERT_FALSE(stale.isOk());
  EXPECT_EQ(stale.status().message(), "invalid cursor (expired or unknown)");
  stack.enhanced().setFailing(false);
}

}  // namespace
}  // namespace lockshift::testing
