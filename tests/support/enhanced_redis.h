#pragma once
// Direct access to lockshift's enhanced records on a redis-server or cluster master (the layout
// of backends/redis_records.h), for tests that seed differences or inspect the enhanced store
// behind lockshift's back. Throws std::runtime_error as RespClient does.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/resp_client.h"

namespace lockshift::testing {

class EnhancedRedis {
 public:
  explicit EnhancedRedis(uint16_t port, std::string prefix = "");

  // The record's value; nullopt when there is no record.
  std::optional<std::string> get(const std::string& key);
  // Writes the value and the holder fields it implies, as a change made behind lockshift's back
  // would; token, time and index stay as they were (none, for a key without a record).
  void set(const std::string& key, const std::string& value);
  // Deletes the record; 1 if there was one. Index entries stay, as after a lost write.
  int64_t del(const std::string& key);
  // The number of records (not of Redis keys: fences and indexes are not counted).
  int64_t count();

 private:
  RespClient client_;
  std::string prefix_;
};

// Every record's key and value on one redis-server, or on each master of a cluster.
std::map<std::string, std::string> dumpRecords(const std::vector<uint16_t>& ports,
                                               const std::string& prefix = "");

}  // namespace lockshift::testing
