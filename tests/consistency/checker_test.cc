// The consistency checker against two real LMDB stores: seeded divergences are counted exactly,
// by kind, with examples; repair makes a second check clean; writes in flight during a check are
// not reported once the rounds settle; reports render and round-trip.

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>

#include "backends/lmdb_store.h"
#include "consistency/checker.h"
#include "consistency/report_store.h"
#include "tests/router/router_fixture.h"
#include "tests/support/process.h"
#include "tests/support/run_sync.h"

namespace lockshift {
namespace {

using testing::runSync;
using testing::TempDir;

std::string lockValue(int i, int pull) {
  return R"({"Project":{"RepoFullName":"acme/infra","Path":"mod)" + std::to_string(i) +
         R"(","Workspace":"default"},"Pull":{"Num":)" + std::to_string(pull) +
         R"(},"User":{"Username":"alice"},"Time":"2026-11-22T01:00:00Z"})";
}

std::string key(int i) { return "pr/acme/infra/mod" + std::to_string(i) + "/default"; }

class CheckerTest : public ::testing::Test {
 protected:
  CheckerTest() {
    LmdbOptions o;
    o.map_size = 256 << 20;
    o.sync = false;  // the tests exercise comparison, not durability
    o.databases = 2;
    o.path = dir_.file("legacy");
    legacy_ = std::move(LmdbStore::open(o).value());
    o.path = dir_.file("enhanced");
    enhanced_ = std::move(LmdbStore::open(o).value());
  }

  static asio::awaitable<void> putAll(LockStore& store, int db, std::vector<std::pair<std::string, std::string>> kv) {
    for (auto& [k, v] : kv) {
      auto put = store.put(PutRequest{.db = db, .key = k, .value = v});
      auto r = co_await std::move(put);
      if (!r) throw std::runtime_error(r.status().message());
    }
  }
  void put(LockStore& store, int db, std::vector<std::pair<std::string, std::string>> kv) {
    runSync(putAll(store, db, std::move(kv)));
  }
  static asio::awaitable<bool> delOne(LockStore& store, int db, std::string k) {
    auto d = store.del(db, {k});
    auto r = co_await std::move(d);
    co_return r.isOk();
  }
  void del(LockStore& store, int db, std::string k) { ASSERT_TRUE(runSync(delOne(store, db, std::move(k)))); }

  CheckOptions options(bool repair = false) {
    CheckOptions o;
    o.rounds = 2;
    o.recheck_delay = std::chrono::milliseconds(10);
    o.databases = 2;
    o.repair = repair;
    o.owner = [](int, std::string_view) { return StoreRole::kLegacy; };
    o.repair_key = [this](int db, std::string k) { return copyKey(*legacy_, *enhanced_, db, std::move(k)); };
    return o;
  }

  Report check(CheckOptions o) {
    Report r;
    r.id = ReportStore::newId(1);
    runSync(runCheck(*legacy_, *enhanced_, std::move(o), r));
    return r;
  }

  uint64_t divergent(const Report& r, DivergenceKind kind) {
    auto it = r.divergent.find(kind);
    return it == r.divergent.end() ? 0 : it->second;
  }

  TempDir dir_;
  std::unique_ptr<LmdbStore> legacy_, enhanced_;
};

TEST_F(CheckerTest, EmptyStoresAreClean) {
  Report r = check(options());
  EXPECT_EQ(r.state, "done");
  EXPECT_EQ(r.verdict(), "clean");
  EXPECT_EQ(r.compared, 0u);
}

TEST_F(CheckerTest, SeededDivergenceIsCountedExactlyThenRepaired) {
  constexpr int kKeys = 10000, kEach = 37;
  std::vector<std::pair<std::string, std::string>> all;
  for (int i = 0; i < kKeys; ++i) all.emplace_back(key(i), lockValue(i, 100 + i));
  put(*legacy_, 0, all);
  put(*enhanced_, 0, all);
  // 37 keys only in legacy, 37 only in enhanced, 37 with another holder in enhanced.
  for (int i = 0; i < kEach; ++i) del(*enhanced_, 0, key(i));
  std::vector<std::pair<std::string, std::string>> extra, changed;
  for (int i = 0; i < kEach; ++i) extra.emplace_back("pr/acme/extra/" + std::to_string(i) + "/default", lockValue(i, 7));
  for (int i = 100; i < 100 + kEach; ++i) changed.emplace_back(key(i), lockValue(i, 999));
  put(*enhanced_, 0, extra);
  put(*enhanced_, 0, changed);
  // The same JSON with its fields in another order is not a divergence.
  put(*enhanced_, 0, {{key(500), R"({"Pull":{"Num":600},"Project":{"Workspace":"default","Path":"mod500",)"
                                  R"("RepoFullName":"acme/infra"},"Time":"2026-11-22T01:00:00Z",)"
                                  R"("User":{"Username":"alice"}})"}});

  Report r = check(options());
  ASSERT_EQ(r.state, "done") << r.error;
  EXPECT_EQ(divergent(r, DivergenceKind::kMissingInEnhanced), 37u);
  EXPECT_EQ(divergent(r, DivergenceKind::kMissingInLegacy), 37u);
  EXPECT_EQ(divergent(r, DivergenceKind::kValueMismatch), 37u);
  EXPECT_EQ(r.verdict(), "divergent");
  EXPECT_EQ(r.compared, uint64_t{kKeys + kEach});
  EXPECT_EQ(r.matched, uint64_t{kKeys - 2 * kEach});
  EXPECT_EQ(r.legacy.keys, uint64_t{kKeys});
  EXPECT_EQ(r.enhanced.keys, uint64_t{kKeys});
  EXPECT_EQ(r.legacy.by_class.at("project-lock"), uint64_t{kKeys});
  ASSERT_EQ(r.divergences.size(), 3u * kEach);
  for (const auto& d : r.divergences) {
    EXPECT_EQ(d.owner, "legacy");
    if (d.kind == DivergenceKind::kValueMismatch) {
      ASSERT_TRUE(d.legacy && d.enhanced);
      EXPECT_NE(d.enhanced->find("999"), std::string::npos);
    }
  }
  std::string md = renderMarkdown(r);
  EXPECT_NE(md.find("**Verdict: divergent**"), std::string::npos);
  EXPECT_NE(md.find("## Examples: missing_in_legacy"), std::string::npos);
  EXPECT_NE(renderHtml(r).find("id=\"verdict\">divergent<"), std::string::npos);

  Report repaired = check(options(/*repair=*/true));
  EXPECT_EQ(repaired.repaired, 3u * kEach);
  EXPECT_EQ(repaired.verdict(), "repaired");
  Report again = check(options());
  EXPECT_EQ(again.verdict(), "clean") << renderMarkdown(again);
  EXPECT_EQ(again.matched, uint64_t{kKeys});
}

TEST_F(CheckerTest, KeysInEveryDatabaseAreCompared) {
  put(*legacy_, 1, {{"pr/x/y/default", lockValue(1, 1)}});
  Report r = check(options());
  EXPECT_EQ(divergent(r, DivergenceKind::kMissingInEnhanced), 1u);
  ASSERT_EQ(r.divergences.size(), 1u);
  EXPECT_EQ(r.divergences[0].db, 1);
}

// A writer updates legacy, then enhanced a few milliseconds later, over and over, during the
// check: the first round sees keys differ, the rechecks see them agree.
// A key that differs in the first round and is gone from both stores by the recheck (an unlock
// in flight) was never a key to compare: it is neither matched nor divergent, and the count of
// compared keys leaves it out, so compared = matched + divergent still holds.
TEST_F(CheckerTest, AKeyGoneFromBothByTheRecheckIsNotCounted) {
  put(*legacy_, 0, {{key(1), lockValue(1, 1)}, {key(2), lockValue(2, 1)}, {key(3), lockValue(3, 1)}});
  put(*enhanced_, 0, {{key(1), lockValue(1, 1)}, {key(3), lockValue(3, 1)}});
  put(*legacy_, 0, {{key(4), lockValue(4, 1)}});  // missing in enhanced, and stays so
  CheckOptions o = options();
  bool removed = false;
  o.on_progress = [&](const Report& r) {
    if (removed || r.progress.rfind("rechecking", 0) != 0) return;
    removed = true;
    del(*legacy_, 0, key(2));  // the unlock lands in legacy; enhanced never had the key
  };
  Report r = check(o);
  ASSERT_TRUE(removed) << "the check never rechecked";
  EXPECT_EQ(r.matched, 2u);
  EXPECT_EQ(r.totalDivergent(), 1u);
  EXPECT_EQ(r.compared, 3u);
}

TEST_F(CheckerTest, WritesInFlightAreNotReportedOnceRoundsSettle) {
  constexpr int kKeys = 2000, kHotKeys = 4;
  std::vector<std::pair<std::string, std::string>> all;
  for (int i = 0; i < kKeys; ++i) all.emplace_back(key(i), lockValue(i, 1));
  put(*legacy_, 0, all);
  put(*enhanced_, 0, all);

  auto writer = [this](std::atomic<bool>* stop, int* writes) -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int n = 0; !*stop && n < 100000; ++n) {
      const int i = n % kHotKeys;
      std::string v = lockValue(i, 2 + n);
      auto a = legacy_->put(PutRequest{.key = key(i), .value = v});
      co_await std::move(a);
      timer.expires_after(std::chrono::milliseconds(5));  // the write is "in flight" meanwhile
      co_await timer.async_wait(asio::use_awaitable);
      auto b = enhanced_->put(PutRequest{.key = key(i), .value = v});
      co_await std::move(b);
      ++*writes;
    }
  };
  auto test = [&]() -> asio::awaitable<Report> {
    std::atomic<bool> stop{false};
    int writes = 0;
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, writer(&stop, &writes), asio::detached);
    CheckOptions o = options();
    o.rounds = 4;
    o.page_size = 50;  // a slow first round, so it overlaps many writes
    o.recheck_delay = std::chrono::milliseconds(50);
    // Without rechecks the in-flight writes do show up (within a bounded number of tries): the
    // test can tell the difference.
    bool seen_in_one_round = false;
    for (int attempt = 0; attempt < 200 && !seen_in_one_round; ++attempt) {
      CheckOptions single = o;
      single.rounds = 1;
      Report first_round_only;
      first_round_only.id = "single";
      co_await runCheck(*legacy_, *enhanced_, single, first_round_only);
      seen_in_one_round = first_round_only.totalDivergent() > 0;
    }
    Report r;
    r.id = "rounds";
    o.on_progress = [&](const Report& now) {
      if (now.rounds >= 2) stop = true;  // writes stop before the rechecks
    };
    co_await runCheck(*legacy_, *enhanced_, o, r);
    stop = true;
    asio::steady_timer settle(ex, std::chrono::milliseconds(20));
    co_await settle.async_wait(asio::use_awaitable);
    EXPECT_GT(writes, 0);
    EXPECT_TRUE(seen_in_one_round);
    co_return r;
  };
  Report r = runSync(test());
  EXPECT_EQ(r.state, "done") << r.error;
  EXPECT_EQ(r.verdict(), "clean") << renderMarkdown(r);
}

TEST_F(CheckerTest, AStoreErrorFailsTheCheckWithTheReason) {
  put(*legacy_, 0, {{key(1), lockValue(1, 1)}});
  testing::FaultyStore down(*enhanced_);  // a store that stops answering
  down.setFailing(true);
  Report r;
  r.id = "r";
  runSync(runCheck(*legacy_, down, options(), r));
  EXPECT_EQ(r.state, "failed");
  EXPECT_EQ(r.verdict(), "failed");
  EXPECT_NE(r.error.find("enhanced"), std::string::npos) << r.error;
}

TEST_F(CheckerTest, ChecksOnlyTheDatabasesBothStoresHave) {
  put(*legacy_, 1, {{key(1), lockValue(1, 1)}});
  CheckOptions o = options();
  o.databases = 16;  // the stores have 2
  Report r = check(o);
  EXPECT_EQ(r.state, "done") << r.error;
  EXPECT_EQ(r.totalDivergent(), 1u);
}

TEST(Report, JsonRoundTripKeepsEveryField) {
  Report r;
  r.id = "20261122T013500.123Z-0001";
  r.state = "done";
  r.mode = "offline";
  r.repair = true;
  r.started_unix_ms = 1000;
  r.finished_unix_ms = 2500;
  r.rounds = 3;
  r.legacy = {.store = "redis", .keys = 5, .by_class = {{"project-lock", 4}, {"other", 1}}};
  r.enhanced = {.store = "lmdb", .keys = 4, .by_class = {{"project-lock", 4}}};
  r.compared = 5;
  r.matched = 4;
  r.divergent[DivergenceKind::kMissingInEnhanced] = 1;
  r.repaired = 1;
  r.divergences.push_back({.kind = DivergenceKind::kMissingInEnhanced, .db = 0, .key = "other",
                           .legacy = "v", .enhanced = std::nullopt, .owner = "legacy"});
  std::string text = boost::json::serialize(reportToJson(r));
  auto back = reportFromJson(text);
  ASSERT_TRUE(back.isOk()) << back.status().message();
  EXPECT_EQ(boost::json::serialize(reportToJson(*back)), text);
  EXPECT_EQ(back->verdict(), "repaired");
}

TEST(Report, InvalidJsonIsRefusedWithAReason) {
  for (std::string_view bad : {"", "[]", "{}", R"({"id":"x","state":"sideways"})",
                               R"({"id":"x","state":"done","counts":{"matched":-1}})",
                               R"({"id":"x","state":"done","divergences":[{"kind":"odd"}]})"}) {
    auto r = reportFromJson(bad);
    EXPECT_FALSE(r.isOk()) << bad;
  }
}

TEST(Report, MarkdownAndHtmlEscapeKeysAndValues) {
  Report r;
  r.id = "r1";
  r.state = "done";
  r.divergent[DivergenceKind::kValueMismatch] = 1;
  r.divergences.push_back({.kind = DivergenceKind::kValueMismatch, .db = 0, .key = "pr/<script>|x",
                           .legacy = "a|b", .enhanced = "<b>", .owner = "legacy"});
  std::string html = renderHtml(r);
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_NE(html.find("pr/&lt;script&gt;|x"), std::string::npos);
  std::string md = renderMarkdown(r);
  EXPECT_NE(md.find("pr/<script>\\|x"), std::string::npos);
  EXPECT_NE(md.find("a\\|b"), std::string::npos);
}

TEST(ReportStore, KeepsTheNewestAndRefusesPathsAsIds) {
  TempDir dir;
  auto store = std::move(ReportStore::open(dir.file("reports"), 3).value());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    Report r;
    r.id = ReportStore::newId(1000 + i);
    r.state = i == 4 ? "failed" : "done";
    ASSERT_TRUE(store->save(r).isOk());
    ids.push_back(r.id);
  }
  auto list = store->list();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id, ids[4]);
  EXPECT_FALSE(store->load(ids[0]).has_value());
  EXPECT_EQ(store->load("latest")->id, ids[4]);
  EXPECT_EQ(store->latestDone()->id, ids[3]);
  EXPECT_FALSE(store->load("../control").has_value());
  Report bad;
  bad.id = "../../etc/passwd";
  EXPECT_FALSE(store->save(bad).isOk());
}

TEST(SameValue, ComparesJsonIgnoringFieldOrder) {
  EXPECT_TRUE(sameValue(R"({"a":1,"b":[1,2]})", R"({"b":[1,2],"a":1})"));
  EXPECT_FALSE(sameValue(R"({"a":1})", R"({"a":2})"));
  EXPECT_FALSE(sameValue(R"({"b":[1,2]})", R"({"b":[2,1]})"));
  EXPECT_TRUE(sameValue("not json", "not json"));
  EXPECT_FALSE(sameValue("not json", "not json "));
}

}  // namespace
}  // namespace lockshift
