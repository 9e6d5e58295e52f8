// RedisStore's atomic lock writes on a real redis-server: strict acquire under concurrency, the
// scripts loaded by the handshake, and the EVAL fallback after the server lost them.

#include <gtest/gtest.h>

#include <future>
#include <optional>
#include <string>
#include <vector>

#include "backends/redis_scripts.h"
#include "backends/redis_store.h"
#include "proxy/atlantis_script.h"
#include "tests/backends/lmdb_test_fixture.h"
#include "tests/backends/redis_test_fixture.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {
namespace {

using Outcome = PutResult::Outcome;

constexpr char kKey[] = "pr/acme/infra/./default/";

PutRequest strictPut(int pull, const std::string& user) {
  PutRequest request = putRequest(kKey, lockJson(pull, user));
  request.strict_owner = parseProjectLock(request.value).value();
  request.return_previous = true;
  return request;
}

// How often the server ran `command` (from INFO commandstats).
int64_t calls(RespClient& raw, const std::string& command) {
  std::string info = str(raw.call({"INFO", "commandstats"}));
  std::string field = "cmdstat_" + command + ":calls=";
  size_t at = info.find(field);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
}

class RedisLocksTest : public RedisStoreTest {};

TEST_F(RedisLocksTest, StrictAcquireRefusesAnotherPullAndNamesTheHolder) {
  auto first = await(store().put(strictPut(12, "alice")));
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  EXPECT_EQ(first->outcome, Outcome::kApplied);
  auto refused = await(store().put(strictPut(13, "bob")));
  ASSERT_TRUE(refused.isOk()) << refused.status().toString();
  EXPECT_EQ(refused->outcome, Outcome::kLockedByOther);
  EXPECT_EQ(refused->holder, "pull #12 (alice)");
  EXPECT_EQ(refused->previous, lockJson(12, "alice"));
  auto again = await(store().put(strictPut(12, "alice")));
  EXPECT_EQ(again->outcome, Outcome::kApplied);
  EXPECT_EQ(read(kKey), lockJson(12, "alice"));
}

// Both ways a strict acquire runs: the script alone (SET ... GET) and SET NX first (TryLock).
TEST_F(RedisLocksTest, ConcurrentStrictAcquiresGrantTheLockOnce) {
  RedisOptions options = optionsFor(server().port());
  options.pool_size = 4;
  auto pooled = open(options);
  RespClient raw(server().port());
  constexpr int kPulls = 20;
  for (bool return_previous : {true, false}) {
    SCOPED_TRACE(return_previous ? "script" : "SET NX first");
    raw.call({"DEL", kKey});
    std::vector<std::future<std::optional<Result<PutResult>>>> futures;
    for (int pull = 0; pull < kPulls; ++pull) {
      PutRequest request = strictPut(100 + pull, "user" + std::to_string(pull));
      request.return_previous = return_previous;
      futures.push_back(start(pooled->put(std::move(request))));
    }
    int granted = -1;
    for (int pull = 0; pull < kPulls; ++pull) {
      Result<PutResult> result = collect(futures[pull]);
      ASSERT_TRUE(result.isOk()) << result.status().toString();
      if (result->outcome == Outcome::kApplied) {
        EXPECT_EQ(granted, -1) << "granted twice";
        granted = pull;
      } else {
        EXPECT_EQ(result->outcome, Outcome::kLockedByOther);
      }
    }
    ASSERT_NE(granted, -1);
    std::string winner = "user" + std::to_string(granted);
    EXPECT_EQ(read(kKey), lockJson(100 + granted, winner));
    auto late = await(pooled->put(strictPut(999, "late")));
    EXPECT_EQ(late->holder, "pull #" + std::to_string(100 + granted) + " (" + winner + ")");
  }
}

// TryLock on a free key is one SET NX; the script runs only when the key is present, and
// decides the same way whichever path a request takes.
TEST_F(RedisLocksTest, AFreeKeyIsTakenWithoutTheScript) {
  store();
  RespClient raw(server().port());
  const int64_t scripts = calls(raw, "evalsha") + calls(raw, "eval");
  PutRequest alice = strictPut(12, "alice");
  alice.return_previous = false;
  auto taken = await(store().put(alice));
  ASSERT_TRUE(taken.isOk()) << taken.status().toString();
  EXPECT_EQ(taken->outcome, Outcome::kApplied);
  EXPECT_EQ(calls(raw, "evalsha") + calls(raw, "eval"), scripts);
  EXPECT_EQ(read(kKey), lockJson(12, "alice"));

  PutRequest bob = strictPut(13, "bob");
  bob.return_previous = false;
  auto refused = await(store().put(bob));
  ASSERT_TRUE(refused.isOk()) << refused.status().toString();
  EXPECT_EQ(refused->outcome, Outcome::kLockedByOther);
  EXPECT_EQ(refused->holder, "pull #12 (alice)");
  EXPECT_EQ(calls(raw, "evalsha") + calls(raw, "eval"), scripts + 1);
  auto again = await(store().put(alice));  // the holder itself: present, so the script; granted
  ASSERT_TRUE(again.isOk()) << again.status().toString();
  EXPECT_EQ(again->outcome, Outcome::kApplied);
  EXPECT_EQ(read(kKey), lockJson(12, "alice"));
}

TEST_F(RedisLocksTest, HandshakeLoadsBothScripts) {
  store();  // connected
  RespClient raw(server().port());
  resp::Value exists = raw.call(
      {"SCRIPT", "EXISTS", redis::putScriptSha1(), std::string(kAtlantisUnlockScriptSha1)});
  ASSERT_EQ(exists.elements.size(), 2u);
  EXPECT_EQ(exists.elements[0].integer, 1);
  EXPECT_EQ(exists.elements[1].integer, 1);
}

TEST_F(RedisLocksTest, ScriptsWorkAfterTheServerFlushedThem) {
  store();
  RespClient raw(server().port());
  ASSERT_TRUE(isOk(raw.call({"SCRIPT", "FLUSH"})));
  const int64_t evals = calls(raw, "eval");

  auto acquired = await(store().put(strictPut(12, "alice")));
  ASSERT_TRUE(acquired.isOk()) << acquired.status().toString();
  EXPECT_EQ(acquired->outcome, Outcome::kApplied);
  EXPECT_EQ(calls(raw, "eval"), evals + 1);  // EVALSHA got NOSCRIPT, EVAL ran it
  auto refused = await(store().put(strictPut(13, "bob")));
  EXPECT_EQ(refused->outcome, Outcome::kLockedByOther);
  EXPECT_EQ(calls(raw, "eval"), evals + 1);  // EVAL cached it: EVALSHA works again

  ASSERT_TRUE(isOk(raw.call({"SCRIPT", "FLUSH"})));
  auto unlocked = await(store().deleteIfOwnedByPull(0, kKey, "12"));
  ASSERT_TRUE(unlocked.isOk()) << unlocked.status().toString();
  EXPECT_EQ(unlocked.value(), lockJson(12, "alice"));
  EXPECT_EQ(read(kKey), "(nil)");
}

TEST_F(RedisLocksTest, UnlockKeepsLocksOfOtherPullsAndRejectsNonJson) {
  ASSERT_TRUE(put(kKey, lockJson(12, "alice")).isOk());
  auto kept = await(store().deleteIfOwnedByPull(0, kKey, "13"));
  ASSERT_TRUE(kept.isOk());
  EXPECT_FALSE(kept->has_value());
  EXPECT_EQ(read(kKey), lockJson(12, "alice"));

  ASSERT_TRUE(put(kKey, "not json").isOk());
  auto failed = await(store().deleteIfOwnedByPull(0, kKey, "12"));
  ASSERT_FALSE(failed.isOk());
  EXPECT_EQ(failed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(failed.status().message(), "failed to deserialize current lock");
  EXPECT_EQ(read(kKey), "not json");

  auto absent = await(store().deleteIfOwnedByPull(0, "pr/absent", "12"));
  ASSERT_TRUE(absent.isOk());
  EXPECT_FALSE(absent->has_value());
}

}  // namespace
}  // namespace lockshift::testing
