// RedisClusterStore against a real three-master cluster: key slots against CLUSTER KEYSLOT,
// every operation on keys of every master, scans and counts across the masters, the key prefix.
// Topology changes, outages and bad seeds are in redis_cluster_topology_test.cc.

#include "backends/redis_cluster_store.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/lock_json.h"
#include "proxy/atlantis_script.h"
#include "tests/backends/redis_cluster_test_fixture.h"
#include "tests/support/process.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {
namespace {

std::string lockValue(int64_t pull, const std::string& user, const std::string& path = "infra") {
  return R"({"Project":{"ProjectName":"p","RepoFullName":"acme/repo","Path":")" + path +
         R"("},"Pull":{"Num":)" + std::to_string(pull) + R"(},"User":{"Username":")" + user +
         R"("},"Workspace":"default","Time":"2025-01-01T00:00:00Z"})";
}

// As the proxy sets PutRequest::strict_owner: what parseProjectLock() reads from the value.
LockIdentity ownerOf(const std::string& value) { return parseProjectLock(value).value(); }

using RedisClusterBasicTest = RedisClusterStoreTest;

TEST_F(RedisClusterBasicTest, KeySlotMatchesClusterKeyslot) {
  std::vector<std::string> keys = {"",
                                   "foo",
                                   "bar",
                                   "123456789",
                                   "{user1000}.following",
                                   "foo{}{bar}",
                                   "foo{{bar}}zap",
                                   "foo{bar}{zap}",
                                   "{",
                                   "}",
                                   "{}",
                                   "}{",
                                   "{a",
                                   "a}",
                                   "a}b{c}",
                                   "{{}}",
                                   "pr/acme/infra/./default/p",
                                   "pr/group/sub group/repo/a b/ws/",
                                   "global/apply/lock",
                                   "github.com::acme/infra::12",
                                   std::string("nul\0{x}\r\n", 9),
                                   "pr/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x94\x92"};
  std::mt19937 rng(7);
  const std::string alphabet("ab{}/\0\xff:.", 9);
  for (int i = 0; i < 1000; ++i) {
    std::string key;
    const size_t length = rng() % 24;
    for (size_t j = 0; j < length; ++j) key.push_back(alphabet[rng() % alphabet.size()]);
    keys.push_back(key);
  }
  std::vector<std::vector<std::string>> commands;
  for (const std::string& key : keys) commands.push_back({"CLUSTER", "KEYSLOT", key});
  RespClient raw(cluster().port(0));
  std::vector<resp::Value> slots = raw.pipeline(commands);
  ASSERT_EQ(slots.size(), keys.size());
  int checked = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(slots[i].type, resp::Type::kInteger) << slots[i].str;
    EXPECT_EQ(redis::keySlot(keys[i]), slots[i].integer) << "key #" << i << " '" << keys[i] << "'";
    ++checked;
  }
  EXPECT_EQ(checked, 1022);
  EXPECT_EQ(redis::keySlot("foo"), 12182);  // as CLUSTER KEYSLOT answers
  EXPECT_EQ(redis::keySlot("bar"), 5061);
}

TEST_F(RedisClusterBasicTest, EveryOperationOnKeysOfEveryMaster) {
  RedisClusterStore& store = clusterStore();
  EXPECT_EQ(store.name(), "redis-cluster");
  EXPECT_EQ(store.databases(), 1);
  for (size_t node = 0; node < RedisCluster::kMasters; ++node) {
    SCOPED_TRACE("master " + std::to_string(node));
    const std::vector<std::string> keys =
        keysOn(node, "pr/acme/repo/m" + std::to_string(node) + "/", 4);
    const std::string& key = keys[0];
    // Plain put, get, SET ... GET.
    EXPECT_EQ(readFrom(store, key), "(nil)");
    ASSERT_TRUE(putIn(store, key, "v1").isOk());
    EXPECT_EQ(readFrom(store, key), "v1");
    EXPECT_EQ(str(cluster().call(node, {"GET", key})), "v1");  // on that very master
    PutRequest swap{.key = key, .value = "v2", .return_previous = true};
    auto swapped = await(store.put(swap));
    ASSERT_TRUE(swapped.isOk()) << swapped.status().toString();
    EXPECT_EQ(swapped->previous, "v1");
    // NX and XX, through the script.
    PutRequest nx{.key = key, .value = "nx", .condition = PutRequest::Condition::kIfAbsent};
    EXPECT_EQ(await(store.put(nx))->outcome, PutResult::Outcome::kConditionFailed);
    PutRequest xx{.key = keys[1], .value = "xx", .condition = PutRequest::Condition::kIfPresent};
    EXPECT_EQ(await(store.put(xx))->outcome, PutResult::Outcome::kConditionFailed);
    nx.key = keys[1];
    EXPECT_EQ(await(store.put(nx))->outcome, PutResult::Outcome::kApplied);
    EXPECT_EQ(readFrom(store, keys[1]), "nx");
    // Strict acquire: free, same holder again, another pull refused.
    const std::string lock_key = keys[2];
    PutRequest acquire{.key = lock_key, .value = lockValue(7, "alice"), .strict_owner = ownerOf(lockValue(7, "alice"))};
    EXPECT_EQ(await(store.put(acquire))->outcome, PutResult::Outcome::kApplied);
    EXPECT_EQ(await(store.put(acquire))->outcome, PutResult::Outcome::kApplied);
    PutRequest rival{.key = lock_key, .value = lockValue(8, "bob"), .strict_owner = ownerOf(lockValue(8, "bob"))};
    auto refused = await(store.put(rival));
    ASSERT_TRUE(refused.isOk()) << refused.status().toString();
    EXPECT_EQ(refused->outcome, PutResult::Outcome::kLockedByOther);
    EXPECT_EQ(refused->holder, "pull #7 (alice)");
    // Atlantis's unlock script: another pull keeps it, the owner deletes it.
    auto kept = await(store.deleteIfOwnedByPull(0, lock_key, "8"));
    ASSERT_TRUE(kept.isOk()) << kept.status().toString();
    EXPECT_EQ(*kept, std::nullopt);
    auto unlocked = await(store.deleteIfOwnedByPull(0, lock_key, "7"));
    ASSERT_TRUE(unlocked.isOk()) << unlocked.status().toString();
    EXPECT_EQ(*unlocked, lockValue(7, "alice"));
    EXPECT_EQ(readFrom(store, lock_key), "(nil)");
    ASSERT_TRUE(putIn(store, keys[3], "not json").isOk());
    auto not_json = await(store.deleteIfOwnedByPull(0, keys[3], "1"));
    EXPECT_EQ(not_json.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(not_json.status().message(), "failed to deserialize current lock");
  }
  // One DEL over keys of all three masters (split per slot), absent keys included.
  std::vector<std::string> all;
  for (size_t node = 0; node < RedisCluster::kMasters; ++node) {
    for (const std::string& key : keysOn(node, "pr/acme/repo/m" + std::to_string(node) + "/", 2)) {
      all.push_back(key);
    }
    all.push_back("absent/" + std::to_string(node));
  }
  auto deleted = await(store.del(0, all));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(*deleted, 6);
  for (const std::string& key : all) EXPECT_EQ(readFrom(store, key), "(nil)") << key;
  EXPECT_EQ(*await(store.del(0, {})), 0);
  // Only db 0 exists.
  EXPECT_EQ(await(store.get(1, "k")).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(await(store.count(1)).status().message(), "DB index is out of range");
  // Error replies become statuses naming the cluster.
  ASSERT_EQ(
      cluster().call(cluster().ownerOf(redis::keySlot("list")), {"LPUSH", "list", "x"}).integer, 1);
  auto wrong = await(store.get(0, "list"));
  EXPECT_EQ(wrong.status().code(), ErrorCode::kIoError);
  EXPECT_NE(wrong.status().message().find("redis cluster: WRONGTYPE"), std::string::npos)
      << wrong.status().toString();
  EXPECT_TRUE(await(store.ping()).isOk());
}

TEST_F(RedisClusterBasicTest, ScanReturnsEveryKeyOnceAcrossMastersAndCountSums) {
  RedisClusterStore& store = clusterStore();
  constexpr int kLocks = 2000;
  std::vector<std::vector<std::string>> writes;
  for (int i = 0; i < kLocks; ++i)
    writes.push_back({"pr/acme/repo/" + std::to_string(i) + "/default/"});
  for (int i = 0; i < 50; ++i) writes.push_back({"github.com::acme/repo::" + std::to_string(i)});
  // Written through the store, 64 at a time in flight.
  for (size_t i = 0; i < writes.size(); i += 64) {
    std::vector<std::future<std::optional<Result<PutResult>>>> futures;
    for (size_t j = i; j < std::min(writes.size(), i + 64); ++j) {
      futures.push_back(start(store.put(PutRequest{.key = writes[j][0], .value = "v"})));
    }
    for (auto& future : futures) ASSERT_TRUE(collect(future).isOk());
  }
  std::set<size_t> used;
  for (size_t node = 0; node < RedisCluster::kMasters; ++node) {
    if (cluster().call(node, {"DBSIZE"}).integer > 0) used.insert(node);
  }
  EXPECT_EQ(used.size(), RedisCluster::kMasters) << "the keys must span every master";

  auto locks = scanAll(store, "pr/*", 50);
  EXPECT_EQ(locks.size(), static_cast<size_t>(kLocks));
  for (const auto& [key, times] : locks) EXPECT_EQ(times, 1) << key;
  auto everything = scanAll(store, "", 1000);
  EXPECT_EQ(everything.size(), static_cast<size_t>(kLocks + 50));
  auto some = scanAll(store, "pr/acme/repo/1?/*", 3);  // pr/acme/repo/10/ .. 19/
  EXPECT_EQ(some.size(), 10u);
  auto none = scanAll(store, "nothing*", 10);
  EXPECT_TRUE(none.empty());
  auto count = await(store.count(0));
  ASSERT_TRUE(count.isOk()) << count.status().toString();
  EXPECT_EQ(*count, kLocks + 50);

  ScanRequest bad{.cursor = uint64_t{1} << 63};
  EXPECT_EQ(await(store.scan(bad)).status().code(), ErrorCode::kInvalidArgument);
  bad.cursor = redis::ClusterCursor{0, 1000, 0}.encode();  // no master 1000 (or another map)
  EXPECT_FALSE(await(store.scan(bad)).isOk());
}

TEST_F(RedisClusterBasicTest, KeyPrefixIsAddedOnTheWireAndCountedByScan) {
  RedisClusterOptions options = clusterOptions();
  options.key_prefix = "ls[1]*";
  auto prefixed = openCluster(options);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(putIn(*prefixed, "pr/k" + std::to_string(i), "v" + std::to_string(i)).isOk());
  }
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE(putIn(clusterStore(), "pr/foreign" + std::to_string(i), "f").isOk());
  // The slot is the prefixed key's.
  const std::string wire_key = "ls[1]*pr/k7";
  EXPECT_EQ(str(cluster().call(cluster().ownerOf(redis::keySlot(wire_key)), {"GET", wire_key})),
            "v7");
  EXPECT_EQ(readFrom(*prefixed, "pr/k7"), "v7");
  EXPECT_EQ(readFrom(*prefixed, "pr/foreign1"), "(nil)");

  auto all = scanAll(*prefixed, "", 20);
  EXPECT_EQ(all.size(), 300u);
  for (const auto& [key, times] : all) {
    EXPECT_EQ(key.rfind("pr/k", 0), 0u) << key;
    EXPECT_EQ(times, 1) << key;
  }
  EXPECT_EQ(scanAll(*prefixed, "pr/k1?", 20).size(), 10u);
  EXPECT_EQ(*await(prefixed->count(0)), 300);
  EXPECT_EQ(*await(clusterStore().count(0)), 340);
  EXPECT_EQ(*await(prefixed->del(0, {"pr/k1", "pr/k2", "pr/foreign1"})), 2);
  EXPECT_EQ(readFrom(clusterStore(), "pr/foreign1"), "f");
}

// Every node's connections read the password file when they connect, so a password rotated on
// every node and in the file is used by the connections that follow, with no new store.
TEST_F(RedisClusterBasicTest, ARotatedPasswordFileIsUsedOnEveryNode) {
  std::vector<std::string> keys;
  for (size_t node = 0; node < cluster().size(); ++node) keys.push_back(keysOn(node, "secured-", 1).at(0));
  // As the test's own connections to the nodes must AUTH from now on: every node, one command.
  auto onEveryNode = [&](const std::string& auth, const std::vector<std::string>& command) {
    for (size_t node = 0; node < cluster().size(); ++node) {
      RespClient raw(cluster().port(node));
      if (!auth.empty()) {
        EXPECT_TRUE(isOk(raw.call({"AUTH", auth})));
      }
      raw.call(command);
    }
  };
  onEveryNode("", {"CONFIG", "SET", "requirepass", "first"});
  TempDir dir;
  const std::string file = dir.file("cluster-password");
  writeFile(file, "first\n");
  RedisClusterOptions options = clusterOptions();
  options.password_file = file;
  options.backoff_initial = 10ms;
  options.backoff_max = 50ms;
  auto store = openCluster(options);
  for (const std::string& key : keys) EXPECT_TRUE(putIn(*store, key, "first").isOk()) << key;

  onEveryNode("first", {"CONFIG", "SET", "requirepass", "second"});
  writeFile(file, "second\n");
  onEveryNode("second", {"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
  for (const std::string& key : keys) {
    Status last;
    EXPECT_TRUE(eventually([&] { return (last = putIn(*store, key, "second").status()).isOk(); }))
        << key << ": " << last.toString();
    EXPECT_EQ(readFrom(*store, key), "second");
  }
}

}  // namespace
}  // namespace lockshift::testing
