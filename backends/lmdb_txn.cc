#include "backends/lmdb_txn.h"

#include <cassert>
#include <cstring>
#include <set>

#include "common/stable_hash.h"

namespace lockshift::lmdb {

EncodedKey::EncodedKey(std::string_view key) {
  assert(key.size() <= kMaxKeyLength);
  setHash(stableHash64(key));
  if (!key.empty()) std::memcpy(bytes_ + kHashBytes, key.data(), key.size());
  size_ = kHashBytes + key.size();
}

EncodedKey EncodedKey::cursor(uint64_t hash) {
  EncodedKey encoded;
  encoded.setHash(hash);
  encoded.size_ = kHashBytes;
  return encoded;
}

void EncodedKey::setHash(uint64_t hash) {
  for (size_t i = 0; i < kHashBytes; ++i) {
    bytes_[i] = static_cast<unsigned char>(hash >> (8 * (kHashBytes - 1 - i)));
  }
}

bool decodeKey(const MDB_val& val, uint64_t* hash, std::string_view* key) {
  if (val.mv_size < kHashBytes) return false;
  const auto* bytes = static_cast<const unsigned char*>(val.mv_data);
  uint64_t h = 0;
  for (size_t i = 0; i < kHashBytes; ++i) h = (h << 8) | bytes[i];
  *hash = h;
  *key =
      std::string_view(reinterpret_cast<const char*>(bytes) + kHashBytes, val.mv_size - kHashBytes);
  return true;
}

namespace {

std::mutex claimed_mu;
std::set<std::string> claimed_paths;  // GUARDED_BY(claimed_mu)

}  // namespace

bool claimPath(const std::string& path) {
  std::lock_guard lock(claimed_mu);
  return claimed_paths.insert(path).second;
}

void releasePath(const std::string& path) {
  std::lock_guard lock(claimed_mu);
  claimed_paths.erase(path);
}

ReaderPool::ReaderPool(MDB_env* env) : env_(env) { idle_.reserve(kMaxIdle); }

ReaderPool::~ReaderPool() {
  for (MDB_txn* txn : idle_) mdb_txn_abort(txn);
}

int ReaderPool::acquire(MDB_txn** txn) {
  MDB_txn* reused = nullptr;
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      reused = idle_.back();
      idle_.pop_back();
    }
  }
  if (reused != nullptr) {
    if (mdb_txn_renew(reused) == 0) {
      *txn = reused;
      return 0;
    }
    mdb_txn_abort(reused);
  }
  *txn = nullptr;
  return mdb_txn_begin(env_, nullptr, MDB_RDONLY, txn);
}

void ReaderPool::release(MDB_txn* txn) {
  mdb_txn_reset(txn);
  {
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdle) {
      idle_.push_back(txn);  // never reallocates: the constructor reserved kMaxIdle
      return;
    }
  }
  mdb_txn_abort(txn);
}

}  // namespace lockshift::lmdb
