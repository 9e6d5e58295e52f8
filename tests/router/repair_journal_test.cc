// The repair journal across a restart: every entry comes back, and one it cannot understand stops
// the open instead of being skipped (a skipped entry would unpin a key whose copy is behind).

#include <gtest/gtest.h>

#include <cstdio>
#include <set>

#include "common/stable_hash.h"
#include "router/repair_journal.h"
#include "tests/support/process.h"
#include "tests/support/run_sync.h"

namespace lockshift {
namespace {

using testing::runSync;

// Writes `key` = `value` into database `db` of the journal's environment at `path`, behind the
// journal's back, opening it with `lmdb_databases` databases.
Status writeRaw(const std::string& path, int lmdb_databases, int db, std::string key, std::string value) {
  LmdbOptions options;
  options.path = path;
  options.databases = lmdb_databases;
  options.map_size = size_t{256} << 20;
  auto raw = LmdbStore::open(options);
  if (!raw) return raw.status();
  PutRequest put;
  put.db = db;
  put.key = std::move(key);
  put.value = std::move(value);
  return runSync((*raw)->put(std::move(put))).status();
}

TEST(RepairJournal, EntriesSurviveAReopen) {
  testing::TempDir dir;
  const std::string path = dir.file("journal");
  {
    auto journal = RepairJournal::open(path, 4, 100).value();
    ASSERT_TRUE(runSync(journal->mark(0, "pr/a", StoreRole::kEnhanced)).isOk());
    ASSERT_TRUE(runSync(journal->mark(3, "pr/b", StoreRole::kLegacy)).isOk());
  }
  auto journal = RepairJournal::open(path, 4, 100);
  ASSERT_TRUE(journal.isOk()) << journal.status().toString();
  EXPECT_EQ((*journal)->depth(), 2u);
  EXPECT_EQ((*journal)->dirtyTarget(0, "pr/a"), StoreRole::kEnhanced);
  EXPECT_EQ((*journal)->dirtyTarget(3, "pr/b"), StoreRole::kLegacy);
  EXPECT_EQ((*journal)->dirtyTarget(0, "pr/b"), std::nullopt);
}

TEST(RepairJournal, AnEntryNamingNoStoreFailsTheOpenAndNamesTheKey) {
  testing::TempDir dir;
  const std::string path = dir.file("journal");
  {
    auto journal = RepairJournal::open(path, 2, 100).value();
    ASSERT_TRUE(runSync(journal->mark(0, "pr/a", StoreRole::kEnhanced)).isOk());
  }
  ASSERT_TRUE(writeRaw(path, 2, 1, "pr/damaged", "somewhere").isOk());
  auto journal = RepairJournal::open(path, 2, 100);
  ASSERT_FALSE(journal.isOk());
  EXPECT_NE(journal.status().message().find("pr/damaged"), std::string::npos) << journal.status().toString();
  EXPECT_NE(journal.status().message().find("somewhere"), std::string::npos) << journal.status().toString();
}

// Keys too long to be an LMDB key (a Redis store holds them) are recorded durably too, apart
// from the others, and come back after a reopen; clearing one removes it from disk.
TEST(RepairJournal, LongKeysAreRecordedDurably) {
  testing::TempDir dir;
  const std::string path = dir.file("journal");
  const std::string long_a = "pr/" + std::string(700, 'a'), long_b = "pr/" + std::string(5000, 'b');
  {
    auto journal = RepairJournal::open(path, 2, 100).value();
    ASSERT_TRUE(runSync(journal->mark(0, long_a, StoreRole::kEnhanced)).isOk());
    ASSERT_TRUE(runSync(journal->mark(1, long_b, StoreRole::kLegacy)).isOk());
    ASSERT_TRUE(runSync(journal->mark(1, long_a, StoreRole::kLegacy)).isOk());  // same key, other db
    ASSERT_TRUE(runSync(journal->mark(0, "pr/short", StoreRole::kEnhanced)).isOk());
    EXPECT_EQ(journal->memoryOnlyCount(), 0u);
  }
  {
    auto journal = RepairJournal::open(path, 2, 100);
    ASSERT_TRUE(journal.isOk()) << journal.status().toString();
    EXPECT_EQ((*journal)->depth(), 4u);
    EXPECT_EQ((*journal)->dirtyTarget(0, long_a), StoreRole::kEnhanced);
    EXPECT_EQ((*journal)->dirtyTarget(1, long_a), StoreRole::kLegacy);
    EXPECT_EQ((*journal)->dirtyTarget(1, long_b), StoreRole::kLegacy);
    EXPECT_EQ((*journal)->dirtyTarget(0, long_b), std::nullopt);
    // Marked again for the other store, the entry is rewritten in place.
    ASSERT_TRUE(runSync((*journal)->mark(0, long_a, StoreRole::kLegacy)).isOk());
    ASSERT_TRUE(runSync((*journal)->clear(1, long_b)).isOk());
  }
  auto journal = RepairJournal::open(path, 2, 100).value();
  EXPECT_EQ(journal->depth(), 3u);
  EXPECT_EQ(journal->dirtyTarget(0, long_a), StoreRole::kLegacy);
  EXPECT_EQ(journal->dirtyTarget(1, long_b), std::nullopt);
}

// Two long keys whose slots collide (seeded: another key's entry already in the first slot of
// this key's hash) keep separate entries.
TEST(RepairJournal, LongKeysWhoseSlotsCollideKeepSeparateEntries) {
  testing::TempDir dir;
  const std::string path = dir.file("journal");
  const std::string key = "pr/" + std::string(600, 'k'), squatter = "pr/" + std::string(600, 's');
  { RepairJournal::open(path, 1, 100).value(); }
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx", static_cast<unsigned long long>(stableHash64(key)));
  // db 1: the long keys' database.
  ASSERT_TRUE(writeRaw(path, 2, 1, std::string("0:") + hash + ":0", "legacy\n" + squatter).isOk());
  {
    auto journal = RepairJournal::open(path, 1, 100).value();
    ASSERT_EQ(journal->dirtyTarget(0, squatter), StoreRole::kLegacy);
    ASSERT_TRUE(runSync(journal->mark(0, key, StoreRole::kEnhanced)).isOk());
  }
  auto journal = RepairJournal::open(path, 1, 100).value();
  EXPECT_EQ(journal->depth(), 2u);
  EXPECT_EQ(journal->dirtyTarget(0, squatter), StoreRole::kLegacy);
  EXPECT_EQ(journal->dirtyTarget(0, key), StoreRole::kEnhanced);
  ASSERT_TRUE(runSync(journal->clear(0, key)).isOk());
  EXPECT_EQ(journal->dirtyTarget(0, squatter), StoreRole::kLegacy);
}

// A journal written with more [server] databases holds entries for dbs the stores no longer
// have. Skipping them would unpin their keys, so the open fails and says what to do; once they
// are repaired and cleared, the smaller layout opens with the remaining entries.
TEST(RepairJournal, EntriesOfDatabasesTheStoresNoLongerHaveFailTheOpen) {
  testing::TempDir dir;
  const std::string path = dir.file("journal");
  {
    auto journal = RepairJournal::open(path, 4, 100).value();
    ASSERT_TRUE(runSync(journal->mark(0, "pr/a", StoreRole::kEnhanced)).isOk());
    ASSERT_TRUE(runSync(journal->mark(3, "pr/b", StoreRole::kLegacy)).isOk());
  }
  {
    auto journal = RepairJournal::open(path, 2, 100);
    ASSERT_FALSE(journal.isOk()) << "depth " << (*journal)->depth();
    EXPECT_NE(journal.status().message().find("1 entries in db3"), std::string::npos) << journal.status().toString();
    EXPECT_NE(journal.status().message().find("set [server] databases back"), std::string::npos)
        << journal.status().toString();
  }
  {
    auto journal = RepairJournal::open(path, 4, 100).value();
    EXPECT_EQ(journal->depth(), 2u);
    ASSERT_TRUE(runSync(journal->clear(3, "pr/b")).isOk());
  }
  auto journal = RepairJournal::open(path, 2, 100);
  ASSERT_TRUE(journal.isOk()) << journal.status().toString();
  EXPECT_EQ((*journal)->depth(), 1u);
  EXPECT_EQ((*journal)->dirtyTarget(0, "pr/a"), StoreRole::kEnhanced);
  // Still so after its own long-key entry lands in the database the larger layout used for db 2.
  const std::string long_key = "pr/" + std::string(600, 'l');
  ASSERT_TRUE(runSync((*journal)->mark(1, long_key, StoreRole::kLegacy)).isOk());
  journal.value().reset();
  auto reopened = RepairJournal::open(path, 2, 100);
  ASSERT_TRUE(reopened.isOk()) << reopened.status().toString();
  EXPECT_EQ((*reopened)->dirtyTarget(1, long_key), StoreRole::kLegacy);
}

// The long keys' database is the one after the stores' databases, so a journal written with
// another [server] databases has entries where this layout expects the other kind. The open
// names the setting instead of calling the journal damaged.
TEST(RepairJournal, EntriesLaidOutForAnotherDatabasesCountNameTheSetting) {
  const std::string long_key = "pr/" + std::string(600, 'l');
  {
    // Written with databases = 1 (long keys in db1), opened with 2 (db1 is db 1's).
    testing::TempDir dir;
    const std::string path = dir.file("journal");
    {
      auto journal = RepairJournal::open(path, 1, 100).value();
      ASSERT_TRUE(runSync(journal->mark(0, long_key, StoreRole::kEnhanced)).isOk());
    }
    auto journal = RepairJournal::open(path, 2, 100);
    ASSERT_FALSE(journal.isOk());
    EXPECT_NE(journal.status().message().find("long key's entry, written while [server] databases was 1"),
              std::string::npos) << journal.status().toString();
  }
  {
    // A journal from before long keys had a database, written with databases = 2, opened with 1.
    testing::TempDir dir;
    const std::string path = dir.file("journal");
    ASSERT_TRUE(writeRaw(path, 2, 1, "pr/in-db-1", "legacy").isOk());
    auto journal = RepairJournal::open(path, 1, 100);
    ASSERT_FALSE(journal.isOk());
    EXPECT_NE(journal.status().message().find("'pr/in-db-1' is for db 1, written while [server] databases was "
                                              "larger than 1"),
              std::string::npos) << journal.status().toString();
  }
}

// The replayer asks for entries from a moving start: every entry is reached, wrapping around.
TEST(RepairJournal, PendingStartsWhereAskedAndWraps) {
  testing::TempDir dir;
  auto journal = RepairJournal::open(dir.file("journal"), 1, 100).value();
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(runSync(journal->mark(0, "pr/" + std::to_string(i), StoreRole::kEnhanced)).isOk());
  }
  std::set<std::string> seen;
  for (size_t skip = 0; skip < 10; skip += 4) {
    auto batch = journal->pending(4, skip);
    EXPECT_EQ(batch.size(), 4u);
    for (const auto& e : batch) seen.insert(e.key);
  }
  EXPECT_EQ(seen.size(), 10u) << "three batches of four from starts 0, 4 and 8 cover all ten";
  std::set<std::string> all, want;
  for (const auto& e : journal->pending(100, 7)) all.insert(e.key);
  for (int i = 0; i < 10; ++i) want.insert("pr/" + std::to_string(i));
  EXPECT_EQ(all, want) << "one batch from start 7 wraps to cover all ten";
  EXPECT_EQ(journal->pending(3, 1000003).size(), 3u);
}

}  // namespace
}  // namespace lockshift
