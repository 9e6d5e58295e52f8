#pragma once
// LmdbStore: a LockStore in an embedded LMDB environment (one directory), durable on one machine.
//
// Layout: one named LMDB database per Redis db ("db0".."db15"). Each entry's LMDB key is
// 8 bytes of big-endian stableHash64(key) followed by the key bytes, so entries sort in hash
// order and a scan cursor is simply the hash to resume from (stateless, survives restarts).
// LMDB limits a key to 511 bytes, so a store key is at most kMaxKeyLength bytes.
// With LmdbOptions::records each entry's value is an enhanced record (DESIGN §3) and two more
// named databases hold the fencing-token counter and the repository and pull indexes; the exact
// on-disk format is in lmdb_records.h. Every environment carries a format marker ("plain" or
// "records") so it is never opened in the other format.
//
// Writes: all writes go through one writer thread that takes every queued write (up to
// max_batch), applies them in order inside one write transaction and commits it with one sync
// (group commit). A write's awaitable completes only after that commit. Reads run on the caller's
// thread in a read-only transaction and never wait for writers.
//
// Thread-safety: every method may be called from any thread. Lifetime: the store must outlive
// every awaitable it returned; the destructor finishes queued writes and stops the writer.

#include <lmdb.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backends/lmdb_records.h"
#include "backends/lock_store.h"

namespace lockshift {

namespace lmdb {
class ReaderPool;
}  // namespace lmdb

struct LmdbOptions {
  // Directory of the environment; created if missing.
  std::string path;
  // Maximum size of the data file. LMDB reserves address space, not disk, so a large value costs
  // little; when it fills up, writes fail with kStoreFull ("-ERR store full") and reads go on.
  size_t map_size = size_t{1} << 30;  // 1 GiB
  // Number of independent keyspaces (Redis's `databases`).
  int databases = 16;
  // Most writes committed together in one transaction. Larger batches amortise the sync better
  // but make the first write of a batch wait for the last.
  size_t max_batch = 1024;
  // true: every commit is synced before writes are acknowledged (durable across power loss).
  // false: MDB_NOSYNC; much faster, but an OS crash can lose recent writes. Keep true in production.
  bool sync = true;
  // Default false. true: keep enhanced records (fencing token, acquired-at, holder) and the
  // repository and pull indexes, for an enhanced store. Each write then also parses the value's
  // JSON and updates the indexes in its transaction, which costs a little CPU and a few pages per
  // write. The format is fixed when the environment is created: opening it with the other value
  // fails with kInvalidArgument.
  bool records = false;
};

class LmdbStore final : public LockStore {
 public:
  static constexpr size_t kMaxKeyLength = 511 - 8;

  // Opens (creating if needed) the environment. Errors: kIoError with LMDB's message;
  // kInvalidArgument when the environment's format disagrees with options.records.
  static Result<std::unique_ptr<LmdbStore>> open(const LmdbOptions& options);
  ~LmdbStore() override;

  LmdbStore(const LmdbStore&) = delete;
  LmdbStore& operator=(const LmdbStore&) = delete;

  std::string name() const override { return "lmdb"; }
  int databases() const override { return options_.databases; }

  asio::awaitable<Result<std::optional<std::string>>> get(int db, std::string key) override;
  asio::awaitable<Result<PutResult>> put(PutRequest request) override;
  asio::awaitable<Result<int64_t>> del(int db, std::vector<std::string> keys) override;
  asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(
      int db, std::string key, std::string pull_num) override;
  asio::awaitable<Result<ScanPage>> scan(ScanRequest request) override;
  asio::awaitable<Result<int64_t>> count(int db) override;
  asio::awaitable<Status> ping() override;

  bool hasRecords() const override { return options_.records; }
  asio::awaitable<Result<std::optional<LockRecord>>> getRecord(int db, std::string key) override;
  asio::awaitable<Result<std::vector<LockRecord>>> locksByRepo(int db, std::string repo) override;
  asio::awaitable<Result<std::vector<LockRecord>>> locksByPull(int db, std::string repo,
                                                               int64_t pull_num) override;
  asio::awaitable<Result<std::vector<std::string>>> keysWithPrefix(int db,
                                                                  std::string prefix) override;

  // Number of group commits so far (for tests and metrics).
  uint64_t commitCount() const;

  // The names of every named database in the environment, sorted, including any this store did
  // not open: LMDB keeps a database an earlier open created (say with more `databases`) until it
  // is dropped.
  Result<std::vector<std::string>> databaseNames() const;

  // Drops this process's mapping of the data file's pages; they stay in the OS page cache and are
  // mapped again by the next read that needs them. For long read-only sweeps (the offline diff),
  // whose resident size would otherwise grow by every page read. Safe at any time: the map is
  // read-only (writes go through the file, not the map), so no data can be lost.
  void releaseMappedPages();

 private:
  // See lmdb_store.cc.
  struct WriteOp;
  using Batch = std::vector<std::unique_ptr<WriteOp>>;

  explicit LmdbStore(LmdbOptions options);
  Status openEnv();
  Status checkDb(int db) const;
  Status lmdbError(const char* what, int rc) const;
  Status writeError(int rc) const;

  Result<std::optional<std::string>> getNow(int db, std::string_view key);
  Result<ScanPage> scanNow(const ScanRequest& request);
  Result<int64_t> countNow(int db);
  Result<std::optional<LockRecord>> getRecordNow(int db, std::string_view key);
  Result<std::vector<LockRecord>> locksNow(int db, std::string_view repo,
                                           std::optional<int64_t> pull_num);
  Result<std::vector<std::string>> namesNow(int db, std::string_view prefix);
  // Redis db `db` as the write ops and record reads see it. REQUIRES: checkDb(db) is OK.
  lmdb::Keyspace keyspace(int db) const;

  // Queues a write for the writer thread; `apply` runs inside its transaction and has the
  // signature Result<T>(MDB_txn*, int* rc) of the functions in lmdb_write_ops.h.
  template <typename T, typename Apply>
  asio::awaitable<Result<T>> submit(Apply apply);
  void enqueue(std::unique_ptr<WriteOp> op);
  void writerLoop();
  void runBatch(Batch& batch);
  // Applies [first, last) in one write transaction and commits it; 0 or the error that aborted it.
  int commitOps(std::unique_ptr<WriteOp>* first, std::unique_ptr<WriteOp>* last);

  const LmdbOptions options_;
  std::string registered_path_;  // canonical path claimed with lmdb::claimPath(), if any
  size_t map_size_ = 0;          // the environment's actual map size
  MDB_env* env_ = nullptr;
  bool env_opened_ = false;
  std::vector<MDB_dbi> dbis_;                   // written once by open(), then read-only
  lmdb::RecordDbs record_dbs_;                  // likewise; used only with options_.records
  std::unique_ptr<lmdb::ReaderPool> readers_;  // idle read transactions

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<WriteOp>> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                       // GUARDED_BY(mu_)
  uint64_t commits_ = 0;                        // GUARDED_BY(mu_)
  // Runs writerLoop(); joined by the destructor. It posts each completion to the awaiting
  // coroutine's executor, so an io_context that awaits writes must outlive the store.
  std::thread writer_;
};

}  // namespace lockshift
