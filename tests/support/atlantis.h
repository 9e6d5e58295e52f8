#pragma once
// Replays Atlantis's lock-store operations (server/core/redis/redis.go) command for command, as
// go-redis v9 puts them on the wire (DESIGN §1). Used against lockshift and against redis-server,
// so the same test proves lockshift behaves like the Redis that Atlantis expects.

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/resp_client.h"

namespace lockshift::testing {

struct LockSpec {
  std::string repo = "acme/infra";
  std::string path = ".";
  std::string workspace = "default";
  std::string project;
  int pull = 1;
  std::string user = "alice";
};

// "pr/{repo}/{path}/{workspace}/{project}"
std::string lockKey(const LockSpec& spec);
// Atlantis's ProjectLock JSON (Go's json.Marshal field order).
std::string lockJson(const LockSpec& spec);
// Atlantis's PullStatus key and a JSON value.
std::string pullStatusKey(const std::string& host, const std::string& repo, int pull);
std::string pullStatusJson(const std::string& repo, int pull, int projects);

// An Atlantis error ("db transaction failed: ..."): the operation failed as Atlantis reports it.
struct AtlantisError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class AtlantisClient {
 public:
  explicit AtlantisClient(RespClient& client) : c_(client) {}

  // go-redis v9.17's handshake for a new pooled connection without a password: HELLO 3, then
  // CLIENT MAINT_NOTIFICATIONS (RESP3 configured), then CLIENT SETINFO LIB-NAME/LIB-VER
  // pipelined. Returns the raw replies.
  std::vector<resp::Value> handshake(const std::string& password = "");

  // TryLock: GET; if nil SET. Returns {acquired, holder JSON when not acquired}.
  std::pair<bool, std::string> tryLock(const LockSpec& spec);
  // Unlock: GET; if found DEL. Returns the deleted value.
  std::optional<std::string> unlock(const LockSpec& spec);
  // UnlockIfOwnedByPull: EVAL of Atlantis's script. Returns the deleted value.
  std::optional<std::string> unlockIfOwnedByPull(const LockSpec& spec, int pull);
  // List: SCAN 0 MATCH pr* (no COUNT) until cursor 0, GET each key. Returns key -> value;
  // fails like Atlantis if a scanned key reads nil or a key comes back twice.
  std::vector<std::pair<std::string, std::string>> list();
  // UnlockByPull: SCAN MATCH pr/{repo}*, GET each, Unlock those of the pull. Returns their keys.
  std::vector<std::string> unlockByPull(const std::string& repo, int pull);
  // LockCommand / UnlockCommand / CheckCommandLock on global/{name}/lock.
  void lockCommand(const std::string& name, long unix_time);
  void unlockCommand(const std::string& name);
  std::optional<std::string> checkCommandLock(const std::string& name);
  // Pull status: SET / GET / DEL.
  void setPullStatus(const std::string& key, const std::string& json);
  std::optional<std::string> getPullStatus(const std::string& key);
  void deletePullStatus(const std::string& key);

  // Runs `f(n)` before asking for the n-th SCAN page (from 1, the page after the first) of the
  // scans of list() and unlockByPull(): an operator acting while Atlantis pages through its locks.
  void beforeNextPage(std::function<void(int)> f) { before_next_page_ = std::move(f); }

 private:
  std::vector<std::string> scanAll(const std::string& match);
  resp::Value checked(const std::vector<std::string>& args);

  RespClient& c_;
  std::function<void(int)> before_next_page_;
};

}  // namespace lockshift::testing
