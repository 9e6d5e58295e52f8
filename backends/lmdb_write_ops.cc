#include "backends/lmdb_write_ops.h"

#include "backends/lmdb_txn.h"
#include "common/lock_json.h"

namespace lockshift::lmdb {

namespace {

// Records a failed LMDB call; the caller discards the returned status.
Status txnFailed(int code, int* rc) {
  *rc = code;
  return Status::ioError(mdb_strerror(code));
}

// Reads `key` inside `txn`. Returns 0 with *found set, or an LMDB error. The view is valid until
// the next change made in `txn`.
int lookup(MDB_txn* txn, MDB_dbi dbi, EncodedKey& key, std::optional<std::string_view>* found) {
  MDB_val k = key.val();
  MDB_val v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) {
    found->reset();
    return 0;
  }
  if (rc == 0) *found = asView(v);
  return rc;
}

}  // namespace

Status checkKey(std::string_view key) {
  if (key.size() <= kMaxKeyLength) return Status::ok();
  return Status::invalidArgument("key too long: " + std::to_string(key.size()) +
                                 " bytes (the lmdb store allows at most " +
                                 std::to_string(kMaxKeyLength) + ")");
}

Result<PutResult> applyPut(MDB_txn* txn, MDB_dbi dbi, const PutRequest& request, int* rc) {
  if (Status status = checkKey(request.key); !status) return status;
  EncodedKey key(request.key);
  std::optional<std::string_view> existing;
  if (int code = lookup(txn, dbi, key, &existing); code != 0) return txnFailed(code, rc);

  PutResult result;
  if (request.return_previous && existing) result.previous = std::string(*existing);
  using Condition = PutRequest::Condition;
  if ((request.condition == Condition::kIfAbsent && existing) ||
      (request.condition == Condition::kIfPresent && !existing)) {
    result.outcome = PutResult::Outcome::kConditionFailed;
    return result;
  }
  if (request.strict_owner && existing) {
    Result<LockIdentity> holder = parseProjectLock(*existing);
    if (!holder.isOk() || !holder->sameHolder(*request.strict_owner)) {
      result.outcome = PutResult::Outcome::kLockedByOther;
      result.holder = holder.isOk() ? holder->describe() : "an unreadable lock value";
      return result;
    }
  }
  MDB_val k = key.val();
  MDB_val v = asVal(request.value);
  if (int code = mdb_put(txn, dbi, &k, &v, 0); code != 0) return txnFailed(code, rc);
  result.outcome = PutResult::Outcome::kApplied;
  return result;
}

Result<int64_t> applyDel(MDB_txn* txn, MDB_dbi dbi, const std::vector<std::string>& keys, int* rc) {
  for (const std::string& key : keys) {
    if (Status status = checkKey(key); !status) return status;
  }
  int64_t deleted = 0;
  for (const std::string& key : keys) {
    EncodedKey encoded(key);
    MDB_val k = encoded.val();
    int code = mdb_del(txn, dbi, &k, nullptr);
    if (code == 0) {
      ++deleted;
    } else if (code != MDB_NOTFOUND) {
      return txnFailed(code, rc);
    }
  }
  return deleted;
}

Result<std::optional<std::string>> applyDeleteIfOwnedByPull(MDB_txn* txn, MDB_dbi dbi,
                                                            std::string_view key,
                                                            std::string_view pull_num, int* rc) {
  using Deleted = std::optional<std::string>;
  if (Status status = checkKey(key); !status) return status;
  EncodedKey encoded(key);
  std::optional<std::string_view> existing;
  if (int code = lookup(txn, dbi, encoded, &existing); code != 0) return txnFailed(code, rc);
  if (!existing) return Deleted();

  Result<std::optional<double>> held_by = lockPullNumber(*existing);
  if (!held_by.isOk()) return Status::invalidArgument("failed to deserialize current lock");
  std::optional<double> wanted = luaToNumber(pull_num);
  if (!held_by.value() || !wanted || *held_by.value() != *wanted) return Deleted();

  std::string value(*existing);  // copied before the delete invalidates the view
  MDB_val k = encoded.val();
  if (int code = mdb_del(txn, dbi, &k, nullptr); code != 0) return txnFailed(code, rc);
  return Deleted(std::move(value));
}

}  // namespace lockshift::lmdb
