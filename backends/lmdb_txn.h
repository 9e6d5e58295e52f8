#pragma once
// Small pieces of the LMDB store: the on-disk key encoding, RAII transactions and cursors, a pool
// of reset read transactions and the process-wide claim on an environment. Private to
// backends/lmdb_*.
//
// Key encoding: 8 bytes of big-endian stableHash64(key), then the key bytes. LMDB compares keys
// with memcmp, so entries sort by hash (ties by key bytes) and a scan cursor is a hash.

#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace lockshift::lmdb {

constexpr size_t kHashBytes = 8;
// LMDB's compiled-in key limit (mdb_env_get_maxkeysize() with the default MDB_MAXKEYSIZE).
constexpr size_t kMaxEncodedKey = 511;
constexpr size_t kMaxKeyLength = kMaxEncodedKey - kHashBytes;

// A store key in LMDB's form. REQUIRES: key.size() <= kMaxKeyLength. Holds a copy of the bytes;
// an MDB_val from val() is valid while this object lives.
class EncodedKey {
 public:
  explicit EncodedKey(std::string_view key);
  // Only the hash: the smallest LMDB key of that hash, where a scan from cursor `hash` starts.
  static EncodedKey cursor(uint64_t hash);

  MDB_val val() { return {size_, bytes_}; }

 private:
  EncodedKey() = default;
  void setHash(uint64_t hash);

  unsigned char bytes_[kMaxEncodedKey];
  size_t size_ = 0;
};

// Splits an LMDB key into hash and store key. Returns false when it is shorter than the hash.
bool decodeKey(const MDB_val& val, uint64_t* hash, std::string_view* key);

inline std::string_view asView(const MDB_val& val) {
  return {static_cast<const char*>(val.mv_data), val.mv_size};
}
inline MDB_val asVal(std::string_view bytes) {
  return {bytes.size(), const_cast<char*>(bytes.data())};
}

// LMDB forbids opening one environment twice in a process (closing either copy drops the other's
// locks). claimPath() records a canonical environment path for this process and returns false if
// it is already claimed; releasePath() gives it back. Thread-safe.
bool claimPath(const std::string& path);
void releasePath(const std::string& path);

// Idle read transactions kept for reuse (mdb_txn_reset/renew), so a read does not take a fresh
// reader slot each time. Needs an environment opened with MDB_NOTLS (a read transaction may then
// move between threads). Thread-safe. Lifetime: must be destroyed before the environment closes
// and after every transaction it handed out was given back.
class ReaderPool {
 public:
  explicit ReaderPool(MDB_env* env);
  ~ReaderPool();
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  // A read transaction on the latest committed state, or an LMDB error code.
  int acquire(MDB_txn** txn);
  // Takes back a transaction from acquire() (resetting it; it may be kept for reuse).
  void release(MDB_txn* txn);

 private:
  static constexpr size_t kMaxIdle = 32;

  MDB_env* env_;
  std::mutex mu_;
  std::vector<MDB_txn*> idle_;  // GUARDED_BY(mu_)
};

// A read transaction from a ReaderPool, given back on destruction.
class ReadTxn {
 public:
  explicit ReadTxn(ReaderPool& pool) : pool_(pool) { rc_ = pool_.acquire(&txn_); }
  ~ReadTxn() {
    if (txn_ != nullptr) pool_.release(txn_);
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;

  // 0 when the transaction began; otherwise the LMDB error and get() is null.
  int rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }

 private:
  ReaderPool& pool_;
  MDB_txn* txn_ = nullptr;
  int rc_ = 0;
};

// A write transaction, aborted on destruction unless committed. Single-threaded.
class WriteTxn {
 public:
  WriteTxn() = default;
  ~WriteTxn() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
  }
  WriteTxn(const WriteTxn&) = delete;
  WriteTxn& operator=(const WriteTxn&) = delete;

  int begin(MDB_env* env) { return mdb_txn_begin(env, nullptr, 0, &txn_); }
  // Commits; the transaction is gone afterwards whether or not this succeeded.
  int commit() {
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    return rc;
  }
  MDB_txn* get() const { return txn_; }

 private:
  MDB_txn* txn_ = nullptr;
};

// A cursor, closed on destruction. REQUIRES: destroyed before its transaction ends.
class Cursor {
 public:
  Cursor() = default;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;

  int open(MDB_txn* txn, MDB_dbi dbi) { return mdb_cursor_open(txn, dbi, &cursor_); }
  int get(MDB_val* key, MDB_val* value, MDB_cursor_op op) {
    return mdb_cursor_get(cursor_, key, value, op);
  }

 private:
  MDB_cursor* cursor_ = nullptr;
};

}  // namespace lockshift::lmdb
