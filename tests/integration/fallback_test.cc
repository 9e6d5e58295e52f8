// Automatic fallback under load with real processes: lockshift in hybrid 50 over two
// redis-server stores while Atlantis clients race TryLock/Unlock with a shared ledger. The
// enhanced Redis is first frozen (SIGSTOP), then killed (SIGKILL) and restarted. The breaker must
// open within its threshold, keep every lock exclusive and readable, go half-open, repair, close,
// and leave the stores equal. Locks held across both faults, and locks taken and released while
// the breaker is open, must come out of it held (or released) in both stores. How many requests
// failed, and for how long, is printed and recorded.

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/json.hpp>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <tuple>

#include "proxy/atlantis_script.h"
#include "tests/support/admin_api.h"
#include "tests/support/atlantis.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/held_relay.h"
#include "tests/support/http_client.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int kClients = 8;
constexpr int kKeys = 100;
// Locks held from before the faults to the end, and locks taken while the breaker is open. Half
// of each, by the split, are owned by enhanced once it is back; a repair that missed one would
// leave that lock unreadable.
constexpr int kHeld = 16;
constexpr int kTakenWhileOpen = 16;
constexpr int kReleasedWhileOpen = 4;  // of the held ones

LockSpec heldLock(int i) { return LockSpec{.repo = "fallback/held", .path = "h" + std::to_string(i), .pull = 500 + i}; }
LockSpec openLock(int i) { return LockSpec{.repo = "fallback/open", .path = "o" + std::to_string(i), .pull = 700 + i}; }

// Polls until both stores hold the same locks (the repair runs in the background); the last dumps.
std::pair<std::map<std::string, std::string>, std::map<std::string, std::string>> settledDumps(
    uint16_t legacy_port, uint16_t enhanced_port) {
  std::map<std::string, std::string> l, e;
  for (int i = 0; i < 100; ++i) {
    l = dumpRedis({legacy_port});
    e = dumpRecords({enhanced_port});
    if (l == e) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {l, e};
}

std::string breakerState(LockshiftServer& ls) {
  auto r = httpRequest(ls.adminPort(), "GET", "/api/v1/status");
  json::object status = json::parse(r.body).as_object();
  if (!status.contains("breaker")) return "none";
  return std::string(status["breaker"].as_object()["state"].as_string());
}

// Polls until the breaker is in `state`; returns how long that took, or nullopt after `limit`.
std::optional<Clock::duration> waitBreaker(LockshiftServer& ls, const std::string& state, Clock::duration limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    if (breakerState(ls) == state) return Clock::now() - start;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return std::nullopt;
}

// Polls GET /metrics until it has the line `line` (the router publishes the breaker with its
// repair loop, so a moment after the transition); false after `limit`.
bool waitMetricLine(LockshiftServer& ls, const std::string& line, Clock::duration limit) {
  const auto start = Clock::now();
  while (Clock::now() - start < limit) {
    const std::string text = "\n" + httpRequest(ls.adminPort(), "GET", "/metrics").body;
    if (text.find("\n" + line + "\n") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Client errors with their times, to report how many and for how long.
struct ErrorLog {
  void add() {
    std::lock_guard lock(mu);
    times.push_back(Clock::now());
  }
  // Errors within [from, to) and the span from the first to the last of them.
  std::pair<size_t, Clock::duration> between(Clock::time_point from, Clock::time_point to) {
    std::lock_guard lock(mu);
    size_t n = 0;
    Clock::time_point first{}, last{};
    for (auto t : times) {
      if (t < from || t >= to) continue;
      if (n++ == 0) first = t;
      last = t;
    }
    return {n, n == 0 ? Clock::duration{} : last - first};
  }
  std::mutex mu;
  std::vector<Clock::time_point> times;
};

TEST(Fallback, BreakerTakesAFailingEnhancedStoreOutAndBringsItBackClean) {
  RedisServer legacy;
  RedisServer enhanced(RedisServerOptions{.durable = true});  // survives SIGKILL with what it acknowledged
  LockshiftServer ls(LockshiftOptions{
      .legacy_section = redisSection(legacy.port()),
      .enhanced_section = redisSection(enhanced.port()),  // command_timeout 500 ms
      .consistency_section = "gates = false\ninterval = \"0\"\nrecheck_delay = \"200ms\"\n",
      .fallback_section = "failure_threshold = 3\nreset_timeout = \"1s\"\nhalf_open_max_requests = 3\n"});
  ASSERT_EQ(httpRequest(ls.adminPort(), "PUT", "/api/v1/migration", R"({"phase":"hybrid","traffic_split":50})").status,
            200);
  ASSERT_EQ(breakerState(ls), "closed");

  RespClient operator_conn(ls.port());
  AtlantisClient holder(operator_conn);
  std::map<std::string, std::string> expected;  // the locks held at the end: key -> value
  for (int i = 0; i < kHeld; ++i) {
    ASSERT_TRUE(holder.tryLock(heldLock(i)).first) << i;
    expected[lockKey(heldLock(i))] = lockJson(heldLock(i));
  }
  // Every held lock reads back through lockshift, and a rival pull is refused with its holder.
  auto checkHeld = [&](const char* when) {
    for (const auto& [key, value] : expected) {
      EXPECT_EQ(operator_conn.call({"get", key}).str, value) << when << ": " << key;
    }
    LockSpec rival = heldLock(kHeld - 1);
    rival.pull = 999;
    auto [acquired, holder_json] = holder.tryLock(rival);
    EXPECT_FALSE(acquired) << when;
    EXPECT_EQ(holder_json, lockJson(heldLock(kHeld - 1))) << when;
  };

  std::array<std::atomic<int>, kKeys> ledger{};  // 0 = free, else the holding pull
  std::atomic<int> double_grants{0}, lost_locks{0}, grants{0};
  std::atomic<bool> stop{false};
  ErrorLog errors;
  std::vector<std::thread> clients;
  struct JoinOnExit {  // an early ASSERT return must not leave the clients running
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinOnExit() {
      stop = true;
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_on_exit{stop, clients};
  for (int id = 1; id <= kClients; ++id) {
    clients.emplace_back([&, id] {
      RespClient c(ls.port());
      AtlantisClient a(c);
      std::mt19937 rng(id);
      // Releases whatever this pull may hold on the key, retrying through errors (bounded).
      auto release = [&](const LockSpec& l) -> std::optional<resp::Value> {
        for (int attempt = 0; attempt < 200; ++attempt) {
          resp::Value v = c.call({"eval", std::string(kAtlantisUnlockScript), "1", lockKey(l), std::to_string(id)});
          if (v.type != resp::Type::kError) return v;
          errors.add();
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        return std::nullopt;
      };
      while (!stop) {
        const int k = static_cast<int>(rng() % kKeys);
        LockSpec l{.repo = "fallback/repo", .path = "k" + std::to_string(k), .project = "p", .pull = id};
        try {
          if (!a.tryLock(l).first) continue;
        } catch (const AtlantisError& e) {
          if (std::string(e.what()).find("LOCKED") != std::string::npos) continue;
          errors.add();
          release(l);  // the SET may or may not have been applied
          continue;
        }
        grants.fetch_add(1);
        int expected = 0;
        if (!ledger[k].compare_exchange_strong(expected, id)) double_grants.fetch_add(1);
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
        resp::Value held = c.call({"get", lockKey(l)});
        if (held.type == resp::Type::kError) errors.add();
        else if (held.str != lockJson(l)) lost_locks.fetch_add(1);
        ledger[k].store(0);  // released in the ledger before the store: a new holder never overlaps
        auto first = c.call({"eval", std::string(kAtlantisUnlockScript), "1", lockKey(l), std::to_string(id)});
        if (first.type == resp::Type::kError) {
          errors.add();
          release(l);
        } else if (first.type != resp::Type::kBulkString) {
          lost_locks.fetch_add(1);  // it was not there to unlock
        }
      }
    });
  }

  std::this_thread::sleep_for(std::chrono::seconds(2));
  const auto steady_errors = errors.between(Clock::time_point{}, Clock::now()).first;

  // 1. Frozen: calls to enhanced time out after 500 ms; three in a row trip the breaker.
  auto t0 = Clock::now();
  enhanced.process().signal(SIGSTOP);
  auto to_open = waitBreaker(ls, "open", std::chrono::seconds(10));
  ASSERT_TRUE(to_open) << breakerState(ls) << "\n" << ls.log();
  {
    // The metrics say so: out of the path, and owning nothing while the split still reads 50.
    EXPECT_TRUE(waitMetricLine(ls, "lockshift_breaker_open 1", std::chrono::seconds(5)));
    EXPECT_TRUE(waitMetricLine(ls, "lockshift_enhanced_owned_percent 0", std::chrono::seconds(5)));
    EXPECT_TRUE(waitMetricLine(ls, "lockshift_traffic_split_percent 50", std::chrono::seconds(5)));
    // Still ready for a load balancer: legacy answers every key.
    EXPECT_EQ(httpRequest(ls.adminPort(), "GET", "/readyz").status, 200);
    // Locks stay held and exclusive, and new ones are granted and released, with enhanced frozen.
    checkHeld("breaker open");
    for (int i = 0; i < kTakenWhileOpen; ++i) {
      EXPECT_TRUE(holder.tryLock(openLock(i)).first) << i;
      expected[lockKey(openLock(i))] = lockJson(openLock(i));
    }
    for (int i = 0; i < kReleasedWhileOpen; ++i) {
      EXPECT_EQ(holder.unlock(heldLock(i)), lockJson(heldLock(i))) << i;
      expected.erase(lockKey(heldLock(i)));
    }
    // Atlantis's List and UnlockByPull scans are answered by legacy alone meanwhile. (Only the
    // SCANs: the clients release locks all the time, so a GET after them may miss, as on Redis.)
    RespClient scanner(ls.port());
    for (const std::string pattern : {"pr*", "pr/fallback/repo*"}) {
      std::string cursor = "0";
      for (int page = 0; page < 100000; ++page) {
        resp::Value reply = scanner.call({"SCAN", cursor, "MATCH", pattern});
        ASSERT_FALSE(reply.isError()) << pattern << ": " << reply.str;
        ASSERT_EQ(reply.elements.size(), 2u);
        cursor = reply.elements[0].str;
        if (cursor == "0") break;
      }
      EXPECT_EQ(cursor, "0") << pattern;
    }
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // serving from legacy
  enhanced.process().signal(SIGCONT);
  auto t1 = Clock::now();
  auto to_close = waitBreaker(ls, "closed", std::chrono::seconds(30));
  ASSERT_TRUE(to_close) << ls.log();
  auto [stop_errors, stop_span] = errors.between(t0, t1);
  EXPECT_TRUE(waitMetricLine(ls, "lockshift_breaker_open 0", std::chrono::seconds(5)));
  EXPECT_TRUE(waitMetricLine(ls, "lockshift_enhanced_owned_percent 50", std::chrono::seconds(5)));
  // Closed only after the repair: what was taken and released meanwhile reads as it was left.
  checkHeld("closed after SIGCONT");
  for (int i = 0; i < kReleasedWhileOpen; ++i) {
    EXPECT_EQ(operator_conn.call({"get", lockKey(heldLock(i))}).type, resp::Type::kNull) << i;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));

  // 2. Killed and restarted on the same port (durable: nothing it acknowledged is lost).
  auto t2 = Clock::now();
  enhanced.process().stop(SIGKILL);
  auto to_open_kill = waitBreaker(ls, "open", std::chrono::seconds(10));
  ASSERT_TRUE(to_open_kill) << ls.log();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  enhanced.restart();
  auto to_close_kill = waitBreaker(ls, "closed", std::chrono::seconds(30));
  ASSERT_TRUE(to_close_kill) << ls.log();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop = true;
  for (auto& t : clients) t.join();
  auto [kill_errors, kill_span] = errors.between(t2, Clock::now());

  std::cerr << "fallback: " << grants.load() << " grants; errors before faults " << steady_errors
            << "; SIGSTOP: breaker open after " << ms(*to_open) << " ms, " << stop_errors << " client errors over "
            << ms(stop_span) << " ms, closed " << ms(*to_close) << " ms after SIGCONT; SIGKILL: open after "
            << ms(*to_open_kill) << " ms, " << kill_errors << " client errors over " << ms(kill_span)
            << " ms, closed " << ms(*to_close_kill) << " ms after restart\n";
  RecordProperty("sigstop_errors", static_cast<int>(stop_errors));
  RecordProperty("sigstop_error_span_ms", static_cast<int>(ms(stop_span)));
  RecordProperty("sigkill_errors", static_cast<int>(kill_errors));

  EXPECT_EQ(double_grants.load(), 0);
  EXPECT_EQ(lost_locks.load(), 0);
  EXPECT_EQ(steady_errors, 0u);
  EXPECT_GT(grants.load(), 500);
  // Three 500 ms timeouts, a few in parallel: the breaker opens well within the threshold's time.
  EXPECT_LT(ms(*to_open), 5000);
  // Errors stop once it is open: only calls already waiting on the frozen store fail.
  EXPECT_LT(ms(stop_span), 3000);

  auto events = httpRequest(ls.adminPort(), "GET", "/api/v1/events?limit=100").body;
  EXPECT_NE(events.find("breaker.open"), std::string::npos);
  EXPECT_NE(events.find("breaker.half-open"), std::string::npos);
  EXPECT_NE(events.find("breaker.closed"), std::string::npos);
  auto metrics = httpRequest(ls.adminPort(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("lockshift_breaker_trips_total 2"), std::string::npos);

  // Once the clients released theirs, both stores hold exactly the locks still held (legacy
  // alone would do for a rollback, promise 3), and the consistency check finds them equal.
  checkHeld("closed after restart");
  auto [l, e] = settledDumps(legacy.port(), enhanced.port());
  EXPECT_EQ(l, expected);
  EXPECT_EQ(e, expected);
  json::object report = runConsistencyCheck(ls.adminPort());
  EXPECT_EQ(report["verdict"], "clean") << json::serialize(report);
  EXPECT_EQ(report["counts"].as_object()["matched"].to_number<int64_t>(), static_cast<int64_t>(expected.size()))
      << json::serialize(report);

  // Released, they are gone from both.
  for (const auto& [key, value] : expected) {
    EXPECT_EQ(operator_conn.call({"del", key}).integer, 1) << key;
  }
  std::tie(l, e) = settledDumps(legacy.port(), enhanced.port());
  EXPECT_EQ(l, e);
  EXPECT_EQ(l.size(), 0u);
}

// lockshift in enhanced-only over the legacy Redis at `legacy_port` and the enhanced store of
// `enhanced_section`, with the breaker kept closed (a high threshold) so that nothing but the
// journal repairs a key, and `held` locked through it.
struct EnhancedOnly {
  EnhancedOnly(uint16_t legacy_port, std::string enhanced_section, const LockSpec& held)
      : ls(LockshiftOptions{.legacy_section = redisSection(legacy_port),
                            .enhanced_section = std::move(enhanced_section),
                            .fallback_section = "failure_threshold = 1000\n"}),
        c(ls.port()),
        atlantis(c) {
    EXPECT_EQ(httpRequest(ls.adminPort(), "PUT", "/api/v1/migration", R"({"phase":"enhanced-only"})").status, 200);
    EXPECT_TRUE(atlantis.tryLock(held).first);
  }
  LockshiftServer ls;
  RespClient c;
  AtlantisClient atlantis;
};

// A write enhanced ran but never answered: frozen, it times out, and runs once it thaws, after
// lockshift answered the client with the error. Enhanced then differs from legacy for the key,
// with no journal entry saying so, unless lockshift treats the failed write as in doubt: legacy,
// kept current, stays the truth for the key and enhanced is repaired from it. The breaker stays
// closed here (a high threshold), so nothing but that repairs the key.
TEST(Fallback, AWriteEnhancedRanAfterItTimedOutLeavesNoTrace) {
  RedisServer legacy;
  RedisServer enhanced;
  const LockSpec held{.repo = "doubt/repo", .path = "held", .pull = 1};
  const LockSpec taken{.repo = "doubt/repo", .path = "taken", .pull = 2};
  EnhancedOnly run(legacy.port(), redisSection(enhanced.port()), held);  // 500 ms
  ASSERT_FALSE(HasFailure());
  LockshiftServer& ls = run.ls;
  RespClient& c = run.c;

  enhanced.process().signal(SIGSTOP);
  resp::Value set = c.call({"set", lockKey(taken), lockJson(taken)});
  EXPECT_TRUE(set.isError()) << set.str;
  resp::Value del = c.call({"del", lockKey(held)});
  EXPECT_TRUE(del.isError()) << del.str;
  // Legacy answers for both keys meanwhile, as the clients were told.
  EXPECT_EQ(c.call({"get", lockKey(held)}).str, lockJson(held));
  EXPECT_EQ(c.call({"get", lockKey(taken)}).type, resp::Type::kNull);
  enhanced.process().signal(SIGCONT);  // it runs what reached it: the SET, and the DEL if it was sent

  const std::map<std::string, std::string> expected{{lockKey(held), lockJson(held)}};
  auto [l, e] = settledDumps(legacy.port(), enhanced.port());
  EXPECT_EQ(l, expected);
  EXPECT_EQ(e, expected);
  EXPECT_EQ(breakerState(ls), "closed");
  for (const char* when : {"enhanced-only", "rolled back"}) {
    EXPECT_EQ(c.call({"get", lockKey(held)}).str, lockJson(held)) << when;
    EXPECT_EQ(c.call({"get", lockKey(taken)}).type, resp::Type::kNull) << when;
    ASSERT_EQ(httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"test"})").status, 200);
  }
}

// The same write, but held back until after the repair that undid it, the way a busy Redis leaves
// the bytes of a client that gave up unread while it serves others: a relay in front of enhanced
// holds what lockshift's connections send, until every one of them timed out, the journal
// repaired the key through new connections, and the journal is empty. Then the held write reaches
// Redis. Unless the connection it was written on is fenced off first (backends/redis_fences.h), it
// runs last, and enhanced keeps a lock no client holds, which lockshift serves in enhanced-only.
TEST(Fallback, AWriteEnhancedRanAfterTheRepairThatUndidItLeavesNoTrace) {
  RedisServer legacy;
  RedisServer enhanced;
  HeldRelay relay(enhanced.port());
  const LockSpec held{.repo = "late/repo", .path = "held", .pull = 1};
  const LockSpec taken{.repo = "late/repo", .path = "taken", .pull = 2};
  EnhancedOnly run(legacy.port(), redisSection(relay.port()) + "pool_size = 1\n", held);
  ASSERT_FALSE(HasFailure());
  LockshiftServer& ls = run.ls;
  RespClient& c = run.c;
  const std::map<std::string, std::string> expected{{lockKey(held), lockJson(held)}};

  const std::vector<std::string> held_connections = relay.hold();
  ASSERT_FALSE(held_connections.empty());
  resp::Value set = c.call({"set", lockKey(taken), lockJson(taken)});
  EXPECT_TRUE(set.isError()) << set.str;
  EXPECT_GT(relay.held(), 0u);
  auto journalDepth = [&] {
    auto r = httpRequest(ls.adminPort(), "GET", "/api/v1/status");
    return json::parse(r.body).as_object()["journal"].as_object()["depth"];
  };
  bool repaired = false;
  for (int i = 0; i < 300 && !repaired; ++i) {
    repaired = journalDepth() == json::value(0) && dumpRecords({enhanced.port()}) == expected;
    if (!repaired) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(repaired) << ls.log();

  // Redis has run what reached it once the connections that carried it are gone.
  const std::vector<std::string> delivered = relay.release();
  RespClient raw(enhanced.port());
  bool drained = false;
  for (int i = 0; i < 100 && !drained; ++i) {
    const std::string clients = raw.call({"CLIENT", "LIST"}).str;
    drained = std::none_of(delivered.begin(), delivered.end(), [&](const std::string& addr) {
      return clients.find(" addr=" + addr + " ") != std::string::npos;
    });
    if (!drained) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(drained);
  EXPECT_EQ(dumpRedis({legacy.port()}), expected);
  EXPECT_EQ(dumpRecords({enhanced.port()}), expected);
  for (const char* when : {"enhanced-only", "rolled back"}) {
    EXPECT_EQ(c.call({"get", lockKey(taken)}).type, resp::Type::kNull) << when;
    EXPECT_EQ(c.call({"get", lockKey(held)}).str, lockJson(held)) << when;
    ASSERT_EQ(httpRequest(ls.adminPort(), "POST", "/api/v1/rollback", R"({"reason":"test"})").status, 200);
  }
}

}  // namespace
}  // namespace lockshift::testing
