#include "tests/support/atlantis.h"

#include <set>

#include "proxy/atlantis_script.h"

namespace lockshift::testing {

std::string lockKey(const LockSpec& s) {
  return "pr/" + s.repo + "/" + s.path + "/" + s.workspace + "/" + s.project;
}

namespace {
std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}
}  // namespace

std::string lockJson(const LockSpec& s) {
  return R"({"Project":{"ProjectName":)" + jsonString(s.project) + R"(,"RepoFullName":)" + jsonString(s.repo) +
         R"(,"Path":)" + jsonString(s.path) + R"(},"Pull":{"Num":)" + std::to_string(s.pull) +
         R"(,"HeadCommit":"0123abcd","URL":"https://github.com/)" + s.repo + "/pull/" + std::to_string(s.pull) +
         R"(","HeadBranch":"feature","BaseBranch":"main","Author":)" + jsonString(s.user) +
         R"(,"State":0,"BaseRepo":{"FullName":)" + jsonString(s.repo) +
         R"(,"Owner":"acme","Name":"infra","CloneURL":"","SanitizedCloneURL":"","VCSHost":{"Hostname":"github.com","Type":0}}},)"
         R"("User":{"Username":)" + jsonString(s.user) + R"(,"Teams":null},"Workspace":)" + jsonString(s.workspace) +
         R"(,"Time":"2026-11-21T10:00:00.123456789Z"})";
}

std::string pullStatusKey(const std::string& host, const std::string& repo, int pull) {
  return host + "::" + repo + "::" + std::to_string(pull);
}

std::string pullStatusJson(const std::string& repo, int pull, int projects) {
  std::string out = R"({"Projects":[)";
  for (int i = 0; i < projects; ++i) {
    if (i > 0) out += ",";
    out += R"({"Workspace":"default","RepoRelDir":"mod)" + std::to_string(i) +
           R"(","ProjectName":"","PolicyStatus":null,"Status":1})";
  }
  return out + R"(],"Pull":{"Num":)" + std::to_string(pull) + R"(,"BaseRepo":{"FullName":")" + repo + R"("}}})";
}

std::vector<resp::Value> AtlantisClient::handshake(const std::string& password) {
  std::vector<resp::Value> replies;
  std::vector<std::string> hello{"hello", "3"};
  if (!password.empty()) {
    hello.insert(hello.end(), {"auth", "default", password});
  }
  replies.push_back(c_.call(hello));
  if (replies.back().isError() && !password.empty()) replies.push_back(c_.call({"auth", password}));
  replies.push_back(c_.call({"client", "maint_notifications", "on", "moving-endpoint-type", "internal-ip"}));
  auto setinfo = c_.pipeline({{"client", "setinfo", "LIB-NAME", "go-redis(,go1.24.4)"},
                              {"client", "setinfo", "LIB-VER", "9.17.3"}});
  replies.insert(replies.end(), setinfo.begin(), setinfo.end());
  return replies;
}

resp::Value AtlantisClient::checked(const std::vector<std::string>& args) {
  resp::Value v = c_.call(args);
  if (v.isError()) throw AtlantisError("db transaction failed: " + v.str);
  return v;
}

std::pair<bool, std::string> AtlantisClient::tryLock(const LockSpec& spec) {
  const std::string key = lockKey(spec);
  resp::Value current = checked({"get", key});
  if (isNil(current)) {
    checked({"set", key, lockJson(spec)});
    return {true, ""};
  }
  return {false, current.str};
}

std::optional<std::string> AtlantisClient::unlock(const LockSpec& spec) {
  const std::string key = lockKey(spec);
  resp::Value current = checked({"get", key});
  if (isNil(current)) return std::nullopt;
  c_.call({"del", key});  // Atlantis ignores DEL's result
  return current.str;
}

std::optional<std::string> AtlantisClient::unlockIfOwnedByPull(const LockSpec& spec, int pull) {
  resp::Value v = checked({"eval", std::string(kAtlantisUnlockScript), "1", lockKey(spec), std::to_string(pull)});
  if (isNil(v)) return std::nullopt;
  return v.str;
}

std::vector<std::string> AtlantisClient::scanAll(const std::string& match) {
  std::vector<std::string> keys;
  std::set<std::string> seen;
  std::string cursor = "0";
  for (int rounds = 0; rounds < 1000000; ++rounds) {
    if (rounds > 0 && before_next_page_) before_next_page_(rounds);
    resp::Value reply = checked({"scan", cursor, "match", match});
    if (reply.type != resp::Type::kArray || reply.elements.size() != 2) throw AtlantisError("bad SCAN reply");
    cursor = reply.elements[0].str;
    std::stoull(cursor);  // go-redis parses the cursor as uint64
    for (const auto& k : reply.elements[1].elements) {
      if (!seen.insert(k.str).second) throw AtlantisError("SCAN returned '" + k.str + "' twice");
      keys.push_back(k.str);
    }
    if (cursor == "0") return keys;
  }
  throw AtlantisError("SCAN did not finish");
}

std::vector<std::pair<std::string, std::string>> AtlantisClient::list() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& key : scanAll("pr*")) {
    resp::Value v = checked({"get", key});
    if (isNil(v)) throw AtlantisError("db transaction failed: redis: nil (key " + key + ")");
    out.emplace_back(key, v.str);
  }
  return out;
}

std::vector<std::string> AtlantisClient::unlockByPull(const std::string& repo, int pull) {
  std::vector<std::string> unlocked;
  for (const auto& key : scanAll("pr/" + repo + "*")) {
    resp::Value v = checked({"get", key});
    if (isNil(v)) throw AtlantisError("db transaction failed: redis: nil (key " + key + ")");
    // Atlantis unmarshals and compares Pull.Num; the test values carry it as "Num":N.
    std::string marker = "\"Num\":" + std::to_string(pull) + ",";
    if (v.str.find(marker) == std::string::npos) continue;
    resp::Value again = checked({"get", key});
    if (!isNil(again)) c_.call({"del", key});
    unlocked.push_back(key);
  }
  return unlocked;
}

void AtlantisClient::lockCommand(const std::string& name, long unix_time) {
  const std::string key = "global/" + name + "/lock";
  if (!isNil(checked({"get", key}))) throw AtlantisError("db transaction failed: lock already exists");
  checked({"set", key, R"({"LockMetadata":{"UnixTime":)" + std::to_string(unix_time) + R"(},"CommandName":0})"});
}

void AtlantisClient::unlockCommand(const std::string& name) {
  const std::string key = "global/" + name + "/lock";
  if (isNil(checked({"get", key}))) throw AtlantisError("db transaction failed: no lock exists");
  checked({"del", key});
}

std::optional<std::string> AtlantisClient::checkCommandLock(const std::string& name) {
  resp::Value v = checked({"get", "global/" + name + "/lock"});
  if (isNil(v)) return std::nullopt;
  return v.str;
}

void AtlantisClient::setPullStatus(const std::string& key, const std::string& json) { checked({"set", key, json}); }

std::optional<std::string> AtlantisClient::getPullStatus(const std::string& key) {
  resp::Value v = checked({"get", key});
  if (isNil(v)) return std::nullopt;
  return v.str;
}

void AtlantisClient::deletePullStatus(const std::string& key) { checked({"del", key}); }

}  // namespace lockshift::testing
