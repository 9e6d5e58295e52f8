#pragma once
// Enhanced records (DESIGN §3) on Redis and Redis Cluster: the layout, the Lua scripts and the
// operations, shared by RedisStore and RedisClusterStore (which differ only in how a command
// reaches the node serving a key). Private to backends/redis_*.
//
// Layout, for a store with key_prefix P and a lock key K:
//   record      P{r<b>}k:K          hash: v (the value, verbatim), tok (fencing token),
//                                   at (acquired-at, unix ms), ps (the prepare score of the last
//                                   put), and for a project lock the holder: pull, user, repo,
//                                   path, proj, ws (Pull.Num, User.Username,
//                                   Project.RepoFullName, .Path, .ProjectName, Workspace)
//   fence       P{r<b>}fence        counter the tokens of every key in bucket b come from; it
//                                   outlives the keys, so a key's tokens keep growing
//   repo index  P{x<c>}r:<n>:R      sorted set of the keys whose lock is of repository R
//   pull index  P{x<c>}p:<N>:R      sorted set of the keys locked by pull N of repository R
//   name index  P{n}names           sorted set, every score 0, of each K that starts with
//                                   kNameIndexPrefix (lock_store.h), for ZRANGEBYLEX by prefix
//   name marker P{n}names-built     "1" once the name index holds every such K (see below)
// b = stableHash64(K) % 1024 and c = stableHash64(R) % 1024, in decimal; n = R's length in bytes.
// The holder fields come from records::holderOf() of the value (Boost.JSON, as in LmdbStore; for
// a strict acquire from its strict_owner, which the proxy parsed from the same value), so
// strict acquire and the grant decision compare fields and decide exactly as LmdbStore does; no
// script decodes JSON except the unlock, which keeps Atlantis's own reading of Pull.Num.
//
// Hash tags, and why every atomic step touches one slot: Redis Cluster hashes only the part of
// a key between the first '{' and the next '}'. A record and the fence of its bucket carry the
// same tag {r<b>}, so the script that decides and writes a lock (reading the record, taking a
// token) runs on one slot; K itself is outside the tag, so any byte in it (braces included) is
// harmless. The two index sets of a repository carry {x<c>}, so each index step is one script
// on one slot. 1024 tags of each kind spread records and indexes over every master. (A prefix
// holding a '{' puts everything in the prefix's slot instead, which is still one slot.)
//
// Index and record are different slots, so they cannot change in one atomic step. The index is
// kept a superset of the truth instead, and readers verify. Each put takes a prepare score that
// grows with every put of this process (wall-clock microseconds, kept strictly increasing). A
// put of a project lock first adds K to its holder's sets with that score (ZADD GT), then runs
// the record script, which stores the score as ps. A put that was refused removes the entries it
// added (only while their score is still its own, so a later put's entry survives); a write that
// ends a holder's grant removes that holder's entries after the record changed, only where the
// score is at most the ended record's ps. locksByRepo/locksByPull read each candidate's record
// and keep only those whose record names the same holder. A crash between steps leaves at most
// an extra entry, which readers skip; it can never hide a held lock. This assumes one lockshift
// process writes a given key at a time (the router's per-key order); scores of two processes
// are not ordered against each other.
//
// One node: on a standalone Redis, where a script may touch keys of any slot, each put, delete
// and unlock is one script that changes the record and its index entries together (the record
// remembers its index keys as rk, pk), so the index is exact there and an operation takes one
// round trip. The two-step protocol above is for a cluster.
//
// The name index is kept a superset of the keys too, by order rather than scores (a lexical
// range needs every score equal): a put adds K before its record script runs (on one node, the
// script adds it when it writes), and a delete removes K after the record is gone. Readers check
// each candidate's record exists. A put refused with XX on an absent key, or a crash between the
// steps, leaves an extra entry, which readers skip. This relies on the router's per-key order: no
// put of K starts while a delete of K is between its two steps. A store written before the name
// index existed has no marker; the first keysWithPrefix() adds every record's K (from a scan),
// then sets it. Writes meanwhile keep the index themselves.
//
// Tokens: a put that grants (records::isNewGrant: the key was absent, had no holder, or had
// another) takes INCR of the bucket's fence inside the record script; a re-put by the same
// holder keeps the token and time. So a key's tokens strictly increase.
//
// Thread-safety: a Records is immutable after construction, but for an atomic flag that caches
// the name marker; its operations may run concurrently.

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/lock_records.h"
#include "backends/lock_store.h"
#include "common/status.h"
#include "resp/value.h"

namespace lockshift::redis {

namespace asio = boost::asio;

// Sends one encoded command (resp::encodeCommand) to the node that serves `routing_key` (a wire
// key the command touches).
using KeyedCall = std::function<asio::awaitable<Result<resp::Value>>(
    const std::string& routing_key, std::string wire)>;

// The layout above, as functions (tests use them to look at a store directly).
std::string recordKey(std::string_view prefix, std::string_view key);
std::string fenceKey(std::string_view prefix, std::string_view key);
std::string repoIndexKey(std::string_view prefix, std::string_view repo);
std::string pullIndexKey(std::string_view prefix, std::string_view repo, int64_t pull_num);
std::string namesKey(std::string_view prefix);
std::string namesBuiltKey(std::string_view prefix);
// K from a record key; nullopt for any other key (fences, indexes, foreign keys).
std::optional<std::string> keyOfRecord(std::string_view prefix, std::string_view wire_key);
// The SCAN MATCH pattern for the record keys whose K matches `match` (empty: all). It can match
// more (K is free text), so readRecordScan() checks each K against `match` itself.
std::string recordScanPattern(std::string_view prefix, std::string_view match);
Result<ScanPage> readRecordScan(const Result<resp::Value>& reply, std::string_view prefix,
                                std::string_view match, std::string_view where);

struct Script;  // a Lua script and its SHA1 (redis_records.cc)

class Records {
 public:
  // Most reads locksByRepo/locksByPull keep in flight.
  static constexpr size_t kReadConcurrency = 64;

  // `single_node`: every key lives on one Redis (not a cluster), so each operation keeps record
  // and index together in one script (see "One node" above).
  Records(std::string prefix, std::string where, KeyedCall call, bool single_node)
      : prefix_(std::move(prefix)), where_(std::move(where)), call_(std::move(call)), single_node_(single_node) {}

  using Self = std::shared_ptr<const Records>;
  static asio::awaitable<Result<std::optional<std::string>>> get(Self self, std::string key);
  static asio::awaitable<Result<PutResult>> put(Self self, PutRequest request);
  static asio::awaitable<Result<int64_t>> del(Self self, std::vector<std::string> keys);
  static asio::awaitable<Result<std::optional<std::string>>> deleteIfOwnedByPull(
      Self self, std::string key, std::string pull_num);
  static asio::awaitable<Result<std::optional<LockRecord>>> getRecord(Self self, std::string key);
  static asio::awaitable<Result<std::vector<LockRecord>>> locksByRepo(Self self, std::string repo);
  static asio::awaitable<Result<std::vector<LockRecord>>> locksByPull(Self self, std::string repo,
                                                                      int64_t pull_num);
  // A page of the store's own record scan (LockStore::scan), from `cursor`, of keys matching
  // kNameIndexPrefix + "*"; used once to build the name index of an older store.
  using ScanRecords = std::function<asio::awaitable<Result<ScanPage>>(uint64_t cursor)>;
  // The request a store's ScanRecords sends: a page of the keys the name index holds.
  static ScanRequest namedKeysPage(uint64_t cursor) {
    return ScanRequest{.db = 0, .cursor = cursor, .count = 1000, .match = std::string(kNameIndexPrefix) + "*"};
  }
  // LockStore::keysWithPrefix. REQUIRES: nameIndexCovers(prefix).
  static asio::awaitable<Result<std::vector<std::string>>> keysWithPrefix(Self self,
                                                                          std::string prefix,
                                                                          ScanRecords scan);

  const std::string& prefix() const { return prefix_; }

 private:
  // EVALSHA, and EVAL when the node has lost the script (NOSCRIPT); routed by keys[0]. Not a
  // coroutine: the request is encoded before it returns, so keys and args may be temporaries.
  asio::awaitable<Result<resp::Value>> script(const Script& script,
                                              std::initializer_list<std::string_view> keys,
                                              std::initializer_list<std::string_view> args) const;
  // The same for a request scriptWire("EVALSHA", script.sha, ...) encoded.
  asio::awaitable<Result<resp::Value>> runScript(const Script& script, std::string routing_key,
                                                 std::string evalsha_wire) const;
  asio::awaitable<Result<resp::Value>> call(const std::string& routing_key,
                                            const std::vector<std::string>& args) const {
    std::string wire;
    resp::encodeCommand(args, wire);
    return call_(routing_key, std::move(wire));
  }
  // The same for arguments the caller holds (encoded before it returns; no copies).
  asio::awaitable<Result<resp::Value>> call(const std::string& routing_key,
                                            std::initializer_list<std::string_view> args) const {
    std::string wire;
    resp::encodeCommand(args, wire);
    return call_(routing_key, std::move(wire));
  }
  // put() on one node, and across a cluster's slots.
  static asio::awaitable<Result<PutResult>> putOnOneNode(Self self, PutRequest request);
  static asio::awaitable<Result<PutResult>> putAcrossSlots(Self self, PutRequest request);
  // The record put script's EVALSHA request; `prepared` is the index entries' score.
  std::string putScriptWire(const PutRequest& request, const std::optional<records::Holder>& holder,
                            std::string_view record, std::string_view prepared, bool named) const;
  // The record put script's reply: the put's result, and the holder it replaced.
  struct PutReply {
    PutResult result;
    std::string old_score;  // the replaced holder's index score
    std::optional<int64_t> old_pull;
    std::string old_repo;
  };
  Result<PutReply> readPutReply(const Result<resp::Value>& reply, bool return_previous) const;
  // The delete and unlock scripts' name-index argument for `key` (see their comments).
  std::string namesArg(std::string_view key) const;
  // On a cluster, after `key`'s record is gone: takes it out of the name index. Best effort.
  asio::awaitable<void> unname(std::string key) const;
  // Removes `key` from the holder's index sets where its score is at most (`exact`: equal to)
  // `token`. Best effort: a failure leaves an entry readers skip.
  asio::awaitable<void> unindex(std::string repo, int64_t pull_num, std::string key,
                                std::string token, bool exact) const;
  // Reads the records of `keys` and keeps those `keep` accepts, sorted by key.
  static asio::awaitable<Result<std::vector<LockRecord>>> readVerified(
      Self self, std::vector<std::string> keys, std::function<bool(const LockRecord&)> keep);
  static asio::awaitable<Result<std::vector<std::string>>> indexMembers(Self self,
                                                                        std::string index_key);
  // Adds every K the store holds to the name index, then sets the marker.
  static asio::awaitable<Status> buildNames(Self self, ScanRecords scan);
  // Runs fn(0), ..., fn(n - 1), at most kReadConcurrency at once; the first error wins.
  static asio::awaitable<Status> forEachParallel(size_t n, std::function<asio::awaitable<Status>(size_t)> fn);

  const std::string prefix_;
  const std::string where_;
  const KeyedCall call_;
  const bool single_node_;
  // Set once the name marker was seen or written.
  mutable std::atomic<bool> names_built_{false};
};

}  // namespace lockshift::redis
