// LmdbStore's scan: stateless hash-order cursors that return every key present for the whole scan
// exactly once, through concurrent changes, restarts and runs of equal hashes.

#include <gtest/gtest.h>
#include <lmdb.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "backends/lmdb_store.h"
#include "common/stable_hash.h"
#include "tests/backends/lmdb_test_fixture.h"

namespace lockshift::testing {
namespace {

class LmdbScanTest : public LmdbStoreTest {
 protected:
  // Every key of db 0 in one page at a time; `between` runs after each page.
  std::vector<std::string> scanAll(size_t count, const std::string& match = "",
                                   const std::function<void()>& between = {}) {
    std::vector<std::string> keys;
    uint64_t cursor = 0;
    for (int pages = 0; pages < 100000; ++pages) {
      auto page = await(store_->scan(scanRequest(cursor, count, match)));
      EXPECT_TRUE(page.isOk()) << page.status().toString();
      if (!page.isOk()) break;
      for (const std::string& key : page->keys) {
        keys.push_back(key);
        // The next cursor is above every hash it returned.
        if (page->next_cursor != 0) {
          EXPECT_LT(stableHash64(key), page->next_cursor);
        }
        EXPECT_GE(stableHash64(key), cursor);
      }
      if (page->next_cursor == 0) return keys;
      EXPECT_GT(page->next_cursor, cursor);
      cursor = page->next_cursor;
      if (between) between();
    }
    ADD_FAILURE() << "scan did not end";
    return keys;
  }

  void putKeys(const std::vector<std::string>& keys) {
    for (const std::string& key : keys) ASSERT_TRUE(put(key, "v").isOk());
  }
};

std::vector<std::string> numberedKeys(const std::string& prefix, int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) keys.push_back(prefix + std::to_string(i));
  return keys;
}

std::map<std::string, int> tally(const std::vector<std::string>& keys) {
  std::map<std::string, int> seen;
  for (const std::string& key : keys) ++seen[key];
  return seen;
}

void expectExactlyOnce(const std::map<std::string, int>& seen,
                       const std::vector<std::string>& expected) {
  for (const std::string& key : expected) EXPECT_EQ(seen.count(key) ? seen.at(key) : 0, 1) << key;
}

TEST_F(LmdbScanTest, EmptyStoreEndsAtOnce) {
  auto page = await(store_->scan({}));
  ASSERT_TRUE(page.isOk());
  EXPECT_EQ(page->next_cursor, 0u);
  EXPECT_TRUE(page->keys.empty());
}

TEST_F(LmdbScanTest, FullScanReturnsEveryKeyOnceForAnyCount) {
  const auto keys = numberedKeys("pr/acme/infra/mod", 1000);
  putKeys(keys);
  for (size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{100}, size_t{5000}}) {
    auto scanned = scanAll(count);
    EXPECT_EQ(scanned.size(), keys.size()) << "count " << count;
    expectExactlyOnce(tally(scanned), keys);
  }
}

TEST_F(LmdbScanTest, CountIsHowManyEntriesAreExamined) {
  putKeys(numberedKeys("k", 50));
  auto page = await(store_->scan(scanRequest(0, 7)));
  ASSERT_TRUE(page.isOk());
  EXPECT_EQ(page->keys.size(), 7u);
  EXPECT_NE(page->next_cursor, 0u);
}

TEST_F(LmdbScanTest, MatchFiltersKeysAcrossPages) {
  const auto locks = numberedKeys("pr/acme/infra/", 300);
  putKeys(locks);
  putKeys(numberedKeys("github.com::acme/infra::", 300));
  putKeys({"global/apply/lock", "pr", "prx"});
  for (size_t count : {size_t{1}, size_t{10}, size_t{1000}}) {
    auto scanned = scanAll(count, "pr/*");
    EXPECT_EQ(scanned.size(), locks.size());
    expectExactlyOnce(tally(scanned), locks);
  }
  auto prefixed = tally(scanAll(10, "pr*"));
  EXPECT_EQ(prefixed.size(), locks.size() + 2);
  EXPECT_EQ(prefixed.count("prx"), 1u);
}

TEST_F(LmdbScanTest, ChangesDuringAScanNeverDuplicateAndKeepStableKeys) {
  const auto stable = numberedKeys("stable/", 1000);
  const auto doomed = numberedKeys("doomed/", 300);
  putKeys(stable);
  putKeys(doomed);
  int round = 0;
  size_t next_doomed = 0;
  auto churn = [&] {
    ++round;
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(put("new/" + std::to_string(round) + "/" + std::to_string(i), "v").isOk());
    }
    std::vector<std::string> gone;
    while (gone.size() < 3 && next_doomed < doomed.size()) gone.push_back(doomed[next_doomed++]);
    ASSERT_TRUE(del(gone).isOk());
  };
  auto scanned = scanAll(7, "", churn);
  ASSERT_GT(round, 50);
  auto seen = tally(scanned);
  for (const auto& [key, times] : seen) EXPECT_EQ(times, 1) << key;
  expectExactlyOnce(seen, stable);
}

TEST_F(LmdbScanTest, CursorSurvivesReopen) {
  const auto keys = numberedKeys("k", 500);
  putKeys(keys);
  auto first = await(store_->scan(scanRequest(0, 100)));
  ASSERT_TRUE(first.isOk());
  ASSERT_NE(first->next_cursor, 0u);
  std::vector<std::string> scanned = first->keys;

  reopen();
  uint64_t cursor = first->next_cursor;
  while (cursor != 0) {
    auto page = await(store_->scan(scanRequest(cursor, 100)));
    ASSERT_TRUE(page.isOk()) << page.status().toString();
    scanned.insert(scanned.end(), page->keys.begin(), page->keys.end());
    cursor = page->next_cursor;
  }
  EXPECT_EQ(scanned.size(), keys.size());
  expectExactlyOnce(tally(scanned), keys);
}

TEST_F(LmdbScanTest, CursorBeyondTheLastHashEnds) {
  putKeys(numberedKeys("k", 10));
  auto page = await(store_->scan(scanRequest(~uint64_t{0}, 10)));
  ASSERT_TRUE(page.isOk());
  EXPECT_EQ(page->next_cursor, 0u);
  EXPECT_TRUE(page->keys.empty());
}

// 64-bit collisions cannot be found by search, so entries sharing one hash are written straight
// into the environment in the store's on-disk layout (8-byte big-endian hash, then the key).
void writeRawEntries(const std::string& path, uint64_t hash, const std::vector<std::string>& keys) {
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 16), 0);
  ASSERT_EQ(mdb_env_open(env, path.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  MDB_dbi dbi;
  ASSERT_EQ(mdb_dbi_open(txn, "db0", 0, &dbi), 0);
  for (const std::string& key : keys) {
    std::string raw(8, '\0');
    for (int i = 0; i < 8; ++i) raw[i] = static_cast<char>(hash >> (56 - 8 * i));
    raw += key;
    MDB_val k{raw.size(), raw.data()};
    MDB_val v{1, const_cast<char*>("v")};
    ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  }
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
}

TEST_F(LmdbScanTest, RunsOfEqualHashesAreNeverSplit) {
  const auto keys = numberedKeys("k", 40);
  putKeys(keys);
  // A run of five colliding entries in the middle of the hash order.
  std::vector<uint64_t> hashes;
  for (const std::string& key : keys) hashes.push_back(stableHash64(key));
  std::sort(hashes.begin(), hashes.end());
  const uint64_t shared = hashes[20] + 1;
  const std::vector<std::string> colliding = {"collide-a", "collide-b", "collide-c", "collide-d",
                                              "collide-e"};
  store_.reset();
  writeRawEntries(options_.path, shared, colliding);
  reopen();
  ASSERT_EQ(count(), 45);

  for (size_t count : {size_t{1}, size_t{2}, size_t{3}}) {
    uint64_t cursor = 0;
    std::vector<std::string> all;
    int pages_with_run = 0;
    int pages = 0;
    do {
      ASSERT_LT(++pages, 1000) << "scan does not end at count " << count;
      auto page = await(store_->scan(scanRequest(cursor, count)));
      ASSERT_TRUE(page.isOk());
      int in_page = 0;
      for (const std::string& key : page->keys) in_page += key.rfind("collide-", 0) == 0;
      if (in_page > 0) {
        ++pages_with_run;
        EXPECT_EQ(in_page, 5) << "a run of equal hashes was split at count " << count;
        EXPECT_NE(page->next_cursor, shared);
      }
      all.insert(all.end(), page->keys.begin(), page->keys.end());
      cursor = page->next_cursor;
    } while (cursor != 0);
    EXPECT_EQ(pages_with_run, 1);
    EXPECT_EQ(all.size(), 45u);
    auto seen = tally(all);
    expectExactlyOnce(seen, keys);
    expectExactlyOnce(seen, colliding);
  }
  // A scan that starts at the run's hash returns all of it.
  auto page = await(store_->scan(scanRequest(shared, 1)));
  ASSERT_TRUE(page.isOk());
  EXPECT_EQ(page->keys, colliding);
}

}  // namespace
}  // namespace lockshift::testing
