// LmdbStore's conditional writes: NX/XX, SET ... GET, strict acquire and Atlantis's
// UnlockIfOwnedByPull.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/lmdb_store.h"
#include "tests/backends/lmdb_test_fixture.h"

namespace lockshift::testing {
namespace {

using Condition = PutRequest::Condition;
using Outcome = PutResult::Outcome;

constexpr char kKey[] = "pr/acme/infra/./default/";

LockIdentity holder(int pull, const std::string& user, const std::string& workspace = "default") {
  auto parsed = parseProjectLock(lockJson(pull, user, workspace));
  EXPECT_TRUE(parsed.isOk()) << parsed.status().toString();
  return parsed.isOk() ? parsed.value() : LockIdentity{};
}

PutRequest strictPut(int pull, const std::string& user, const std::string& workspace = "default",
                     const std::string& time = "2026-11-21T10:00:00Z") {
  PutRequest request;
  request.key = kKey;
  request.value = lockJson(pull, user, workspace, time);
  request.strict_owner = holder(pull, user, workspace);
  request.return_previous = true;
  return request;
}

TEST_F(LmdbStoreTest, StrictAcquireOfAFreeKeyApplies) {
  auto result = put(strictPut(12, "alice"));
  ASSERT_TRUE(result.isOk()) << result.status().toString();
  EXPECT_EQ(result->outcome, Outcome::kApplied);
  EXPECT_FALSE(result->previous.has_value());
  EXPECT_EQ(read(kKey), lockJson(12, "alice"));
}

TEST_F(LmdbStoreTest, StrictReacquireBySameHolderApplies) {
  ASSERT_EQ(put(strictPut(12, "alice"))->outcome, Outcome::kApplied);
  // A retried SET, and a later one with a new timestamp, both succeed.
  ASSERT_EQ(put(strictPut(12, "alice"))->outcome, Outcome::kApplied);
  auto again = put(strictPut(12, "alice", "default", "2026-11-21T11:00:00Z"));
  ASSERT_TRUE(again.isOk());
  EXPECT_EQ(again->outcome, Outcome::kApplied);
  EXPECT_EQ(again->previous, lockJson(12, "alice"));
  EXPECT_EQ(read(kKey), lockJson(12, "alice", "default", "2026-11-21T11:00:00Z"));
}

TEST_F(LmdbStoreTest, StrictAcquireHeldByAnotherPullIsRefused) {
  ASSERT_EQ(put(strictPut(12, "alice"))->outcome, Outcome::kApplied);
  auto refused = put(strictPut(13, "bob"));
  ASSERT_TRUE(refused.isOk()) << refused.status().toString();
  EXPECT_EQ(refused->outcome, Outcome::kLockedByOther);
  EXPECT_EQ(refused->holder, "pull #12 (alice)");
  EXPECT_EQ(refused->previous, lockJson(12, "alice"));
  EXPECT_EQ(read(kKey), lockJson(12, "alice"));
}

TEST_F(LmdbStoreTest, StrictAcquireBySamePullForAnotherWorkspaceIsRefused) {
  ASSERT_TRUE(put(kKey, lockJson(12, "alice", "staging")).isOk());
  auto refused = put(strictPut(12, "alice", "default"));
  ASSERT_TRUE(refused.isOk());
  EXPECT_EQ(refused->outcome, Outcome::kLockedByOther);
  EXPECT_EQ(read(kKey), lockJson(12, "alice", "staging"));
}

TEST_F(LmdbStoreTest, StrictAcquireOverAnUnreadableValueIsRefused) {
  for (const std::string existing : {"not json", "{\"Pull\":{}}", ""}) {
    ASSERT_TRUE(put(kKey, existing).isOk());
    auto refused = put(strictPut(12, "alice"));
    ASSERT_TRUE(refused.isOk()) << refused.status().toString();
    EXPECT_EQ(refused->outcome, Outcome::kLockedByOther) << existing;
    EXPECT_EQ(refused->holder, "an unreadable lock value");
    EXPECT_EQ(read(kKey), existing);
  }
}

TEST_F(LmdbStoreTest, PlainPutOverwritesAnotherHolder) {
  ASSERT_TRUE(put(kKey, lockJson(12, "alice")).isOk());
  PutRequest plain = putRequest(kKey, lockJson(13, "bob"));
  plain.return_previous = true;
  auto result = put(plain);
  ASSERT_TRUE(result.isOk());
  EXPECT_EQ(result->outcome, Outcome::kApplied);
  EXPECT_EQ(result->previous, lockJson(12, "alice"));
  EXPECT_EQ(read(kKey), lockJson(13, "bob"));
}

TEST_F(LmdbStoreTest, SetNxWritesOnlyAbsentKeys) {
  PutRequest nx = putRequest("k", "first");
  nx.condition = Condition::kIfAbsent;
  EXPECT_EQ(put(nx)->outcome, Outcome::kApplied);
  nx.value = "second";
  nx.return_previous = true;
  auto refused = put(nx);
  ASSERT_TRUE(refused.isOk());
  EXPECT_EQ(refused->outcome, Outcome::kConditionFailed);
  EXPECT_EQ(refused->previous, "first");
  EXPECT_EQ(read("k"), "first");
}

TEST_F(LmdbStoreTest, SetXxWritesOnlyPresentKeys) {
  PutRequest xx = putRequest("k", "v");
  xx.condition = Condition::kIfPresent;
  EXPECT_EQ(put(xx)->outcome, Outcome::kConditionFailed);
  EXPECT_FALSE(get("k")->has_value());
  EXPECT_EQ(count(), 0);
  ASSERT_TRUE(put("k", "old").isOk());
  xx.return_previous = true;
  auto applied = put(xx);
  ASSERT_TRUE(applied.isOk());
  EXPECT_EQ(applied->outcome, Outcome::kApplied);
  EXPECT_EQ(applied->previous, "old");
  EXPECT_EQ(read("k"), "v");
}

TEST_F(LmdbStoreTest, PreviousIsReportedOnlyWhenAsked) {
  ASSERT_TRUE(put("k", "old").isOk());
  auto quiet = put("k", "new");
  ASSERT_TRUE(quiet.isOk());
  EXPECT_FALSE(quiet->previous.has_value());
  PutRequest asking = putRequest("absent", "v");
  asking.return_previous = true;
  auto absent = put(asking);
  ASSERT_TRUE(absent.isOk());
  EXPECT_FALSE(absent->previous.has_value());
}

TEST_F(LmdbStoreTest, ConcurrentStrictAcquiresGrantTheLockOnce) {
  constexpr int kPulls = 20;
  std::vector<std::optional<Result<PutResult>>> results(kPulls);
  for (int pull = 0; pull < kPulls; ++pull) {
    spawnInto(store_->put(strictPut(100 + pull, "user")), &results[pull]);
  }
  runIo();
  int granted = -1;
  for (int pull = 0; pull < kPulls; ++pull) {
    ASSERT_TRUE(results[pull] && results[pull]->isOk());
    if (results[pull]->value().outcome == Outcome::kApplied) {
      EXPECT_EQ(granted, -1) << "granted twice";
      granted = pull;
    } else {
      EXPECT_EQ(results[pull]->value().outcome, Outcome::kLockedByOther);
    }
  }
  ASSERT_NE(granted, -1);
  EXPECT_EQ(read(kKey), lockJson(100 + granted, "user"));
}

// ---- deleteIfOwnedByPull ----

class LmdbUnlockTest : public LmdbStoreTest {
 protected:
  Result<std::optional<std::string>> unlockIfOwned(std::string pull) {
    return await(store_->deleteIfOwnedByPull(0, kKey, std::move(pull)));
  }
};

TEST_F(LmdbUnlockTest, OwnerPullDeletesAndGetsTheValue) {
  ASSERT_TRUE(put(kKey, lockJson(12, "alice")).isOk());
  auto deleted = unlockIfOwned("12");
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(deleted.value(), lockJson(12, "alice"));
  EXPECT_FALSE(get(kKey)->has_value());
}

TEST_F(LmdbUnlockTest, PullNumbersCompareAsNumbers) {
  ASSERT_TRUE(put(kKey, lockJson(12, "alice")).isOk());
  auto deleted = unlockIfOwned("12.0");
  ASSERT_TRUE(deleted.isOk());
  EXPECT_EQ(deleted.value(), lockJson(12, "alice"));
}

TEST_F(LmdbUnlockTest, OtherPullLeavesTheLock) {
  ASSERT_TRUE(put(kKey, lockJson(12, "alice")).isOk());
  for (const char* pull : {"13", "", "twelve"}) {
    auto kept = unlockIfOwned(pull);
    ASSERT_TRUE(kept.isOk()) << kept.status().toString();
    EXPECT_FALSE(kept->has_value()) << pull;
  }
  EXPECT_EQ(read(kKey), lockJson(12, "alice"));
}

TEST_F(LmdbUnlockTest, NonJsonLockFailsAndChangesNothing) {
  ASSERT_TRUE(put(kKey, "not json at all").isOk());
  auto failed = unlockIfOwned("12");
  ASSERT_FALSE(failed.isOk());
  EXPECT_EQ(failed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(failed.status().message(), "failed to deserialize current lock");
  EXPECT_EQ(read(kKey), "not json at all");
}

TEST_F(LmdbUnlockTest, UnlockOfAbsentKeyIsNothing) {
  auto nothing = unlockIfOwned("12");
  ASSERT_TRUE(nothing.isOk());
  EXPECT_FALSE(nothing->has_value());
  EXPECT_EQ(count(), 0);
}

}  // namespace
}  // namespace lockshift::testing
