#pragma once
// Enhanced records in the LMDB store (LmdbOptions::records, DESIGN §3): the record encoding, the
// fencing-token counter, the repository and pull indexes, the format marker and the indexed
// reads. Private to backends/lmdb_*.
//
// On-disk format (records = true). All integers are big-endian; i64 is stored as its two's
// complement u64.
//
//   "db<N>" entry value (the key is lmdb_txn.h's encoded key, as in a plain store):
//     u8   version, 1
//     u64  fencing token
//     i64  acquired-at, unix milliseconds
//     u8   holder flag: 0 none, 1 holder (records::holderOf() read the value)
//     if holder:
//       i64  Pull.Num
//       u32  length of User.Username, then its bytes
//       u32  length of Project.RepoFullName, then its bytes
//     the value bytes, verbatim, to the end of the entry
//
//   "records-meta" (also present in a plain store, which holds only "format"):
//     "format" -> "records" or "plain". An environment with no marker and no entries takes the
//                 format it is opened with; one with entries but no marker was written by a
//                 version before records, so it is "plain".
//     "fence"  -> u64, the last fencing token handed out (absent: none yet). Taken and bumped in
//                 the write transaction of the put that grants, so tokens strictly increase
//                 across every grant of every key of the environment, also across restarts.
//
//   "records-index" (MDB_DUPSORT; only records = true), per Redis db, for values with a holder:
//     key   u8 'R', u32 db, repo                 (repository index)
//           u8 'P', u32 db, repo, i64 Pull.Num   (pull index)
//       where repo is u32 length then the bytes, or, when the index key would not fit LMDB's
//       511-byte limit, u32 0xFFFFFFFF then u64 stableHash64(repo) and u32 length; readers check
//       the record's own repo, so a hash collision only costs a skipped entry.
//     data  the record's encoded "db<N>" key (8-byte hash and key bytes).
//     key   u8 'N', u32 db                       (name index, for every key that starts with
//                                                 kNameIndexPrefix, whatever its value)
//     data  the key's bytes; LMDB sorts duplicates bytewise, so the keys that start with a given
//           prefix are one run of duplicates, found without reading any other key.
//   "records-meta" "names" -> "1" once the name index holds every key. An environment written
//     before the name index existed has no marker; opening it builds the index and sets it.
//   Components are length-prefixed, never separated, so a repo may hold any bytes ('/', ' ', NUL).
//
// Thread-safety: functions are stateless; the transactions passed in follow LMDB's rules.

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/lock_records.h"
#include "backends/lock_store.h"
#include "common/status.h"

namespace lockshift::lmdb {

class EncodedKey;

inline constexpr char kMetaDbName[] = "records-meta";
inline constexpr char kIndexDbName[] = "records-index";
// Named databases a store opens besides its "db<N>" ones (for mdb_env_set_maxdbs).
inline constexpr int kExtraDbs = 2;

// The databases a records store adds.
struct RecordDbs {
  MDB_dbi meta = 0;
  MDB_dbi index = 0;
};

// One Redis db as the write ops see it.
struct Keyspace {
  MDB_dbi dbi = 0;                     // its "db<N>" database
  int db = 0;                          // N, for index keys
  const RecordDbs* records = nullptr;  // set when the store keeps records; must outlive writes
};

// A decoded "db<N>" entry of a records store. The views point into the entry's bytes.
struct RecordView {
  uint64_t token = 0;
  int64_t acquired_at_unix_ms = 0;
  bool has_holder = false;
  int64_t pull_num = 0;
  std::string_view user;
  std::string_view repo;
  std::string_view value;
};

// Decodes an entry; false when it is not a version-1 record.
bool decodeRecord(std::string_view bytes, RecordView* out);
// A record as stored; `holder` may be null (nothing to index).
std::string encodeRecord(uint64_t token, int64_t acquired_at_unix_ms,
                         const records::Holder* holder, std::string_view value);

std::string repoIndexKey(int db, std::string_view repo);
std::string pullIndexKey(int db, std::string_view repo, int64_t pull_num);

// Opens "records-meta" (and with `records`, "records-index") in `txn` and checks the format
// marker against `records`, writing it when the environment has none. `data_dbis` are the
// "db<N>" databases, to tell an environment of an earlier version from an empty one.
// Errors: kInvalidArgument naming `path` and both formats when they disagree; kIoError for LMDB.
Status openRecordDbs(MDB_txn* txn, bool records, const std::vector<MDB_dbi>& data_dbis,
                     const std::string& path, RecordDbs* out);

// ---- Writes, inside the writer's transaction (conventions of lmdb_write_ops.h) ----

// Writes `value` as the record of `key` over `before` (the key's current record, or null when it
// is absent): a new fencing token and acquired-at when records::isNewGrant() says so, else the
// current ones; index entries move when the holder's repo or pull changes.
Status writeRecord(MDB_txn* txn, const Keyspace& space, EncodedKey& key, const RecordView* before,
                   std::string_view value, int* rc);
// Deletes the record of `key` (which is `before`) and its index entries.
Status eraseRecord(MDB_txn* txn, const Keyspace& space, EncodedKey& key, const RecordView& before,
                   int* rc);

// ---- Reads, in one read transaction ----

// Every key of `space` that starts with `prefix`, in bytewise order, from the name index.
// REQUIRES: nameIndexCovers(prefix), space.records set.
Result<std::vector<std::string>> readNames(MDB_txn* txn, const Keyspace& space,
                                           std::string_view prefix, const std::string& path);

// The record of `key` in `space`, nullopt when absent. Errors: kIoError naming `path`; kInternal
// for an entry that is not a record. REQUIRES: key.size() <= kMaxKeyLength, space.records set.
Result<std::optional<LockRecord>> readRecord(MDB_txn* txn, const Keyspace& space,
                                             std::string_view key, const std::string& path);
// Every record indexed under `repo` (and `pull_num`, when set) in `space`, ordered by key. Each
// is read from its "db<N>" entry in `txn`, so only locks held in that snapshot are listed.
Result<std::vector<LockRecord>> readIndexed(MDB_txn* txn, const Keyspace& space,
                                            std::string_view repo, std::optional<int64_t> pull_num,
                                            const std::string& path);

}  // namespace lockshift::lmdb
