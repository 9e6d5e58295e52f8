// A repository's and a pull's locks through the real lockshift binary (GET and DELETE
// /api/v1/locks?repo=&pull=), with the enhanced store on Redis and on LMDB keeping records:
// answered from enhanced's indexes for the keys it owns and from a legacy scan for the rest,
// fencing tokens that grow with every grant, and releasing a closed pull's locks in both stores.

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/support/atlantis.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/http_client.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

namespace json = boost::json;

enum class Enhanced { kRedis, kLmdb };

void moveTo(LockshiftServer& ls, const std::string& phase, double split) {
  auto r = httpRequest(ls.adminPort(), "PUT", "/api/v1/migration",
                       R"({"phase":")" + phase + R"(","traffic_split":)" + std::to_string(split) + "}");
  ASSERT_EQ(r.status, 200) << r.body;
}

// A query parameter's value, percent-encoded (unreserved characters stay).
std::string encoded(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

json::object get(LockshiftServer& ls, const std::string& target) {
  auto r = httpRequest(ls.adminPort(), "GET", target);
  EXPECT_EQ(r.status, 200) << target << " " << r.body;
  return r.status == 200 ? json::parse(r.body).as_object() : json::object{};
}

std::set<std::string> keysIn(const json::object& listing) {
  std::set<std::string> keys;
  if (!listing.contains("locks")) return keys;
  for (const auto& l : listing.at("locks").as_array()) keys.insert(std::string(l.at("key").as_string()));
  return keys;
}

// The repositories and pulls of the test: keys spread over both owners at a split of 50.
struct Fleet {
  std::vector<LockSpec> locks;
  std::set<std::string> keysOf(const std::string& repo, std::optional<int64_t> pull = std::nullopt) const {
    std::set<std::string> keys;
    for (const auto& l : locks) {
      if (l.repo == repo && (!pull || l.pull == *pull)) keys.insert(lockKey(l));
    }
    return keys;
  }
};

Fleet takeLocks(AtlantisClient& a) {
  Fleet fleet;
  for (int i = 0; i < 60; ++i) {
    // acme/infra: pulls 1..3; "acme/infra-net": a repository whose name extends the first, so a
    // prefix would mix them; a GitLab subgroup with a space.
    const std::string repo = i % 3 == 0 ? "acme/infra" : i % 3 == 1 ? "acme/infra-net" : "group/sub group/app";
    fleet.locks.push_back(LockSpec{.repo = repo, .path = "mod" + std::to_string(i), .project = "p",
                                   .pull = i % 3 == 0 ? i % 9 / 3 + 1 : 7});
    EXPECT_TRUE(a.tryLock(fleet.locks.back()).first) << lockKey(fleet.locks.back());
  }
  return fleet;
}

class LockIndex : public ::testing::TestWithParam<Enhanced> {
 protected:
  LockshiftOptions options() {
    LockshiftOptions o{.legacy_section = redisSection(legacy_.port())};
    if (GetParam() == Enhanced::kRedis) {
      enhanced_ = std::make_unique<RedisServer>();
      o.enhanced_section = redisSection(enhanced_->port());
    }
    return o;
  }
  RedisServer legacy_;
  std::unique_ptr<RedisServer> enhanced_;
};

TEST_P(LockIndex, RepositoryAndPullQueriesUseTheIndexWhereEnhancedOwns) {
  LockshiftServer ls(options());
  RespClient c(ls.port());
  AtlantisClient a(c);
  Fleet fleet = takeLocks(a);

  // Legacy owns everything: a scan answers, and no token is shown.
  json::object listed = get(ls, "/api/v1/locks?repo=acme%2Finfra");
  EXPECT_EQ(listed["source"], "scan");
  EXPECT_EQ(keysIn(listed), fleet.keysOf("acme/infra"));

  // Hybrid 50: enhanced's keys from its index, legacy's from a scan; together exactly the set.
  moveTo(ls, "hybrid", 50);
  for (const std::string repo : {"acme/infra", "acme/infra-net", "group/sub group/app"}) {
    listed = get(ls, "/api/v1/locks?repo=" + encoded(repo));
    EXPECT_EQ(listed["source"], "index+scan");
    EXPECT_EQ(keysIn(listed), fleet.keysOf(repo)) << repo;
  }
  std::map<std::string, int> owners;
  json::object net = get(ls, "/api/v1/locks?repo=acme%2Finfra-net");
  for (const auto& l : net["locks"].as_array()) {
    const auto& entry = l.as_object();
    owners[std::string(entry.at("owner").as_string())]++;
    // An entry from enhanced carries its record's token and time; legacy's do not.
    EXPECT_EQ(entry.contains("token"), entry.at("owner") == "enhanced") << json::serialize(entry);
  }
  EXPECT_GT(owners["enhanced"], 0);
  EXPECT_GT(owners["legacy"], 0);
  for (int64_t pull : {1, 2, 3}) {
    EXPECT_EQ(keysIn(get(ls, "/api/v1/locks?repo=acme%2Finfra&pull=" + std::to_string(pull))),
              fleet.keysOf("acme/infra", pull))
        << pull;
  }
  EXPECT_TRUE(keysIn(get(ls, "/api/v1/locks?repo=acme%2Finfra&pull=7")).empty());

  // Enhanced-only: the index alone answers, every entry with a token.
  moveTo(ls, "enhanced-only", 100);
  listed = get(ls, "/api/v1/locks?repo=group%2Fsub%20group%2Fapp&pull=7");
  EXPECT_EQ(listed["source"], "index");
  EXPECT_EQ(keysIn(listed), fleet.keysOf("group/sub group/app", 7));
  for (const auto& l : listed["locks"].as_array()) {
    EXPECT_GT(l.at("token").to_number<int64_t>(), 0);
    EXPECT_GT(l.at("acquired_at_unix_ms").to_number<int64_t>(), 0);
  }
  EXPECT_EQ(get(ls, "/api/v1/locks?repo=acme%2Finfra&limit=2")["truncated"], true);

  // A new grant of a key takes a greater token.
  const LockSpec& first = fleet.locks[0];
  auto tokenOf = [&](const LockSpec& l) -> int64_t {
    json::object found = get(ls, "/api/v1/locks?repo=acme%2Finfra&pull=" + std::to_string(l.pull));
    for (const auto& e : found["locks"].as_array()) {
      if (e.at("key").as_string() == lockKey(l)) return e.at("token").to_number<int64_t>();
    }
    return -1;
  };
  const int64_t before = tokenOf(first);
  ASSERT_GT(before, 0);
  ASSERT_TRUE(a.unlock(first).has_value());
  EXPECT_EQ(tokenOf(first), -1);
  ASSERT_TRUE(a.tryLock(first).first);
  EXPECT_GT(tokenOf(first), before);
}

TEST_P(LockIndex, ReleasingAClosedPullsLocksReachesBothStoresAndSparesOthers) {
  LockshiftServer ls(options());
  RespClient c(ls.port());
  AtlantisClient a(c);
  Fleet fleet = takeLocks(a);
  moveTo(ls, "hybrid", 50);
  const std::set<std::string> pull7 = fleet.keysOf("acme/infra-net", 7);
  ASSERT_FALSE(pull7.empty());

  // Bad requests change nothing.
  EXPECT_EQ(httpRequest(ls.adminPort(), "DELETE", "/api/v1/locks?repo=acme%2Finfra-net").status, 400);
  EXPECT_EQ(httpRequest(ls.adminPort(), "DELETE", "/api/v1/locks?repo=acme%2Finfra-net&pull=seven").status, 400);
  EXPECT_EQ(keysIn(get(ls, "/api/v1/locks?repo=acme%2Finfra-net&pull=7")), pull7);

  auto released = httpRequest(ls.adminPort(), "DELETE", "/api/v1/locks?repo=acme%2Finfra-net&pull=7");
  ASSERT_EQ(released.status, 200) << released.body;
  json::object body = json::parse(released.body).as_object();
  EXPECT_EQ(body["released"].to_number<size_t>(), pull7.size());
  EXPECT_EQ(keysIn(body), pull7);

  // Gone from lockshift, from legacy (Atlantis pointed back at it) and from enhanced; the other
  // pulls' and repositories' locks stay.
  EXPECT_TRUE(keysIn(get(ls, "/api/v1/locks?repo=acme%2Finfra-net")).empty());
  RespClient direct(legacy_.port());
  for (const auto& l : fleet.locks) {
    const bool gone = pull7.count(lockKey(l)) == 1;
    EXPECT_EQ(isNil(c.call({"get", lockKey(l)})), gone) << lockKey(l);
    EXPECT_EQ(isNil(direct.call({"get", lockKey(l)})), gone) << lockKey(l);
    if (enhanced_) {
      EXPECT_EQ(!EnhancedRedis(enhanced_->port()).get(lockKey(l)).has_value(), gone) << lockKey(l);
    }
  }
  auto events = httpRequest(ls.adminPort(), "GET", "/api/v1/events?limit=20").body;
  EXPECT_NE(events.find("lock.pull_unlocked"), std::string::npos) << events;
  EXPECT_NE(events.find("repo acme/infra-net pull #7: " + std::to_string(pull7.size()) + " lock(s) released"),
            std::string::npos)
      << events;

  // Again: nothing left to release.
  released = httpRequest(ls.adminPort(), "DELETE", "/api/v1/locks?repo=acme%2Finfra-net&pull=7");
  ASSERT_EQ(released.status, 200);
  EXPECT_EQ(json::parse(released.body).as_object()["released"].to_number<size_t>(), 0u);
}

// How many SCANs a redis-server has served (INFO commandstats).
int64_t scansServed(RespClient& redis) {
  const std::string info = redis.call({"INFO", "commandstats"}).str;
  const std::string field = "cmdstat_scan:calls=";
  const size_t at = info.find(field);
  return at == std::string::npos ? 0 : std::stoll(info.substr(at + field.size()));
}

// Atlantis's own UnlockByPull on the wire: `SCAN MATCH pr/<repo>*`, GET of each key, GET+DEL of
// the pull's. In enhanced-only the scan comes from enhanced's name index: no SCAN reaches the
// enhanced Redis (once the index is known to be complete) and none reaches legacy.
TEST_P(LockIndex, AtlantisUnlockByPullIsAnsweredFromTheNameIndex) {
  LockshiftServer ls(options());
  RespClient c(ls.port());
  AtlantisClient a(c);
  Fleet fleet = takeLocks(a);
  moveTo(ls, "enhanced-only", 100);
  EXPECT_TRUE(a.unlockByPull("acme/infra", 99).empty());  // a pull without locks
  RespClient legacy(legacy_.port());
  std::optional<RespClient> enhanced;
  if (enhanced_) enhanced.emplace(enhanced_->port());
  const int64_t legacy_scans = scansServed(legacy);
  const int64_t enhanced_scans = enhanced ? scansServed(*enhanced) : 0;
  // The first query built the index of the new enhanced Redis with a scan: the counter counts.
  if (enhanced) {
    EXPECT_GT(enhanced_scans, 0);
  }

  std::vector<std::string> released = a.unlockByPull("acme/infra", 2);
  EXPECT_EQ(std::set<std::string>(released.begin(), released.end()), fleet.keysOf("acme/infra", 2));
  EXPECT_EQ(released.size(), fleet.keysOf("acme/infra", 2).size());
  // acme/infra-net matches the pattern too; its pull 7 locks stay, as with Redis.
  released = a.unlockByPull("acme/infra", 7);
  EXPECT_EQ(std::set<std::string>(released.begin(), released.end()), fleet.keysOf("acme/infra-net", 7));
  EXPECT_EQ(scansServed(legacy), legacy_scans);
  if (enhanced) {
    EXPECT_EQ(scansServed(*enhanced), enhanced_scans);
  }

  // What is left is exactly the other locks, to List (a scan of `pr*`) and to Redis's own GET.
  std::set<std::string> left;
  for (const auto& l : fleet.locks) {
    if (!(l.repo == "acme/infra" && l.pull == 2) && l.repo != "acme/infra-net") left.insert(lockKey(l));
  }
  std::set<std::string> listed;
  for (const auto& [key, value] : a.list()) listed.insert(key);
  EXPECT_EQ(listed, left);
}

INSTANTIATE_TEST_SUITE_P(Stores, LockIndex, ::testing::Values(Enhanced::kRedis, Enhanced::kLmdb),
                         [](const ::testing::TestParamInfo<Enhanced>& info) {
                           return info.param == Enhanced::kRedis ? "EnhancedRedis" : "EnhancedLmdb";
                         });

}  // namespace
}  // namespace lockshift::testing
