// RedisStore against a real redis-server: reads, writes, deletes, counts and scans, binary-safe
// values, and the key prefix on the wire.

#include "backends/redis_store.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/backends/redis_test_fixture.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {
namespace {

class RedisStoreBasicTest : public RedisStoreTest {
 protected:
  // Follows next_cursor from 0 to 0 and returns how often each key came back.
  std::map<std::string, int> scanAll(RedisStore& store, const std::string& match, size_t count) {
    std::map<std::string, int> seen;
    ScanRequest request;
    request.count = count;
    request.match = match;
    for (int page = 0; page < 10000; ++page) {
      auto result = await(store.scan(request));
      if (!result.isOk()) {
        ADD_FAILURE() << result.status().toString();
        break;
      }
      for (const std::string& key : result->keys) ++seen[key];
      request.cursor = result->next_cursor;
      if (request.cursor == 0) break;
    }
    EXPECT_EQ(request.cursor, 0u) << "the scan did not finish";
    return seen;
  }
};

TEST_F(RedisStoreBasicTest, PutGetDelRoundTrip) {
  EXPECT_EQ(read("pr/acme/infra/./default/"), "(nil)");
  ASSERT_TRUE(put("pr/acme/infra/./default/", "{\"a\":1}").isOk());
  EXPECT_EQ(read("pr/acme/infra/./default/"), "{\"a\":1}");
  auto deleted = await(store().del(0, {"pr/acme/infra/./default/", "absent"}));
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(deleted.value(), 1);
  EXPECT_EQ(read("pr/acme/infra/./default/"), "(nil)");
  auto none = await(store().del(0, {}));
  ASSERT_TRUE(none.isOk());
  EXPECT_EQ(none.value(), 0);
}

TEST_F(RedisStoreBasicTest, ValuesAndKeysAreBinarySafe) {
  const std::vector<std::string> keys = {
      "pr/acme corp/infra team/modules/vpc/default/", "pr/日本/ü/ws/", "global/apply/lock",
      std::string("nul\0key\r\n", 9), "github.com::acme/infra::12"};
  const char bytes[] = "\0{\"x\":\r\n\"\xff\xfe\"}\0";
  const std::string value(bytes, sizeof bytes - 1);
  for (const std::string& key : keys) ASSERT_TRUE(put(key, value + key).isOk());
  for (const std::string& key : keys) EXPECT_EQ(read(key), value + key);
  auto all = scanAll(store(), "", 3);
  EXPECT_EQ(all.size(), keys.size());
  for (const std::string& key : keys) EXPECT_EQ(all[key], 1) << key;
}

TEST_F(RedisStoreBasicTest, LargeValuesRoundTrip) {
  std::string big(200 * 1024, 'x');
  for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>(i % 251);
  ASSERT_TRUE(put("big", big).isOk());
  EXPECT_EQ(read("big"), big);
  PutRequest again;
  again.key = "big";
  again.value = big + "!";
  again.return_previous = true;
  auto replaced = await(store().put(again));
  ASSERT_TRUE(replaced.isOk()) << replaced.status().toString();
  EXPECT_EQ(replaced->previous, big);
  EXPECT_EQ(read("big"), big + "!");
}

TEST_F(RedisStoreBasicTest, CountAndScanCoverEveryKeyOnce) {
  for (int i = 0; i < 300; ++i) ASSERT_TRUE(put("pr/k" + std::to_string(i), "v").isOk());
  ASSERT_TRUE(put("global/apply/lock", "v").isOk());
  auto count = await(store().count(0));
  ASSERT_TRUE(count.isOk()) << count.status().toString();
  EXPECT_EQ(count.value(), 301);
  auto all = scanAll(store(), "", 7);
  EXPECT_EQ(all.size(), 301u);
  auto locks = scanAll(store(), "pr/*", 50);
  EXPECT_EQ(locks.size(), 300u);
  EXPECT_EQ(locks.count("global/apply/lock"), 0u);
}

TEST_F(RedisStoreBasicTest, PrefixIsAddedOnTheWireAndStrippedFromScans) {
  RespClient raw(server().port());
  // Foreign keys: one with no prefix, and ones an unescaped "ls[1]*" glob would match.
  for (const char* foreign : {"pr/foreign", "ls1pr/x", "ls1]*pr/y", "lsXpr/z"}) {
    ASSERT_EQ(str(raw.call({"SET", foreign, "f"})), "OK");
  }
  RedisOptions options = optionsFor(server().port());
  options.key_prefix = "ls[1]*";
  auto prefixed = open(options);
  for (int i = 0; i < 40; ++i) {
    PutRequest request;
    request.key = "pr/k" + std::to_string(i);
    request.value = "v" + std::to_string(i);
    ASSERT_TRUE(await(prefixed->put(request)).isOk());
  }
  EXPECT_EQ(str(raw.call({"GET", "ls[1]*pr/k7"})), "v7");
  EXPECT_EQ(**await(prefixed->get(0, "pr/k7")), "v7");
  EXPECT_FALSE(await(prefixed->get(0, "foreign"))->has_value());

  auto all = scanAll(*prefixed, "", 5);
  EXPECT_EQ(all.size(), 40u);
  for (const auto& [key, times] : all) {
    EXPECT_EQ(key.rfind("pr/k", 0), 0u) << key;
    EXPECT_EQ(times, 1) << key;
  }
  auto some = scanAll(*prefixed, "pr/k1*", 5);
  EXPECT_EQ(some.size(), 11u);  // pr/k1, pr/k10..pr/k19
  auto count = await(prefixed->count(0));
  ASSERT_TRUE(count.isOk()) << count.status().toString();
  EXPECT_EQ(count.value(), 40);
  auto unprefixed_count = await(store().count(0));
  EXPECT_EQ(unprefixed_count.value(), 44);

  auto deleted = await(prefixed->del(0, {"pr/k1", "pr/foreign"}));
  EXPECT_EQ(deleted.value(), 1);
  EXPECT_EQ(str(raw.call({"GET", "pr/foreign"})), "f");
}

TEST_F(RedisStoreBasicTest, OnlyDatabaseZeroExists) {
  EXPECT_EQ(store().databases(), 1);
  EXPECT_EQ(store().name(), "redis");
  auto expectOutOfRange = [](const Status& status) {
    EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(status.message(), "DB index is out of range");
  };
  expectOutOfRange(await(store().get(1, "k")).status());
  PutRequest request;
  request.db = 2;
  request.key = "k";
  expectOutOfRange(await(store().put(request)).status());
  expectOutOfRange(await(store().del(-1, {"k"})).status());
  expectOutOfRange(await(store().deleteIfOwnedByPull(3, "k", "1")).status());
  ScanRequest scan;
  scan.db = 1;
  expectOutOfRange(await(store().scan(scan)).status());
  expectOutOfRange(await(store().count(16)).status());
  EXPECT_EQ(read("k"), "(nil)");
}

TEST_F(RedisStoreBasicTest, ErrorRepliesBecomeStatuses) {
  RespClient raw(server().port());
  ASSERT_EQ(raw.call({"LPUSH", "list", "x"}).integer, 1);
  auto wrong = await(store().get(0, "list"));
  ASSERT_FALSE(wrong.isOk());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kIoError);
  EXPECT_NE(wrong.status().message().find("WRONGTYPE"), std::string::npos);
  // The connection stays usable after an error reply.
  ASSERT_TRUE(put("k", "v").isOk());
  EXPECT_EQ(read("k"), "v");
}

TEST_F(RedisStoreBasicTest, PingAnswers) { EXPECT_TRUE(await(store().ping()).isOk()); }

}  // namespace
}  // namespace lockshift::testing
