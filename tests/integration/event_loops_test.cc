// lockshift with several network threads: one event loop per thread, client connections spread
// across them, and a Redis store's pool on each loop (common/event_loop.h, proxy/main.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/resp_client.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

// Connections redis-server has open now, the asking one included.
size_t redisConnections(uint16_t port) {
  RespClient c(port);
  std::string list = str(c.call({"CLIENT", "LIST"}));
  return static_cast<size_t>(std::count(list.begin(), list.end(), '\n'));
}

TEST(EventLoops, EachNetworkThreadHasItsOwnPoolToARedisStore) {
  RedisServer legacy;
  const size_t before = redisConnections(legacy.port());  // the asking connection
  LockshiftServer ls(LockshiftOptions{.threads = 3, .legacy_section = redisSection(legacy.port()) + "pool_size = 2\n"});
  // Every pool connects at start; wait (bounded) until the last of them is up.
  size_t open = 0;
  for (int i = 0; i < 100; ++i) {
    open = redisConnections(legacy.port()) - before;
    if (open >= 6) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(open, 6u) << "3 loops x pool_size 2";
}

// Clients on every loop at once: each sees its own writes and every other client's, and the stop
// closes every loop's sessions and exits cleanly.
TEST(EventLoops, ClientsOnEveryLoopShareOneKeyspaceAndStopCleanly) {
  RedisServer legacy;
  LockshiftServer ls(LockshiftOptions{.threads = 3, .legacy_section = redisSection(legacy.port())});
  constexpr int kClients = 6, kRounds = 200;
  std::vector<std::thread> threads;
  std::vector<int> mismatches(kClients, 0);
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      RespClient client(ls.port());
      for (int r = 0; r < kRounds; ++r) {
        const std::string key = "loop-test/" + std::to_string(c) + "/" + std::to_string(r % 10);
        const std::string value = std::to_string(r);
        if (str(client.call({"SET", key, value})) != "OK") ++mismatches[c];
        if (str(client.call({"GET", key})) != value) ++mismatches[c];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(kClients, 0));
  // One client reads what the others wrote last (round 199 wrote key .../9 = "199").
  RespClient reader(ls.port());
  for (int c = 0; c < kClients; ++c) {
    EXPECT_EQ(str(reader.call({"GET", "loop-test/" + std::to_string(c) + "/9"})), "199");
  }
  RespClient direct(legacy.port());
  EXPECT_EQ(str(direct.call({"GET", "loop-test/0/9"})), "199");

  RespClient idle(ls.port());  // still connected when the stop comes
  EXPECT_EQ(ls.stop(), 0) << ls.log();
  EXPECT_TRUE(idle.closedByServer());
}

}  // namespace
}  // namespace lockshift::testing
