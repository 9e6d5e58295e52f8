// Enhanced records on a real redis-server and a real three-master cluster
// (backends/redis_records.h): values byte for byte, fencing tokens, acquired-at and holder
// fields, the repository and pull indexes kept in step with every write, readers that skip index
// entries the records do not confirm, and scans and counts that see only the records.

#include "backends/redis_records.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "backends/redis_cluster_slots.h"
#include "backends/redis_cluster_store.h"
#include "backends/redis_store.h"
#include "tests/backends/name_index_checks.h"
#include "tests/backends/redis_cluster_test_fixture.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {
namespace {

constexpr std::string_view kPrefix = "ls:";

std::string lockValue(int64_t pull, const std::string& user, const std::string& repo,
                      const std::string& path) {
  return R"({"Project":{"ProjectName":"p","RepoFullName":")" + repo + R"(","Path":")" + path +
         R"("},"Pull":{"Num":)" + std::to_string(pull) + R"(},"User":{"Username":")" + user +
         R"(","Teams":null},"Workspace":"default","Time":"2026-11-22T10:00:00Z"})";
}

std::string lockKey(const std::string& repo, const std::string& path) {
  return "pr/" + repo + "/" + path + "/default/p";
}

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::vector<std::string> keysOf(const Result<std::vector<LockRecord>>& records) {
  std::vector<std::string> keys;
  if (!records.isOk()) {
    keys.push_back("(error: " + records.status().toString() + ")");
    return keys;
  }
  for (const LockRecord& r : *records) keys.push_back(r.key);
  return keys;
}

// The checks every records store must pass, on RedisStore and on RedisClusterStore alike.
class RecordsTest : public RedisClusterStoreTest {
 protected:
  LockStore& single() {
    if (!single_) {
      RedisOptions options = optionsFor(server().port());
      options.records = true;
      options.key_prefix = std::string(kPrefix);
      single_ = open(options);
    }
    return *single_;
  }
  LockStore& clustered() {
    if (!cluster_store_) {
      RedisClusterOptions options = clusterOptions();
      options.records = true;
      cluster_store_ = openCluster(options);
    }
    return *cluster_store_;
  }

  Result<PutResult> lock(LockStore& store, const std::string& repo, const std::string& path,
                         int64_t pull, const std::string& user, bool strict = true) {
    PutRequest request;
    request.key = lockKey(repo, path);
    request.value = lockValue(pull, user, repo, path);
    if (strict) request.strict_owner = parseProjectLock(request.value).value();  // as the proxy sets it
    return await(store.put(request));
  }
  LockRecord record(LockStore& store, const std::string& key) {
    auto r = await(store.getRecord(0, key));
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_TRUE(r.isOk() && r->has_value()) << key;
    return r.isOk() && r->has_value() ? **r : LockRecord{};
  }

  void valuesTokensAndFields(LockStore& store);
  void indexesFollowEveryWrite(LockStore& store);
  void scanAndCountSeeOnlyRecords(LockStore& store);

  std::unique_ptr<RedisStore> single_;
  std::unique_ptr<RedisClusterStore> cluster_store_;
};

void RecordsTest::valuesTokensAndFields(LockStore& store) {
  ASSERT_TRUE(store.hasRecords());
  const std::string repo = "acme/infra";
  const std::string key = lockKey(repo, "vpc");
  const int64_t before = nowMs();
  auto first = lock(store, repo, "vpc", 7, "alice");
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  ASSERT_EQ(first->outcome, PutResult::Outcome::kApplied);
  EXPECT_EQ(*await(store.get(0, key)), lockValue(7, "alice", repo, "vpc"));  // byte for byte
  LockRecord granted = record(store, key);
  EXPECT_EQ(granted.key, key);
  EXPECT_EQ(granted.value, lockValue(7, "alice", repo, "vpc"));
  EXPECT_GT(granted.token, 0u);
  EXPECT_GE(granted.acquired_at_unix_ms, before);
  EXPECT_LE(granted.acquired_at_unix_ms, nowMs());
  EXPECT_EQ(granted.pull_num, 7);
  EXPECT_EQ(granted.user, "alice");
  EXPECT_EQ(granted.repo, repo);

  // The client's retry of the same lock is not a new grant: token and time stay.
  std::this_thread::sleep_for(5ms);
  ASSERT_EQ(lock(store, repo, "vpc", 7, "alice")->outcome, PutResult::Outcome::kApplied);
  LockRecord again = record(store, key);
  EXPECT_EQ(again.token, granted.token);
  EXPECT_EQ(again.acquired_at_unix_ms, granted.acquired_at_unix_ms);

  // A refused rival changes nothing.
  auto refused = lock(store, repo, "vpc", 8, "bob");
  ASSERT_TRUE(refused.isOk());
  EXPECT_EQ(refused->outcome, PutResult::Outcome::kLockedByOther);
  EXPECT_EQ(refused->holder, "pull #7 (alice)");
  EXPECT_EQ(record(store, key).token, granted.token);

  // Every later grant of the key has a greater token: after an unlock, and over another holder.
  ASSERT_EQ(*await(store.deleteIfOwnedByPull(0, key, "7")), lockValue(7, "alice", repo, "vpc"));
  EXPECT_EQ(*await(store.getRecord(0, key)), std::nullopt);
  ASSERT_EQ(lock(store, repo, "vpc", 8, "bob")->outcome, PutResult::Outcome::kApplied);
  LockRecord second = record(store, key);
  EXPECT_GT(second.token, granted.token);
  ASSERT_EQ(lock(store, repo, "vpc", 9, "carol", /*strict=*/false)->outcome,
            PutResult::Outcome::kApplied);
  LockRecord third = record(store, key);
  EXPECT_GT(third.token, second.token);
  EXPECT_EQ(third.pull_num, 9);
  EXPECT_EQ(third.user, "carol");

  // A value that is not a project lock: a record without a holder, a new token per write.
  const std::string command_lock = R"({"LockMetadata":{"UnixTime":1},"CommandName":1})";
  PutRequest plain;
  plain.key = "global/apply/lock";
  plain.value = command_lock;
  ASSERT_TRUE(await(store.put(plain)).isOk());
  LockRecord c1 = record(store, plain.key);
  EXPECT_EQ(c1.value, command_lock);
  EXPECT_EQ(c1.pull_num, std::nullopt);
  EXPECT_EQ(c1.repo, "");
  plain.value = "not json at all";
  ASSERT_TRUE(await(store.put(plain)).isOk());
  EXPECT_GT(record(store, plain.key).token, c1.token);
  EXPECT_EQ(*await(store.get(0, plain.key)), "not json at all");

  // SET ... GET returns the value, not the record; NX on a present key is refused.
  PutRequest swap;
  swap.key = plain.key;
  swap.value = command_lock;
  swap.return_previous = true;
  EXPECT_EQ(await(store.put(swap))->previous, "not json at all");
  swap.condition = PutRequest::Condition::kIfAbsent;
  EXPECT_EQ(await(store.put(swap))->outcome, PutResult::Outcome::kConditionFailed);

  // Atlantis's unlock script keeps its error for a value that is not JSON.
  PutRequest garbage;
  garbage.key = lockKey(repo, "garbage");
  garbage.value = "{not json";
  ASSERT_TRUE(await(store.put(garbage)).isOk());
  auto unreadable = await(store.deleteIfOwnedByPull(0, garbage.key, "1"));
  ASSERT_FALSE(unreadable.isOk());
  EXPECT_EQ(unreadable.status().message(), "failed to deserialize current lock");
  EXPECT_EQ(*await(store.get(0, garbage.key)), "{not json");
}

void RecordsTest::indexesFollowEveryWrite(LockStore& store) {
  // Repository names as Atlantis sees them: GitLab subgroups and Bitbucket Server spaces.
  const std::string a = "acme/group/sub/infra";
  const std::string b = "Acme Team/infra net";
  ASSERT_TRUE(lock(store, a, "one", 1, "alice").isOk());
  ASSERT_TRUE(lock(store, a, "two", 1, "alice").isOk());
  ASSERT_TRUE(lock(store, a, "three", 2, "bob").isOk());
  ASSERT_TRUE(lock(store, b, "one", 1, "carol").isOk());

  EXPECT_EQ(keysOf(await(store.locksByRepo(0, a))),
            (std::vector<std::string>{lockKey(a, "one"), lockKey(a, "three"), lockKey(a, "two")}));
  EXPECT_EQ(keysOf(await(store.locksByPull(0, a, 1))),
            (std::vector<std::string>{lockKey(a, "one"), lockKey(a, "two")}));
  EXPECT_EQ(keysOf(await(store.locksByPull(0, a, 2))),
            (std::vector<std::string>{lockKey(a, "three")}));
  EXPECT_EQ(keysOf(await(store.locksByPull(0, b, 1))), (std::vector<std::string>{lockKey(b, "one")}));
  EXPECT_TRUE(keysOf(await(store.locksByPull(0, b, 2))).empty());
  EXPECT_TRUE(keysOf(await(store.locksByRepo(0, "acme/group"))).empty());  // no prefix matches
  auto listed = await(store.locksByPull(0, a, 2));
  ASSERT_TRUE(listed.isOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].user, "bob");
  EXPECT_EQ((*listed)[0].value, lockValue(2, "bob", a, "three"));

  // A refused rival is not indexed.
  EXPECT_EQ(lock(store, a, "one", 3, "dave")->outcome, PutResult::Outcome::kLockedByOther);
  EXPECT_TRUE(keysOf(await(store.locksByPull(0, a, 3))).empty());

  // A holder change moves the key; unlocks remove it.
  ASSERT_EQ(lock(store, a, "two", 2, "bob", /*strict=*/false)->outcome,
            PutResult::Outcome::kApplied);
  EXPECT_EQ(keysOf(await(store.locksByPull(0, a, 1))), (std::vector<std::string>{lockKey(a, "one")}));
  EXPECT_EQ(keysOf(await(store.locksByPull(0, a, 2))),
            (std::vector<std::string>{lockKey(a, "three"), lockKey(a, "two")}));
  ASSERT_EQ(*await(store.del(0, {lockKey(a, "three"), "no/such/key"})), 1);
  ASSERT_TRUE(await(store.deleteIfOwnedByPull(0, lockKey(a, "one"), "1"))->has_value());
  EXPECT_TRUE(keysOf(await(store.locksByPull(0, a, 1))).empty());
  EXPECT_EQ(keysOf(await(store.locksByRepo(0, a))), (std::vector<std::string>{lockKey(a, "two")}));
  // Overwriting a lock with a value that is not one ends the holder's entry too.
  PutRequest plain;
  plain.key = lockKey(b, "one");
  plain.value = "{}";
  ASSERT_TRUE(await(store.put(plain)).isOk());
  EXPECT_TRUE(keysOf(await(store.locksByRepo(0, b))).empty());
  // Other keyspaces do not exist on Redis.
  EXPECT_FALSE(await(store.locksByRepo(1, a)).isOk());
}

void RecordsTest::scanAndCountSeeOnlyRecords(LockStore& store) {
  // Keys that look like the layout itself must come back as themselves.
  const std::vector<std::string> keys = {"pr/x/}k:odd", "{r1}k:looks-like-a-record", "pr/plain",
                                         "global/apply/lock", "github.com::acme/x::4"};
  for (const std::string& key : keys) {
    PutRequest request;
    request.key = key;
    request.value = "v:" + key;
    ASSERT_TRUE(await(store.put(request)).isOk()) << key;
  }
  ASSERT_TRUE(lock(store, "acme/x", "a", 5, "erin").isOk());
  std::set<std::string> expected(keys.begin(), keys.end());
  expected.insert(lockKey("acme/x", "a"));

  auto scanAll = [&](const std::string& match) {
    std::multiset<std::string> seen;
    uint64_t cursor = 0;
    for (int pages = 0; pages < 10000; ++pages) {
      ScanRequest request;
      request.cursor = cursor;
      request.count = 3;
      request.match = match;
      auto page = await(store.scan(request));
      EXPECT_TRUE(page.isOk()) << page.status().toString();
      if (!page.isOk()) break;
      seen.insert(page->keys.begin(), page->keys.end());
      cursor = page->next_cursor;
      if (cursor == 0) break;
    }
    return std::set<std::string>(seen.begin(), seen.end());
  };
  EXPECT_EQ(scanAll(""), expected);  // no fence, no index, each record once
  std::set<std::string> locks;
  for (const std::string& k : expected) {
    if (k.rfind("pr/", 0) == 0) locks.insert(k);
  }
  EXPECT_EQ(scanAll("pr/*"), locks);
  EXPECT_EQ(*await(store.count(0)), static_cast<int64_t>(expected.size()));
  for (const std::string& key : keys) EXPECT_EQ(*await(store.get(0, key)), "v:" + key);
}

TEST(RedisRecordsLayout, KeysCarryOneTagPerRecordAndPerRepository) {
  const std::string key = "pr/acme/{weird}/path/default/p";
  const std::string record = redis::recordKey("ls:", key);
  EXPECT_EQ(record.rfind("ls:{r", 0), 0u);
  EXPECT_EQ(redis::keyOfRecord("ls:", record), key);
  EXPECT_EQ(redis::keySlot(record), redis::keySlot(redis::fenceKey("ls:", key)));
  EXPECT_EQ(redis::keySlot(redis::repoIndexKey("ls:", "a b/c")),
            redis::keySlot(redis::pullIndexKey("ls:", "a b/c", 12)));
  EXPECT_EQ(redis::keyOfRecord("ls:", redis::fenceKey("ls:", key)), std::nullopt);
  EXPECT_EQ(redis::keyOfRecord("ls:", redis::repoIndexKey("ls:", "a")), std::nullopt);
  EXPECT_EQ(redis::keyOfRecord("other:", record), std::nullopt);
  // A record key of another bucket is not a record (the tag must be the key's own).
  EXPECT_EQ(redis::keyOfRecord("", "{r1}k:" + key).has_value(),
            redis::recordKey("", key) == "{r1}k:" + key);
}

TEST_F(RecordsTest, SingleRedisKeepsValuesTokensAndFields) { valuesTokensAndFields(single()); }
TEST_F(RecordsTest, SingleRedisIndexesFollowEveryWrite) { indexesFollowEveryWrite(single()); }
TEST_F(RecordsTest, SingleRedisScanAndCountSeeOnlyRecords) { scanAndCountSeeOnlyRecords(single()); }
TEST_F(RecordsTest, ClusterKeepsValuesTokensAndFields) { valuesTokensAndFields(clustered()); }
TEST_F(RecordsTest, ClusterIndexesFollowEveryWrite) { indexesFollowEveryWrite(clustered()); }
TEST_F(RecordsTest, ClusterScanAndCountSeeOnlyRecords) { scanAndCountSeeOnlyRecords(clustered()); }

TEST_F(RecordsTest, WireHoldsRecordsAndIndexesNotPlainKeys) {
  LockStore& store = single();
  const std::string repo = "acme/wire";
  const std::string key = lockKey(repo, "a");
  ASSERT_TRUE(lock(store, repo, "a", 4, "fay").isOk());
  RespClient direct(server().port());
  EXPECT_EQ(direct.call({"EXISTS", key}).integer, 0);  // no plain key
  EXPECT_EQ(str(direct.call({"HGET", redis::recordKey(kPrefix, key), "v"})),
            lockValue(4, "fay", repo, "a"));
  EXPECT_EQ(str(direct.call({"HGET", redis::recordKey(kPrefix, key), "pull"})), "4");
  EXPECT_EQ(direct.call({"ZCARD", redis::repoIndexKey(kPrefix, repo)}).integer, 1);
  EXPECT_EQ(direct.call({"ZCARD", redis::pullIndexKey(kPrefix, repo, 4)}).integer, 1);
  ASSERT_EQ(*await(store.del(0, {key})), 1);
  // Empty sets vanish: nothing is left behind but the bucket's fence.
  EXPECT_EQ(direct.call({"EXISTS", redis::repoIndexKey(kPrefix, repo)}).integer, 0);
  EXPECT_EQ(direct.call({"EXISTS", redis::pullIndexKey(kPrefix, repo, 4)}).integer, 0);
  EXPECT_EQ(direct.call({"EXISTS", redis::fenceKey(kPrefix, key)}).integer, 1);
}

// A record that lost its token (a hand repair of the hash, say) is not a grant the holder can
// keep: the holder's next put takes a new token from the fence, above every one given before.
TEST_F(RecordsTest, SingleRedisGivesARecordWithoutATokenANewOne) {
  LockStore& store = single();
  const std::string repo = "acme/tokenless";
  const std::string key = lockKey(repo, "a");
  auto first = lock(store, repo, "a", 5, "dee");
  ASSERT_TRUE(first.isOk()) << first.status().toString();
  const uint64_t token = record(store, key).token;
  ASSERT_GT(token, 0u);

  RespClient direct(server().port());
  ASSERT_EQ(direct.call({"HDEL", redis::recordKey(kPrefix, key), "tok"}).integer, 1);
  ASSERT_EQ(lock(store, repo, "a", 5, "dee")->outcome, PutResult::Outcome::kApplied);
  EXPECT_GT(record(store, key).token, token);
  // With its token back, the same holder's retry keeps it again.
  const uint64_t renewed = record(store, key).token;
  ASSERT_EQ(lock(store, repo, "a", 5, "dee")->outcome, PutResult::Outcome::kApplied);
  EXPECT_EQ(record(store, key).token, renewed);
}

// On a single Redis the put script itself takes a key out of the sets of the holder it replaces
// and drops the holder fields of a value that has none. Readers skip entries the records do not
// confirm, so only the wire shows whether a write left one behind.
TEST_F(RecordsTest, SingleRedisWritesLeaveNoStaleIndexEntriesOrHolderFields) {
  LockStore& store = single();
  const std::string a = "acme/moves";
  const std::string b = "acme/other";
  const std::string key = lockKey(a, "net");
  const std::string record = redis::recordKey(kPrefix, key);
  RespClient direct(server().port());
  auto indexed = [&](const std::string& set) { return direct.call({"ZSCORE", set, key}).type != resp::Type::kNull; };

  ASSERT_EQ(lock(store, a, "net", 1, "ann")->outcome, PutResult::Outcome::kApplied);
  EXPECT_TRUE(indexed(redis::pullIndexKey(kPrefix, a, 1)));
  EXPECT_EQ(str(direct.call({"HGET", record, "pk"})), redis::pullIndexKey(kPrefix, a, 1));

  // Another pull of the same repository takes the key over (a non-strict SET, as Atlantis's own).
  ASSERT_EQ(lock(store, a, "net", 2, "bo", /*strict=*/false)->outcome, PutResult::Outcome::kApplied);
  EXPECT_FALSE(indexed(redis::pullIndexKey(kPrefix, a, 1)));
  EXPECT_TRUE(indexed(redis::pullIndexKey(kPrefix, a, 2)));
  EXPECT_TRUE(indexed(redis::repoIndexKey(kPrefix, a)));
  EXPECT_EQ(str(direct.call({"HGET", record, "pk"})), redis::pullIndexKey(kPrefix, a, 2));
  EXPECT_EQ(str(direct.call({"HGET", record, "user"})), "bo");

  // A value naming another repository moves the key out of both of the old holder's sets.
  PutRequest moved;
  moved.key = key;
  moved.value = lockValue(3, "cy", b, "net");
  ASSERT_EQ(await(store.put(moved))->outcome, PutResult::Outcome::kApplied);
  EXPECT_FALSE(indexed(redis::pullIndexKey(kPrefix, a, 2)));
  EXPECT_FALSE(indexed(redis::repoIndexKey(kPrefix, a)));
  EXPECT_TRUE(indexed(redis::pullIndexKey(kPrefix, b, 3)));
  EXPECT_TRUE(indexed(redis::repoIndexKey(kPrefix, b)));
  EXPECT_EQ(str(direct.call({"HGET", record, "rk"})), redis::repoIndexKey(kPrefix, b));
  EXPECT_EQ(str(direct.call({"HGET", record, "repo"})), b);

  // A value without a holder: no index entry, and none of the holder's fields stay on the record.
  PutRequest plain;
  plain.key = key;
  plain.value = "{}";
  ASSERT_EQ(await(store.put(plain))->outcome, PutResult::Outcome::kApplied);
  EXPECT_FALSE(indexed(redis::pullIndexKey(kPrefix, b, 3)));
  EXPECT_FALSE(indexed(redis::repoIndexKey(kPrefix, b)));
  for (const char* field : {"pull", "repo", "path", "proj", "ws", "user", "rk", "pk"}) {
    EXPECT_EQ(direct.call({"HEXISTS", record, field}).integer, 0) << field;
  }
  EXPECT_EQ(str(direct.call({"HGET", record, "v"})), "{}");
  EXPECT_EQ(RecordsTest::record(store, key).pull_num, std::nullopt);
}

// The same for the writes that end a lock on a single Redis: DEL and Atlantis's unlock script
// take the key out of its holder's sets and out of the name index in the script that removes
// the record. A refused unlock (another pull) changes nothing.
TEST_F(RecordsTest, SingleRedisDeletesAndUnlocksLeaveNoIndexEntries) {
  LockStore& store = single();
  const std::string repo = "acme/ends";
  RespClient direct(server().port());
  auto indexed = [&](const std::string& set, const std::string& key) {
    return direct.call({"ZSCORE", set, key}).type != resp::Type::kNull;
  };
  auto everywhere = [&](const std::string& key, int64_t pull) {
    return std::vector<bool>{indexed(redis::repoIndexKey(kPrefix, repo), key),
                             indexed(redis::pullIndexKey(kPrefix, repo, pull), key),
                             indexed(redis::namesKey(kPrefix), key)};
  };
  const std::vector<bool> all{true, true, true};
  const std::vector<bool> none{false, false, false};

  const std::string deleted = lockKey(repo, "deleted");
  ASSERT_EQ(lock(store, repo, "deleted", 1, "ann")->outcome, PutResult::Outcome::kApplied);
  EXPECT_EQ(everywhere(deleted, 1), all);
  ASSERT_EQ(*await(store.del(0, {deleted})), 1);
  EXPECT_EQ(everywhere(deleted, 1), none);

  const std::string unlocked = lockKey(repo, "unlocked");
  ASSERT_EQ(lock(store, repo, "unlocked", 2, "bo")->outcome, PutResult::Outcome::kApplied);
  ASSERT_FALSE(await(store.deleteIfOwnedByPull(0, unlocked, "3"))->has_value());  // not pull 3's
  EXPECT_EQ(everywhere(unlocked, 2), all);
  ASSERT_TRUE(await(store.deleteIfOwnedByPull(0, unlocked, "2"))->has_value());
  EXPECT_EQ(everywhere(unlocked, 2), none);
}

// On a cluster the index steps run after the record script, in other slots (the two-step protocol
// of redis_records.h): a refused put takes back the entries it added, a grant that replaces a
// holder takes the key out of the old holder's sets, and DEL and unlock take it out of its
// holder's sets and the name index. Readers would skip what is left, so only the wire shows it.
TEST_F(RecordsTest, ClusterWritesLeaveNoStaleIndexEntries) {
  LockStore& store = clustered();
  const std::string repo = "acme/cluster-ends";
  const std::string key = lockKey(repo, "net");
  auto indexed = [&](const std::string& set) {
    return cluster().call(cluster().ownerOf(cluster().keySlot(set)), {"ZSCORE", set, key}).type !=
           resp::Type::kNull;
  };
  const std::string repo_index = redis::repoIndexKey("", repo);
  const std::string names = redis::namesKey("");
  auto pull_index = [&](int64_t pull) { return redis::pullIndexKey("", repo, pull); };

  ASSERT_EQ(lock(store, repo, "net", 1, "ann")->outcome, PutResult::Outcome::kApplied);
  EXPECT_TRUE(indexed(pull_index(1)));
  EXPECT_TRUE(indexed(repo_index));
  EXPECT_TRUE(indexed(names));

  // Refused: pull 2's entries, added before the record script decided, are taken back.
  ASSERT_EQ(lock(store, repo, "net", 2, "bo")->outcome, PutResult::Outcome::kLockedByOther);
  EXPECT_FALSE(indexed(pull_index(2)));
  EXPECT_TRUE(indexed(pull_index(1)));

  // Pull 2 takes the key over (a non-strict SET): pull 1's grant ended.
  ASSERT_EQ(lock(store, repo, "net", 2, "bo", /*strict=*/false)->outcome, PutResult::Outcome::kApplied);
  EXPECT_FALSE(indexed(pull_index(1)));
  EXPECT_TRUE(indexed(pull_index(2)));

  ASSERT_EQ(*await(store.del(0, {key})), 1);
  EXPECT_FALSE(indexed(pull_index(2)));
  EXPECT_FALSE(indexed(repo_index));
  EXPECT_FALSE(indexed(names));

  ASSERT_EQ(lock(store, repo, "net", 3, "cy")->outcome, PutResult::Outcome::kApplied);
  ASSERT_TRUE(await(store.deleteIfOwnedByPull(0, key, "3"))->has_value());
  EXPECT_FALSE(indexed(pull_index(3)));
  EXPECT_FALSE(indexed(repo_index));
  EXPECT_FALSE(indexed(names));
}

TEST_F(RecordsTest, ReadersSkipIndexEntriesTheRecordsDoNotConfirm) {
  LockStore& store = single();
  const std::string repo = "acme/stale";
  ASSERT_TRUE(lock(store, repo, "held", 1, "gus").isOk());
  // What a crash between the index step and the record step leaves: entries for keys whose
  // record is absent or names another holder.
  RespClient direct(server().port());
  ASSERT_TRUE(lock(store, repo, "other", 2, "hal").isOk());
  direct.call({"ZADD", redis::repoIndexKey(kPrefix, repo), "1", lockKey(repo, "ghost")});
  direct.call({"ZADD", redis::pullIndexKey(kPrefix, repo, 1), "1", lockKey(repo, "ghost")});
  direct.call({"ZADD", redis::pullIndexKey(kPrefix, repo, 1), "1", lockKey(repo, "other")});
  EXPECT_EQ(keysOf(await(store.locksByPull(0, repo, 1))),
            (std::vector<std::string>{lockKey(repo, "held")}));
  EXPECT_EQ(keysOf(await(store.locksByRepo(0, repo))),
            (std::vector<std::string>{lockKey(repo, "held"), lockKey(repo, "other")}));
}

// Every records script is sent as EVALSHA; after the server lost them (SCRIPT FLUSH, a restart
// without persistence, a failover) the NOSCRIPT reply is followed by EVAL with the same keys and
// arguments, and the write lands whole: value, holder fields and indexes.
TEST_F(RecordsTest, ScriptsRunAgainAfterTheServerFlushedThem) {
  LockStore& store = single();
  const std::string repo = "acme/flushed";
  const std::string key = lockKey(repo, "a");
  ASSERT_TRUE(lock(store, repo, "a", 3, "ida").isOk());
  RespClient direct(server().port());
  ASSERT_EQ(str(direct.call({"SCRIPT", "FLUSH"})), "OK");

  auto granted = lock(store, repo, "b", 3, "ida");
  ASSERT_TRUE(granted.isOk()) << granted.status().toString();
  EXPECT_EQ(granted->outcome, PutResult::Outcome::kApplied);
  LockRecord b = record(store, lockKey(repo, "b"));
  EXPECT_EQ(b.value, lockValue(3, "ida", repo, "b"));
  EXPECT_EQ(b.pull_num, 3);
  EXPECT_EQ(b.user, "ida");
  EXPECT_EQ(keysOf(await(store.locksByPull(0, repo, 3))),
            (std::vector<std::string>{key, lockKey(repo, "b")}));

  ASSERT_EQ(str(direct.call({"SCRIPT", "FLUSH"})), "OK");
  auto refused = lock(store, repo, "a", 4, "jon");
  ASSERT_TRUE(refused.isOk()) << refused.status().toString();
  EXPECT_EQ(refused->outcome, PutResult::Outcome::kLockedByOther);
  ASSERT_EQ(str(direct.call({"SCRIPT", "FLUSH"})), "OK");
  EXPECT_EQ(*await(store.deleteIfOwnedByPull(0, key, "3")), lockValue(3, "ida", repo, "a"));
  EXPECT_EQ(keysOf(await(store.locksByPull(0, repo, 3))),
            (std::vector<std::string>{lockKey(repo, "b")}));
}

TEST_F(RecordsTest, PlainStoreAnswersUnsupported) {
  auto plain = open(optionsFor(server().port()));
  EXPECT_FALSE(plain->hasRecords());
  auto listed = await(plain->locksByRepo(0, "acme/x"));
  ASSERT_FALSE(listed.isOk());
  EXPECT_EQ(listed.status().code(), ErrorCode::kUnsupported);
}

TEST_F(RecordsTest, SingleRedisNameIndexFollowsEveryWrite) {
  checkNameIndexFollowsWrites(single(), [&](auto op) { return await(std::move(op)); });
}

TEST_F(RecordsTest, ClusterNameIndexFollowsEveryWrite) {
  checkNameIndexFollowsWrites(clustered(), [&](auto op) { return await(std::move(op)); });
}

TEST_F(RecordsTest, NameIndexSkipsEntriesWithoutARecord) {
  LockStore& store = single();
  ASSERT_TRUE(lock(store, "acme/names", "held", 1, "ida").isOk());
  // What a crash between the name step and the record step leaves, or a refused XX put.
  RespClient direct(server().port());
  direct.call({"ZADD", redis::namesKey(kPrefix), "0", lockKey("acme/names", "ghost")});
  PutRequest absent;
  absent.key = lockKey("acme/names", "never");
  absent.value = "v";
  absent.condition = PutRequest::Condition::kIfPresent;
  ASSERT_EQ(await(store.put(absent))->outcome, PutResult::Outcome::kConditionFailed);
  EXPECT_EQ(*await(store.keysWithPrefix(0, "pr/acme/names/")),
            std::vector<std::string>{lockKey("acme/names", "held")});
}

// A store written before the name index existed has neither the index nor its marker: the first
// query builds it from a scan of the records, on one Redis and on a cluster alike.
TEST_F(RecordsTest, FirstQueryBuildsAMissingNameIndex) {
  const std::vector<std::string> held = {lockKey("acme/old", "a"), lockKey("acme/old", "b"),
                                         lockKey("acme/older", "c")};
  for (bool on_cluster : {false, true}) {
    SCOPED_TRACE(on_cluster ? "cluster" : "single redis");
    LockStore& writer = on_cluster ? clustered() : single();
    for (const std::string& key : held) {
      PutRequest request;
      request.key = key;
      request.value = "held";
      ASSERT_TRUE(await(writer.put(request)).isOk());
    }
    PutRequest other;
    other.key = "global/apply/lock";
    other.value = "x";
    ASSERT_TRUE(await(writer.put(other)).isOk());
    const std::string prefix = on_cluster ? "" : std::string(kPrefix);
    for (const std::string& wire : {redis::namesKey(prefix), redis::namesBuiltKey(prefix)}) {
      if (on_cluster) {
        cluster().call(cluster().ownerOf(cluster().keySlot(wire)), {"DEL", wire});
      } else {
        RespClient(server().port()).call({"DEL", wire});
      }
    }
    // A new store, as after an upgrade (a running one remembers the marker).
    std::unique_ptr<LockStore> fresh;
    if (on_cluster) {
      RedisClusterOptions options = clusterOptions();
      options.records = true;
      fresh = openCluster(options);
    } else {
      RedisOptions options = optionsFor(server().port());
      options.records = true;
      options.key_prefix = std::string(kPrefix);
      fresh = open(options);
    }
    EXPECT_EQ(*await(fresh->keysWithPrefix(0, "pr/acme/old")), held);
    EXPECT_EQ(*await(fresh->keysWithPrefix(0, "pr/acme/old/")),
              (std::vector<std::string>{held[0], held[1]}));
    auto marker = on_cluster ? cluster().call(cluster().ownerOf(cluster().keySlot(redis::namesBuiltKey(prefix))),
                                              {"EXISTS", redis::namesBuiltKey(prefix)})
                             : RespClient(server().port()).call({"EXISTS", redis::namesBuiltKey(prefix)});
    EXPECT_EQ(marker.integer, 1);
  }
}

}  // namespace
}  // namespace lockshift::testing
