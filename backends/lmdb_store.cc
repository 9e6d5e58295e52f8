#include "backends/lmdb_store.h"

#include <sys/mman.h>

#include <algorithm>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <new>
#include <system_error>
#include <utility>

#include "backends/lmdb_txn.h"
#include "backends/lmdb_write_ops.h"
#include "common/glob.h"

namespace lockshift {

static_assert(LmdbStore::kMaxKeyLength == lmdb::kMaxKeyLength);

// A queued write. The writer runs apply() inside a batch transaction (maybe more than once, see
// runBatch) and then complete() exactly once.
struct LmdbStore::WriteOp {
  // Runs the write inside `txn` and keeps its result. Returns 0, or the LMDB error after which
  // `txn` is unusable. May throw (std::bad_alloc); the writer treats that as a failed batch.
  std::function<int(MDB_txn* txn)> apply;
  // Posts the result to the awaiting coroutine: the kept result when `batch` is OK (the
  // transaction committed), otherwise `batch`.
  std::function<void(const Status& batch)> complete;
};

namespace {

namespace fs = std::filesystem;

// commitOps()'s code for an exception other than std::bad_alloc (which becomes ENOMEM).
constexpr int kOpThrew = -1;

// Errors that a single write can cause in a batch. After one of them the batch is retried one
// write per transaction, so a small delete still lands next to a write that fills the map.
bool retryAlone(int rc) {
  return rc == MDB_MAP_FULL || rc == MDB_TXN_FULL || rc == ENOMEM || rc == kOpThrew;
}

}  // namespace

Result<std::unique_ptr<LmdbStore>> LmdbStore::open(const LmdbOptions& options) {
  if (options.path.empty()) return Status::invalidArgument("lmdb path is empty");
  if (options.databases < 1) {
    return Status::invalidArgument("lmdb databases must be at least 1, got " +
                                   std::to_string(options.databases));
  }
  std::error_code ec;
  fs::create_directories(options.path, ec);
  if (ec) {
    return Status::ioError("cannot create lmdb directory " + options.path + ": " + ec.message());
  }
  std::unique_ptr<LmdbStore> store(new LmdbStore(options));
  if (Status status = store->openEnv(); !status) return status;
  try {
    store->writer_ = std::thread([raw = store.get()] { raw->writerLoop(); });
  } catch (const std::system_error& e) {
    return Status::ioError(std::string("cannot start the lmdb writer thread: ") + e.what());
  }
  return store;
}

LmdbStore::LmdbStore(LmdbOptions options) : options_(std::move(options)) {}

Status LmdbStore::openEnv() {
  std::error_code ec;
  fs::path canonical = fs::canonical(options_.path, ec);
  if (ec) return Status::ioError("cannot resolve lmdb path " + options_.path + ": " + ec.message());
  if (!lmdb::claimPath(canonical.string())) {
    return Status::invalidArgument("lmdb environment " + canonical.string() +
                                   " is already open in this process");
  }
  registered_path_ = canonical.string();

  if (int rc = mdb_env_create(&env_); rc != 0) {
    env_ = nullptr;
    return lmdbError("mdb_env_create", rc);
  }
  if (int rc = mdb_env_set_mapsize(env_, options_.map_size); rc != 0) {
    return lmdbError("mdb_env_set_mapsize", rc);
  }
  // "db0".."db<N-1>", plus lmdb_records.h's meta and index databases.
  if (int rc = mdb_env_set_maxdbs(env_, static_cast<MDB_dbi>(options_.databases + lmdb::kExtraDbs));
      rc != 0) {
    return lmdbError("mdb_env_set_maxdbs", rc);
  }
  // MDB_NOTLS: a read transaction belongs to its handle, not its thread, so idle ones can be
  // pooled and reused by any thread.
  // MDB_WRITEMAP was measured and left off: side by side it gave no more durable SETs/s than
  // one pwrite per dirty page, and it sizes the data file to map_size up front.
  unsigned flags = MDB_NOTLS | (options_.sync ? 0 : MDB_NOSYNC);
  if (int rc = mdb_env_open(env_, options_.path.c_str(), flags, 0600); rc != 0) {
    return lmdbError("mdb_env_open", rc);
  }
  env_opened_ = true;
  int stale_readers = 0;
  mdb_reader_check(env_, &stale_readers);  // slots left by a crashed process
  MDB_envinfo info;
  if (int rc = mdb_env_info(env_, &info); rc != 0) return lmdbError("mdb_env_info", rc);
  map_size_ = info.me_mapsize;

  lmdb::WriteTxn txn;
  if (int rc = txn.begin(env_); rc != 0) return lmdbError("mdb_txn_begin", rc);
  for (int db = 0; db < options_.databases; ++db) {
    MDB_dbi dbi;
    std::string name = "db" + std::to_string(db);
    if (int rc = mdb_dbi_open(txn.get(), name.c_str(), MDB_CREATE, &dbi); rc != 0) {
      return lmdbError("mdb_dbi_open", rc);
    }
    dbis_.push_back(dbi);
  }
  // An error here (a format mismatch) aborts `txn`: a refused environment is left as it was.
  if (Status status = lmdb::openRecordDbs(txn.get(), options_.records, dbis_, options_.path,
                                          &record_dbs_);
      !status) {
    dbis_.clear();
    return status;
  }
  if (int rc = txn.commit(); rc != 0) {
    dbis_.clear();
    return lmdbError("mdb_txn_commit", rc);
  }
  readers_ = std::make_unique<lmdb::ReaderPool>(env_);
  return Status::ok();
}

LmdbStore::~LmdbStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  readers_.reset();
  if (env_ != nullptr) {
    if (env_opened_ && !options_.sync) mdb_env_sync(env_, 1);
    mdb_env_close(env_);
  }
  if (!registered_path_.empty()) lmdb::releasePath(registered_path_);
}

uint64_t LmdbStore::commitCount() const {
  std::lock_guard lock(mu_);
  return commits_;
}

Result<std::vector<std::string>> LmdbStore::databaseNames() const {
  lmdb::ReadTxn txn(*readers_);
  if (txn.rc() != 0) return lmdbError("mdb_txn_begin", txn.rc());
  // With named databases, the main database's keys are their names.
  MDB_dbi main;
  if (int rc = mdb_dbi_open(txn.get(), nullptr, 0, &main); rc != 0) return lmdbError("mdb_dbi_open", rc);
  MDB_cursor* cursor = nullptr;
  if (int rc = mdb_cursor_open(txn.get(), main, &cursor); rc != 0) return lmdbError("mdb_cursor_open", rc);
  std::vector<std::string> names;
  MDB_val key, value;
  int rc = mdb_cursor_get(cursor, &key, &value, MDB_FIRST);
  for (; rc == 0; rc = mdb_cursor_get(cursor, &key, &value, MDB_NEXT)) {
    names.emplace_back(static_cast<const char*>(key.mv_data), key.mv_size);
  }
  mdb_cursor_close(cursor);
  if (rc != MDB_NOTFOUND) return lmdbError("mdb_cursor_get", rc);
  return names;
}

Status LmdbStore::checkDb(int db) const {
  if (db >= 0 && db < options_.databases) return Status::ok();
  return Status::invalidArgument("DB index is out of range");
}

lmdb::Keyspace LmdbStore::keyspace(int db) const {
  return {dbis_[db], db, options_.records ? &record_dbs_ : nullptr};
}

Status LmdbStore::lmdbError(const char* what, int rc) const {
  return Status::ioError(std::string("lmdb ") + what + " failed for " + options_.path + ": " +
                         mdb_strerror(rc));
}

Status LmdbStore::writeError(int rc) const {
  if (rc == MDB_MAP_FULL) {
    return Status::storeFull("store full: lmdb map_size " + std::to_string(map_size_) +
                             " bytes reached (raise [legacy|enhanced] map_size)");
  }
  if (rc == kOpThrew) return Status::internal("unexpected exception while applying an lmdb write");
  return Status::ioError("lmdb write failed for " + options_.path + ": " + mdb_strerror(rc));
}

// ---- Reads: on the caller's thread, in a pooled read-only transaction. ----

asio::awaitable<Result<std::optional<std::string>>> LmdbStore::get(int db, std::string key) {
  co_return getNow(db, key);
}

asio::awaitable<Result<ScanPage>> LmdbStore::scan(ScanRequest request) {
  co_return scanNow(request);
}

asio::awaitable<Result<int64_t>> LmdbStore::count(int db) { co_return countNow(db); }

// Takes a read transaction, which fails when the environment is unusable (MDB_PANIC) or its reader
// table is full.
asio::awaitable<Status> LmdbStore::ping() {
  lmdb::ReadTxn txn(*readers_);
  co_return txn.rc() == 0 ? Status::ok() : lmdbError("mdb_txn_begin", txn.rc());
}

Result<std::optional<std::string>> LmdbStore::getNow(int db, std::string_view key) {
  if (Status status = checkDb(db); !status) return status;
  if (Status status = lmdb::checkKey(key); !status) return status;
  lmdb::ReadTxn txn(*readers_);
  if (txn.rc() != 0) return lmdbError("mdb_txn_begin", txn.rc());
  lmdb::EncodedKey encoded(key);
  MDB_val k = encoded.val();
  MDB_val v;
  int rc = mdb_get(txn.get(), dbis_[db], &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>();
  if (rc != 0) return lmdbError("mdb_get", rc);
  if (!options_.records) return std::optional<std::string>(lmdb::asView(v));
  lmdb::RecordView record;
  if (!lmdb::decodeRecord(lmdb::asView(v), &record)) {
    return Status::internal("lmdb entry of key \"" + std::string(key) + "\" in " + options_.path +
                            " is not an enhanced record");
  }
  return std::optional<std::string>(record.value);
}

// Examines at least `count` entries from the first whose hash is >= the cursor, and always a
// whole run of equal hashes: the next cursor is then the hash of the first entry not examined,
// which is above every hash examined. So a page covers [cursor, next_cursor) completely, pages
// never overlap, and a key present for the whole scan is in exactly one page.
Result<ScanPage> LmdbStore::scanNow(const ScanRequest& request) {
  if (Status status = checkDb(request.db); !status) return status;
  lmdb::ReadTxn txn(*readers_);
  if (txn.rc() != 0) return lmdbError("mdb_txn_begin", txn.rc());
  lmdb::Cursor cursor;
  if (int rc = cursor.open(txn.get(), dbis_[request.db]); rc != 0) {
    return lmdbError("mdb_cursor_open", rc);
  }
  const size_t budget = std::max<size_t>(request.count, 1);
  lmdb::EncodedKey start = lmdb::EncodedKey::cursor(request.cursor);
  MDB_val k = start.val();
  MDB_val v;
  ScanPage page;
  size_t examined = 0;
  uint64_t last_hash = 0;
  int rc = cursor.get(&k, &v, MDB_SET_RANGE);
  for (; rc == 0; rc = cursor.get(&k, &v, MDB_NEXT)) {
    uint64_t hash;
    std::string_view key;
    if (!lmdb::decodeKey(k, &hash, &key)) {
      return Status::internal("lmdb entry shorter than its hash in " + options_.path);
    }
    if (examined >= budget && hash != last_hash) {
      page.next_cursor = hash;
      return page;
    }
    if (request.match.empty() || globMatch(request.match, key)) page.keys.emplace_back(key);
    ++examined;
    last_hash = hash;
  }
  if (rc != MDB_NOTFOUND) return lmdbError("mdb_cursor_get", rc);
  page.next_cursor = 0;
  return page;
}

Result<int64_t> LmdbStore::countNow(int db) {
  if (Status status = checkDb(db); !status) return status;
  lmdb::ReadTxn txn(*readers_);
  if (txn.rc() != 0) return lmdbError("mdb_txn_begin", txn.rc());
  MDB_stat stat;
  if (int rc = mdb_stat(txn.get(), dbis_[db], &stat); rc != 0) return lmdbError("mdb_stat", rc);
  return static_cast<int64_t>(stat.ms_entries);
}

// ---- Enhanced records: reads like the ones above; a plain store answers kUnsupported. ----

asio::awaitable<Result<std::optional<LockRecord>>> LmdbStore::getRecord(int db, std::string key) {
  if (!options_.records) {
    auto unsupported = LockStore::getRecord(db, std::move(key));
    co_return co_await std::move(unsupported);
  }
  co_return getRecordNow(db, key);
}

asio::awaitable<Result<std::vector<LockRecord>>> LmdbStore::locksByRepo(int db, std::string repo) {
  if (!options_.records) {
    auto unsupported = LockStore::locksByRepo(db, std::move(repo));
    co_return co_await std::move(unsupported);
  }
  co_return locksNow(db, repo, std::nullopt);
}

asio::awaitable<Result<std::vector<LockRecord>>> LmdbStore::locksByPull(int db, std::string repo,
                                                                        int64_t pull_num) {
  if (!options_.records) {
    auto unsupported = LockStore::locksByPull(db, std::move(repo), pull_num);
    co_return co_await std::move(unsupported);
  }
  co_return locksNow(db, repo, pull_num);
}

asio::awaitable<Result<std::vector<std::string>>> LmdbStore::keysWithPrefix(int db,
                                                                           std::string prefix) {
  if (!options_.records) {
    auto unsupported = LockStore::keysWithPrefix(db, std::move(prefix));
    co_return co_await std::move(unsupported);
  }
  co_return namesNow(db, prefix);
}

Result<std::optional<LockRecord>> LmdbStore::getRecordNow(int db, std::string_view key) {
  if (Status status = checkDb(db); !status) return status;
  if (Status status = lmdb::checkKey(key); !status) return status;
  lmdb::ReadTxn txn(*readers_);
  if (txn.rc() != 0) return lmdbError("mdb_txn_begin", txn.rc());
  return lmdb::readRecord(txn.get(), keyspace(db), key, options_.path);
}

// One read transaction for the index range and every record it names, so the answer is one
// consistent snapshot.
Result<std::vector<LockRecord>> LmdbStore::locksNow(int db, std::string_view repo,
                                                    std::optional<int64_t> pull_num) {
  if (Status status = checkDb(db); !status) return status;
  lmdb::ReadTxn txn(*readers_);
  if (txn.rc() != 0) return lmdbError("mdb_txn_begin", txn.rc());
  return lmdb::readIndexed(txn.get(), keyspace(db), repo, pull_num, options_.path);
}

// One read transaction, so the answer is one snapshot: every key present then, each once.
Result<std::vector<std::string>> LmdbStore::namesNow(int db, std::string_view prefix) {
  if (Status status = checkDb(db); !status) return status;
  if (Status status = checkNameIndexCovers(prefix); !status) return status;
  lmdb::ReadTxn txn(*readers_);
  if (txn.rc() != 0) return lmdbError("mdb_txn_begin", txn.rc());
  return lmdb::readNames(txn.get(), keyspace(db), prefix, options_.path);
}

// ---- Writes: queued to the writer thread, group-committed. ----

template <typename T, typename Apply>
asio::awaitable<Result<T>> LmdbStore::submit(Apply apply) {
  auto initiate = [this, apply = std::move(apply)](auto handler) mutable {
    using Handler = decltype(handler);
    // Tracked, so the awaiting io_context does not run out of work while the write is queued.
    auto executor = asio::prefer(asio::get_associated_executor(handler),
                                 asio::execution::outstanding_work.tracked);
    // std::function needs a copyable callable; the handler is move-only.
    auto shared_handler = std::make_shared<Handler>(std::move(handler));
    auto result = std::make_shared<std::optional<Result<T>>>();
    auto op = std::make_unique<WriteOp>();
    op->apply = [apply = std::move(apply), result](MDB_txn* txn) mutable {
      int rc = 0;
      result->emplace(apply(txn, &rc));
      return rc;
    };
    op->complete = [work = std::move(executor), handler = std::move(shared_handler),
                    result](const Status& batch) mutable {
      Result<T> outcome = !batch.isOk()         ? Result<T>(batch)
                          : result->has_value() ? std::move(**result)
                                                : Result<T>(Status::internal("write not applied"));
      // The tracked executor and the handler move into the posted function, so the writer holds
      // nothing that counts as work once it is queued. The io_context must still outlive the
      // store: post() wakes its thread after releasing its lock, so the handler may have run
      // (and that thread's run() returned) while this thread is still inside post().
      auto target = asio::prefer(work, asio::execution::outstanding_work.untracked);
      asio::post(target,
                 [work = std::move(work), handler = std::move(handler),
                  outcome = std::move(outcome)]() mutable { (*handler)(std::move(outcome)); });
    };
    enqueue(std::move(op));
  };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<T>)>(std::move(initiate),
                                                                               asio::use_awaitable);
}

asio::awaitable<Result<PutResult>> LmdbStore::put(PutRequest request) {
  if (Status status = checkDb(request.db); !status) co_return status;
  if (Status status = lmdb::checkKey(request.key); !status) co_return status;
  lmdb::Keyspace space = keyspace(request.db);
  // The awaitable is named, not a temporary of the co_await expression: GCC 12 destroys such
  // temporaries twice when they hold captures like these.
  auto write = submit<PutResult>([space, request = std::move(request)](MDB_txn* txn, int* rc) {
    return lmdb::applyPut(txn, space, request, rc);
  });
  co_return co_await std::move(write);
}

asio::awaitable<Result<int64_t>> LmdbStore::del(int db, std::vector<std::string> keys) {
  if (Status status = checkDb(db); !status) co_return status;
  for (const std::string& key : keys) {
    if (Status status = lmdb::checkKey(key); !status) co_return status;
  }
  lmdb::Keyspace space = keyspace(db);
  auto write = submit<int64_t>([space, keys = std::move(keys)](MDB_txn* txn, int* rc) {
    return lmdb::applyDel(txn, space, keys, rc);
  });
  co_return co_await std::move(write);
}

asio::awaitable<Result<std::optional<std::string>>> LmdbStore::deleteIfOwnedByPull(
    int db, std::string key, std::string pull_num) {
  if (Status status = checkDb(db); !status) co_return status;
  if (Status status = lmdb::checkKey(key); !status) co_return status;
  lmdb::Keyspace space = keyspace(db);
  auto write = submit<std::optional<std::string>>(
      [space, key = std::move(key), pull_num = std::move(pull_num)](MDB_txn* txn, int* rc) {
        return lmdb::applyDeleteIfOwnedByPull(txn, space, key, pull_num, rc);
      });
  co_return co_await std::move(write);
}

void LmdbStore::enqueue(std::unique_ptr<WriteOp> op) {
  Status refused;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      refused = Status::unavailable("lmdb store " + options_.path + " is closing");
    } else {
      try {
        queue_.push_back(std::move(op));  // strong guarantee: `op` is intact if this throws
      } catch (const std::bad_alloc&) {
        refused = Status::internal("out of memory while queueing an lmdb write");
      }
    }
  }
  if (refused.isOk()) {
    cv_.notify_one();
    return;
  }
  op->complete(refused);
}

void LmdbStore::writerLoop() {
  const size_t max_batch = std::max<size_t>(options_.max_batch, 1);
  for (;;) {
    try {
      Batch batch;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, and every queued write is done
        batch.reserve(std::min(queue_.size(), max_batch));
        while (!queue_.empty() && batch.size() < max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      runBatch(batch);
    } catch (...) {
      // Only allocation can throw here, before a batch was taken; the writes stay queued and
      // the next round tries again. Letting it escape would terminate the process.
    }
  }
}

void LmdbStore::runBatch(Batch& batch) {
  int rc = commitOps(batch.data(), batch.data() + batch.size());
  bool alone = rc != 0 && batch.size() > 1 && retryAlone(rc);
  for (std::unique_ptr<WriteOp>& op : batch) {
    int op_rc = alone ? commitOps(&op, &op + 1) : rc;
    try {
      op->complete(op_rc == 0 ? Status::ok() : writeError(op_rc));
    } catch (...) {
      // Out of memory while posting the result: that one awaiting coroutine never resumes, but
      // the writer and every other write go on.
    }
  }
}

int LmdbStore::commitOps(std::unique_ptr<WriteOp>* first, std::unique_ptr<WriteOp>* last) {
  lmdb::WriteTxn txn;
  if (int rc = txn.begin(env_); rc != 0) return rc;
  for (std::unique_ptr<WriteOp>* op = first; op != last; ++op) {
    int rc;
    try {
      rc = (*op)->apply(txn.get());
    } catch (const std::bad_alloc&) {
      rc = ENOMEM;
    } catch (...) {
      rc = kOpThrew;
    }
    if (rc != 0) return rc;  // `txn` aborts: nothing of this batch is written
  }
  if (int rc = txn.commit(); rc != 0) return rc;
  std::lock_guard lock(mu_);
  ++commits_;
  return 0;
}

void LmdbStore::releaseMappedPages() {
  // LMDB does not reveal where it mapped the file (mdb_env_info's me_mapaddr is set only for
  // MDB_FIXEDMAP), so the mapping is found in /proc/self/maps by the data file's path.
  const char* dir = nullptr;
  if (mdb_env_get_path(env_, &dir) != 0 || dir == nullptr) return;
  std::error_code ec;
  const std::string data = std::filesystem::weakly_canonical(std::filesystem::path(dir) / "data.mdb", ec).string();
  if (ec) return;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.size() <= data.size() || line.compare(line.size() - data.size(), data.size(), data) != 0 ||
        line[line.size() - data.size() - 1] != ' ') {
      continue;
    }
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && hi > lo) {
      ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
    }
  }
}

}  // namespace lockshift
