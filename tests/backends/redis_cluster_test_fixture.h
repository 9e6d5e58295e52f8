#pragma once
// Shared set-up of the RedisClusterStore tests: RedisStoreTest's io_context, threads and bounded
// waits, a real three-master cluster (tests/support/redis_cluster.h), and keys chosen to land on
// a given master.

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backends/redis_cluster_slots.h"
#include "backends/redis_cluster_store.h"
#include "tests/backends/redis_test_fixture.h"
#include "tests/support/redis_cluster.h"

namespace lockshift::testing {

class RedisClusterStoreTest : public RedisStoreTest {
 protected:
  // The cluster, started on first use.
  RedisCluster& cluster() {
    if (!cluster_) cluster_ = std::make_unique<RedisCluster>();
    return *cluster_;
  }

  RedisClusterOptions clusterOptions() {
    RedisClusterOptions options;
    options.addresses = cluster().addresses();
    options.pool_size = 2;
    options.connect_timeout = 1s;
    options.command_timeout = 5s;  // generous: the machine running the tests may be busy
    options.backoff_initial = 20ms;
    options.backoff_max = 200ms;
    return options;
  }

  // Creates a store; with `wait_ready`, waits until it answers PING (ADD_FAILURE after kWait).
  std::unique_ptr<RedisClusterStore> openCluster(RedisClusterOptions options,
                                                 bool wait_ready = true) {
    auto store = RedisClusterStore::create(io_, std::move(options));
    if (wait_ready) {
      Status last;
      bool ready = eventually([&] {
        last = await(store->ping());
        return last.isOk();
      });
      if (!ready) ADD_FAILURE() << "the cluster store did not become ready: " << last.toString();
    }
    return store;
  }

  // A store on cluster() with clusterOptions().
  RedisClusterStore& clusterStore() {
    if (!store_) store_ = openCluster(clusterOptions());
    return *store_;
  }

  // `n` keys "<stem>N" whose slots the given master serves (by the cluster's own CLUSTER SLOTS).
  std::vector<std::string> keysOn(size_t node, const std::string& stem, size_t n) {
    const std::vector<size_t> owners = cluster().slotOwners();
    std::vector<std::string> keys;
    for (int i = 0; keys.size() < n; ++i) {
      std::string key = stem + std::to_string(i);
      if (owners[redis::keySlot(key)] == node) keys.push_back(key);
    }
    return keys;
  }

  Result<PutResult> putIn(LockStore& store, const std::string& key, const std::string& value) {
    PutRequest request;
    request.key = key;
    request.value = value;
    return await(store.put(std::move(request)));
  }

  // The value, "(nil)" or "(error: ...)".
  std::string readFrom(LockStore& store, const std::string& key) {
    auto value = await(store.get(0, key));
    if (!value.isOk()) return "(error: " + value.status().toString() + ")";
    return value->has_value() ? **value : "(nil)";
  }

  // Follows next_cursor from 0 to 0 and returns how often each key came back; the status of a
  // page that failed, if one did.
  std::map<std::string, int> scanAll(LockStore& store, const std::string& match, size_t count,
                                     Status* failed = nullptr) {
    std::map<std::string, int> seen;
    ScanRequest request;
    request.count = count;
    request.match = match;
    for (int page = 0; page < 100000; ++page) {
      auto result = await(store.scan(request));
      if (!result.isOk()) {
        if (failed != nullptr) {
          *failed = result.status();
        } else {
          ADD_FAILURE() << result.status().toString();
        }
        return seen;
      }
      for (const std::string& key : result->keys) ++seen[key];
      EXPECT_EQ(result->next_cursor >> 63, 0u) << "the top bit belongs to the router's cursors";
      request.cursor = result->next_cursor;
      if (request.cursor == 0) break;
    }
    EXPECT_EQ(request.cursor, 0u) << "the scan did not finish";
    return seen;
  }

 private:
  // Declared before store_, so the store closes before the cluster stops.
  std::unique_ptr<RedisCluster> cluster_;
  std::unique_ptr<RedisClusterStore> store_;
};

}  // namespace lockshift::testing
