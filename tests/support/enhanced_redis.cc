#include "tests/support/enhanced_redis.h"

#include <set>

#include "backends/lock_records.h"
#include "backends/redis_records.h"

namespace lockshift::testing {

EnhancedRedis::EnhancedRedis(uint16_t port, std::string prefix)
    : client_(port), prefix_(std::move(prefix)) {}

std::optional<std::string> EnhancedRedis::get(const std::string& key) {
  resp::Value v = client_.call({"hget", redis::recordKey(prefix_, key), "v"});
  if (isNil(v)) return std::nullopt;
  return v.str;
}

void EnhancedRedis::set(const std::string& key, const std::string& value) {
  const std::string record = redis::recordKey(prefix_, key);
  client_.call({"hset", record, "v", value});
  if (std::optional<records::Holder> h = records::holderOf(value)) {
    const LockIdentity& id = h->identity;
    client_.call({"hset", record, "pull", std::to_string(id.pull_num), "repo", id.repo_full_name, "path", id.path,
                  "proj", id.project_name, "ws", id.workspace, "user", id.username});
  } else {
    client_.call({"hdel", record, "pull", "repo", "path", "proj", "ws", "user"});
  }
}

int64_t EnhancedRedis::del(const std::string& key) {
  return client_.call({"del", redis::recordKey(prefix_, key)}).integer;
}

int64_t EnhancedRedis::count() {
  std::set<std::string> keys;  // SCAN may return a key twice
  std::string cursor = "0";
  do {
    resp::Value r = client_.call(
        {"scan", cursor, "match", redis::recordScanPattern(prefix_, ""), "count", "1000"});
    cursor = r.elements[0].str;
    for (const auto& k : r.elements[1].elements) {
      if (redis::keyOfRecord(prefix_, k.str)) keys.insert(k.str);
    }
  } while (cursor != "0");
  return static_cast<int64_t>(keys.size());
}

std::map<std::string, std::string> dumpRecords(const std::vector<uint16_t>& ports,
                                               const std::string& prefix) {
  std::map<std::string, std::string> out;
  for (uint16_t port : ports) {
    RespClient c(port);
    std::string cursor = "0";
    do {
      resp::Value r =
          c.call({"scan", cursor, "match", redis::recordScanPattern(prefix, ""), "count", "1000"});
      cursor = r.elements[0].str;
      for (const auto& k : r.elements[1].elements) {
        std::optional<std::string> key = redis::keyOfRecord(prefix, k.str);
        if (key) out[*key] = c.call({"hget", k.str, "v"}).str;
      }
    } while (cursor != "0");
  }
  return out;
}

}  // namespace lockshift::testing
