// Stress: 32 Atlantis clients race TryLock/Unlock on 200 keys through lockshift while the split
// moves 0 -> 10 -> 50 -> 90 -> 100 -> rollback -> 50, then the phase shadow -> enhanced-only ->
// shadow -> hybrid, a move every few hundred milliseconds, for 30 s,
// with two real redis-server stores; and again for 15 s with the enhanced store on a three-master
// Redis Cluster. A shared ledger catches any double grant (promise 1) and any lost lock
// (promise 2); at the end both stores hold the same keys and values.

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "proxy/atlantis_script.h"
#include "tests/support/atlantis.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

constexpr int kClients = 32;
// Every error a client sees fails these tests, and they run beside other heavy tests on two
// cores: once, a reply took longer than the usual 500 ms (the test is about grants, not speed).
constexpr std::string_view kCommandTimeout = "3s";
constexpr int kKeys = 200;

// What the racing clients saw, shared by them.
struct Tally {
  std::atomic<int> double_grants{0}, lost_locks{0}, grants{0}, refusals{0}, errors{0};
  std::mutex mu;
  std::vector<std::string> examples;  // GUARDED_BY(mu): the first few errors and lost locks

  void example(std::string what) {
    std::lock_guard lock(mu);
    if (examples.size() < 10) examples.push_back(std::move(what));
  }
  // What every race must end with: no double grant, no lost lock, no error, and more than
  // `min_grants` grants.
  void expectClean(int min_grants) {
    std::string seen;
    {
      std::lock_guard lock(mu);
      for (const std::string& e : examples) seen += "\n  " + e;
    }
    EXPECT_EQ(double_grants.load(), 0);
    EXPECT_EQ(lost_locks.load(), 0) << seen;
    EXPECT_EQ(errors.load(), 0) << seen;
    EXPECT_GT(grants.load(), min_grants);
  }
};

// One Atlantis TryLock of `l` (whose pull is the client's own), then, if granted, a hold of up
// to `max_hold_us` and Atlantis's Unlock, checked against the ledger entry `held` (0 = free, else
// the holding pull) shared by every client racing for the key.
void lockCycle(RespClient& c, AtlantisClient& a, const LockSpec& l, std::atomic<int>& held, std::mt19937& rng,
               int max_hold_us, Tally& t) {
  try {
    if (!a.tryLock(l).first) {
      t.refusals.fetch_add(1);
      return;
    }
  } catch (const AtlantisError& e) {
    if (std::string(e.what()).find("LOCKED") == std::string::npos) {
      t.errors.fetch_add(1);
      t.example("TryLock " + lockKey(l) + ": " + e.what());
    } else {
      t.refusals.fetch_add(1);
    }
    return;
  }
  t.grants.fetch_add(1);
  int expected = 0;
  if (!held.compare_exchange_strong(expected, l.pull)) t.double_grants.fetch_add(1);
  std::this_thread::sleep_for(std::chrono::microseconds(rng() % max_hold_us));
  if (resp::Value now = c.call({"get", lockKey(l)}); now.str != lockJson(l)) {
    t.lost_locks.fetch_add(1);
    t.example("GET " + lockKey(l) + " after the grant: " + now.str);
  }
  held.store(0);  // released in the ledger before the store: a new holder never overlaps
  resp::Value v = c.call({"eval", std::string(kAtlantisUnlockScript), "1", lockKey(l), std::to_string(l.pull)});
  if (v.type != resp::Type::kBulkString) {
    t.lost_locks.fetch_add(1);
    t.example("unlock " + lockKey(l) + ": " + v.str);
  }
}

// The stress body: `enhanced_section` is the [enhanced] config, `enhanced_ports` the servers that
// hold its keys, `duration` how long the split keeps moving, `threads` lockshift's network threads.
void stressWhileTheSplitMoves(const std::string& enhanced_section, const std::vector<uint16_t>& enhanced_ports,
                              std::chrono::seconds duration, int threads = 2) {
  RedisServer legacy;
  LockshiftServer ls(LockshiftOptions{.threads = threads,
                                      .legacy_section = redisSection(legacy.port(), kCommandTimeout),
                                      .enhanced_section = enhanced_section});
  std::array<std::atomic<int>, kKeys> ledger{};  // 0 = free, else the holding pull
  Tally tally;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int id = 1; id <= kClients; ++id) {
    clients.emplace_back([&, id] {
      RespClient c(ls.port());
      AtlantisClient a(c);
      std::mt19937 rng(id);
      while (!stop) {
        int k = static_cast<int>(rng() % kKeys);
        LockSpec l{.repo = "stress/repo", .path = "k" + std::to_string(k), .project = "p", .pull = id};
        lockCycle(c, a, l, ledger[k], rng, 2000, tally);
      }
    });
  }

  // The shadow phase's ends are in the cycle too: a write whose replay was decided in shadow
  // must not reach enhanced after enhanced owns the key.
  const std::vector<std::string> moves = {
      R"({"phase":"hybrid","traffic_split":0})", R"({"traffic_split":10})",      R"({"traffic_split":50})",
      R"({"traffic_split":90})",                 R"({"traffic_split":100})",     "ROLLBACK",
      R"({"traffic_split":50})",                 "CLEAR",                        R"({"phase":"shadow"})",
      R"({"phase":"enhanced-only"})",            R"({"phase":"shadow"})",        R"({"phase":"hybrid"})"};
  const auto start = std::chrono::steady_clock::now();
  size_t step = 0;
  while (std::chrono::steady_clock::now() - start < duration) {
    const std::string& m = moves[step++ % moves.size()];
    int status = m == "ROLLBACK" ? httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"stress"})").status
                 : m == "CLEAR"  ? httpRequest(ls.adminPort(), "DELETE", "/api/v1/rollback").status
                                 : httpRequest(ls.adminPort(), "PUT", "/api/v1/migration", m).status;
    EXPECT_EQ(status, 200) << m;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  stop = true;
  for (auto& t : clients) t.join();

  tally.expectClean(1000);
  ::testing::Test::RecordProperty("grants", tally.grants.load());
  ::testing::Test::RecordProperty("split_moves", static_cast<int>(step));
  std::cerr << "stress: " << tally.grants.load() << " grants, " << step << " moves, 0 double grants expected, got "
            << tally.double_grants.load() << "\n";

  // Both stores hold the same keys and values once the journal has drained.
  std::map<std::string, std::string> l, e;
  for (int i = 0; i < 100; ++i) {
    l = dumpRedis({legacy.port()});
    e = dumpRecords(enhanced_ports);
    if (l == e) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(l, e);
  EXPECT_EQ(l.size(), 0u);  // every client released what it held
}

// Before the migration starts, writes to one key go to legacy together (Router::writeGuard): 16
// clients race TryLock/Unlock on one lock key for 4 s through lockshift in legacy-only, on two
// network threads, with the same ledger. Legacy alone decides each strict acquire, atomically.
TEST(MigrationStress, OneKeyRacedBeforeTheMigrationStartsIsNeverGrantedTwice) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.threads = 2,
                                      .legacy_section = redisSection(legacy.port(), kCommandTimeout),
                                      .enhanced_section = redisSection(enhanced.port(), kCommandTimeout)});
  constexpr int kRacers = 16;
  std::atomic<int> held{0};
  Tally tally;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int id = 1; id <= kRacers; ++id) {
    clients.emplace_back([&, id] {
      RespClient c(ls.port());
      AtlantisClient a(c);
      std::mt19937 rng(id);
      const LockSpec l{.repo = "stress/repo", .path = "hot", .project = "p", .pull = id};
      while (!stop) lockCycle(c, a, l, held, rng, 500, tally);
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(4));
  stop = true;
  for (auto& t : clients) t.join();

  tally.expectClean(100);
  EXPECT_GT(tally.refusals.load(), 100);  // the racers did meet each other on the key
  std::cerr << "one key: " << tally.grants.load() << " grants, " << tally.refusals.load() << " refusals\n";
  EXPECT_EQ(dumpRedis({legacy.port()}).size(), 0u);    // every racer released what it held
  EXPECT_EQ(dumpRedis({enhanced.port()}).size(), 0u);  // and enhanced, never in use, saw nothing
  auto status = httpRequest(ls.adminPort(), "GET", "/api/v1/status");
  EXPECT_NE(status.body.find("\"phase\":\"legacy-only\""), std::string::npos) << status.body;
}

TEST(MigrationStress, NoDoubleGrantNoLostLockWhileTheSplitMoves) {
  RedisServer enhanced;
  stressWhileTheSplitMoves(redisSection(enhanced.port(), kCommandTimeout), {enhanced.port()},
                           std::chrono::seconds(30));
}

// The same on the shipped default of one network thread, where every client, the split moves
// and the Redis clients share one event loop.
TEST(MigrationStress, NoDoubleGrantNoLostLockOnOneNetworkThread) {
  RedisServer enhanced;
  stressWhileTheSplitMoves(redisSection(enhanced.port(), kCommandTimeout), {enhanced.port()}, std::chrono::seconds(15),
                           /*threads=*/1);
}

// The same with the enhanced store on a Redis Cluster, shorter so the test stays within 30 s.
TEST(MigrationStress, NoDoubleGrantNoLostLockWithAClusterAsTheEnhancedStore) {
  RedisCluster cluster;
  std::vector<uint16_t> ports;
  for (size_t i = 0; i < cluster.size(); ++i) ports.push_back(cluster.port(i));
  stressWhileTheSplitMoves(clusterSection(cluster), ports, std::chrono::seconds(15));
}

}  // namespace
}  // namespace lockshift::testing
