// The migration engine through the real binary with real stores: two redis-server processes
// (legacy and enhanced), LMDB/Redis mixes, and a three-master Redis Cluster as the enhanced
// store, driven by Atlantis's command sequences and the admin API.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <csignal>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "backends/redis_records.h"
#include "proxy/atlantis_script.h"
#include "tests/support/admin_api.h"
#include "tests/support/atlantis.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/http_client.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

namespace json = boost::json;

json::object statusOf(LockshiftServer& ls) {
  auto r = httpRequest(ls.adminPort(), "GET", "/api/v1/status");
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body).as_object();
}

void moveTo(LockshiftServer& ls, const std::string& phase, double split) {
  auto r = httpRequest(ls.adminPort(), "PUT", "/api/v1/migration",
                       R"({"phase":")" + phase + R"(","traffic_split":)" + std::to_string(split) + "}");
  ASSERT_EQ(r.status, 200) << r.body;
}

// One round of Atlantis's operations; `tag` keeps rounds apart.
void atlantisRound(AtlantisClient& a, RespClient& c, const std::string& tag) {
  LockSpec one{.repo = "acme/" + tag, .path = "envs/prod", .project = "net", .pull = 1};
  LockSpec two{.repo = "acme/" + tag, .path = "modules/vpc", .workspace = "staging", .project = "", .pull = 2};
  LockSpec sub{.repo = "group/sub group/" + tag, .path = "a/b", .project = "x", .pull = 1};
  ASSERT_TRUE(a.tryLock(one).first);
  ASSERT_TRUE(a.tryLock(two).first);
  ASSERT_TRUE(a.tryLock(sub).first);
  LockSpec rival = one;
  rival.pull = 9;
  resp::Value refused = c.call({"set", lockKey(one), lockJson(rival)});
  EXPECT_TRUE(refused.isError());
  EXPECT_EQ(refused.str.rfind("LOCKED held by pull #1", 0), 0u) << refused.str;
  EXPECT_EQ(a.tryLock(rival).second, lockJson(one));
  EXPECT_EQ(a.unlockIfOwnedByPull(two, 3), std::nullopt);
  EXPECT_EQ(a.unlockIfOwnedByPull(two, 2), lockJson(two));
  size_t listed = 0;
  for (const auto& [k, v] : a.list()) listed += k.find(tag) != std::string::npos;
  EXPECT_EQ(listed, 2u);
  EXPECT_EQ(a.unlockByPull("acme/" + tag, 1).size(), 1u);
  EXPECT_EQ(a.unlock(sub), lockJson(sub));
  a.lockCommand("apply", 1763719200);
  EXPECT_TRUE(a.checkCommandLock("apply").has_value());
  a.unlockCommand("apply");
  const std::string pull_key = pullStatusKey("github.com", "acme/" + tag, 1);
  a.setPullStatus(pull_key, pullStatusJson("acme/" + tag, 1, 3));
  EXPECT_EQ(a.getPullStatus(pull_key), pullStatusJson("acme/" + tag, 1, 3));
  a.deletePullStatus(pull_key);
}

enum class Mix { kLmdbLmdb, kRedisRedis, kRedisLmdb, kLmdbRedis, kRedisCluster };

class EveryPhase : public ::testing::TestWithParam<Mix> {
 protected:
  void SetUp() override {
    LockshiftOptions o;
    Mix m = GetParam();
    if (m == Mix::kRedisRedis || m == Mix::kRedisLmdb || m == Mix::kRedisCluster) {
      legacy_redis_ = std::make_unique<RedisServer>();
      o.legacy_section = redisSection(legacy_redis_->port());
    }
    if (m == Mix::kRedisRedis || m == Mix::kLmdbRedis) {
      enhanced_redis_ = std::make_unique<RedisServer>();
      o.enhanced_section = redisSection(enhanced_redis_->port());
    }
    if (m == Mix::kRedisCluster) {
      enhanced_cluster_ = std::make_unique<RedisCluster>();
      o.enhanced_section = clusterSection(*enhanced_cluster_);
    }
    server_ = std::make_unique<LockshiftServer>(o);
  }
  std::unique_ptr<RedisServer> legacy_redis_, enhanced_redis_;
  std::unique_ptr<RedisCluster> enhanced_cluster_;
  std::unique_ptr<LockshiftServer> server_;
};

TEST_P(EveryPhase, AtlantisSequencesPassInEveryPhaseAndSplit) {
  RespClient c(server_->port());
  AtlantisClient a(c);
  // Locks held across every move must survive all of them.
  std::vector<LockSpec> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(LockSpec{.repo = "held/repo", .path = "m" + std::to_string(i), .project = "p", .pull = 100 + i});
    ASSERT_TRUE(a.tryLock(held.back()).first);
  }
  const std::vector<std::pair<std::string, double>> steps = {
      {"legacy-only", 0}, {"hybrid", 0}, {"hybrid", 10}, {"hybrid", 50},      {"hybrid", 90},
      {"hybrid", 100},    {"enhanced-only", 100},       {"hybrid", 50},      {"legacy-only", 0}};
  int round = 0;
  for (const auto& [phase, split] : steps) {
    moveTo(*server_, phase, split);
    SCOPED_TRACE(phase + " " + std::to_string(split));
    atlantisRound(a, c, "r" + std::to_string(round++));
    for (const auto& l : held) ASSERT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l)) << lockKey(l);
  }
  if (enhanced_cluster_) {
    // The enhanced records are in the cluster, each on the master of its slot, spread over all.
    std::set<size_t> masters;
    const std::vector<size_t> owners = enhanced_cluster_->slotOwners();
    for (const auto& l : held) {
      const std::string record = redis::recordKey("", lockKey(l));
      const size_t node = owners[enhanced_cluster_->keySlot(record)];
      EXPECT_EQ(enhanced_cluster_->call(node, {"hget", record, "v"}).str, lockJson(l)) << lockKey(l);
      masters.insert(node);
    }
    EXPECT_EQ(masters.size(), RedisCluster::kMasters);
  }
}

TEST_P(EveryPhase, RollbackIsInstantAndLossless) {
  RespClient c(server_->port());
  AtlantisClient a(c);
  moveTo(*server_, "hybrid", 100);
  std::vector<LockSpec> held;
  for (int i = 0; i < 30; ++i) {
    held.push_back(LockSpec{.path = "rb" + std::to_string(i), .project = "p", .pull = i + 1});
    ASSERT_TRUE(a.tryLock(held.back()).first);
  }
  auto r = httpRequest(server_->adminPort(), "POST", "/api/v1/rollback", R"({"reason":"test"})");
  ASSERT_EQ(r.status, 200) << r.body;
  for (const auto& l : held) EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));
  LockSpec rival = held[0];
  rival.pull = 999;
  EXPECT_FALSE(a.tryLock(rival).first);
  r = httpRequest(server_->adminPort(), "DELETE", "/api/v1/rollback");
  ASSERT_EQ(r.status, 200) << r.body;
  for (const auto& l : held) EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));
}

// Atlantis's List and UnlockByPull page through SCAN (ten keys a page), and the operator may move
// the split or the phase, or raise or clear a rollback, between any two of its pages: a different
// store may then answer the rest (DESIGN §2, scans). Here a change comes before every page after
// the first, and the scans begin in each kind of phase: with one owner (an LMDB store then
// answers the first pages itself) and with two. Every held lock is listed once and reads back,
// and UnlockByPull releases exactly the locks of its pull.
TEST_P(EveryPhase, ScansPagedAcrossMigrationChangesListEveryLockOnce) {
  RespClient c(server_->port());
  AtlantisClient a(c);
  moveTo(*server_, "hybrid", 50);
  std::map<std::string, std::string> held;
  for (int i = 0; i < 120; ++i) {
    LockSpec l{.path = "scan" + std::to_string(i), .project = "p", .pull = i % 3 + 1};
    ASSERT_TRUE(a.tryLock(l).first);
    held[lockKey(l)] = lockJson(l);
  }
  auto rollback = [&](const std::string& method) {
    auto r = httpRequest(server_->adminPort(), method, "/api/v1/rollback", R"({"reason":"test"})");
    ASSERT_EQ(r.status, 200) << r.body;
  };
  const std::vector<std::function<void()>> changes = {
      [&] { moveTo(*server_, "hybrid", 10); },         [&] { moveTo(*server_, "hybrid", 90); },
      [&] { rollback("POST"); },                       [&] { moveTo(*server_, "enhanced-only", 100); },
      [&] { rollback("DELETE"); },                     [&] { moveTo(*server_, "hybrid", 50); },
      [&] { moveTo(*server_, "legacy-only", 0); },     [&] { moveTo(*server_, "shadow", 0); },
      [&] { moveTo(*server_, "enhanced-only", 100); },
  };
  size_t made = 0;
  auto changing = [&] { a.beforeNextPage([&](int) { changes[made++ % changes.size()](); }); };
  auto asMap = [](const std::vector<std::pair<std::string, std::string>>& v) {
    return std::map<std::string, std::string>(v.begin(), v.end());
  };
  const std::vector<std::pair<std::string, double>> starts = {
      {"legacy-only", 0}, {"enhanced-only", 100}, {"hybrid", 50}, {"shadow", 0}};
  for (const auto& [phase, split] : starts) {
    SCOPED_TRACE("the scan begins in " + phase);
    a.beforeNextPage(nullptr);
    moveTo(*server_, phase, split);
    changing();
    auto listed = a.list();
    EXPECT_EQ(asMap(listed), held);
    EXPECT_EQ(listed.size(), held.size());
  }
  EXPECT_GE(made, 4 * 11u) << "fewer pages than expected";

  a.beforeNextPage(nullptr);
  moveTo(*server_, "legacy-only", 0);
  changing();
  auto unlocked = a.unlockByPull("acme/infra", 2);
  std::set<std::string> of_pull_2;
  for (int i = 1; i < 120; i += 3) {
    of_pull_2.insert(lockKey(LockSpec{.path = "scan" + std::to_string(i), .project = "p"}));
  }
  EXPECT_EQ(std::set<std::string>(unlocked.begin(), unlocked.end()), of_pull_2);
  EXPECT_EQ(unlocked.size(), of_pull_2.size());
  for (const auto& key : of_pull_2) held.erase(key);

  auto listed = a.list();
  EXPECT_EQ(asMap(listed), held);
  EXPECT_EQ(listed.size(), held.size());
  a.beforeNextPage(nullptr);
  std::cout << "migration changes between pages: " << made << "\n";
}

INSTANTIATE_TEST_SUITE_P(Stores, EveryPhase,
                         ::testing::Values(Mix::kLmdbLmdb, Mix::kRedisRedis, Mix::kRedisLmdb, Mix::kLmdbRedis,
                                           Mix::kRedisCluster),
                         [](const auto& info) {
                           switch (info.param) {
                             case Mix::kLmdbLmdb: return "LmdbLmdb";
                             case Mix::kRedisRedis: return "RedisRedis";
                             case Mix::kRedisLmdb: return "RedisLmdb";
                             case Mix::kLmdbRedis: return "LmdbRedis";
                             case Mix::kRedisCluster: return "RedisCluster";
                           }
                           return "?";
                         });

TEST(LegacyCompatibility, AtlantisPointedStraightAtLegacyRedisSeesEveryHeldLock) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()),
                                      .enhanced_section = redisSection(enhanced.port())});
  std::vector<LockSpec> held;
  {
    RespClient c(ls.port());
    AtlantisClient a(c);
    moveTo(ls, "hybrid", 50);
    for (int i = 0; i < 100; ++i) {
      held.push_back(LockSpec{.repo = "acme/infra", .path = "p" + std::to_string(i), .project = "x", .pull = i % 7 + 1});
      ASSERT_TRUE(a.tryLock(held.back()).first);
    }
    for (int i = 0; i < 100; i += 3) ASSERT_TRUE(a.unlock(held[i]).has_value());
    moveTo(ls, "enhanced-only", 100);
    LockSpec late{.repo = "acme/infra", .path = "late", .project = "x", .pull = 3};
    ASSERT_TRUE(a.tryLock(late).first);
    held.push_back(late);
  }
  // Atlantis, pointed straight back at its old Redis: List sees exactly the held locks.
  RespClient direct(legacy.port());
  AtlantisClient atlantis(direct);
  auto listed = atlantis.list();
  std::set<std::string> keys;
  for (const auto& [k, v] : listed) keys.insert(k);
  for (size_t i = 0; i < held.size(); ++i) {
    bool released = i < 100 && i % 3 == 0;
    EXPECT_EQ(keys.count(lockKey(held[i])), released ? 0u : 1u) << lockKey(held[i]);
    if (!released) {
      EXPECT_EQ(direct.call({"get", lockKey(held[i])}).str, lockJson(held[i]));
    }
  }
}

// Redis holds keys longer than LMDB's 503 bytes, and so does the repair journal (LMDB, but long
// keys are kept under a slot with the key in the value). With two Redis stores a long lock works
// in every phase, also where its writes must be journaled (a rollback), across a restart.
// Enhanced is frozen (SIGSTOP) while the journal must hold those writes: otherwise the replayer
// may already have repaired some of them when the test looks.
TEST(LongKeys, RedisStoresTakeLongKeysInEveryPhaseAndTheJournalRecordsThem) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()),
                                      .enhanced_section = redisSection(enhanced.port()),
                                      .fallback_section = "reset_timeout = \"1s\"\n"});
  RespClient direct_legacy(legacy.port());
  EnhancedRedis direct_enhanced(enhanced.port());
  auto longLock = [](const std::string& tag, int pull) {
    return LockSpec{.path = std::string(600, 'd') + tag, .project = "x", .pull = pull};
  };
  const LockSpec early = longLock("early", 1);
  {
    RespClient c(ls.port());
    AtlantisClient a(c);
    ASSERT_TRUE(a.tryLock(early).first);
    moveTo(ls, "hybrid", 50);
    for (int i = 0; i < 4; ++i) {
      const LockSpec l = longLock("hybrid" + std::to_string(i), 2);
      ASSERT_TRUE(a.tryLock(l).first) << i;
      EXPECT_EQ(direct_legacy.call({"get", lockKey(l)}).str, lockJson(l));
      EXPECT_EQ(direct_enhanced.get(lockKey(l)), lockJson(l));
      EXPECT_FALSE(a.tryLock(longLock("hybrid" + std::to_string(i), 3)).first) << "held by pull 2";
    }
    ASSERT_EQ(httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"test"})").status, 200);
    enhanced.process().signal(SIGSTOP);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(a.tryLock(longLock("rollback" + std::to_string(i), 4)).first) << i;
    EXPECT_EQ(a.unlock(early), lockJson(early));
  }
  // Five writes enhanced missed are journaled durably, and survive a restart.
  json::object status = statusOf(ls);
  EXPECT_EQ(status.at("journal").at("depth"), json::value(5)) << json::serialize(status);
  EXPECT_EQ(status.at("journal").at("memory_only"), json::value(0));
  ls.restart();
  json::object restarted = statusOf(ls);
  EXPECT_EQ(restarted.at("journal").at("depth"), json::value(5)) << json::serialize(restarted) << "\n" << ls.log();
  enhanced.process().signal(SIGCONT);

  ASSERT_EQ(httpRequest(ls.adminPort(), "DELETE", "/api/v1/rollback").status, 200);
  // Bounded: the replayer backs off to 5 s while enhanced is frozen, and the breaker it tripped
  // probes again after its 1 s reset_timeout.
  for (int i = 0; i < 1500 && statusOf(ls).at("journal").at("depth") != json::value(0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(statusOf(ls).at("journal").at("depth"), json::value(0));
  for (int i = 0; i < 4; ++i) {
    const LockSpec l = longLock("rollback" + std::to_string(i), 4);
    EXPECT_EQ(direct_enhanced.get(lockKey(l)), lockJson(l)) << "repaired from legacy";
  }
  EXPECT_EQ(direct_enhanced.get(lockKey(early)), std::nullopt);
  EXPECT_TRUE(direct_legacy.call({"get", lockKey(early)}) == resp::Value::null());
}

// An LMDB enhanced store cannot hold a key longer than 503 bytes: once it is in use, such a SET is
// refused before any store changes (legacy would otherwise hold a lock enhanced never could).
TEST(LongKeys, ALongSetIsRefusedBeforeAnyStoreChangesWhileAnLmdbEnhancedIsInUse) {
  RedisServer legacy;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port())});
  RespClient c(ls.port()), direct_legacy(legacy.port());
  moveTo(ls, "hybrid", 50);
  for (const std::string tag : {"hybrid", "rollback"}) {
    if (tag == "rollback") {
      ASSERT_EQ(httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"test"})").status, 200);
    }
    for (int i = 0; i < 4; ++i) {
      const LockSpec late{.path = std::string(600, 'e') + tag + std::to_string(i), .project = "x", .pull = 2};
      resp::Value refused = c.call({"set", lockKey(late), lockJson(late)});
      ASSERT_TRUE(refused.isError()) << tag;
      EXPECT_EQ(refused.str.rfind("ERR key too long: " + std::to_string(lockKey(late).size()) + " bytes", 0), 0u)
          << refused.str;
      EXPECT_TRUE(direct_legacy.call({"get", lockKey(late)}) == resp::Value::null()) << tag;
    }
  }
  EXPECT_EQ(statusOf(ls).at("journal").at("depth"), json::value(0));
}

// With a Redis legacy and an LMDB enhanced store, a key longer than LMDB allows, taken before the
// migration started, fails the backfill. Deleting it through lockshift works (the LMDB store has
// nothing to delete, the journal nothing to record), and the retried backfill then finishes.
TEST(LongKeys, ALongLegacyKeyCanBeDeletedSoAnLmdbBackfillFinishes) {
  RedisServer legacy;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port())});
  RespClient c(ls.port()), direct_legacy(legacy.port());
  AtlantisClient a(c);
  const LockSpec early{.path = std::string(600, 'd'), .project = "x", .pull = 1};
  ASSERT_TRUE(a.tryLock(early).first);

  ASSERT_EQ(httpRequest(ls.adminPort(), "PUT", "/api/v1/migration", R"({"phase":"shadow"})").status, 200);
  auto backfill = [&] { return statusOf(ls).at("backfill").as_object(); };
  auto waitBackfill = [&](const std::string& state) {
    for (int i = 0; i < 600 && backfill().at("state") != state.c_str(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return backfill().at("state") == state.c_str();
  };
  ASSERT_TRUE(waitBackfill("failed")) << json::serialize(backfill());
  EXPECT_NE(json::serialize(backfill()).find("key too long"), std::string::npos) << json::serialize(backfill());

  EXPECT_EQ(c.call({"del", lockKey(early)}), resp::Value::integer_(1));
  EXPECT_TRUE(direct_legacy.call({"get", lockKey(early)}) == resp::Value::null());
  EXPECT_EQ(statusOf(ls).at("journal").at("memory_only"), json::value(0));
  EXPECT_TRUE(waitBackfill("done")) << json::serialize(backfill());
}

// A process killed between a write to the owner and the copy to the other store leaves them
// different (the write was never answered). Seeded here directly: in hybrid 100, where enhanced
// owns every key and legacy is kept in sync, legacy loses one lock and holds a stale value of
// another. A clean restart changes nothing; after a kill, the start runs a repair check that
// copies the owner's values back, and audits why.
TEST(UncleanStop, ARestartAfterAKillRepairsWhatTheStoresLeftApart) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()),
                                      .enhanced_section = redisSection(enhanced.port()),
                                      .consistency_section = "gates = false\ninterval = \"0\"\nrecheck_delay = \"100ms\"\n"});
  std::vector<LockSpec> held;
  {
    RespClient c(ls.port());
    AtlantisClient a(c);
    moveTo(ls, "hybrid", 100);
    for (int i = 0; i < 10; ++i) {
      held.push_back(LockSpec{.repo = "acme/infra", .path = "p" + std::to_string(i), .project = "x", .pull = i + 1});
      ASSERT_TRUE(a.tryLock(held.back()).first);
    }
  }
  RespClient direct(legacy.port());
  ASSERT_EQ(direct.call({"del", lockKey(held[0])}).integer, 1);
  ASSERT_TRUE(isOk(direct.call({"set", lockKey(held[1]), lockJson(LockSpec{.repo = "acme/infra", .path = "p1", .project = "x", .pull = 99})})));
  auto events = [&] { return httpRequest(ls.adminPort(), "GET", "/api/v1/events?limit=100").body; };
  auto repaired = [&] {
    return direct.call({"get", lockKey(held[0])}).str == lockJson(held[0]) &&
           direct.call({"get", lockKey(held[1])}).str == lockJson(held[1]);
  };

  ASSERT_EQ(ls.stop(), 0);
  ls.restart();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(events().find("consistency.after_unclean_stop"), std::string::npos) << events();
  EXPECT_EQ(direct.call({"get", lockKey(held[0])}).type, resp::Type::kNull);

  ls.process().stop(SIGKILL);
  ls.restart();
  bool done = false;
  for (int i = 0; i < 300 && !(done = repaired()); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(done) << events();
  const std::string log = events();
  EXPECT_NE(log.find("consistency.after_unclean_stop"), std::string::npos) << log;
  EXPECT_NE(log.find("(repair)"), std::string::npos) << log;
  // Nothing else moved: every lock is still held by its pull, through lockshift and in legacy.
  RespClient c(ls.port());
  for (const LockSpec& l : held) {
    EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));
    EXPECT_EQ(direct.call({"get", lockKey(l)}).str, lockJson(l));
  }
}

// In enhanced-only legacy is the non-owner, kept in sync so that a rollback is instant and
// lossless (DESIGN §2). A legacy that stops answering must fail no Atlantis operation: each write
// it misses is journaled. Once it answers again the journal repairs it, and a rollback then finds
// in legacy every lock enhanced granted meanwhile and none that was released.
TEST(NonOwnerFailure, AFrozenLegacyFailsNoClientInEnhancedOnlyAndARollbackAfterLosesNoLock) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()),
                                      .enhanced_section = redisSection(enhanced.port())});
  RespClient c(ls.port());
  AtlantisClient a(c);
  moveTo(ls, "enhanced-only", 100);
  std::vector<LockSpec> before, during;
  for (int i = 0; i < 6; ++i) {
    before.push_back(
        LockSpec{.repo = "acme/frozen", .path = "b" + std::to_string(i), .project = "x", .pull = i + 1});
    ASSERT_TRUE(a.tryLock(before.back()).first);
  }

  legacy.process().signal(SIGSTOP);
  const auto frozen_at = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) {
    during.push_back(
        LockSpec{.repo = "acme/frozen", .path = "d" + std::to_string(i), .project = "x", .pull = 20 + i});
    ASSERT_TRUE(a.tryLock(during.back()).first) << lockKey(during.back());
  }
  EXPECT_EQ(a.unlock(before[0]), lockJson(before[0]));
  EXPECT_EQ(a.unlockIfOwnedByPull(before[1], 2), lockJson(before[1]));
  LockSpec rival = before[2];
  rival.pull = 99;
  EXPECT_FALSE(a.tryLock(rival).first);
  std::set<std::string> want;
  for (size_t i = 2; i < before.size(); ++i) want.insert(lockKey(before[i]));
  for (const LockSpec& l : during) want.insert(lockKey(l));
  std::set<std::string> listed;
  for (const auto& [key, value] : a.list()) listed.insert(key);
  EXPECT_EQ(listed, want);
  EXPECT_EQ(httpRequest(ls.adminPort(), "GET", "/readyz").status, 200) << "legacy owns no key";
  const double frozen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - frozen_at).count();
  EXPECT_GT(statusOf(ls).at("journal").at("depth").to_number<double>(), 0) << json::serialize(statusOf(ls));

  legacy.process().signal(SIGCONT);
  for (int i = 0; i < 300 && statusOf(ls).at("journal").at("depth") != json::value(0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(statusOf(ls).at("journal").at("depth"), json::value(0)) << "legacy was not repaired within 15 s";
  auto r = httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"test"})");
  ASSERT_EQ(r.status, 200) << r.body;

  RespClient direct(legacy.port());
  for (const LockSpec* l : {&before[0], &before[1]}) {
    EXPECT_EQ(c.call({"get", lockKey(*l)}).type, resp::Type::kNull) << lockKey(*l);
    EXPECT_EQ(direct.call({"get", lockKey(*l)}).type, resp::Type::kNull) << lockKey(*l);
  }
  std::vector<LockSpec> held(before.begin() + 2, before.end());
  held.insert(held.end(), during.begin(), during.end());
  for (const LockSpec& l : held) {
    EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l)) << lockKey(l);
    EXPECT_EQ(direct.call({"get", lockKey(l)}).str, lockJson(l)) << lockKey(l);
  }
  EXPECT_FALSE(a.tryLock(rival).first);
  std::cout << "[ measured ] " << (during.size() + 2) << " writes and a List with legacy frozen took " << frozen_s
            << " s, with no client error\n";
}

TEST(Rollback, FlagFileTakesEffectWithinOneSecond) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()),
                                      .enhanced_section = redisSection(enhanced.port())});
  RespClient c(ls.port());
  moveTo(ls, "hybrid", 100);
  EXPECT_EQ(statusOf(ls).at("rollback_refused_because"), "") << "legacy is kept in sync";
  LockSpec l{.project = "flag", .pull = 4};
  ASSERT_TRUE(isOk(c.call({"set", lockKey(l), lockJson(l)})));
  // Make the stores differ so the answer tells which one served it.
  EnhancedRedis direct(enhanced.port());
  direct.set(lockKey(l), "enhanced-copy");
  ASSERT_EQ(c.call({"get", lockKey(l)}).str, "enhanced-copy");

  writeFile(ls.stateDir() + "/ROLLBACK", "pager: enhanced latency\n");
  const auto start = std::chrono::steady_clock::now();
  std::string got;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    got = c.call({"get", lockKey(l)}).str;
    if (got == lockJson(l)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  EXPECT_EQ(got, lockJson(l));
  EXPECT_LT(took.count(), 1000) << "rollback took " << took.count() << " ms";
  RecordProperty("flag_file_rollback_ms", static_cast<int>(took.count()));
  auto status = statusOf(ls);
  EXPECT_TRUE(status["rollback"].as_object()["raised"].as_bool());
  EXPECT_EQ(status["rollback"].as_object()["actor"].as_string(), "flag-file");
  // It survives a restart until cleared.
  ls.restart();
  EXPECT_TRUE(statusOf(ls)["rollback"].as_object()["raised"].as_bool());
  EXPECT_EQ(httpRequest(ls.adminPort(), "DELETE", "/api/v1/rollback").status, 409);  // the file is still there
}

}  // namespace
}  // namespace lockshift::testing

namespace lockshift::testing {
namespace {

// With keep_legacy_in_sync off (a decommission), legacy misses every write enhanced takes, so
// handing keys back to it would grant locks enhanced holds. A rollback is refused (API: 409 and
// nothing raised; flag file: ignored, with an audit event) and so is a move back without force.
TEST(Rollback, RefusedWhileLegacyIsNotKeptInSync) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()),
                                      .enhanced_section = redisSection(enhanced.port()),
                                      .migration_extra = "keep_legacy_in_sync = false\n"});
  RespClient c(ls.port());
  moveTo(ls, "hybrid", 100);
  LockSpec l{.project = "decommission", .pull = 5};
  ASSERT_TRUE(isOk(c.call({"set", lockKey(l), lockJson(l)})));
  ASSERT_EQ(RespClient(legacy.port()).call({"get", lockKey(l)}), resp::Value::null()) << "legacy is not kept in sync";

  EXPECT_NE(statusOf(ls).at("rollback_refused_because").as_string().find("keep_legacy_in_sync"), std::string::npos);
  auto r = httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"test"})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("keep_legacy_in_sync"), std::string::npos) << r.body;
  EXPECT_FALSE(statusOf(ls)["rollback"].as_object()["raised"].as_bool());

  auto back = httpRequest(ls.adminPort(), "PUT", "/api/v1/migration", R"({"traffic_split":50})");
  EXPECT_EQ(back.status, 409) << back.body;
  EXPECT_EQ(statusOf(ls)["traffic_split"].to_number<double>(), 100);

  writeFile(ls.stateDir() + "/ROLLBACK", "pager\n");
  std::string events;
  for (int i = 0; i < 300 && events.find("rollback.refused\",\"actor\":\"flag-file") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    events = httpRequest(ls.adminPort(), "GET", "/api/v1/events?limit=100").body;
  }
  EXPECT_NE(events.find("rollback.refused"), std::string::npos) << events;
  EXPECT_FALSE(statusOf(ls)["rollback"].as_object()["raised"].as_bool());
  // Pull 5 still holds its lock: another pull is refused.
  LockSpec other = l;
  other.pull = 6;
  EXPECT_FALSE(isOk(c.call({"set", lockKey(other), lockJson(other)})));
  EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));

  // Forced, the move back is made and audited.
  auto forced = httpRequest(ls.adminPort(), "PUT", "/api/v1/migration", R"({"traffic_split":50,"force":true})");
  EXPECT_EQ(forced.status, 200) << forced.body;
  EXPECT_NE(httpRequest(ls.adminPort(), "GET", "/api/v1/events?limit=100").body.find("decommission.overridden"),
            std::string::npos);
}

}  // namespace
}  // namespace lockshift::testing

namespace lockshift::testing {
namespace {

// Turning keep_legacy_in_sync back on does not make legacy complete: lockshift remembers that it
// missed writes, refuses rollbacks until a consistency check has caught legacy up (here by
// repairing it), and then allows them, with the locks enhanced held now in legacy too.
TEST(Rollback, RefusedAfterADecommissionUntilACheckCatchesLegacyUp) {
  RedisServer legacy, enhanced;
  LockshiftOptions options{.legacy_section = redisSection(legacy.port()),
                           .enhanced_section = redisSection(enhanced.port()),
                           .migration_extra = "keep_legacy_in_sync = false\n"};
  LockshiftServer ls(options);
  moveTo(ls, "hybrid", 100);
  LockSpec l{.project = "caught-up", .pull = 11};
  {
    RespClient c(ls.port());
    ASSERT_TRUE(isOk(c.call({"set", lockKey(l), lockJson(l)})));
  }
  ASSERT_EQ(RespClient(legacy.port()).call({"get", lockKey(l)}), resp::Value::null());

  // The operator turns the setting back on and restarts.
  options.migration_extra = "keep_legacy_in_sync = true\n";
  ls.restart(options);
  EXPECT_NE(statusOf(ls).at("rollback_refused_because").as_string().find("missed"), std::string::npos);
  auto refused = httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"too early"})");
  EXPECT_EQ(refused.status, 409) << refused.body;

  json::object report = runConsistencyCheck(ls.adminPort(), /*repair=*/true);
  ASSERT_EQ(report["verdict"], "repaired") << json::serialize(report);
  EXPECT_EQ(statusOf(ls).at("rollback_refused_because"), "");
  EXPECT_NE(httpRequest(ls.adminPort(), "GET", "/api/v1/events?limit=100").body.find("legacy.caught_up"),
            std::string::npos);

  ASSERT_EQ(httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"now"})").status, 200);
  RespClient c(ls.port());
  EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l)) << "legacy answers, and has the lock";
  LockSpec other = l;
  other.pull = 12;
  EXPECT_FALSE(isOk(c.call({"set", lockKey(other), lockJson(other)})));
}

}  // namespace
}  // namespace lockshift::testing
