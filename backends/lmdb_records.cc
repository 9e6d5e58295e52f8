#include "backends/lmdb_records.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include "backends/lmdb_txn.h"
#include "common/stable_hash.h"

namespace lockshift::lmdb {

namespace {

constexpr uint8_t kRecordVersion = 1;
constexpr char kFormatKey[] = "format";
constexpr char kFenceKey[] = "fence";
constexpr char kNamesKey[] = "names";
constexpr std::string_view kRecordsFormat = "records";
constexpr std::string_view kPlainFormat = "plain";
constexpr char kRepoTag = 'R';
constexpr char kPullTag = 'P';
constexpr char kNameTag = 'N';
// The length of a repo component written as a hash instead of the name.
constexpr uint32_t kHashedRepo = 0xFFFFFFFF;
// The longest repo written inline: a pull index key (tag, db, length, repo, pull) must fit LMDB's
// key limit. The same bound for both indexes, so a repo is inline in both or hashed in both.
constexpr size_t kMaxInlineRepo = kMaxEncodedKey - (1 + 4 + 4 + 8);

// ---- Big-endian fields ----

void putU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
void putU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void putU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void putBytes(std::string* out, std::string_view bytes) {
  putU32(out, static_cast<uint32_t>(bytes.size()));
  out->append(bytes);
}

// Each takes its field off the front of *in; false when *in is too short.
bool takeU8(std::string_view* in, uint8_t* v) {
  if (in->empty()) return false;
  *v = static_cast<uint8_t>((*in)[0]);
  in->remove_prefix(1);
  return true;
}
template <typename T>
bool takeBigEndian(std::string_view* in, T* v) {
  if (in->size() < sizeof(T)) return false;
  T out = 0;
  for (size_t i = 0; i < sizeof(T); ++i) out = (out << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(sizeof(T));
  *v = out;
  return true;
}
bool takeBytes(std::string_view* in, std::string_view* bytes) {
  uint32_t size = 0;
  if (!takeBigEndian(in, &size) || in->size() < size) return false;
  *bytes = in->substr(0, size);
  in->remove_prefix(size);
  return true;
}

void putRepo(std::string* out, std::string_view repo) {
  if (repo.size() <= kMaxInlineRepo) {
    putBytes(out, repo);
    return;
  }
  putU32(out, kHashedRepo);
  putU64(out, stableHash64(repo));
  putU32(out, static_cast<uint32_t>(repo.size()));
}

std::string indexPrefix(char tag, int db, std::string_view repo) {
  std::string key;
  key.reserve(1 + 4 + 4 + std::min(repo.size(), kMaxInlineRepo) + 8);
  key.push_back(tag);
  putU32(&key, static_cast<uint32_t>(db));
  putRepo(&key, repo);
  return key;
}

int64_t nowUnixMs() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Status lmdbFailed(const char* what, int code, const std::string& path) {
  return Status::ioError(std::string("lmdb ") + what + " failed for " + path + ": " +
                         mdb_strerror(code));
}

// Records a failed LMDB call inside a write; the caller discards the returned status.
Status txnFailed(int code, int* rc) {
  *rc = code;
  return Status::ioError(mdb_strerror(code));
}

// ---- Format marker ----

std::string describeFormat(std::string_view format) {
  if (format == kRecordsFormat) return "\"records\" (enhanced records, records = true)";
  if (format == kPlainFormat) return "\"plain\" (values only, records = false)";
  return "\"" + std::string(format) + "\" (unknown to this version)";
}

Status formatMismatch(const std::string& path, std::string_view found, std::string_view wanted) {
  return Status::invalidArgument("lmdb environment " + path + " is in format " +
                                 describeFormat(found) + " but was opened as format " +
                                 describeFormat(wanted) +
                                 "; set records to match the environment, or use another path");
}

// Whether any "db<N>" database holds an entry. Returns 0 or an LMDB error.
int hasEntries(MDB_txn* txn, const std::vector<MDB_dbi>& data_dbis, bool* entries) {
  *entries = false;
  for (MDB_dbi dbi : data_dbis) {
    MDB_stat stat;
    if (int rc = mdb_stat(txn, dbi, &stat); rc != 0) return rc;
    if (stat.ms_entries > 0) *entries = true;
  }
  return 0;
}

// ---- Fencing tokens and index entries, inside a write transaction ----

// The last token handed out (0: none yet).
Status readFence(MDB_txn* txn, MDB_dbi meta, uint64_t* last, int* rc) {
  MDB_val k = asVal(kFenceKey);
  MDB_val v;
  int code = mdb_get(txn, meta, &k, &v);
  if (code == MDB_NOTFOUND) {
    *last = 0;
    return Status::ok();
  }
  if (code != 0) return txnFailed(code, rc);
  std::string_view bytes = asView(v);
  if (bytes.size() != 8 || !takeBigEndian(&bytes, last)) {
    return Status::internal("lmdb records-meta \"fence\" is not a u64");
  }
  if (*last == std::numeric_limits<uint64_t>::max()) {
    return Status::internal("lmdb fencing tokens are exhausted");
  }
  return Status::ok();
}

int writeFence(MDB_txn* txn, MDB_dbi meta, uint64_t token) {
  std::string bytes;
  putU64(&bytes, token);
  MDB_val k = asVal(kFenceKey);
  MDB_val v = asVal(bytes);
  return mdb_put(txn, meta, &k, &v, 0);
}

// The index keys of a holder, computed before a write so they do not depend on its pages.
struct IndexKeys {
  std::string repo;
  std::string pull;
};
std::optional<IndexKeys> indexKeys(int db, bool has_holder, std::string_view repo,
                                   int64_t pull_num) {
  if (!has_holder) return std::nullopt;
  return IndexKeys{repoIndexKey(db, repo), pullIndexKey(db, repo, pull_num)};
}

int addIndex(MDB_txn* txn, MDB_dbi index, const IndexKeys& keys, MDB_val record_key) {
  for (const std::string* key : {&keys.repo, &keys.pull}) {
    MDB_val k = asVal(*key);
    int rc = mdb_put(txn, index, &k, &record_key, MDB_NODUPDATA);
    if (rc != 0 && rc != MDB_KEYEXIST) return rc;
  }
  return 0;
}

int removeIndex(MDB_txn* txn, MDB_dbi index, const IndexKeys& keys, MDB_val record_key) {
  for (const std::string* key : {&keys.repo, &keys.pull}) {
    MDB_val k = asVal(*key);
    int rc = mdb_del(txn, index, &k, &record_key);
    if (rc != 0 && rc != MDB_NOTFOUND) return rc;
  }
  return 0;
}

bool sameIndexKeys(const std::optional<IndexKeys>& a, const std::optional<IndexKeys>& b) {
  if (!a || !b) return !a && !b;
  return a->pull == b->pull;  // the pull key holds the repo too
}

std::string nameIndexKey(int db) {
  std::string key(1, kNameTag);
  putU32(&key, static_cast<uint32_t>(db));
  return key;
}

// Adds (`add`) or removes the key of `encoded` (a "db<N>" entry's key) in the name index of
// `db`, when the index covers it.
int updateName(MDB_txn* txn, MDB_dbi index, int db, const MDB_val& encoded, bool add) {
  uint64_t hash = 0;
  std::string_view key;
  if (!decodeKey(encoded, &hash, &key)) return MDB_CORRUPTED;  // shorter than its hash
  if (!nameIndexCovers(key)) return 0;
  std::string index_key = nameIndexKey(db);
  MDB_val k = asVal(index_key);
  MDB_val name = asVal(key);
  int rc = add ? mdb_put(txn, index, &k, &name, MDB_NODUPDATA) : mdb_del(txn, index, &k, &name);
  return rc == MDB_KEYEXIST || rc == MDB_NOTFOUND ? 0 : rc;
}

// Fills the name index of an environment written before it existed, then marks it complete.
Status buildNameIndex(MDB_txn* txn, const std::vector<MDB_dbi>& data_dbis, const RecordDbs& dbs,
                      const std::string& path) {
  MDB_val marker_key = asVal(kNamesKey);
  MDB_val marker;
  int rc = mdb_get(txn, dbs.meta, &marker_key, &marker);
  if (rc == 0) return Status::ok();
  if (rc != MDB_NOTFOUND) return lmdbFailed("mdb_get", rc, path);
  for (size_t db = 0; db < data_dbis.size(); ++db) {
    Cursor cursor;
    if (int code = cursor.open(txn, data_dbis[db]); code != 0) {
      return lmdbFailed("mdb_cursor_open", code, path);
    }
    MDB_val k, v;
    int got = cursor.get(&k, &v, MDB_FIRST);
    for (; got == 0; got = cursor.get(&k, &v, MDB_NEXT)) {
      if (int code = updateName(txn, dbs.index, static_cast<int>(db), k, true); code != 0) {
        return lmdbFailed("mdb_put", code, path);
      }
    }
    if (got != MDB_NOTFOUND) return lmdbFailed("mdb_cursor_get", got, path);
  }
  MDB_val done = asVal("1");
  if (int code = mdb_put(txn, dbs.meta, &marker_key, &done, 0); code != 0) {
    return lmdbFailed("mdb_put", code, path);
  }
  return Status::ok();
}

LockRecord toLockRecord(std::string_view key, const RecordView& record) {
  LockRecord out;
  out.key = std::string(key);
  out.value = std::string(record.value);
  out.token = record.token;
  out.acquired_at_unix_ms = record.acquired_at_unix_ms;
  if (record.has_holder) {
    out.pull_num = record.pull_num;
    out.user = std::string(record.user);
    out.repo = std::string(record.repo);
  }
  return out;
}

Status notARecord(const std::string& path, std::string_view key) {
  return Status::internal("lmdb entry of key \"" + std::string(key) + "\" in " + path +
                          " is not an enhanced record");
}

}  // namespace

bool decodeRecord(std::string_view bytes, RecordView* out) {
  uint8_t version = 0;
  uint8_t flag = 0;
  uint64_t acquired = 0;
  RecordView record;
  if (!takeU8(&bytes, &version) || version != kRecordVersion ||
      !takeBigEndian(&bytes, &record.token) || !takeBigEndian(&bytes, &acquired) ||
      !takeU8(&bytes, &flag) || flag > 1) {
    return false;
  }
  record.acquired_at_unix_ms = static_cast<int64_t>(acquired);
  record.has_holder = flag == 1;
  if (record.has_holder) {
    uint64_t pull = 0;
    if (!takeBigEndian(&bytes, &pull) || !takeBytes(&bytes, &record.user) ||
        !takeBytes(&bytes, &record.repo)) {
      return false;
    }
    record.pull_num = static_cast<int64_t>(pull);
  }
  record.value = bytes;
  *out = record;
  return true;
}

std::string encodeRecord(uint64_t token, int64_t acquired_at_unix_ms,
                         const records::Holder* holder, std::string_view value) {
  std::string out;
  size_t holder_size = holder ? 8 + 4 + holder->user.size() + 4 + holder->repo.size() : 0;
  out.reserve(1 + 8 + 8 + 1 + holder_size + value.size());
  putU8(&out, kRecordVersion);
  putU64(&out, token);
  putU64(&out, static_cast<uint64_t>(acquired_at_unix_ms));
  putU8(&out, holder ? 1 : 0);
  if (holder) {
    putU64(&out, static_cast<uint64_t>(holder->pull_num));
    putBytes(&out, holder->user);
    putBytes(&out, holder->repo);
  }
  out.append(value);
  return out;
}

std::string repoIndexKey(int db, std::string_view repo) {
  return indexPrefix(kRepoTag, db, repo);
}

std::string pullIndexKey(int db, std::string_view repo, int64_t pull_num) {
  std::string key = indexPrefix(kPullTag, db, repo);
  putU64(&key, static_cast<uint64_t>(pull_num));
  return key;
}

Status openRecordDbs(MDB_txn* txn, bool records, const std::vector<MDB_dbi>& data_dbis,
                     const std::string& path, RecordDbs* out) {
  if (int rc = mdb_dbi_open(txn, kMetaDbName, MDB_CREATE, &out->meta); rc != 0) {
    return lmdbFailed("mdb_dbi_open", rc, path);
  }
  const std::string_view wanted = records ? kRecordsFormat : kPlainFormat;
  MDB_val k = asVal(kFormatKey);
  MDB_val v;
  int rc = mdb_get(txn, out->meta, &k, &v);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdbFailed("mdb_get", rc, path);
  const bool marked = rc == 0;
  std::optional<std::string> found;
  if (marked) {
    found = std::string(asView(v));
  } else {
    bool entries = false;
    if (int code = hasEntries(txn, data_dbis, &entries); code != 0) {
      return lmdbFailed("mdb_stat", code, path);
    }
    if (entries) found = std::string(kPlainFormat);  // written before format markers existed
  }
  if (found && *found != wanted) return formatMismatch(path, *found, wanted);

  if (records) {
    if (int code = mdb_dbi_open(txn, kIndexDbName, MDB_CREATE | MDB_DUPSORT, &out->index);
        code != 0) {
      return lmdbFailed("mdb_dbi_open", code, path);
    }
    if (Status status = buildNameIndex(txn, data_dbis, *out, path); !status) return status;
  }
  if (marked) return Status::ok();
  MDB_val marker = asVal(wanted);
  if (int code = mdb_put(txn, out->meta, &k, &marker, 0); code != 0) {
    return lmdbFailed("mdb_put", code, path);
  }
  return Status::ok();
}

Status writeRecord(MDB_txn* txn, const Keyspace& space, EncodedKey& key, const RecordView* before,
                   std::string_view value, int* rc) {
  const RecordDbs& dbs = *space.records;
  // Everything is decided before the first write: `before` points into a page that any write in
  // `txn` may move, and an error after a write would leave half a change in the batch.
  std::optional<std::string_view> previous;
  if (before) previous = before->value;
  const bool grant = records::isNewGrant(previous, value);
  std::optional<records::Holder> holder = records::holderOf(value);
  std::optional<IndexKeys> old_keys =
      before ? indexKeys(space.db, before->has_holder, before->repo, before->pull_num)
             : std::nullopt;
  std::optional<IndexKeys> new_keys =
      holder ? indexKeys(space.db, true, holder->repo, holder->pull_num) : std::nullopt;
  uint64_t token = 0;
  int64_t acquired_at = 0;
  if (grant) {
    uint64_t last = 0;
    if (Status status = readFence(txn, dbs.meta, &last, rc); !status) return status;
    token = last + 1;
    acquired_at = nowUnixMs();
  } else {
    token = before->token;  // not a grant: `before` is a lock of the same holder
    acquired_at = before->acquired_at_unix_ms;
  }
  std::string record = encodeRecord(token, acquired_at, holder ? &*holder : nullptr, value);

  if (grant) {
    if (int code = writeFence(txn, dbs.meta, token); code != 0) return txnFailed(code, rc);
  }
  MDB_val k = key.val();
  if (!sameIndexKeys(old_keys, new_keys)) {
    if (old_keys) {
      if (int code = removeIndex(txn, dbs.index, *old_keys, k); code != 0) {
        return txnFailed(code, rc);
      }
    }
    if (new_keys) {
      if (int code = addIndex(txn, dbs.index, *new_keys, k); code != 0) return txnFailed(code, rc);
    }
  }
  if (!before) {
    if (int code = updateName(txn, dbs.index, space.db, k, true); code != 0) {
      return txnFailed(code, rc);
    }
  }
  MDB_val v = asVal(record);
  if (int code = mdb_put(txn, space.dbi, &k, &v, 0); code != 0) return txnFailed(code, rc);
  return Status::ok();
}

Status eraseRecord(MDB_txn* txn, const Keyspace& space, EncodedKey& key, const RecordView& before,
                   int* rc) {
  std::optional<IndexKeys> keys =
      indexKeys(space.db, before.has_holder, before.repo, before.pull_num);
  MDB_val k = key.val();
  if (keys) {
    if (int code = removeIndex(txn, space.records->index, *keys, k); code != 0) {
      return txnFailed(code, rc);
    }
  }
  if (int code = updateName(txn, space.records->index, space.db, k, false); code != 0) {
    return txnFailed(code, rc);
  }
  if (int code = mdb_del(txn, space.dbi, &k, nullptr); code != 0) return txnFailed(code, rc);
  return Status::ok();
}

Result<std::optional<LockRecord>> readRecord(MDB_txn* txn, const Keyspace& space,
                                             std::string_view key, const std::string& path) {
  EncodedKey encoded(key);
  MDB_val k = encoded.val();
  MDB_val v;
  int rc = mdb_get(txn, space.dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<LockRecord>();
  if (rc != 0) return lmdbFailed("mdb_get", rc, path);
  RecordView record;
  if (!decodeRecord(asView(v), &record)) return notARecord(path, key);
  return std::optional<LockRecord>(toLockRecord(key, record));
}

Result<std::vector<LockRecord>> readIndexed(MDB_txn* txn, const Keyspace& space,
                                            std::string_view repo, std::optional<int64_t> pull_num,
                                            const std::string& path) {
  std::string index_key =
      pull_num ? pullIndexKey(space.db, repo, *pull_num) : repoIndexKey(space.db, repo);
  Cursor cursor;
  if (int rc = cursor.open(txn, space.records->index); rc != 0) {
    return lmdbFailed("mdb_cursor_open", rc, path);
  }
  std::vector<LockRecord> found;
  MDB_val k = asVal(index_key);
  MDB_val record_key;
  int rc = cursor.get(&k, &record_key, MDB_SET_KEY);
  for (; rc == 0; rc = cursor.get(&k, &record_key, MDB_NEXT_DUP)) {
    uint64_t hash = 0;
    std::string_view key;
    if (!decodeKey(record_key, &hash, &key)) {
      return Status::internal("lmdb index entry shorter than a key hash in " + path);
    }
    MDB_val v;
    int got = mdb_get(txn, space.dbi, &record_key, &v);
    // Written in the same transaction as the record, the index cannot name a missing key; if it
    // ever did, the answer still lists only what is held.
    if (got == MDB_NOTFOUND) continue;
    if (got != 0) return lmdbFailed("mdb_get", got, path);
    RecordView record;
    if (!decodeRecord(asView(v), &record)) return notARecord(path, key);
    // A hashed repo component may collide: the record's own holder decides.
    if (!record.has_holder || record.repo != repo || (pull_num && record.pull_num != *pull_num)) {
      continue;
    }
    found.push_back(toLockRecord(key, record));
  }
  if (rc != MDB_NOTFOUND) return lmdbFailed("mdb_cursor_get", rc, path);
  std::sort(found.begin(), found.end(),
            [](const LockRecord& a, const LockRecord& b) { return a.key < b.key; });
  return found;
}

Result<std::vector<std::string>> readNames(MDB_txn* txn, const Keyspace& space,
                                           std::string_view prefix, const std::string& path) {
  std::string index_key = nameIndexKey(space.db);
  Cursor cursor;
  if (int rc = cursor.open(txn, space.records->index); rc != 0) {
    return lmdbFailed("mdb_cursor_open", rc, path);
  }
  std::vector<std::string> names;
  MDB_val k = asVal(index_key);
  MDB_val name = asVal(prefix);
  // The first duplicate at or after `prefix`; the run under it ends at the first that lacks it.
  int rc = cursor.get(&k, &name, MDB_GET_BOTH_RANGE);
  for (; rc == 0; rc = cursor.get(&k, &name, MDB_NEXT_DUP)) {
    std::string_view key = asView(name);
    if (!key.starts_with(prefix)) break;
    names.emplace_back(key);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdbFailed("mdb_cursor_get", rc, path);
  return names;
}

}  // namespace lockshift::lmdb
