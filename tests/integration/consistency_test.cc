// The consistency checker and the rollout gates through the real binary, with both stores on real
// redis-server processes so differences can be injected straight into either store.

#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <thread>

#include "tests/support/admin_api.h"
#include "tests/support/atlantis.h"
#include "tests/support/http_client.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

namespace json = boost::json;

struct RedisPair {
  RedisServer legacy, enhanced;
};

LockshiftOptions gatedOptions(RedisPair& redis, const std::string& max_age = "1h") {
  LockshiftOptions o;
  o.legacy_section = redisSection(redis.legacy.port());
  o.enhanced_section = redisSection(redis.enhanced.port());
  o.consistency_section = "gates = true\ninterval = \"0\"\nrounds = 3\nrecheck_delay = \"100ms\"\n"
                          "max_report_age = \"" + max_age + "\"\n";
  return o;
}

HttpResponse move(LockshiftServer& ls, const std::string& body) {
  return httpRequest(ls.adminPort(), "PUT", "/api/v1/migration", body);
}

json::object runCheck(LockshiftServer& ls, bool repair = false) {
  return runConsistencyCheck(ls.adminPort(), repair);
}

int64_t count(json::object& report, const char* kind) {
  return report["counts"].as_object()[kind].to_number<int64_t>();
}

std::string refusals(const HttpResponse& r) {
  return json::serialize(json::parse(r.body).as_object()["refusals"]);
}

void seed(uint16_t port, int first, int n) {
  RespClient c(port);
  std::vector<std::vector<std::string>> cmds;
  for (int i = first; i < first + n; ++i) {
    LockSpec l{.path = "mod" + std::to_string(i), .pull = 1000 + i};
    cmds.push_back({"set", lockKey(l), lockJson(l)});
    if (cmds.size() == 500) {
      c.pipeline(cmds);
      cmds.clear();
    }
  }
  if (!cmds.empty()) c.pipeline(cmds);
}

LockSpec spec(int i) { return LockSpec{.path = "mod" + std::to_string(i), .pull = 1000 + i}; }

TEST(Consistency, SeededDivergenceIsCountedExactlyAndRepaired) {
  RedisPair redis;
  constexpr int kKeys = 10000, kEach = 37;
  seed(redis.legacy.port(), 0, kKeys);
  LockshiftServer ls(gatedOptions(redis));
  ASSERT_EQ(move(ls, R"({"phase":"hybrid","traffic_split":0})").status, 200);  // copies legacy into enhanced

  EnhancedRedis enhanced(redis.enhanced.port());
  for (int i = 0; i < kEach; ++i) {
    ASSERT_EQ(enhanced.del(lockKey(spec(i))), 1);                         // missing in enhanced
    LockSpec extra{.repo = "acme/extra", .path = "mod" + std::to_string(i), .pull = 7};
    enhanced.set(lockKey(extra), lockJson(extra));                        // missing in legacy
    LockSpec other = spec(100 + i);
    other.pull = 4242;
    enhanced.set(lockKey(spec(100 + i)), lockJson(other));                // another holder
  }

  json::object report = runCheck(ls);
  EXPECT_EQ(report["verdict"], "divergent");
  EXPECT_EQ(count(report, "missing_in_enhanced"), kEach);
  EXPECT_EQ(count(report, "missing_in_legacy"), kEach);
  EXPECT_EQ(count(report, "value_mismatch"), kEach);
  EXPECT_EQ(count(report, "matched"), kKeys - 2 * kEach);
  EXPECT_EQ(report["legacy"].as_object()["keys"].to_number<int64_t>(), kKeys);
  EXPECT_EQ(report["divergences"].as_array().size(), 3u * kEach);
  std::string id(report["id"].as_string());
  auto md = httpRequest(ls.adminPort(), "GET", "/api/v1/consistency/checks/" + id + "?format=md");
  EXPECT_NE(md.body.find("**Verdict: divergent**"), std::string::npos);
  EXPECT_NE(md.body.find("## Examples: value_mismatch"), std::string::npos);
  auto html = httpRequest(ls.adminPort(), "GET", "/api/v1/consistency/checks/" + id + "?format=html");
  EXPECT_NE(html.headers.find("text/html"), std::string::npos);
  EXPECT_NE(html.body.find("4242"), std::string::npos);

  json::object repaired = runCheck(ls, /*repair=*/true);
  EXPECT_EQ(repaired["verdict"], "repaired");
  EXPECT_EQ(count(repaired, "repaired"), 3 * kEach);
  json::object clean = runCheck(ls);
  EXPECT_EQ(clean["verdict"], "clean");
  EXPECT_EQ(count(clean, "matched"), kKeys);
  // The repair copied from the owner (legacy at split 0): the injected keys are gone, the
  // deleted ones are back, the other holder is replaced.
  EXPECT_EQ(enhanced.get(lockKey(LockSpec{.repo = "acme/extra", .path = "mod0", .pull = 7})), std::nullopt);
  EXPECT_EQ(enhanced.get(lockKey(spec(0))), lockJson(spec(0)));
  EXPECT_EQ(enhanced.get(lockKey(spec(100))), lockJson(spec(100)));
}

TEST(Consistency, WritesInFlightThroughLockshiftAreNotDivergence) {
  RedisPair redis;
  seed(redis.legacy.port(), 0, 2000);
  LockshiftServer ls(gatedOptions(redis));
  { auto r = move(ls, R"({"phase":"hybrid","traffic_split":0})"); ASSERT_EQ(r.status, 200) << r.body; }
  ASSERT_EQ(runCheck(ls)["verdict"], "clean");
  ASSERT_EQ(move(ls, R"({"traffic_split":50})").status, 200);

  std::atomic<bool> stop{false};
  std::atomic<int> operations{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      RespClient c(ls.port());
      AtlantisClient a(c);
      for (int n = 0; !stop && n < 100000; ++n) {
        LockSpec l{.path = "busy" + std::to_string(t) + "-" + std::to_string(n % 20), .pull = 5000 + t};
        a.tryLock(l);
        a.unlock(l);
        operations += 2;
      }
    });
  }
  json::object report = runCheck(ls);
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_GT(operations.load(), 0);
  EXPECT_EQ(report["verdict"], "clean") << json::serialize(report);
}

TEST(Consistency, GatesRefuseWithoutACleanFreshReportAndForceIsAudited) {
  RedisPair redis;
  seed(redis.legacy.port(), 0, 200);
  LockshiftServer ls(gatedOptions(redis, "3s"));
  // Entering hybrid at 0 % moves no key: not gated.
  { auto r = move(ls, R"({"phase":"hybrid","traffic_split":0})"); ASSERT_EQ(r.status, 200) << r.body; }

  auto refused = move(ls, R"({"traffic_split":50})");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refusals(refused).find("no finished consistency report"), std::string::npos) << refused.body;

  // A divergent key that the move would hand to enhanced blocks it; enhanced-only moves every key.
  EnhancedRedis enhanced(redis.enhanced.port());
  LockSpec other = spec(3);
  other.pull = 99;
  enhanced.set(lockKey(spec(3)), lockJson(other));
  ASSERT_EQ(runCheck(ls)["verdict"], "divergent");
  refused = move(ls, R"({"phase":"enhanced-only"})");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refusals(refused).find(lockKey(spec(3))), std::string::npos) << refused.body;

  // A repair is not evidence: the gate wants a check that finds the stores equal.
  ASSERT_EQ(runCheck(ls, /*repair=*/true)["verdict"], "repaired");
  EXPECT_EQ(move(ls, R"({"phase":"enhanced-only"})").status, 409);
  ASSERT_EQ(runCheck(ls)["verdict"], "clean");
  EXPECT_EQ(move(ls, R"({"traffic_split":50})").status, 200);

  // Moving back is never gated, whatever the reports say.
  enhanced.set(lockKey(spec(5)), lockJson(other));
  EXPECT_EQ(move(ls, R"({"traffic_split":10})").status, 200);

  // A stale report is refused; force overrides and leaves an audit event.
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  refused = move(ls, R"({"phase":"enhanced-only"})");
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refusals(refused).find("old; the gate needs one newer than 3 s"), std::string::npos) << refused.body;
  auto forced = move(ls, R"({"phase":"enhanced-only","force":true})");
  EXPECT_EQ(forced.status, 200) << forced.body;
  auto events = httpRequest(ls.adminPort(), "GET", "/api/v1/events?limit=50");
  EXPECT_NE(events.body.find("\"kind\":\"gate.overridden\""), std::string::npos) << events.body;
}

// A check that never has to wait for a store (nothing to compare) finishes inside the request
// that started it; the service must not hold its own lock meanwhile.
TEST(Consistency, CheckOfEmptyStoresFinishes) {
  LockshiftServer ls;
  json::object report = runCheck(ls);
  EXPECT_EQ(report["verdict"], "clean");
  EXPECT_EQ(httpRequest(ls.adminPort(), "GET", "/healthz").status, 200);
}

TEST(Consistency, LocksListingAndForceUnlock) {
  LockshiftServer ls;
  RespClient c(ls.port());
  AtlantisClient a(c);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(a.tryLock(spec(i)).first);
  ASSERT_TRUE(isOk(c.call({"set", "misc/odd", "not json"})));  // not a lock key: any value

  auto all = httpRequest(ls.adminPort(), "GET", "/api/v1/locks?prefix=pr/acme/");
  ASSERT_EQ(all.status, 200) << all.body;
  json::object listing = json::parse(all.body).as_object();
  ASSERT_EQ(listing["locks"].as_array().size(), 5u);
  json::object first = listing["locks"].as_array()[0].as_object();
  EXPECT_EQ(first["owner"], "legacy");
  EXPECT_EQ(first["user"], "alice");
  EXPECT_EQ(first["repo"], "acme/infra");
  auto limited = httpRequest(ls.adminPort(), "GET", "/api/v1/locks?limit=2");
  EXPECT_EQ(json::parse(limited.body).as_object()["truncated"], true);
  auto odd = httpRequest(ls.adminPort(), "GET", "/api/v1/locks?prefix=misc/");
  EXPECT_NE(odd.body.find("\"value\":\"not json\""), std::string::npos) << odd.body;

  // The key is percent-encoded in the path; '/' may be encoded or not.
  auto gone = httpRequest(ls.adminPort(), "DELETE", "/api/v1/locks/pr%2Facme%2Finfra%2Fmod0%2Fdefault%2F");
  EXPECT_EQ(gone.status, 200) << gone.body;
  EXPECT_TRUE(isNil(c.call({"get", lockKey(spec(0))})));
  EXPECT_EQ(httpRequest(ls.adminPort(), "DELETE", "/api/v1/locks/" + lockKey(spec(0))).status, 404);
  EXPECT_EQ(httpRequest(ls.adminPort(), "DELETE", "/api/v1/locks/" + lockKey(spec(1))).status, 200);
  auto events = httpRequest(ls.adminPort(), "GET", "/api/v1/events");
  EXPECT_NE(events.body.find("lock.force_unlocked"), std::string::npos);
  EXPECT_NE(events.body.find("held by pull #1001 (alice)"), std::string::npos) << events.body;
}

TEST(Consistency, BadRequestsAreRefusedAndChangeNothing) {
  LockshiftServer ls(LockshiftOptions{.admin_token = "s3cret"});
  const uint16_t port = ls.adminPort();
  struct Case {
    std::string method, path, body;
    int status;
    std::string field;
  };
  const Case cases[] = {
      {"POST", "/api/v1/consistency/checks", "{", 400, ""},
      {"POST", "/api/v1/consistency/checks", R"({"repair":"yes"})", 400, "repair"},
      {"POST", "/api/v1/consistency/checks", R"({"repare":true})", 400, "repare"},
      {"POST", "/api/v1/consistency/checks", R"({"repair":false,"repair":true})", 400, "repair"},
      {"POST", "/api/v1/consistency/checks?x=1", "", 400, "x"},
      {"GET", "/api/v1/consistency/checks?limit=0", "", 400, "limit"},
      {"GET", "/api/v1/consistency/checks?limit=abc", "", 400, "limit"},
      {"GET", "/api/v1/consistency/checks/latest?format=pdf", "", 400, "format"},
      {"GET", "/api/v1/consistency/checks/..%2Fcontrol", "", 404, ""},
      {"GET", "/api/v1/consistency/checks/nope", "", 404, ""},
      {"GET", "/api/v1/locks?limit=100001", "", 400, "limit"},
      {"GET", "/api/v1/locks?owner=me", "", 400, "owner"},
      {"DELETE", "/api/v1/locks/x?db=-1", "", 400, "db"},
      {"DELETE", "/api/v1/locks/x?db=99", "", 400, "db"},
      {"GET", "/api/v1/events?limit=10001", "", 400, "limit"},
      {"PUT", "/api/v1/consistency/checks", "", 405, ""},
      {"GET", "/api/v1/locks/x", "", 405, ""},
  };
  for (const auto& c : cases) {
    auto r = httpRequest(port, c.method, c.path, c.body, "s3cret");
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << ": " << r.body;
    if (c.status == 400) {
      EXPECT_EQ(std::string(json::parse(r.body).as_object()["field"].as_string()), c.field) << c.path;
    }
  }
  // Mutating calls need the token.
  EXPECT_EQ(httpRequest(port, "POST", "/api/v1/consistency/checks", "").status, 401);
  EXPECT_EQ(httpRequest(port, "DELETE", "/api/v1/locks/x", "", "wrong").status, 403);
  // Nothing ran, nothing was written.
  auto list = httpRequest(port, "GET", "/api/v1/consistency/checks");
  EXPECT_EQ(json::parse(list.body).as_object()["checks"].as_array().size(), 0u);
  auto events = httpRequest(port, "GET", "/api/v1/events");
  EXPECT_EQ(events.body.find("consistency.started"), std::string::npos);
  EXPECT_EQ(events.body.find("lock.force_unlocked"), std::string::npos);
}

}  // namespace
}  // namespace lockshift::testing
