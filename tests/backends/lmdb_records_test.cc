// LmdbStore with enhanced records (LmdbOptions::records): values read back byte for byte, fencing
// tokens and acquired-at, the repository and pull indexes, the format marker, and a property that
// random writes keep the indexes equal to the values and answer exactly as a plain store does.

#include <gtest/gtest.h>
#include <lmdb.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "backends/lmdb_records.h"
#include "backends/lmdb_store.h"
#include "backends/lmdb_txn.h"
#include "backends/lock_records.h"
#include "tests/backends/lmdb_test_fixture.h"
#include "tests/backends/name_index_checks.h"

namespace lockshift::testing {
namespace {

using Condition = PutRequest::Condition;
using Outcome = PutResult::Outcome;

std::string jsonString(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A ProjectLock value for any repository name (JSON-escaped, so NUL arrives as \u0000).
std::string lockFor(std::string_view repo, int64_t pull, std::string_view user,
                    std::string_view workspace = "default",
                    std::string_view time = "2026-11-21T10:00:00Z") {
  return R"({"Project":{"ProjectName":"","RepoFullName":)" + jsonString(repo) +
         R"(,"Path":"."},"Pull":{"Num":)" + std::to_string(pull) + R"(,"BaseRepo":{"FullName":)" +
         jsonString(repo) + R"(}},"User":{"Username":)" + jsonString(user) +
         R"(,"Teams":null},"Workspace":)" + jsonString(workspace) + R"(,"Time":)" +
         jsonString(time) + "}";
}

std::string keyFor(std::string_view repo, std::string_view workspace = "default") {
  return "pr/" + std::string(repo) + "/./" + std::string(workspace) + "/";
}

const std::string kCommandLock = R"({"LockMetadata":{"UnixTime":1},"CommandName":1})";

int64_t nowUnixMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

class LmdbRecordsTest : public LmdbStoreTest {
 protected:
  LmdbRecordsTest() { options_.records = true; }  // before SetUp() opens the store

  LockRecord record(const std::string& key, int db = 0) {
    auto found = await(store_->getRecord(db, key));
    EXPECT_TRUE(found.isOk()) << found.status().toString();
    EXPECT_TRUE(found.isOk() && found->has_value()) << "no record for " << key;
    return found.isOk() && found->has_value() ? **found : LockRecord{};
  }
  uint64_t token(const std::string& key, int db = 0) { return record(key, db).token; }

  static std::vector<std::string> keysOf(const Result<std::vector<LockRecord>>& records) {
    EXPECT_TRUE(records.isOk()) << records.status().toString();
    std::vector<std::string> keys;
    if (records.isOk()) {
      for (const LockRecord& record : *records) keys.push_back(record.key);
    }
    return keys;
  }
  std::vector<std::string> byRepo(const std::string& repo, int db = 0) {
    return keysOf(await(store_->locksByRepo(db, repo)));
  }
  std::vector<std::string> byPull(const std::string& repo, int64_t pull, int db = 0) {
    return keysOf(await(store_->locksByPull(db, repo, pull)));
  }

  // Closes the store and opens the environment with `records`; the open's status.
  Status reopenAs(bool records) {
    store_.reset();
    LmdbOptions options = options_;
    options.records = records;
    auto opened = LmdbStore::open(options);
    if (!opened.isOk()) return opened.status();
    store_ = std::move(opened).value();
    return Status::ok();
  }

  // The repository, pull and name indexes as stored: (index key, store key) pairs, read with LMDB
  // itself while the store is closed, so entries the store's own reads would skip are seen too.
  std::set<std::pair<std::string, std::string>> storedIndex() {
    store_.reset();
    std::set<std::pair<std::string, std::string>> entries;
    MDB_env* env = nullptr;
    EXPECT_EQ(mdb_env_create(&env), 0);
    mdb_env_set_maxdbs(env, 64);
    mdb_env_set_mapsize(env, options_.map_size);
    MDB_txn* txn = nullptr;
    MDB_dbi dbi;
    MDB_cursor* cursor = nullptr;
    if (mdb_env_open(env, options_.path.c_str(), MDB_RDONLY, 0600) == 0 &&
        mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) == 0 &&
        mdb_dbi_open(txn, lmdb::kIndexDbName, MDB_DUPSORT, &dbi) == 0 &&
        mdb_cursor_open(txn, dbi, &cursor) == 0) {
      MDB_val k, v;
      while (mdb_cursor_get(cursor, &k, &v, MDB_NEXT) == 0) {
        if (lmdb::asView(k).starts_with('N')) {  // the name index holds the key itself
          entries.emplace(lmdb::asView(k), lmdb::asView(v));
          continue;
        }
        uint64_t hash;
        std::string_view key;
        EXPECT_TRUE(lmdb::decodeKey(v, &hash, &key));
        entries.emplace(lmdb::asView(k), key);
      }
    } else {
      ADD_FAILURE() << "cannot read the index of " << options_.path;
    }
    if (cursor != nullptr) mdb_cursor_close(cursor);
    if (txn != nullptr) mdb_txn_abort(txn);
    mdb_env_close(env);
    reopen();
    return entries;
  }

  // What storedIndex() holds for these (db, key, value) entries.
  static std::set<std::pair<std::string, std::string>> expectedIndex(
      const std::map<std::pair<int, std::string>, std::string>& entries) {
    std::set<std::pair<std::string, std::string>> expected;
    for (const auto& [slot, value] : entries) {
      if (slot.second.starts_with("pr/")) {
        const char db = static_cast<char>(slot.first);  // tests use dbs below 128
        expected.emplace(std::string("N\0\0\0", 4) + db, slot.second);
      }
      auto holder = records::holderOf(value);
      if (!holder) continue;
      expected.emplace(lmdb::repoIndexKey(slot.first, holder->repo), slot.second);
      expected.emplace(lmdb::pullIndexKey(slot.first, holder->repo, holder->pull_num),
                       slot.second);
    }
    return expected;
  }

  // A plain store in another directory of this test, for comparisons.
  std::unique_ptr<LmdbStore> openPlain() {
    LmdbOptions options = options_;
    options.path = dir_ + "/plain";
    options.records = false;
    auto opened = LmdbStore::open(options);
    EXPECT_TRUE(opened.isOk()) << opened.status().toString();
    return opened.isOk() ? std::move(opened).value() : nullptr;
  }
};

using Keys = std::vector<std::string>;

TEST_F(LmdbStoreTest, PlainStoreKeepsNoRecords) {
  EXPECT_FALSE(store_->hasRecords());
  EXPECT_EQ(await(store_->getRecord(0, "k")).status().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(await(store_->locksByRepo(0, "acme/infra")).status().code(), ErrorCode::kUnsupported);
  EXPECT_EQ(await(store_->locksByPull(0, "acme/infra", 1)).status().code(),
            ErrorCode::kUnsupported);
}

TEST_F(LmdbRecordsTest, GetReturnsTheValueByteForByte) {
  EXPECT_TRUE(store_->hasRecords());
  const std::vector<std::pair<std::string, std::string>> entries = {
      {keyFor("acme/infra"), lockFor("acme/infra", 12, "alice")},
      {std::string("nul\0key", 7), std::string("a\0b\r\nc\0", 7)},
      {"", "the empty key"},
      {"empty value", ""},
      {"global/apply/lock", kCommandLock},
      {"big", std::string(200 * 1024, 'x') + std::string("\0\r\n", 3)},
  };
  for (const auto& [key, value] : entries) ASSERT_TRUE(put(key, value).isOk());
  for (const auto& [key, value] : entries) {
    EXPECT_EQ(read(key), value) << key;
    EXPECT_EQ(record(key).value, value) << key;
    EXPECT_EQ(record(key).key, key);
  }
  EXPECT_FALSE(await(store_->getRecord(0, "missing"))->has_value());
  EXPECT_EQ(await(store_->getRecord(16, "k")).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(LmdbRecordsTest, RecordHoldsTheHolder) {
  const std::string key = keyFor("acme/infra");
  ASSERT_TRUE(put(key, lockFor("acme/infra", 12, "alice")).isOk());
  LockRecord held = record(key);
  EXPECT_EQ(held.pull_num, std::optional<int64_t>(12));
  EXPECT_EQ(held.user, "alice");
  EXPECT_EQ(held.repo, "acme/infra");
  EXPECT_GT(held.token, 0u);
}

TEST_F(LmdbRecordsTest, TokenIncreasesOnEveryGrantAndStaysOnReacquire) {
  const std::string key = keyFor("acme/infra");
  ASSERT_TRUE(put(key, lockFor("acme/infra", 12, "alice")).isOk());
  const uint64_t first = token(key);
  // The same holder again, with a new timestamp: Atlantis's retried SET keeps the grant.
  ASSERT_TRUE(put(key, lockFor("acme/infra", 12, "alice", "default", "later")).isOk());
  EXPECT_EQ(token(key), first);
  ASSERT_TRUE(put(key, lockFor("acme/infra", 13, "bob")).isOk());
  const uint64_t other_pull = token(key);
  EXPECT_GT(other_pull, first);
  ASSERT_TRUE(put(key, "not a lock").isOk());
  const uint64_t not_a_lock = token(key);
  EXPECT_GT(not_a_lock, other_pull);
  ASSERT_TRUE(put(key, "not a lock").isOk());  // overwriting a value that is not a lock grants
  const uint64_t again = token(key);
  EXPECT_GT(again, not_a_lock);
  ASSERT_TRUE(put(key, lockFor("acme/infra", 13, "bob")).isOk());
  const uint64_t lock_again = token(key);
  EXPECT_GT(lock_again, again);
  ASSERT_TRUE(put("another", "v").isOk());  // one counter for every key
  EXPECT_GT(token("another"), lock_again);
  ASSERT_EQ(del({key}).value(), 1);
  ASSERT_TRUE(put(key, lockFor("acme/infra", 13, "bob")).isOk());
  EXPECT_GT(token(key), token("another"));
}

TEST_F(LmdbRecordsTest, AcquiredAtIsSetAtGrantAndKeptOnReacquire) {
  const std::string key = keyFor("acme/infra");
  const int64_t before = nowUnixMs();
  ASSERT_TRUE(put(key, lockFor("acme/infra", 12, "alice")).isOk());
  const int64_t granted = record(key).acquired_at_unix_ms;
  EXPECT_GE(granted, before);
  EXPECT_LE(granted, nowUnixMs());

  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(put(key, lockFor("acme/infra", 12, "alice", "default", "later")).isOk());
  EXPECT_EQ(record(key).acquired_at_unix_ms, granted);

  const int64_t handover = nowUnixMs();
  ASSERT_TRUE(put(key, lockFor("acme/infra", 13, "bob")).isOk());
  EXPECT_GE(record(key).acquired_at_unix_ms, handover);
  EXPECT_GT(record(key).acquired_at_unix_ms, granted);
}

TEST_F(LmdbRecordsTest, TokensSurviveReopenAndKeepIncreasing) {
  ASSERT_TRUE(put("a", "1").isOk());
  ASSERT_TRUE(put("b", lockFor("acme/infra", 1, "alice")).isOk());
  const LockRecord b = record("b");
  reopen();
  EXPECT_EQ(record("b").token, b.token);
  EXPECT_EQ(record("b").acquired_at_unix_ms, b.acquired_at_unix_ms);
  EXPECT_EQ(byRepo("acme/infra"), Keys{"b"});
  ASSERT_TRUE(put("c", "3").isOk());
  EXPECT_GT(token("c"), b.token);
  ASSERT_TRUE(put("a", "again").isOk());
  EXPECT_GT(token("a"), token("c"));
}

TEST_F(LmdbRecordsTest, IndexesFollowPutsHolderChangesAndDeletes) {
  const std::string infra = keyFor("acme/infra");
  const std::string staging = keyFor("acme/infra", "staging");
  const std::string app = keyFor("acme/app");
  ASSERT_TRUE(put(infra, lockFor("acme/infra", 12, "alice")).isOk());
  ASSERT_TRUE(put(staging, lockFor("acme/infra", 12, "alice", "staging")).isOk());
  ASSERT_TRUE(put(app, lockFor("acme/app", 12, "alice")).isOk());
  EXPECT_EQ(byRepo("acme/infra"), (Keys{infra, staging}));
  EXPECT_EQ(byPull("acme/infra", 12), (Keys{infra, staging}));
  EXPECT_EQ(byPull("acme/app", 12), Keys{app});
  EXPECT_EQ(byPull("acme/infra", 13), Keys{});
  EXPECT_EQ(byRepo("acme"), Keys{});

  // Another pull takes the staging lock: it moves between pull entries, stays under the repo.
  ASSERT_TRUE(put(staging, lockFor("acme/infra", 13, "bob", "staging")).isOk());
  EXPECT_EQ(byPull("acme/infra", 12), Keys{infra});
  EXPECT_EQ(byPull("acme/infra", 13), Keys{staging});
  EXPECT_EQ(byRepo("acme/infra"), (Keys{infra, staging}));
  auto moved = await(store_->locksByPull(0, "acme/infra", 13));
  ASSERT_TRUE(moved.isOk() && moved->size() == 1u);
  EXPECT_EQ((*moved)[0].value, lockFor("acme/infra", 13, "bob", "staging"));
  EXPECT_EQ((*moved)[0].user, "bob");

  // A value of another repository under the same key moves it between repos.
  ASSERT_TRUE(put(app, lockFor("acme/infra", 12, "alice")).isOk());
  EXPECT_EQ(byRepo("acme/app"), Keys{});
  EXPECT_EQ(byPull("acme/infra", 12), (Keys{app, infra}));
  // A value without a holder leaves the indexes.
  ASSERT_TRUE(put(app, "not a lock").isOk());
  EXPECT_EQ(byPull("acme/infra", 12), Keys{infra});

  EXPECT_EQ(del({infra, "missing"}).value(), 1);
  EXPECT_EQ(byPull("acme/infra", 12), Keys{});
  EXPECT_EQ(byRepo("acme/infra"), Keys{staging});

  auto kept = await(store_->deleteIfOwnedByPull(0, staging, "12"));
  ASSERT_TRUE(kept.isOk());
  EXPECT_FALSE(kept->has_value());
  EXPECT_EQ(byRepo("acme/infra"), Keys{staging});
  auto unlocked = await(store_->deleteIfOwnedByPull(0, staging, "13"));
  ASSERT_TRUE(unlocked.isOk());
  EXPECT_EQ(*unlocked, std::optional<std::string>(lockFor("acme/infra", 13, "bob", "staging")));
  EXPECT_EQ(byRepo("acme/infra"), Keys{});
  EXPECT_EQ(byPull("acme/infra", 13), Keys{});
  // Nothing is left behind that the reads above would have had to skip; `app` is still there,
  // a value without a holder, so only its name remains.
  EXPECT_EQ(storedIndex(), (std::set<std::pair<std::string, std::string>>{{std::string("N\0\0\0\0", 5), app}}));
}

TEST_F(LmdbRecordsTest, RefusedWritesLeaveRecordAndIndexesUnchanged) {
  const std::string key = keyFor("acme/infra");
  ASSERT_TRUE(put(key, lockFor("acme/infra", 12, "alice")).isOk());
  const LockRecord held = record(key);

  PutRequest strict = putRequest(key, lockFor("acme/infra", 13, "bob"));
  strict.strict_owner = parseProjectLock(strict.value).value();
  strict.return_previous = true;
  auto refused = put(strict);
  ASSERT_TRUE(refused.isOk());
  EXPECT_EQ(refused->outcome, Outcome::kLockedByOther);
  EXPECT_EQ(refused->holder, "pull #12 (alice)");
  EXPECT_EQ(refused->previous, std::optional<std::string>(lockFor("acme/infra", 12, "alice")));

  PutRequest nx = putRequest(key, lockFor("acme/infra", 14, "carol"));
  nx.condition = Condition::kIfAbsent;
  EXPECT_EQ(put(nx)->outcome, Outcome::kConditionFailed);

  EXPECT_EQ(byPull("acme/infra", 12), Keys{key});
  EXPECT_EQ(byPull("acme/infra", 13), Keys{});
  EXPECT_EQ(byPull("acme/infra", 14), Keys{});
  EXPECT_EQ(record(key).token, held.token);
  EXPECT_EQ(record(key).value, held.value);
  // The refusals took no token: the next grant is the next one after the lock's.
  ASSERT_TRUE(put("next", "v").isOk());
  EXPECT_EQ(token("next"), held.token + 1);
}

TEST_F(LmdbRecordsTest, DatabasesHaveSeparateIndexes) {
  const std::string key = keyFor("acme/infra");
  ASSERT_TRUE(put(key, lockFor("acme/infra", 12, "alice"), 0).isOk());
  ASSERT_TRUE(put(key, lockFor("acme/infra", 13, "bob"), 3).isOk());
  EXPECT_EQ(byPull("acme/infra", 12, 0), Keys{key});
  EXPECT_EQ(byPull("acme/infra", 12, 3), Keys{});
  EXPECT_EQ(byPull("acme/infra", 13, 3), Keys{key});
  EXPECT_EQ(byRepo("acme/infra", 15), Keys{});
  ASSERT_EQ(del({key}, 3).value(), 1);
  EXPECT_EQ(byRepo("acme/infra", 3), Keys{});
  EXPECT_EQ(byRepo("acme/infra", 0), Keys{key});
  EXPECT_EQ(await(store_->locksByRepo(16, "acme/infra")).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(LmdbRecordsTest, RepositoryNamesMayHoldAnyBytes) {
  const std::vector<std::string> repos = {
      "acme",
      "acme/infra",
      "acme/infra/sub group",
      "acme corp/infra team",
      std::string("acme\0infra", 10),
      std::string("acme/infra\0", 11),
      "",
      std::string(600, 'r'),        // too long for an index key: indexed by its hash
      std::string(600, 'r') + "s",  // shares the first 600 bytes
  };
  for (size_t i = 0; i < repos.size(); ++i) {
    ASSERT_TRUE(put("pr/" + std::to_string(i), lockFor(repos[i], 7, "alice")).isOk());
  }
  for (size_t i = 0; i < repos.size(); ++i) {
    EXPECT_EQ(byRepo(repos[i]), Keys{"pr/" + std::to_string(i)}) << i;
    EXPECT_EQ(byPull(repos[i], 7), Keys{"pr/" + std::to_string(i)}) << i;
    EXPECT_EQ(record("pr/" + std::to_string(i)).repo, repos[i]) << i;
  }
  EXPECT_EQ(byRepo("acme/"), Keys{});
  EXPECT_EQ(byRepo(std::string(601, 'r')), Keys{});
  std::map<std::pair<int, std::string>, std::string> entries;
  for (size_t i = 0; i < repos.size(); ++i) {
    entries[{0, "pr/" + std::to_string(i)}] = lockFor(repos[i], 7, "alice");
  }
  EXPECT_EQ(storedIndex(), expectedIndex(entries));
}

TEST_F(LmdbRecordsTest, ValuesWithoutAHolderHaveRecordsButNoIndexEntries) {
  const std::string lock = keyFor("acme/infra");
  ASSERT_TRUE(put(lock, lockFor("acme/infra", 12, "alice")).isOk());
  ASSERT_TRUE(put("global/apply/lock", kCommandLock).isOk());
  ASSERT_TRUE(put("github.com::acme/infra::12", "not json").isOk());
  for (const std::string key : {"global/apply/lock", "github.com::acme/infra::12"}) {
    LockRecord other = record(key);
    EXPECT_EQ(other.value, read(key));
    EXPECT_GT(other.token, 0u);
    EXPECT_GT(other.acquired_at_unix_ms, 0);
    EXPECT_FALSE(other.pull_num.has_value());
    EXPECT_EQ(other.user, "");
    EXPECT_EQ(other.repo, "");
  }
  EXPECT_EQ(byRepo("acme/infra"), Keys{lock});
  EXPECT_EQ(byRepo(""), Keys{});
  EXPECT_EQ(byPull("", 1), Keys{});
  EXPECT_EQ(count(), 3);
}

TEST_F(LmdbRecordsTest, RecordsEnvironmentIsNotOpenedPlain) {
  ASSERT_TRUE(put("k", "v").isOk());
  Status plain = reopenAs(false);
  ASSERT_EQ(plain.code(), ErrorCode::kInvalidArgument) << plain.toString();
  EXPECT_NE(plain.message().find(options_.path), std::string::npos) << plain.message();
  EXPECT_NE(plain.message().find("\"records\""), std::string::npos) << plain.message();
  EXPECT_NE(plain.message().find("\"plain\""), std::string::npos) << plain.message();
  // Refused without a change: it opens with records as before.
  ASSERT_TRUE(reopenAs(true).isOk());
  EXPECT_EQ(read("k"), "v");
  // Even emptied, it stays an environment of records (its fencing tokens live on).
  ASSERT_EQ(del({"k"}).value(), 1);
  EXPECT_EQ(reopenAs(false).code(), ErrorCode::kInvalidArgument);
  ASSERT_TRUE(reopenAs(true).isOk());
}

TEST_F(LmdbStoreTest, PlainEnvironmentIsNotOpenedWithRecords) {
  ASSERT_TRUE(put("k", "v").isOk());
  store_.reset();
  options_.records = true;
  auto opened = LmdbStore::open(options_);
  ASSERT_FALSE(opened.isOk());
  EXPECT_EQ(opened.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(opened.status().message().find(options_.path), std::string::npos);
  EXPECT_NE(opened.status().message().find("\"plain\""), std::string::npos);
  EXPECT_NE(opened.status().message().find("\"records\""), std::string::npos);
  options_.records = false;
  reopen();
  EXPECT_EQ(read("k"), "v");
}

// An environment written before format markers existed: "db<N>" databases and nothing else.
TEST_F(LmdbStoreTest, EnvironmentWithoutMarkerButWithEntriesIsPlain) {
  store_.reset();
  const std::string old = dir_ + "/old";
  std::filesystem::create_directories(old);
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 16), 0);
  ASSERT_EQ(mdb_env_open(env, old.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  MDB_dbi dbi;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, "db0", MDB_CREATE, &dbi), 0);
  lmdb::EncodedKey key("k");
  MDB_val k = key.val();
  MDB_val v = lmdb::asVal("v");
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  options_.path = old;
  options_.records = true;
  EXPECT_EQ(LmdbStore::open(options_).status().code(), ErrorCode::kInvalidArgument);
  options_.records = false;
  reopen();
  EXPECT_EQ(read("k"), "v");
  store_.reset();
  options_.records = true;  // the marker written by the plain open says the same
  EXPECT_EQ(LmdbStore::open(options_).status().code(), ErrorCode::kInvalidArgument);
  options_.records = false;
  reopen();
}

TEST_F(LmdbRecordsTest, ScanAndCountAnswerAsInAPlainStore) {
  std::unique_ptr<LmdbStore> plain = openPlain();
  ASSERT_NE(plain, nullptr);
  for (int i = 0; i < 200; ++i) {
    std::string key = (i % 2 ? "pr/acme/" : "other/") + std::to_string(i);
    std::string value = lockFor("acme", i, "u");
    ASSERT_TRUE(put(key, value).isOk());
    ASSERT_TRUE(await(plain->put(putRequest(key, value))).isOk());
  }
  EXPECT_EQ(count(), 200);
  EXPECT_EQ(await(plain->count(0)).value(), 200);
  for (size_t page_size : {1, 7, 1000}) {
    for (std::string match : {"", "pr/*"}) {
      uint64_t cursor = 0;
      std::set<std::string> seen;
      do {
        auto mine = await(store_->scan(scanRequest(cursor, page_size, match)));
        auto theirs = await(plain->scan(scanRequest(cursor, page_size, match)));
        ASSERT_TRUE(mine.isOk() && theirs.isOk());
        EXPECT_EQ(mine->keys, theirs->keys);
        ASSERT_EQ(mine->next_cursor, theirs->next_cursor);
        for (const std::string& key : mine->keys) EXPECT_TRUE(seen.insert(key).second) << key;
        cursor = mine->next_cursor;
      } while (cursor != 0);
      EXPECT_EQ(seen.size(), match.empty() ? 200u : 100u);
    }
  }
  plain.reset();  // before io_ goes
}

// ---- Property: random writes keep the indexes equal to the values, and answer as plain. ----

using Model = std::map<std::pair<int, std::string>, std::string>;  // (db, key) -> value

const std::vector<std::string>& repos() {
  static const std::vector<std::string> kRepos = {"acme/infra", "acme/infra/sub", "acme corp/a b",
                                                  std::string("nul\0repo", 8)};
  return kRepos;
}

rc::Gen<std::string> genValue() {
  return rc::gen::oneOf(
      rc::gen::apply(
          [](const std::string& repo, int pull, const std::string& user, const std::string& ws,
             const std::string& time) { return lockFor(repo, pull, user, ws, time); },
          rc::gen::elementOf(repos()), rc::gen::inRange(1, 4),
          rc::gen::element<std::string>("alice", "bob"),
          rc::gen::element<std::string>("default", "staging"),
          rc::gen::element<std::string>("t1", "t2")),
      rc::gen::element(std::string(kCommandLock), std::string("not json"), std::string()));
}

class LmdbRecordsModelTest : public LmdbRecordsTest {
 protected:
  LmdbRecordsModelTest() { options_.sync = false; }
  void SetUp() override {
    LmdbRecordsTest::SetUp();
    plain_ = openPlain();
    ASSERT_NE(plain_, nullptr);
  }

  static int genDb() { return *rc::gen::inRange(0, 2); }
  static rc::Gen<std::string> keyGen() {
    return rc::gen::element<std::string>("pr/k0", "pr/k1", "pr/k2", "global/apply/lock");
  }

  std::optional<LockRecord> recordOrNothing(const std::string& key, int db) {
    auto found = await(store_->getRecord(db, key));
    RC_ASSERT(found.isOk());
    return found.value();
  }
  Keys indexed(const std::string& repo, std::optional<int64_t> pull, int db) {
    auto found = pull ? await(store_->locksByPull(db, repo, *pull))
                      : await(store_->locksByRepo(db, repo));
    RC_ASSERT(found.isOk());
    Keys keys;
    for (const LockRecord& record : *found) {
      RC_ASSERT(record.repo == repo);
      RC_ASSERT(!pull || record.pull_num == pull);
      keys.push_back(record.key);
    }
    return keys;
  }

  // A put on both stores: the same answer; in records, a new token exactly for each grant.
  void checkPut(Model& model) {
    PutRequest request = putRequest(*keyGen(), *genValue());
    request.db = genDb();
    request.condition = *rc::gen::element(Condition::kAlways, Condition::kAlways,
                                          Condition::kIfAbsent, Condition::kIfPresent);
    request.return_previous = *rc::gen::arbitrary<bool>();
    if (*rc::gen::arbitrary<bool>()) {
      if (auto identity = parseProjectLock(request.value); identity.isOk()) {
        request.strict_owner = *identity;
      }
    }
    std::optional<LockRecord> before = recordOrNothing(request.key, request.db);
    auto theirs = await(plain_->put(request));
    auto mine = put(request);
    RC_ASSERT(mine.isOk() && theirs.isOk());
    RC_ASSERT(mine->outcome == theirs->outcome);
    RC_ASSERT(mine->previous == theirs->previous);
    RC_ASSERT(mine->holder == theirs->holder);
    std::optional<LockRecord> after = recordOrNothing(request.key, request.db);
    if (mine->outcome != Outcome::kApplied) {
      RC_ASSERT(after.has_value() == before.has_value());
      if (after) RC_ASSERT(after->token == before->token && after->value == before->value);
      return;
    }
    RC_ASSERT(after.has_value());
    RC_ASSERT(after->value == request.value);
    std::optional<std::string_view> previous;
    if (before) previous = before->value;
    if (records::isNewGrant(previous, request.value)) {
      RC_ASSERT(after->token > last_token_);
      last_token_ = after->token;
    } else {
      RC_ASSERT(after->token == before->token);
      RC_ASSERT(after->acquired_at_unix_ms == before->acquired_at_unix_ms);
    }
    model[{request.db, request.key}] = request.value;
  }

  void checkDel(Model& model) {
    const int db = genDb();
    auto keys = *rc::gen::container<std::vector<std::string>>(*rc::gen::inRange(0, 3), keyGen());
    auto theirs = await(plain_->del(db, keys));
    auto mine = del(keys, db);
    RC_ASSERT(mine.isOk() && theirs.isOk());
    RC_ASSERT(mine.value() == theirs.value());
    for (const std::string& key : keys) model.erase({db, key});
  }

  void checkUnlock(Model& model) {
    const int db = genDb();
    const std::string key = *keyGen();
    const std::string pull = *rc::gen::element<std::string>("1", "2", "3", "2.0", "x");
    auto theirs = await(plain_->deleteIfOwnedByPull(db, key, pull));
    auto mine = await(store_->deleteIfOwnedByPull(db, key, pull));
    RC_ASSERT(mine.isOk() == theirs.isOk());
    if (!mine.isOk()) {
      RC_ASSERT(mine.status().code() == theirs.status().code());
      return;
    }
    RC_ASSERT(mine.value() == theirs.value());
    if (mine->has_value()) model.erase({db, key});
  }

  // Both indexes answer exactly the keys whose current value has that holder.
  void checkIndexes(const Model& model) {
    for (int db = 0; db < 2; ++db) {
      for (const std::string& repo : repos()) {
        std::map<int64_t, Keys> by_pull;
        Keys by_repo;
        for (const auto& [slot, value] : model) {
          auto holder = records::holderOf(value);
          if (slot.first != db || !holder || holder->repo != repo) continue;
          by_repo.push_back(slot.second);
          by_pull[holder->pull_num].push_back(slot.second);
        }
        RC_ASSERT(indexed(repo, std::nullopt, db) == by_repo);
        for (int64_t pull = 1; pull < 4; ++pull) {
          RC_ASSERT(indexed(repo, pull, db) == by_pull[pull]);
        }
      }
    }
    for (const auto& [slot, value] : model) RC_ASSERT(read(slot.second, slot.first) == value);
  }

  std::unique_ptr<LmdbStore> plain_;  // destroyed before the base class removes the directory
  uint64_t last_token_ = 0;
};

RC_GTEST_FIXTURE_PROP(LmdbRecordsModelTest, RandomWritesKeepIndexesAndTokens, ()) {
  Model model;
  const int steps = *rc::gen::inRange(1, 50);
  for (int step = 0; step < steps; ++step) {
    switch (*rc::gen::inRange(0, 4)) {
      case 0:
      case 1: checkPut(model); break;
      case 2: checkDel(model); break;
      case 3:
        if (*rc::gen::inRange(0, 6) == 0) {
          reopen();  // tokens and indexes survive a restart
        } else {
          checkUnlock(model);
        }
        break;
    }
    checkIndexes(model);
  }
  RC_ASSERT(storedIndex() == expectedIndex(model));
}

TEST_F(LmdbRecordsTest, NameIndexFollowsEveryWrite) {
  checkNameIndexFollowsWrites(*store_, [&](auto op) { return await(std::move(op)); });
}

TEST_F(LmdbRecordsTest, NameIndexIsPerDatabaseAndSurvivesReopen) {
  PutRequest in_one = putRequest("pr/b/x/default/p", "one");
  in_one.db = 1;
  ASSERT_TRUE(put(putRequest("pr/a/x/default/p", "zero")).isOk());
  ASSERT_TRUE(put(std::move(in_one)).isOk());
  for (int round = 0; round < 2; ++round) {
    EXPECT_EQ(*await(store_->keysWithPrefix(0, "pr/")), std::vector<std::string>{"pr/a/x/default/p"});
    EXPECT_EQ(*await(store_->keysWithPrefix(1, "pr/")), std::vector<std::string>{"pr/b/x/default/p"});
    reopen();
  }
  auto out_of_range = await(store_->keysWithPrefix(99, "pr/"));
  EXPECT_EQ(out_of_range.status().code(), ErrorCode::kInvalidArgument);
}

// An environment of records written before the name index existed has neither the "names" marker
// nor 'N' entries; opening it fills the index from the records.
TEST_F(LmdbRecordsTest, OpeningAnEnvironmentWithoutTheNameIndexBuildsIt) {
  ASSERT_TRUE(put(putRequest("pr/a/1/default/p", "one")).isOk());
  ASSERT_TRUE(put(putRequest("pr/a/2/default/p", "two")).isOk());
  ASSERT_TRUE(put(putRequest("global/apply/lock", kCommandLock)).isOk());
  PutRequest in_one = putRequest("pr/b/1/default/p", "three");
  in_one.db = 1;
  ASSERT_TRUE(put(std::move(in_one)).isOk());
  store_.reset();

  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  ASSERT_EQ(mdb_env_set_maxdbs(env, 64), 0);
  ASSERT_EQ(mdb_env_set_mapsize(env, options_.map_size), 0);
  ASSERT_EQ(mdb_env_open(env, options_.path.c_str(), 0, 0600), 0);
  MDB_txn* txn = nullptr;
  MDB_dbi meta, index;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, lmdb::kMetaDbName, 0, &meta), 0);
  ASSERT_EQ(mdb_dbi_open(txn, lmdb::kIndexDbName, MDB_DUPSORT, &index), 0);
  MDB_val marker = lmdb::asVal("names");
  ASSERT_EQ(mdb_del(txn, meta, &marker, nullptr), 0);
  for (uint8_t db : {0, 1}) {
    const std::string names_key = std::string("N\0\0\0", 4) + static_cast<char>(db);
    MDB_val k = lmdb::asVal(names_key);
    ASSERT_EQ(mdb_del(txn, index, &k, nullptr), 0) << "db " << int(db);
  }
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);

  reopen();
  EXPECT_EQ(*await(store_->keysWithPrefix(0, "pr/")),
            (std::vector<std::string>{"pr/a/1/default/p", "pr/a/2/default/p"}));
  EXPECT_EQ(*await(store_->keysWithPrefix(1, "pr/")), std::vector<std::string>{"pr/b/1/default/p"});
  // Built once: writes keep it from then on.
  ASSERT_EQ(del({"pr/a/1/default/p"}).value(), 1);
  reopen();
  EXPECT_EQ(*await(store_->keysWithPrefix(0, "pr/")), std::vector<std::string>{"pr/a/2/default/p"});
}

TEST_F(LmdbStoreTest, PlainStoreHasNoNameIndex) {
  auto names = await(store_->keysWithPrefix(0, "pr/"));
  ASSERT_FALSE(names.isOk());
  EXPECT_EQ(names.status().code(), ErrorCode::kUnsupported);
}

}  // namespace
}  // namespace lockshift::testing
