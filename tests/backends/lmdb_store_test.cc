// LmdbStore: values, keyspaces, durability across reopen, limits, a full map and group commit.

#include "backends/lmdb_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "tests/backends/lmdb_test_fixture.h"

namespace lockshift::testing {
namespace {

using Outcome = PutResult::Outcome;

TEST_F(LmdbStoreTest, DescribesItself) {
  EXPECT_EQ(store_->name(), "lmdb");
  EXPECT_EQ(store_->databases(), 16);
  EXPECT_TRUE(await(store_->ping()).isOk());
}

TEST_F(LmdbStoreTest, MissingKeyIsAbsent) {
  auto value = get("nope");
  ASSERT_TRUE(value.isOk()) << value.status().toString();
  EXPECT_FALSE(value->has_value());
}

TEST_F(LmdbStoreTest, ValuesAndKeysRoundTripByteForByte) {
  const std::vector<std::pair<std::string, std::string>> entries = {
      {"plain", "value"},
      {std::string("nul\0key", 7), std::string("a\0b\r\nc\0", 7)},
      {"", "the empty key"},
      {"pr/acme corp/infra team/modules/vpc/default/", "spaces and slashes"},
      {"pr/ünïcödé/日本/default/", "{\"x\":\"é\"}"},
      {"empty value", ""},
      {"big", std::string(200 * 1024, 'x') + std::string("\0\r\n", 3)},
  };
  for (const auto& [key, value] : entries) {
    auto written = put(key, value);
    ASSERT_TRUE(written.isOk()) << written.status().toString();
    EXPECT_EQ(written->outcome, Outcome::kApplied);
  }
  for (const auto& [key, value] : entries) {
    auto read = get(key);
    ASSERT_TRUE(read.isOk()) << read.status().toString();
    ASSERT_TRUE(read->has_value()) << key;
    EXPECT_EQ(**read, value) << key;
  }
  EXPECT_EQ(count(), static_cast<int64_t>(entries.size()));
}

TEST_F(LmdbStoreTest, PutOverwritesAndDelCountsWhatExisted) {
  ASSERT_TRUE(put("a", "1").isOk());
  ASSERT_TRUE(put("a", "2").isOk());
  ASSERT_TRUE(put("b", "3").isOk());
  EXPECT_EQ(read("a"), "2");

  auto deleted = del({"a", "missing", "b", "a"});
  ASSERT_TRUE(deleted.isOk()) << deleted.status().toString();
  EXPECT_EQ(deleted.value(), 2);
  EXPECT_FALSE(get("a")->has_value());
  EXPECT_FALSE(get("b")->has_value());
  EXPECT_EQ(count(), 0);
  EXPECT_EQ(del({}).value(), 0);
}

TEST_F(LmdbStoreTest, DatabasesAreSeparateKeyspaces) {
  ASSERT_TRUE(put("k", "zero", 0).isOk());
  ASSERT_TRUE(put("k", "three", 3).isOk());
  ASSERT_TRUE(put("only-in-3", "x", 3).isOk());
  EXPECT_EQ(read("k", 0), "zero");
  EXPECT_EQ(read("k", 3), "three");
  EXPECT_FALSE(get("only-in-3", 0)->has_value());
  EXPECT_EQ(count(0), 1);
  EXPECT_EQ(count(3), 2);
  EXPECT_EQ(count(15), 0);

  EXPECT_EQ(del({"k"}, 3).value(), 1);
  EXPECT_EQ(read("k", 0), "zero");
}

TEST_F(LmdbStoreTest, DbOutOfRangeIsInvalidArgument) {
  for (int db : {-1, 16}) {
    EXPECT_EQ(get("k", db).status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(put("k", "v", db).status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(del({"k"}, db).status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(await(store_->count(db)).status().code(), ErrorCode::kInvalidArgument);
    ScanRequest scan;
    scan.db = db;
    EXPECT_EQ(await(store_->scan(scan)).status().code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(await(store_->deleteIfOwnedByPull(db, "k", "1")).status().code(),
              ErrorCode::kInvalidArgument);
  }
}

TEST_F(LmdbStoreTest, ReopenKeepsData) {
  ASSERT_TRUE(put("pr/acme/infra/./default/", lockJson(12, "alice")).isOk());
  ASSERT_TRUE(put("global/apply/lock", "{}", 2).isOk());
  reopen();
  EXPECT_EQ(read("pr/acme/infra/./default/"), lockJson(12, "alice"));
  EXPECT_EQ(read("global/apply/lock", 2), "{}");
  EXPECT_EQ(count(0), 1);
  EXPECT_EQ(count(2), 1);
}

TEST_F(LmdbStoreTest, ReopenWithoutSyncKeepsDataAfterCleanClose) {
  options_.sync = false;
  reopen();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(put("k" + std::to_string(i), "v").isOk());
  reopen();
  EXPECT_EQ(count(), 50);
}

// A database an earlier open made stays in the environment after a reopen with fewer, and is
// listed: the repair journal relies on this to notice entries a smaller layout would not load.
TEST_F(LmdbStoreTest, DatabaseNamesListThoseOfEarlierOpensToo) {
  options_.databases = 20;
  reopen();
  options_.databases = 2;
  reopen();
  std::vector<std::string> expected{"records-meta"};
  for (int db = 0; db < 20; ++db) expected.push_back("db" + std::to_string(db));
  std::sort(expected.begin(), expected.end());
  auto names = store_->databaseNames();
  ASSERT_TRUE(names.isOk()) << names.status().toString();
  EXPECT_EQ(*names, expected);
}

TEST_F(LmdbStoreTest, OpeningAnOpenEnvironmentTwiceIsRefused) {
  auto second = LmdbStore::open(options_);
  ASSERT_FALSE(second.isOk());
  EXPECT_EQ(second.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(second.status().message().find("already open"), std::string::npos);
  // The first store is unaffected, and the path is free again once it closes.
  ASSERT_TRUE(put("k", "v").isOk());
  store_.reset();
  reopen();
  EXPECT_EQ(read("k"), "v");
}

TEST_F(LmdbStoreTest, BadOptionsAreRefused) {
  LmdbOptions no_path;
  EXPECT_EQ(LmdbStore::open(no_path).status().code(), ErrorCode::kInvalidArgument);
  LmdbOptions no_dbs = options_;
  no_dbs.path = dir_ + "/other";
  no_dbs.databases = 0;
  EXPECT_EQ(LmdbStore::open(no_dbs).status().code(), ErrorCode::kInvalidArgument);
  LmdbOptions under_a_file = options_;
  under_a_file.path = dir_ + "/env/data.mdb/sub";
  auto failed = LmdbStore::open(under_a_file);
  EXPECT_EQ(failed.status().code(), ErrorCode::kIoError);
  EXPECT_NE(failed.status().message().find(under_a_file.path), std::string::npos)
      << failed.status().message();
}

TEST_F(LmdbStoreTest, KeyTooLongIsRefusedAndChangesNothing) {
  const std::string longest(LmdbStore::kMaxKeyLength, 'k');
  const std::string too_long(LmdbStore::kMaxKeyLength + 1, 'k');
  ASSERT_TRUE(put(longest, "fits").isOk());
  EXPECT_EQ(read(longest), "fits");

  auto refused = put(too_long, "v");
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "key too long: 504 bytes (the lmdb store allows at most 503)");
  EXPECT_EQ(get(too_long).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(await(store_->deleteIfOwnedByPull(0, too_long, "1")).status().code(),
            ErrorCode::kInvalidArgument);
  // A DEL naming one unstorable key deletes nothing at all.
  EXPECT_EQ(del({longest, too_long}).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(read(longest), "fits");
  EXPECT_EQ(count(), 1);
}

TEST_F(LmdbStoreTest, FullMapGivesStoreFullAndKeepsWorking) {
  options_.map_size = 256 * 1024;
  reopen();
  const std::string value(6000, 'v');
  int written = 0;
  Status full;
  for (int i = 0; i < 1000 && full.isOk(); ++i) {
    auto result = put("key" + std::to_string(i), value);
    if (result.isOk()) {
      ++written;
    } else {
      full = result.status();
    }
  }
  ASSERT_FALSE(full.isOk()) << "the map never filled up";
  EXPECT_EQ(full.code(), ErrorCode::kStoreFull) << full.toString();
  EXPECT_NE(full.message().find("store full: lmdb map_size 262144 bytes reached"),
            std::string::npos)
      << full.message();
  ASSERT_GT(written, 5);

  // Everything acknowledged is still there, and nothing of the refused write.
  EXPECT_EQ(count(), written);
  for (int i = 0; i < written; ++i) EXPECT_EQ(read("key" + std::to_string(i)), value) << i;
  EXPECT_FALSE(get("key" + std::to_string(written))->has_value());

  // Deletes still go through and make room for new writes.
  EXPECT_EQ(del({"key0", "key1", "key2"}).value(), 3);
  auto small = put("small", "fits again");
  ASSERT_TRUE(small.isOk()) << small.status().toString();
  EXPECT_EQ(read("small"), "fits again");
  EXPECT_EQ(count(), written - 3 + 1);
}

TEST_F(LmdbStoreTest, OversizedWriteFailsAloneInItsBatch) {
  options_.map_size = 256 * 1024;
  reopen();
  ASSERT_TRUE(put("victim", "old").isOk());
  // Writes queued together with one that can never fit: they share its batch (they are all
  // queued while the writer commits the first), and only that one fails.
  constexpr int kSmall = 20;
  std::vector<std::optional<Result<PutResult>>> small(2 * kSmall);
  std::optional<Result<PutResult>> huge;
  std::optional<Result<int64_t>> deleted;
  for (int i = 0; i < kSmall; ++i) {
    spawnInto(store_->put(putRequest("small" + std::to_string(i), "s")), &small[i]);
  }
  spawnInto(store_->put(putRequest("huge", std::string(1 << 20, 'h'))), &huge);
  spawnInto(store_->del(0, {"victim"}), &deleted);
  for (int i = kSmall; i < 2 * kSmall; ++i) {
    spawnInto(store_->put(putRequest("small" + std::to_string(i), "s")), &small[i]);
  }
  runIo();
  ASSERT_TRUE(huge && deleted);
  EXPECT_EQ(huge->status().code(), ErrorCode::kStoreFull);
  ASSERT_TRUE(deleted->isOk()) << deleted->status().toString();
  EXPECT_EQ(deleted->value(), 1);
  for (int i = 0; i < 2 * kSmall; ++i) {
    ASSERT_TRUE(small[i]);
    EXPECT_TRUE(small[i]->isOk()) << i << ": " << small[i]->status().toString();
    EXPECT_EQ(read("small" + std::to_string(i)), "s");
  }
  EXPECT_FALSE(get("victim")->has_value());
  EXPECT_FALSE(get("huge")->has_value());
}

// Each of 8 threads awaits its puts one after another, like 8 clients: writes that arrive while
// the writer commits wait for the next commit and share it.
TEST_F(LmdbStoreTest, ConcurrentWritersAreGroupCommitted) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 500;
  const uint64_t commits_before = store_->commitCount();
  std::atomic<int> failures{0};
  std::array<asio::io_context, kThreads> ios;  // outlive the store: it is closed at the end
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = [](LmdbStore* store, int t,
                       std::atomic<int>* failures) -> asio::awaitable<void> {
        for (int i = 0; i < kPerThread; ++i) {
          std::string key = "t" + std::to_string(t) + "/k" + std::to_string(i);
          auto write = store->put(putRequest(key, "value of " + key));
          auto result = co_await std::move(write);
          if (!result.isOk() || result->outcome != Outcome::kApplied) ++*failures;
        }
      };
      asio::co_spawn(ios[t], client(store_.get(), t, &failures), asio::detached);
      ios[t].run();
    });
  }
  for (auto& thread : threads) thread.join();
  const uint64_t commits = store_->commitCount() - commits_before;
  std::cout << "[ group commit ] " << kThreads * kPerThread << " writes from " << kThreads
            << " sequential clients in " << commits << " commits\n";

  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(count(), kThreads * kPerThread);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; i += 97) {
      std::string key = "t" + std::to_string(t) + "/k" + std::to_string(i);
      EXPECT_EQ(read(key), "value of " + key);
    }
  }
  EXPECT_GE(commits, 1u);
  EXPECT_LT(commits, static_cast<uint64_t>(kThreads * kPerThread));
  store_.reset();
}

// A burst of queued writes is committed in batches of at most max_batch.
TEST_F(LmdbStoreTest, BurstIsCommittedInBatchesOfAtMostMaxBatch) {
  options_.max_batch = 16;
  reopen();
  constexpr int kWrites = 400;
  const uint64_t commits_before = store_->commitCount();
  int failures = 0;
  for (int i = 0; i < kWrites; ++i) {
    auto one = [](LmdbStore* store, int i, int* failures) -> asio::awaitable<void> {
      auto write = store->put(putRequest("k" + std::to_string(i), "v"));
      auto result = co_await std::move(write);
      if (!result.isOk()) ++*failures;
    };
    spawn(one(store_.get(), i, &failures));
  }
  runIo();
  const uint64_t commits = store_->commitCount() - commits_before;
  std::cout << "[ group commit ] burst of " << kWrites << " writes, max_batch 16: " << commits
            << " commits\n";
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(count(), kWrites);
  EXPECT_GE(commits, static_cast<uint64_t>(kWrites / 16));
  EXPECT_LT(commits, static_cast<uint64_t>(kWrites));
}

TEST_F(LmdbStoreTest, EveryAcknowledgedWriteIsOneCommitWhenSequential) {
  const uint64_t before = store_->commitCount();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(put("k" + std::to_string(i), "v").isOk());
  EXPECT_EQ(store_->commitCount() - before, 5u);
}

TEST_F(LmdbStoreTest, DestructorFinishesQueuedWrites) {
  constexpr int kWrites = 200;
  asio::io_context io;
  std::vector<std::optional<Result<PutResult>>> results(kWrites);
  for (int i = 0; i < kWrites; ++i) {
    auto one = [](LmdbStore* store, int i,
                  std::optional<Result<PutResult>>* out) -> asio::awaitable<void> {
      auto write = store->put(putRequest("k" + std::to_string(i), "v"));
      out->emplace(co_await std::move(write));
    };
    asio::co_spawn(io, one(store_.get(), i, &results[i]), asio::detached);
  }
  io.poll();  // every coroutine runs up to its queued write
  store_.reset();
  io.run();  // deliver the completions the writer posted before it stopped
  for (int i = 0; i < kWrites; ++i) {
    ASSERT_TRUE(results[i].has_value()) << i;
    EXPECT_TRUE(results[i]->isOk()) << results[i]->status().toString();
  }
  reopen();
  EXPECT_EQ(count(), kWrites);
}

}  // namespace
}  // namespace lockshift::testing

namespace lockshift::testing {
namespace {

// Kilobytes of the environment's data file currently mapped into this process (its Rss in
// /proc/self/smaps).
size_t mappedDataKb(const std::string& env_dir) {
  const std::string data = std::filesystem::weakly_canonical(env_dir + "/data.mdb").string();
  std::ifstream smaps("/proc/self/smaps");
  size_t kb = 0;
  bool in_data = false;
  for (std::string line; std::getline(smaps, line);) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) && line.find('-') < 20 &&
        line.find(' ') != std::string::npos) {
      in_data = line.size() > data.size() && line.compare(line.size() - data.size(), data.size(), data) == 0;
    } else if (in_data && line.rfind("Rss:", 0) == 0) {
      kb += std::stoul(line.substr(4));
    }
  }
  return kb;
}

TEST_F(LmdbStoreTest, ReleasingMappedPagesShrinksResidentSizeAndKeepsData) {
  options_.sync = false;
  reopen();
  const std::string value(2000, 'v');
  auto fill = [this, &value]() -> asio::awaitable<void> {
    for (int i = 0; i < 5000; ++i) {
      auto put = store_->put(PutRequest{.key = "k" + std::to_string(i), .value = value});
      auto r = co_await std::move(put);
      EXPECT_TRUE(r.isOk());
    }
  };
  spawn(fill());
  runIo();
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(await(store_->get(0, "k" + std::to_string(i)))->value_or(""), value);
  const size_t before = mappedDataKb(options_.path);
  EXPECT_GT(before, 8000u);  // ~10 MB of values were read through the map
  store_->releaseMappedPages();
  EXPECT_LT(mappedDataKb(options_.path), before / 4);
  EXPECT_EQ(await(store_->get(0, "k4999"))->value_or(""), value);  // mapped again on demand
}

}  // namespace
}  // namespace lockshift::testing
