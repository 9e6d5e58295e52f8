// Opening the stores a config names: a Redis Cluster is accepted as the enhanced store only.

#include "proxy/stores.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <string>

namespace lockshift {
namespace {

Config clusterConfig() {
  Config config;
  config.source = "t.toml";
  config.enhanced.type = "redis-cluster";
  config.enhanced.addresses = {"127.0.0.1:1", "127.0.0.1:2"};
  return config;
}

TEST(Stores, RedisClusterIsSupportedAsTheEnhancedStoreOnly) {
  Config config = clusterConfig();
  EXPECT_TRUE(checkSupported(config).isOk()) << checkSupported(config).toString();

  config.legacy = config.enhanced;
  Status refused = checkSupported(config);
  EXPECT_EQ(refused.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("t.toml: [legacy] type 'redis-cluster' is not supported"),
            std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("single Redis"), std::string::npos) << refused.message();
}

TEST(Stores, OpenStoreOpensARedisClusterStore) {
  boost::asio::io_context io;  // not run: the store only starts connecting
  Config config = clusterConfig();
  auto opened = openStore(config.enhanced, "enhanced", 16, io);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  ASSERT_NE(opened->redis_cluster, nullptr);
  EXPECT_EQ(opened->redis, nullptr);
  EXPECT_EQ(opened->store->name(), "redis-cluster");
  EXPECT_EQ(opened->store->databases(), 1);
  opened->redis_cluster->close();

  auto as_legacy = openStore(config.enhanced, "legacy", 16, io);
  EXPECT_EQ(as_legacy.status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace lockshift
