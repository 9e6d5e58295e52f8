// The command layer without the network: dispatch() against a real LmdbStore, checking replies
// byte for byte and the metrics they leave behind.

#include <gtest/gtest.h>

#include <boost/uuid/detail/sha1.hpp>
#include <cstdio>
#include <set>

#include "backends/lmdb_store.h"
#include "proxy/atlantis_script.h"
#include "proxy/command.h"
#include "tests/support/atlantis.h"
#include "tests/support/process.h"
#include "tests/support/run_sync.h"

namespace lockshift {
namespace {

using testing::runSync;

class Dispatch : public ::testing::Test {
 protected:
  void SetUp() override {
    LmdbOptions o;
    o.path = dir_.file("lmdb");
    o.map_size = 16 << 20;
    store_ = std::move(LmdbStore::open(o).value());
    // In place: ServerContext holds atomics and is neither copyable nor movable.
    server_.reset(new ServerContext{
        .store = *store_, .store_label = "legacy", .metrics = metrics_, .config = config_, .password = ""});
  }

  std::string run(std::vector<std::string> args) {
    std::string out;
    runSync([&]() -> asio::awaitable<void> {
      CommandContext ctx{*server_, client_, out, "proxy", {}};
      co_await dispatch(ctx, args);
    }());
    return out;
  }

  testing::TempDir dir_;
  Config config_;
  Metrics metrics_;
  std::unique_ptr<LmdbStore> store_;
  std::unique_ptr<ServerContext> server_;
  ClientState client_;
};

TEST_F(Dispatch, RepliesAreRedisBytes) {
  EXPECT_EQ(run({"PING"}), "+PONG\r\n");
  EXPECT_EQ(run({"ping", "hi"}), "$2\r\nhi\r\n");
  EXPECT_EQ(run({"get", "missing"}), "$-1\r\n");
  EXPECT_EQ(run({"set", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(run({"set", "k", "w", "nx"}), "$-1\r\n");
  EXPECT_EQ(run({"set", "k", "w", "xx", "get"}), "$1\r\nv\r\n");
  EXPECT_EQ(run({"get", "k"}), "$1\r\nw\r\n");
  EXPECT_EQ(run({"exists", "k", "nope"}), ":1\r\n");
  EXPECT_EQ(run({"type", "k"}), "+string\r\n");
  EXPECT_EQ(run({"del", "k", "k", "nope"}), ":1\r\n");
  EXPECT_EQ(run({"scan", "0", "match", "zzz*"}), "*2\r\n$1\r\n0\r\n*0\r\n");
  EXPECT_EQ(run({"dbsize"}), ":0\r\n");
  EXPECT_EQ(run({"select", "16"}), "-ERR DB index is out of range\r\n");
  EXPECT_EQ(run({"command", "count"}).substr(0, 1), ":");
  EXPECT_EQ(run({"config", "get", "appendonly"}), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
}

TEST_F(Dispatch, ScanCursorsAreDecimalUint64) {
  for (int i = 0; i < 30; ++i) run({"set", "key" + std::to_string(i), "v"});
  std::set<std::string> seen;
  std::string cursor = "0";
  for (int round = 0; round < 100; ++round) {
    std::string out = run({"scan", cursor, "count", "4"});
    // *2\r\n$N\r\n<cursor>\r\n*M\r\n...
    size_t p = out.find("\r\n$") + 3;
    size_t len_end = out.find("\r\n", p);
    size_t len = std::stoul(out.substr(p, len_end - p));
    cursor = out.substr(len_end + 2, len);
    std::stoull(cursor);
    size_t q = len_end + 2 + len + 2;
    while ((q = out.find("$", q)) != std::string::npos) {
      size_t e = out.find("\r\n", q);
      size_t n = std::stoul(out.substr(q + 1, e - q - 1));
      EXPECT_TRUE(seen.insert(out.substr(e + 2, n)).second) << "duplicate key";
      q = e + 2 + n + 2;
    }
    if (cursor == "0") break;
  }
  EXPECT_EQ(cursor, "0");
  EXPECT_EQ(seen.size(), 30u);
}

TEST_F(Dispatch, MetricsCountCommandsByStoreAndErrorsByKind) {
  run({"get", "a"});
  run({"get", "b"});
  run({"ping"});
  run({"nosuchcommand"});
  run({"get"});
  std::string text = metrics_.serialize();
  EXPECT_NE(text.find(R"(lockshift_requests_total{command="get",store="legacy"} 2)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"(lockshift_requests_total{command="ping",store="proxy"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(lockshift_errors_total{kind="unknown_command"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(lockshift_errors_total{kind="arity"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(lockshift_request_duration_seconds_count{command="get",store="legacy"} 2)"),
            std::string::npos);
}

// NX with XX is a syntax error, as in Redis, and changes nothing: taken as either, a TryLock
// could overwrite a held lock or create one where the caller meant to update.
TEST_F(Dispatch, SetRefusesNxWithXxAndChangesNothing) {
  EXPECT_EQ(run({"set", "k", "v"}), "+OK\r\n");
  EXPECT_EQ(run({"set", "k", "w", "nx", "xx"}), "-ERR syntax error\r\n");
  EXPECT_EQ(run({"set", "k", "w", "XX", "NX"}), "-ERR syntax error\r\n");
  EXPECT_EQ(run({"set", "fresh", "w", "xx", "nx"}), "-ERR syntax error\r\n");
  EXPECT_EQ(run({"get", "k"}), "$1\r\nv\r\n");
  EXPECT_EQ(run({"get", "fresh"}), "$-1\r\n");
}

// Strict acquire (the default): a lock key takes only Atlantis's lock JSON, and another pull's
// SET of a held lock is refused with the holder named, leaving the lock as it was.
TEST_F(Dispatch, StrictAcquireRefusesAnotherPullsLockAndValuesThatAreNotLocks) {
  const testing::LockSpec first{.path = "net", .pull = 1, .user = "alice"};
  const testing::LockSpec second{.path = "net", .pull = 2, .user = "bob"};
  const std::string key = testing::lockKey(first);
  const std::string held = "$" + std::to_string(testing::lockJson(first).size()) + "\r\n" +
                           testing::lockJson(first) + "\r\n";

  std::string invalid = run({"set", key, "not json"});
  EXPECT_EQ(invalid.rfind("-ERR invalid lock value for key '" + key + "'", 0), 0u) << invalid;
  EXPECT_EQ(run({"get", key}), "$-1\r\n");

  EXPECT_EQ(run({"set", key, testing::lockJson(first)}), "+OK\r\n");
  std::string refused = run({"set", key, testing::lockJson(second)});
  EXPECT_EQ(refused.rfind("-LOCKED held by ", 0), 0u) << refused;
  EXPECT_EQ(run({"get", key}), held);
  // The holder's own SET (Atlantis re-locking) is not a conflict.
  EXPECT_EQ(run({"set", key, testing::lockJson(first)}), "+OK\r\n");
  EXPECT_EQ(run({"get", key}), held);
}

// acquire = "compatible" keeps Redis's plain SET: the last writer wins, whatever the value.
TEST_F(Dispatch, CompatibleAcquireLetsTheLastWriterWin) {
  config_.migration.acquire = AcquireMode::kCompatible;
  const testing::LockSpec first{.path = "net", .pull = 1, .user = "alice"};
  const testing::LockSpec second{.path = "net", .pull = 2, .user = "bob"};
  const std::string key = testing::lockKey(first);
  EXPECT_EQ(run({"set", key, testing::lockJson(first)}), "+OK\r\n");
  EXPECT_EQ(run({"set", key, testing::lockJson(second)}), "+OK\r\n");
  EXPECT_EQ(run({"get", key}), "$" + std::to_string(testing::lockJson(second).size()) + "\r\n" +
                                   testing::lockJson(second) + "\r\n");
}

TEST(AtlantisScript, Sha1MatchesTheBody) {
  boost::uuids::detail::sha1 sha;
  sha.process_bytes(kAtlantisUnlockScript.data(), kAtlantisUnlockScript.size());
  boost::uuids::detail::sha1::digest_type digest;
  sha.get_digest(digest);
  char hex[41];
  for (int i = 0; i < 5; ++i) std::snprintf(hex + 8 * i, 9, "%08x", digest[i]);
  EXPECT_EQ(std::string(hex), kAtlantisUnlockScriptSha1);
}

}  // namespace
}  // namespace lockshift
