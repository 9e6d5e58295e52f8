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

// The value a key holds, as the write ops decide on it. In a records store `record` is the whole
// decoded entry (valid when `value` is set). The views are valid until the next change in the
// transaction.
struct Current {
  std::optional<std::string_view> value;
  RecordView record;
};

// Reads `key` inside `txn`. An LMDB error sets *rc; an entry of a records store that is not a
// record is kInternal (and nothing has changed).
Status lookup(MDB_txn* txn, const Keyspace& space, EncodedKey& key, Current* current, int* rc) {
  MDB_val k = key.val();
  MDB_val v;
  int code = mdb_get(txn, space.dbi, &k, &v);
  current->value.reset();
  if (code == MDB_NOTFOUND) return Status::ok();
  if (code != 0) return txnFailed(code, rc);
  if (space.records == nullptr) {
    current->value = asView(v);
    return Status::ok();
  }
  if (!decodeRecord(asView(v), &current->record)) {
    return Status::internal("lmdb entry is not an enhanced record");
  }
  current->value = current->record.value;
  return Status::ok();
}

// Writes `value` for `key`, whose entry is `current`.
Status writeValue(MDB_txn* txn, const Keyspace& space, EncodedKey& key, const Current& current,
                  std::string_view value, int* rc) {
  if (space.records != nullptr) {
    return writeRecord(txn, space, key, current.value ? &current.record : nullptr, value, rc);
  }
  MDB_val k = key.val();
  MDB_val v = asVal(value);
  if (int code = mdb_put(txn, space.dbi, &k, &v, 0); code != 0) return txnFailed(code, rc);
  return Status::ok();
}

// Deletes `key`, whose entry is `current` (present).
Status eraseEntry(MDB_txn* txn, const Keyspace& space, EncodedKey& key, const Current& current,
                  int* rc) {
  if (space.records != nullptr) return eraseRecord(txn, space, key, current.record, rc);
  MDB_val k = key.val();
  if (int code = mdb_del(txn, space.dbi, &k, nullptr); code != 0) return txnFailed(code, rc);
  return Status::ok();
}

// applyDel() in a records store. Every entry is read first, so one that is not a record fails the
// delete before anything changed; each deleted entry takes its index entries along.
Result<int64_t> deleteRecords(MDB_txn* txn, const Keyspace& space,
                              const std::vector<std::string>& keys, int* rc) {
  Current current;
  for (const std::string& key : keys) {
    EncodedKey encoded(key);
    if (Status status = lookup(txn, space, encoded, &current, rc); !status) return status;
  }
  int64_t deleted = 0;
  for (const std::string& key : keys) {
    EncodedKey encoded(key);
    if (Status status = lookup(txn, space, encoded, &current, rc); !status) return status;
    if (!current.value) continue;  // absent, or deleted by an earlier copy of the key in `keys`
    if (Status status = eraseEntry(txn, space, encoded, current, rc); !status) return status;
    ++deleted;
  }
  return deleted;
}

}  // namespace

Status checkKey(std::string_view key) {
  if (key.size() <= kMaxKeyLength) return Status::ok();
  return Status::invalidArgument("key too long: " + std::to_string(key.size()) +
                                 " bytes (the lmdb store allows at most " +
                                 std::to_string(kMaxKeyLength) + ")");
}

Result<PutResult> applyPut(MDB_txn* txn, const Keyspace& space, const PutRequest& request,
                           int* rc) {
  if (Status status = checkKey(request.key); !status) return status;
  EncodedKey key(request.key);
  Current current;
  if (Status status = lookup(txn, space, key, &current, rc); !status) return status;
  const std::optional<std::string_view>& existing = current.value;

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
  if (Status status = writeValue(txn, space, key, current, request.value, rc); !status) {
    return status;
  }
  result.outcome = PutResult::Outcome::kApplied;
  return result;
}

Result<int64_t> applyDel(MDB_txn* txn, const Keyspace& space, const std::vector<std::string>& keys,
                         int* rc) {
  for (const std::string& key : keys) {
    if (Status status = checkKey(key); !status) return status;
  }
  if (space.records != nullptr) return deleteRecords(txn, space, keys, rc);
  int64_t deleted = 0;
  for (const std::string& key : keys) {
    EncodedKey encoded(key);
    MDB_val k = encoded.val();
    int code = mdb_del(txn, space.dbi, &k, nullptr);
    if (code == 0) {
      ++deleted;
    } else if (code != MDB_NOTFOUND) {
      return txnFailed(code, rc);
    }
  }
  return deleted;
}

Result<std::optional<std::string>> applyDeleteIfOwnedByPull(MDB_txn* txn, const Keyspace& space,
                                                            std::string_view key,
                                                            std::string_view pull_num, int* rc) {
  using Deleted = std::optional<std::string>;
  if (Status status = checkKey(key); !status) return status;
  EncodedKey encoded(key);
  Current current;
  if (Status status = lookup(txn, space, encoded, &current, rc); !status) return status;
  const std::optional<std::string_view>& existing = current.value;
  if (!existing) return Deleted();

  Result<std::optional<double>> held_by = lockPullNumber(*existing);
  if (!held_by.isOk()) return Status::invalidArgument("failed to deserialize current lock");
  std::optional<double> wanted = luaToNumber(pull_num);
  if (!held_by.value() || !wanted || *held_by.value() != *wanted) return Deleted();

  std::string value(*existing);  // copied before the delete invalidates the view
  if (Status status = eraseEntry(txn, space, encoded, current, rc); !status) return status;
  return Deleted(std::move(value));
}

}  // namespace lockshift::lmdb
