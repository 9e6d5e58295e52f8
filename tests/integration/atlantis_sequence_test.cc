// Atlantis's command sequences (DESIGN §1) against five targets: lockshift in strict mode,
// lockshift in compatible mode, a real redis-server, lockshift in the enhanced-only phase with
// a three-master Redis Cluster as the enhanced store, and lockshift with a redis-server as its
// legacy store reached over the server's Unix domain socket. The shared tests pass on all of them, which
// proves they encode Redis's behaviour and that lockshift reproduces it.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "proxy/atlantis_script.h"
#include "tests/support/atlantis.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/redis_cluster.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

enum class Target { kLockshiftStrict, kLockshiftCompatible, kRedis, kLockshiftOnCluster, kLockshiftLegacyUnix };

std::string targetName(const ::testing::TestParamInfo<Target>& info) {
  switch (info.param) {
    case Target::kLockshiftStrict: return "LockshiftStrict";
    case Target::kLockshiftCompatible: return "LockshiftCompatible";
    case Target::kRedis: return "RedisServer";
    case Target::kLockshiftOnCluster: return "LockshiftEnhancedCluster";
    case Target::kLockshiftLegacyUnix: return "LockshiftLegacyRedisUnixSocket";
  }
  return "?";
}

class AtlantisSequence : public ::testing::TestWithParam<Target> {
 protected:
  void SetUp() override {
    if (GetParam() == Target::kRedis) {
      redis_ = std::make_unique<RedisServer>();
      port_ = redis_->port();
    } else {
      LockshiftOptions o;
      o.acquire = GetParam() == Target::kLockshiftCompatible ? "compatible" : "strict";
      // Strict mode runs on the shipped default of one network thread, the others on two.
      if (GetParam() == Target::kLockshiftStrict) o.threads = 1;
      if (GetParam() == Target::kLockshiftOnCluster) {
        cluster_ = std::make_unique<RedisCluster>();
        o.enhanced_section = clusterSection(*cluster_);
        o.migration_extra = "phase = \"enhanced-only\"\n";
      }
      if (GetParam() == Target::kLockshiftLegacyUnix) {
        redis_ = std::make_unique<RedisServer>();
        o.legacy_section = "type = \"redis\"\naddress = \"unix:" + redis_->unixSocket() + "\"\n";
      }
      lockshift_ = std::make_unique<LockshiftServer>(o);
      port_ = lockshift_->port();
    }
    client_ = std::make_unique<RespClient>(port_);
    atlantis_ = std::make_unique<AtlantisClient>(*client_);
  }

  uint16_t port_ = 0;
  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<RedisCluster> cluster_;
  std::unique_ptr<LockshiftServer> lockshift_;
  std::unique_ptr<RespClient> client_;
  std::unique_ptr<AtlantisClient> atlantis_;
};

TEST_P(AtlantisSequence, TryLockThenUnlock) {
  LockSpec a{.project = "net", .pull = 1};
  auto [won, holder] = atlantis_->tryLock(a);
  EXPECT_TRUE(won);
  LockSpec b = a;
  b.pull = 2;
  b.user = "bob";
  auto [won2, holder2] = atlantis_->tryLock(b);
  EXPECT_FALSE(won2);
  EXPECT_EQ(holder2, lockJson(a));  // byte for byte
  EXPECT_EQ(atlantis_->unlock(a), lockJson(a));
  EXPECT_EQ(atlantis_->unlock(a), std::nullopt);
  EXPECT_TRUE(atlantis_->tryLock(b).first);
}

TEST_P(AtlantisSequence, UnlockIfOwnedByPullViaEval) {
  LockSpec a{.path = "envs/prod", .project = "db", .pull = 7};
  ASSERT_TRUE(atlantis_->tryLock(a).first);
  EXPECT_EQ(atlantis_->unlockIfOwnedByPull(a, 8), std::nullopt);  // another pull: kept
  EXPECT_TRUE(isNil(client_->call({"get", "nothing"})));
  EXPECT_FALSE(isNil(client_->call({"get", lockKey(a)})));
  EXPECT_EQ(atlantis_->unlockIfOwnedByPull(a, 7), lockJson(a));  // owner: deleted, value returned
  EXPECT_TRUE(isNil(client_->call({"get", lockKey(a)})));
  EXPECT_EQ(atlantis_->unlockIfOwnedByPull(a, 7), std::nullopt);  // absent
}

TEST_P(AtlantisSequence, UnlockScriptOnNonJsonValueIsAnErrorAndKeepsTheKey) {
  ASSERT_TRUE(isOk(client_->call({"set", "pr-notjson", "garbage"})));
  LockSpec none;
  resp::Value v = client_->call({"eval", std::string(kAtlantisUnlockScript), "1", "pr-notjson", "1"});
  ASSERT_TRUE(v.isError());
  EXPECT_NE(v.str.find("failed to deserialize current lock"), std::string::npos) << v.str;
  EXPECT_EQ(client_->call({"get", "pr-notjson"}).str, "garbage");
}

TEST_P(AtlantisSequence, ListAndUnlockByPullWithAwkwardNames) {
  std::vector<LockSpec> locks = {
      {.repo = "acme/infra", .path = ".", .project = "", .pull = 1},
      {.repo = "acme/infra", .path = "modules/vpc", .workspace = "staging", .project = "vpc", .pull = 1},
      {.repo = "group/subgroup/repo", .path = "a/b/c", .project = "deep", .pull = 2},  // GitLab subgroups
      {.repo = "PROJ/repo with spaces", .path = "dir with space", .project = "p", .pull = 3},  // Bitbucket
      {.repo = "acme/\xc3\xbcnicode", .path = "\xe6\x97\xa5\xe6\x9c\xac", .project = "\xf0\x9f\x94\x92", .pull = 4},
      {.repo = "acme/infra-two", .path = ".", .project = "x", .pull = 1},
  };
  for (const auto& l : locks) ASSERT_TRUE(atlantis_->tryLock(l).first) << lockKey(l);
  // Other key classes must not show up in List.
  atlantis_->lockCommand("apply", 1763719200);
  atlantis_->setPullStatus(pullStatusKey("github.com", "acme/infra", 1), pullStatusJson("acme/infra", 1, 2));

  auto listed = atlantis_->list();
  ASSERT_EQ(listed.size(), locks.size());
  for (const auto& l : locks) {
    bool found = false;
    for (const auto& [k, v] : listed) found |= (k == lockKey(l) && v == lockJson(l));
    EXPECT_TRUE(found) << lockKey(l);
  }

  // Atlantis's prefix scan pr/acme/infra* also matches acme/infra-two; only pull 1's go.
  auto unlocked = atlantis_->unlockByPull("acme/infra", 1);
  EXPECT_EQ(unlocked.size(), 3u);
  EXPECT_EQ(atlantis_->list().size(), 3u);
  EXPECT_EQ(atlantis_->unlockByPull("group/subgroup/repo", 2).size(), 1u);
  EXPECT_EQ(atlantis_->unlockByPull("PROJ/repo with spaces", 3).size(), 1u);
  EXPECT_EQ(atlantis_->list().size(), 1u);
}

TEST_P(AtlantisSequence, CommandLock) {
  EXPECT_EQ(atlantis_->checkCommandLock("apply"), std::nullopt);
  atlantis_->lockCommand("apply", 1763719200);
  EXPECT_EQ(atlantis_->checkCommandLock("apply"), R"({"LockMetadata":{"UnixTime":1763719200},"CommandName":0})");
  EXPECT_THROW(atlantis_->lockCommand("apply", 1763719300), AtlantisError);
  atlantis_->unlockCommand("apply");
  EXPECT_EQ(atlantis_->checkCommandLock("apply"), std::nullopt);
  EXPECT_THROW(atlantis_->unlockCommand("apply"), AtlantisError);
}

TEST_P(AtlantisSequence, PullStatusWithLargeValue) {
  const std::string key = pullStatusKey("gitlab.example.com", "group/sub/repo", 42);
  std::string big = pullStatusJson("group/sub/repo", 42, 2500);  // ~200 KB
  ASSERT_GT(big.size(), 200u * 1024);
  atlantis_->setPullStatus(key, big);
  EXPECT_EQ(atlantis_->getPullStatus(key), big);
  atlantis_->deletePullStatus(key);
  EXPECT_EQ(atlantis_->getPullStatus(key), std::nullopt);
}

// 40 pipelined GETs of a ~200 KB value, read only after a pause: 8 MB of replies, more than the
// socket buffers hold, so the server's writes stop part-way and resume as the client reads.
TEST_P(AtlantisSequence, RepliesLargerThanTheSocketBuffersArriveWhole) {
  const std::string key = pullStatusKey("gitlab.example.com", "group/sub/repo", 7);
  const std::string big = pullStatusJson("group/sub/repo", 7, 2500);
  atlantis_->setPullStatus(key, big);
  std::string request;
  for (int i = 0; i < 40; ++i) request += "*2\r\n$3\r\nGET\r\n$" + std::to_string(key.size()) + "\r\n" + key + "\r\n";
  client_->sendRaw(request);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < 40; ++i) {
    resp::Value reply = client_->readReply();
    ASSERT_EQ(reply.type, resp::Type::kBulkString) << i;
    ASSERT_EQ(reply.str, big) << i;
  }
  EXPECT_EQ(client_->call({"ping"}).str, "PONG");
}

TEST_P(AtlantisSequence, TwoThousandPipelinedCommandsAnsweredInOrder) {
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 1000; ++i) {
    std::string key = "github.com::acme/infra::" + std::to_string(i);
    cmds.push_back({"set", key, "v" + std::to_string(i)});
    cmds.push_back({"get", key});
  }
  auto replies = client_->pipeline(cmds);
  ASSERT_EQ(replies.size(), 2000u);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(isOk(replies[2 * i])) << i;
    EXPECT_EQ(replies[2 * i + 1].str, "v" + std::to_string(i)) << i;
  }
  EXPECT_EQ(client_->call({"dbsize"}).integer, 1000);
  if (cluster_) {  // the enhanced store holds them, spread over the masters
    int64_t held = 0;
    for (size_t node = 0; node < cluster_->size(); ++node) {
      const int64_t on_node = EnhancedRedis(cluster_->port(node)).count();
      EXPECT_GT(on_node, 0) << "master " << node;
      held += on_node;
    }
    EXPECT_EQ(held, 1000);
  }
}

TEST_P(AtlantisSequence, OldFormKeyRewriteAtStartup) {
  // Atlantis's start-up: SCAN pr/*, GET the old-form key, SET the new form, DEL the old.
  LockSpec l{.project = "", .pull = 5};
  const std::string old_key = "pr/acme/infra/./default";
  ASSERT_TRUE(isOk(client_->call({"set", old_key, lockJson(l)})));
  resp::Value v = client_->call({"get", old_key});
  ASSERT_TRUE(isOk(client_->call({"set", lockKey(l), v.str})));
  EXPECT_EQ(client_->call({"del", old_key}).integer, 1);
  auto listed = atlantis_->list();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].first, lockKey(l));
}

TEST_P(AtlantisSequence, SelectGivesSeparateKeyspaces) {
  if (GetParam() == Target::kLockshiftOnCluster) GTEST_SKIP() << "a Redis Cluster has one database";
  if (GetParam() == Target::kLockshiftLegacyUnix) {
    // A Redis store serves its configured db alone: any other index is refused, as by a server
    // with one database, and the keyspace stays the one written.
    ASSERT_TRUE(isOk(client_->call({"set", "k", "db0"})));
    resp::Value refused = client_->call({"select", "3"});
    ASSERT_TRUE(refused.isError());
    EXPECT_EQ(refused.str, "ERR DB index is out of range");
    ASSERT_TRUE(isOk(client_->call({"select", "0"})));
    EXPECT_EQ(client_->call({"get", "k"}).str, "db0");
    return;
  }
  ASSERT_TRUE(isOk(client_->call({"set", "k", "db0"})));
  ASSERT_TRUE(isOk(client_->call({"select", "3"})));
  EXPECT_TRUE(isNil(client_->call({"get", "k"})));
  ASSERT_TRUE(isOk(client_->call({"set", "k", "db3"})));
  ASSERT_TRUE(isOk(client_->call({"select", "0"})));
  EXPECT_EQ(client_->call({"get", "k"}).str, "db0");
  EXPECT_TRUE(client_->call({"select", "99"}).isError());
}

INSTANTIATE_TEST_SUITE_P(Targets, AtlantisSequence,
                         ::testing::Values(Target::kLockshiftStrict, Target::kLockshiftCompatible, Target::kRedis,
                                           Target::kLockshiftOnCluster, Target::kLockshiftLegacyUnix),
                         targetName);

// --- lockshift only ---

class LockshiftStrict : public ::testing::Test {
 protected:
  LockshiftServer server_;
};

TEST_F(LockshiftStrict, FortyClientsRacingTryLockHaveExactlyOneWinner) {
  constexpr int kClients = 40;
  std::atomic<int> ready{0}, winners{0}, refused{0}, saw_held{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      RespClient c(server_.port());
      AtlantisClient a(c);
      LockSpec l{.project = "race", .pull = 100 + i, .user = "user" + std::to_string(i)};
      ready.fetch_add(1);
      while (ready.load() < kClients) std::this_thread::yield();
      try {
        auto [won, holder] = a.tryLock(l);
        (won ? winners : saw_held).fetch_add(1);
      } catch (const AtlantisError& e) {
        if (std::string(e.what()).find("LOCKED held by pull #") != std::string::npos) refused.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(winners.load() + refused.load() + saw_held.load(), kClients);
}

TEST_F(LockshiftStrict, SameOwnerReacquireSucceedsOtherPullIsRefused) {
  RespClient c(server_.port());
  LockSpec l{.project = "p", .pull = 9, .user = "carol"};
  ASSERT_TRUE(isOk(c.call({"set", lockKey(l), lockJson(l)})));
  EXPECT_TRUE(isOk(c.call({"set", lockKey(l), lockJson(l)})));  // go-redis retry after a timeout
  LockSpec other = l;
  other.pull = 10;
  resp::Value v = c.call({"set", lockKey(l), lockJson(other)});
  ASSERT_TRUE(v.isError());
  EXPECT_EQ(v.str, "LOCKED held by pull #9 (carol)");
  EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));
}

TEST_F(LockshiftStrict, GoRedisHandshakeByteForByte) {
  RespClient c(server_.port());
  // HELLO 3: an error reply (go-redis falls back to RESP2), never a close.
  c.sendRaw("*2\r\n$5\r\nhello\r\n$1\r\n3\r\n");
  resp::Value hello = c.readReply();
  ASSERT_TRUE(hello.isError());
  EXPECT_EQ(hello.str.rfind("ERR ", 0), 0u) << hello.str;
  // CLIENT MAINT_NOTIFICATIONS: must be an error (+OK would commit the client to push messages).
  c.sendRaw("*5\r\n$6\r\nclient\r\n$19\r\nmaint_notifications\r\n$2\r\non\r\n$20\r\nmoving-endpoint-type\r\n"
            "$11\r\ninternal-ip\r\n");
  resp::Value maint = c.readReply();
  ASSERT_TRUE(maint.isError());
  EXPECT_EQ(maint.str.rfind("ERR ", 0), 0u);
  // CLIENT SETINFO pipelined: +OK +OK, and nothing more (an extra byte poisons the pool).
  c.sendRaw("*4\r\n$6\r\nclient\r\n$7\r\nsetinfo\r\n$8\r\nLIB-NAME\r\n$19\r\ngo-redis(,go1.24.4)\r\n"
            "*4\r\n$6\r\nclient\r\n$7\r\nsetinfo\r\n$7\r\nLIB-VER\r\n$6\r\n9.17.3\r\n"
            "*1\r\n$4\r\nping\r\n");
  std::string raw;
  EXPECT_TRUE(isOk(c.readReply()));
  EXPECT_TRUE(isOk(c.readReply()));
  EXPECT_EQ(c.readReply().str, "PONG");
  c.sendRaw("*2\r\n$6\r\nclient\r\n$7\r\ngetname\r\n");
  EXPECT_TRUE(isNil(c.readReply()));
}

TEST_F(LockshiftStrict, HelloTwoAnswersAMap) {
  RespClient c(server_.port());
  resp::Value v = c.call({"hello", "2", "setname", "atlantis"});
  ASSERT_EQ(v.type, resp::Type::kArray);
  ASSERT_EQ(v.elements.size(), 14u);
  EXPECT_EQ(v.elements[0].str, "server");
  EXPECT_EQ(v.elements[4].str, "proto");
  EXPECT_EQ(v.elements[5].integer, 2);
  EXPECT_EQ(c.call({"client", "getname"}).str, "atlantis");
}

TEST_F(LockshiftStrict, GoRedisHandshakeWithPasswordFallsBackToAuth) {
  LockshiftServer secured(LockshiftOptions{.password = "s3cret"});
  RespClient c(secured.port());
  AtlantisClient a(c);
  auto replies = a.handshake("s3cret");
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_TRUE(replies[0].isError());  // HELLO 3 AUTH default s3cret
  EXPECT_TRUE(isOk(replies[1]));      // AUTH s3cret
  EXPECT_TRUE(replies[2].isError());  // CLIENT MAINT_NOTIFICATIONS
  EXPECT_TRUE(isOk(replies[3]));
  EXPECT_TRUE(isOk(replies[4]));
  EXPECT_TRUE(a.tryLock(LockSpec{.project = "after-auth"}).first);
}

}  // namespace
}  // namespace lockshift::testing
