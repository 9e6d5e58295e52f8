#pragma once
// LmdbStore's writes as they run inside the writer's transaction. Each decides from what the
// transaction sees (so a strict acquire or a conditional delete is atomic with every other write)
// and changes nothing unless it succeeds. Private to backends/lmdb_*.
//
// In a store that keeps records (Keyspace::records set) each decides on the value inside the
// record and keeps the record's token and index entries in the same transaction
// (lmdb_records.h); the answers are the same as in a plain store.
//
// Each returns the operation's own result, errors of its own included (a key too long, a lock
// value that is not JSON). When an LMDB call fails the transaction is unusable: the function sets
// *rc to LMDB's error code and its returned value must be ignored. REQUIRES: *rc == 0 on entry.

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/lmdb_records.h"
#include "backends/lock_store.h"
#include "common/status.h"

namespace lockshift::lmdb {

// kInvalidArgument "key too long: N bytes (...)" for a key LMDB cannot hold; OK otherwise.
Status checkKey(std::string_view key);

Result<PutResult> applyPut(MDB_txn* txn, const Keyspace& space, const PutRequest& request,
                           int* rc);

// Deletes the keys that exist and returns how many; nothing when any key is too long (or, with
// records, any entry is not a record).
Result<int64_t> applyDel(MDB_txn* txn, const Keyspace& space, const std::vector<std::string>& keys,
                         int* rc);

Result<std::optional<std::string>> applyDeleteIfOwnedByPull(MDB_txn* txn, const Keyspace& space,
                                                            std::string_view key,
                                                            std::string_view pull_num, int* rc);

}  // namespace lockshift::lmdb
