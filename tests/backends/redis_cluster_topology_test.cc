// RedisClusterStore when the cluster changes under it: a slot moved to another master (MOVED),
// a slot in the middle of a migration (ASK), a scan across a slot move, a master that stops
// answering (the cluster goes down), bad seed addresses, and close().

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "backends/redis_cluster_store.h"
#include "tests/backends/redis_cluster_test_fixture.h"
#include "tests/support/ports.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {
namespace {

using Clock = std::chrono::steady_clock;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Sends SIGCONT when it goes out of scope (or on resume()), so a failed assertion never leaves
// a node stopped.
class Stopped {
 public:
  explicit Stopped(Process& process) : process_(&process) { process_->signal(SIGSTOP); }
  ~Stopped() { resume(); }
  void resume() {
    if (process_ != nullptr) process_->signal(SIGCONT);
    process_ = nullptr;
  }

 private:
  Process* process_;
};

using RedisClusterTopologyTest = RedisClusterStoreTest;

TEST_F(RedisClusterTopologyTest, FollowsMovedAfterASlotMovesAndRefreshesTheMap) {
  RedisClusterStore& store = clusterStore();
  // Two keys in two different slots of master 0, both moved to master 1.
  std::vector<std::string> keys = keysOn(0, "pr/acme/moved/", 40);
  const std::string first = keys[0];
  std::string second;
  for (const std::string& key : keys) {
    if (redis::keySlot(key) != redis::keySlot(first)) second = key;
  }
  ASSERT_FALSE(second.empty());
  ASSERT_TRUE(putIn(store, first, "one").isOk());
  ASSERT_TRUE(putIn(store, second, "two").isOk());
  cluster().moveSlot(redis::keySlot(first), 1);
  cluster().moveSlot(redis::keySlot(second), 1);
  ASSERT_EQ(cluster().ownerOf(redis::keySlot(first)), 1u);
  ASSERT_EQ(str(cluster().call(1, {"GET", first})), "one");
  const int64_t moved_before = cluster().errorCount(0, "MOVED");

  EXPECT_EQ(readFrom(store, first), "one");  // master 0 answers MOVED, master 1 the value
  EXPECT_EQ(cluster().errorCount(0, "MOVED"), moved_before + 1);
  // The map took the new owner: no more MOVED for that slot.
  for (int i = 0; i < 5; ++i) EXPECT_EQ(readFrom(store, first), "one");
  PutRequest again{.key = first, .value = "one'", .condition = PutRequest::Condition::kIfPresent};
  EXPECT_EQ(await(store.put(again))->outcome, PutResult::Outcome::kApplied);
  // The MOVED also scheduled a full refresh, which learnt of the second slot's move.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(readFrom(store, second), "two");
  EXPECT_EQ(cluster().errorCount(0, "MOVED"), moved_before + 1);
  EXPECT_EQ(str(cluster().call(1, {"GET", first})), "one'");
  EXPECT_EQ(scanAll(store, "pr/acme/moved/*", 100).size(), 2u);
}

TEST_F(RedisClusterTopologyTest, FollowsAskWhileASlotMigrates) {
  RedisClusterStore& store = clusterStore();
  // Keys sharing one slot through a hash tag, on master 0; the slot migrates to master 2.
  std::string tag;
  for (int i = 0; tag.empty(); ++i) {
    std::string candidate = "ask" + std::to_string(i);
    if (cluster().ownerOf(redis::keySlot(candidate)) == 0) tag = candidate;
  }
  const uint16_t slot = redis::keySlot(tag);
  const std::string moved = "pr/{" + tag + "}/moved", stays = "pr/{" + tag + "}/stays",
                    fresh = "pr/{" + tag + "}/fresh";
  const std::string lock = R"({"Project":{"ProjectName":"p","RepoFullName":"r","Path":"."},)"
                           R"("Pull":{"Num":4},"Workspace":"default"})";
  ASSERT_TRUE(putIn(store, moved, lock).isOk());
  ASSERT_TRUE(putIn(store, stays, "stays").isOk());

  // Half set up (migrating on master 0, not importing on master 2), the redirects go round in a
  // circle: master 0 says ASK master 2, which says MOVED master 0. The call gives up clearly.
  ASSERT_TRUE(isOk(cluster().call(
      0, {"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", cluster().nodeId(2)})));
  auto began = Clock::now();
  auto circle = await(store.get(0, fresh));
  EXPECT_LT(Clock::now() - began, 2s);
  EXPECT_EQ(circle.status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(circle.status().message(), "more than 5 redirects"))
      << circle.status().toString();

  cluster().beginMigration(slot, 0, 2);
  cluster().migrateKeys(0, 2, {moved});
  const int64_t asks_before = cluster().errorCount(0, "ASK");

  // On master 2 now: master 0 answers ASK, and ASKING + GET go to master 2.
  EXPECT_EQ(readFrom(store, moved), lock);
  EXPECT_EQ(cluster().errorCount(0, "ASK"), asks_before + 1);
  EXPECT_EQ(readFrom(store, stays), "stays");  // still on master 0: no redirect
  EXPECT_EQ(cluster().errorCount(0, "ASK"), asks_before + 1);
  // A new key of a migrating slot is created on the importing master (the put script, EVALSHA).
  PutRequest create{.key = fresh, .value = "fresh", .condition = PutRequest::Condition::kIfAbsent};
  auto created = await(store.put(create));
  ASSERT_TRUE(created.isOk()) << created.status().toString();
  EXPECT_EQ(created->outcome, PutResult::Outcome::kApplied);
  RespClient importing(cluster().port(2));
  auto seen = importing.pipeline({{"ASKING"}, {"GET", fresh}});
  EXPECT_EQ(str(seen[1]), "fresh");
  EXPECT_EQ(cluster().call(0, {"EXISTS", fresh}).integer, 0);
  // Atlantis's unlock script on the migrated key.
  auto unlocked = await(store.deleteIfOwnedByPull(0, moved, "4"));
  ASSERT_TRUE(unlocked.isOk()) << unlocked.status().toString();
  EXPECT_EQ(*unlocked, lock);
  // ASK does not change the map: the next call still goes to master 0 first.
  EXPECT_EQ(readFrom(store, moved), "(nil)");
  EXPECT_GE(cluster().errorCount(0, "ASK"), asks_before + 4);

  cluster().finishMigration(slot, 0, 2);
  EXPECT_EQ(readFrom(store, stays), "stays");  // MOVED to master 2
  EXPECT_EQ(readFrom(store, fresh), "fresh");
  EXPECT_EQ(str(cluster().call(2, {"GET", stays})), "stays");
}

TEST_F(RedisClusterTopologyTest, ScanFailsClearlyWhenTheSlotMapChangesMidScan) {
  RedisClusterStore& store = clusterStore();
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(putIn(store, "pr/scan/" + std::to_string(i), "v").isOk());
  ScanRequest request{.count = 10, .match = "pr/*"};
  auto page = await(store.scan(request));
  ASSERT_TRUE(page.isOk()) << page.status().toString();
  ASSERT_NE(page->next_cursor, 0u);
  // A slot of the last master in scan order moves to the first one: its keys would be missed.
  const std::vector<std::string> sorted_masters = [&] {
    std::vector<std::string> a = cluster().addresses();
    std::sort(a.begin(), a.end());
    return a;
  }();
  size_t last = 0, first = 0;
  for (size_t i = 0; i < cluster().size(); ++i) {
    if (cluster().address(i) == sorted_masters.back()) last = i;
    if (cluster().address(i) == sorted_masters.front()) first = i;
  }
  const std::string key = keysOn(last, "pr/scan/", 1)[0];
  cluster().moveSlot(redis::keySlot(key), first);

  Status failed;
  request.cursor = page->next_cursor;
  std::map<std::string, int> rest;
  for (int i = 0; i < 1000 && failed.isOk(); ++i) {
    auto next = await(store.scan(request));
    if (!next.isOk()) {
      failed = next.status();
      break;
    }
    request.cursor = next->next_cursor;
    if (request.cursor == 0) break;
  }
  EXPECT_EQ(failed.code(), ErrorCode::kUnavailable) << "the scan completed as if nothing moved";
  EXPECT_TRUE(contains(failed.message(), "slot map changed during the scan")) << failed.toString();
  // A new scan sees every key once.
  auto all = scanAll(store, "pr/scan/*", 10);
  EXPECT_EQ(all.size(), 300u);
  for (const auto& [k, times] : all) EXPECT_EQ(times, 1) << k;
}

TEST_F(RedisClusterTopologyTest, ClusterDownIsAClearErrorWithinTheCommandTimeout) {
  RedisClusterOptions options = clusterOptions();
  options.command_timeout = 1000ms;
  auto store = openCluster(options);
  const std::string on_stopped = keysOn(0, "pr/down/", 1)[0];
  const std::string on_live = keysOn(1, "pr/down/", 1)[0];
  ASSERT_TRUE(putIn(*store, on_stopped, "a").isOk());
  ASSERT_TRUE(putIn(*store, on_live, "b").isOk());
  // Within the command timeout, with a margin for a busy machine.
  const auto kBound = options.command_timeout + 700ms;

  Stopped stopped(cluster().process(0));
  auto began = Clock::now();
  auto hung = await(store->get(0, on_stopped));
  EXPECT_LT(Clock::now() - began, kBound);
  ASSERT_FALSE(hung.isOk());
  EXPECT_TRUE(hung.status().code() == ErrorCode::kTimeout ||
              hung.status().code() == ErrorCode::kUnavailable)
      << hung.status().toString();
  EXPECT_TRUE(contains(hung.status().message(), cluster().address(0))) << hung.status().toString();

  // Once the other masters mark it failed, the whole cluster refuses: CLUSTERDOWN.
  Status down;
  bool refused = eventually(
      [&] {
        auto t = Clock::now();
        auto r = await(store->get(0, on_live));
        EXPECT_LT(Clock::now() - t, kBound);
        down = r.status();
        return !r.isOk() && contains(down.message(), "redis cluster is down");
      },
      20s);
  EXPECT_TRUE(refused) << down.toString();
  EXPECT_EQ(down.code(), ErrorCode::kUnavailable) << down.toString();
  EXPECT_TRUE(contains(down.message(), "CLUSTERDOWN")) << down.toString();
  EXPECT_FALSE(await(store->ping()).isOk());

  stopped.resume();
  Status last;
  EXPECT_TRUE(eventually(
      [&] {
        last = await(store->ping());
        return last.isOk() && readFrom(*store, on_live) == "b" &&
               readFrom(*store, on_stopped) == "a";
      },
      30s))
      << last.toString();
}

TEST_F(RedisClusterTopologyTest, BadSeedAddressesGiveClearErrors) {
  RedisServer plain;  // not in cluster mode
  const uint16_t closed_port = freeLoopbackPort();
  struct Case {
    std::vector<std::string> seeds;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {{"nohost"}, "invalid redis address 'nohost'"},
      {{"127.0.0.1:" + std::to_string(closed_port)}, "cannot connect"},
      {{"127.0.0.1:" + std::to_string(plain.port())}, "cluster support disabled"},
      {{}, "no seed addresses"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    RedisClusterOptions options;
    options.addresses = c.seeds;
    options.connect_timeout = 500ms;
    options.command_timeout = 2s;
    auto store = openCluster(options, false);
    auto began = Clock::now();
    auto result = await(store->get(0, "k"));
    EXPECT_LT(Clock::now() - began, options.command_timeout + 700ms);
    ASSERT_FALSE(result.isOk());
    EXPECT_EQ(result.status().code(), ErrorCode::kUnavailable);
    EXPECT_TRUE(contains(result.status().message(), c.expected)) << result.status().toString();
    EXPECT_TRUE(contains(result.status().message(), "redis cluster")) << result.status().toString();
    Status ping = await(store->ping());
    EXPECT_TRUE(contains(ping.message(), c.expected)) << ping.toString();
  }
  // One dead seed does not matter when another answers.
  RedisClusterOptions options = clusterOptions();
  options.addresses = {"127.0.0.1:" + std::to_string(closed_port), cluster().address(2)};
  auto store = openCluster(options);
  ASSERT_TRUE(putIn(*store, "pr/seeded", "ok").isOk());
  EXPECT_EQ(readFrom(*store, "pr/seeded"), "ok");
}

TEST_F(RedisClusterTopologyTest, CloseFailsLaterCallsAndLeavesNoWork) {
  RedisClusterOptions options = clusterOptions();
  options.refresh_interval = 50ms;  // the periodic refresh must stop too
  auto store = openCluster(options);
  ASSERT_TRUE(putIn(*store, "pr/closing", "v").isOk());
  store->close();
  auto after = await(store->get(0, "pr/closing"));
  EXPECT_EQ(after.status().code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(after.status().message(), "closed")) << after.status().toString();
  EXPECT_EQ(await(store->ping()).code(), ErrorCode::kUnavailable);
  store->close();  // twice is fine
  // The fixture's destructor checks that the io_context then runs out of work.
}

}  // namespace
}  // namespace lockshift::testing
