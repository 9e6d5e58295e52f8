#include "backends/redis_records.h"

#include <algorithm>
#include <atomic>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <utility>

#include "backends/lock_records.h"
#include "backends/redis_commands.h"
#include "backends/redis_scripts.h"
#include "common/glob.h"
#include "common/parallel.h"
#include "common/stable_hash.h"

namespace lockshift::redis {

// A script body and its SHA1, computed once.
struct Script {
  explicit Script(std::string text) : body(std::move(text)), sha(scriptSha1(body)) {}
  const std::string body;
  const std::string sha;
};

namespace {

constexpr uint64_t kTags = 1024;

// The put of a record: redis_scripts.h's put script on the record's v field, deciding from the
// holder fields the record keeps (written from records::holderOf() of the value, so strict
// acquire decides exactly as LmdbStore does, and no JSON is decoded here), plus the grant: the
// token (INCR of the bucket's fence) and time, the prepare score and the holder fields.
// KEYS[1] record, KEYS[2] fence. ARGV[1] value, [2] "NX"/"XX"/"", [3] "1" return previous,
// [4] "1" strict, [5..9] the strict owner (Pull.Num, RepoFullName, Path, ProjectName, Workspace),
// [10] "1" when the new value has a holder, [11..15] its Pull.Num, RepoFullName, Path,
// ProjectName, Workspace, [16] its user, [17] now (unix ms), [18] the prepare score, [19] "1" on
// a single node, where the script keeps the index itself: KEYS[3], KEYS[4] are then the new
// holder's repository and pull index (when it has a holder), and the record remembers them as
// rk, pk so a later write can take the key out of them. (A standalone Redis runs a script over
// keys of any slot, and rk, pk are keys the script did not declare; on a cluster this branch
// never runs.) [21] the name index on a single node when K is one it holds, else "": the script
// adds K to it when it writes.
// Reply: {outcome, previous, holder text, token, old prepare score, old pull, old repo}; outcome
// as in the put script; the old fields are the record's before the call ("" when absent).
// Every redis.call costs Redis about as much as a command from a client, and this script runs
// for every write to an enhanced store: it reads every field it needs in its first HMGET, writes
// them all in one HSET, and removes (HDEL, ZREM) only what is there. A new grant of a project
// lock on one node is six calls (HMGET, INCR, two index ZADDs, HSET, the name index's ZADD).
// Around the calls the Lua is kept flat (no closure, field table or loop built per run): on
// redis-server 7.0 that took a put from about 39 to 35 µs (EVALSHA usec_per_call, medians of 4).
constexpr std::string_view kRecordPutScript =
    "local A = ARGV\n"
    "local r = redis.call('HMGET', KEYS[1], 'v', 'tok', 'ps', 'pull', 'repo', 'path', 'proj', 'ws', 'user',\n"
    "                     'rk', 'pk')\n"
    "local existing = r[1]\n"
    "local previous = false\n"
    "if A[3] == '1' then previous = existing end\n"
    "local oldPs, oldPull, oldRepo = r[3] or '', r[4] or '', r[5] or ''\n"
    "local mode = A[2]\n"
    "if (mode == 'NX' and existing) or (mode == 'XX' and not existing) then\n"
    "  return {1, previous, '', '', oldPs, oldPull, oldRepo}\n"
    "end\n"
    "if A[4] == '1' and existing then\n"
    "  if not r[4] then return {2, previous, 'an unreadable lock value', '', oldPs, oldPull, oldRepo} end\n"
    "  if not (r[4] == A[5] and r[5] == A[6] and r[6] == A[7] and r[7] == A[8] and r[8] == A[9]) then\n"
    "    local who = 'pull #' .. r[4]\n"
    "    if r[9] and r[9] ~= '' then who = who .. ' (' .. r[9] .. ')' end\n"
    "    return {2, previous, who, '', oldPs, oldPull, oldRepo}\n"
    "  end\n"
    "end\n"
    "local held = A[10] == '1'\n"
    "local token = r[2] or ''\n"
    "local set\n"
    "if existing and token ~= '' and held and r[4] == A[11] and r[5] == A[12] and r[6] == A[13] and\n"
    "    r[7] == A[14] and r[8] == A[15] then\n"
    "  set = {'v', A[1], 'ps', A[18]}\n"
    "else\n"
    "  token = string.format('%d', redis.call('INCR', KEYS[2]))\n"
    "  set = {'v', A[1], 'ps', A[18], 'tok', token, 'at', A[17]}\n"
    "end\n"
    "local n = #set\n"
    "local gone = {}\n"
    "if A[19] == '1' then\n"
    "  local rk, pk = r[10], r[11]\n"
    "  if held then\n"
    "    local repoIndex, pullIndex = KEYS[3], KEYS[4]\n"
    "    if rk and rk ~= repoIndex then redis.call('ZREM', rk, A[20]) end\n"
    "    if pk and pk ~= pullIndex then redis.call('ZREM', pk, A[20]) end\n"
    "    redis.call('ZADD', repoIndex, A[18], A[20])\n"
    "    redis.call('ZADD', pullIndex, A[18], A[20])\n"
    "    set[n + 1], set[n + 2], set[n + 3], set[n + 4] = 'rk', repoIndex, 'pk', pullIndex\n"
    "    n = n + 4\n"
    "  else\n"
    "    if rk then redis.call('ZREM', rk, A[20]); gone[#gone + 1] = 'rk' end\n"
    "    if pk then redis.call('ZREM', pk, A[20]); gone[#gone + 1] = 'pk' end\n"
    "  end\n"
    "end\n"
    "if held then\n"
    "  set[n + 1], set[n + 2], set[n + 3], set[n + 4] = 'pull', A[11], 'repo', A[12]\n"
    "  set[n + 5], set[n + 6], set[n + 7], set[n + 8] = 'path', A[13], 'proj', A[14]\n"
    "  set[n + 9], set[n + 10], set[n + 11], set[n + 12] = 'ws', A[15], 'user', A[16]\n"
    "elseif existing then\n"
    "  if r[4] then gone[#gone + 1] = 'pull' end\n"
    "  if r[5] then gone[#gone + 1] = 'repo' end\n"
    "  if r[6] then gone[#gone + 1] = 'path' end\n"
    "  if r[7] then gone[#gone + 1] = 'proj' end\n"
    "  if r[8] then gone[#gone + 1] = 'ws' end\n"
    "  if r[9] then gone[#gone + 1] = 'user' end\n"
    "end\n"
    "redis.call('HSET', KEYS[1], unpack(set))\n"
    "if #gone > 0 then redis.call('HDEL', KEYS[1], unpack(gone)) end\n"
    "if A[21] ~= '' then redis.call('ZADD', A[21], 0, A[20]) end\n"
    "return {0, previous, '', token, oldPs, oldPull, oldRepo}\n";

// Deletes a record. KEYS[1] record; ARGV[1] "1" on a single node, where the key also leaves the
// index sets the record names (rk, pk) and the name index ARGV[3] (when not ""), ARGV[2] the key.
// Reply nil, or {"", prepare score, pull, repo}: a delete needs no value, so the script neither
// reads nor returns it (a lock value is about a kilobyte, read into Lua and sent back each time).
constexpr std::string_view kRecordDelScript =
    "local r = redis.call('HMGET', KEYS[1], 'ps', 'pull', 'repo', 'rk', 'pk')\n"
    "if redis.call('DEL', KEYS[1]) == 0 then return false end\n"
    "if ARGV[1] == '1' then\n"
    "  for i = 4, 5 do if r[i] then redis.call('ZREM', r[i], ARGV[2]) end end\n"
    "  if ARGV[3] ~= '' then redis.call('ZREM', ARGV[3], ARGV[2]) end\n"
    "end\n"
    "return {'', r[1] or '', r[2] or '', r[3] or ''}\n";

// Atlantis's UnlockIfOwnedByPull (proxy/atlantis_script.h) on a record. KEYS[1] record,
// ARGV[1] the pull number, ARGV[2..4] as the delete script's ARGV[1..3].
// Reply nil, {value, prepare score, pull, repo}, or Atlantis's error.
constexpr std::string_view kRecordUnlockScript =
    "local r = redis.call('HMGET', KEYS[1], 'v', 'ps', 'pull', 'repo', 'rk', 'pk')\n"
    "if not r[1] then return false end\n"
    "local ok, lock = pcall(cjson.decode, r[1])\n"
    "if not ok then return redis.error_reply('failed to deserialize current lock') end\n"
    "if type(lock) ~= 'table' or type(lock['Pull']) ~= 'table' or\n"
    "    tonumber(lock['Pull']['Num']) ~= tonumber(ARGV[1]) then\n"
    "  return false\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "if ARGV[2] == '1' then\n"
    "  for i = 5, 6 do if r[i] then redis.call('ZREM', r[i], ARGV[3]) end end\n"
    "  if ARGV[4] ~= '' then redis.call('ZREM', ARGV[4], ARGV[3]) end\n"
    "end\n"
    "return {r[1], r[2] or '', r[3] or '', r[4] or ''}\n";

// Adds a key to a holder's sets. KEYS[1] repo index, KEYS[2] pull index; ARGV[1] score (the
// put's prepare score), ARGV[2] the key. GT: an entry already there only ever moves up.
constexpr std::string_view kIndexAddScript =
    "redis.call('ZADD', KEYS[1], 'GT', ARGV[1], ARGV[2])\n"
    "redis.call('ZADD', KEYS[2], 'GT', ARGV[1], ARGV[2])\n"
    "return 1\n";

// Removes a key from a holder's sets where its score is at most ARGV[1] (ARGV[3] "le") or
// equal to it ("eq"). KEYS as above; ARGV[2] the key. Reply: entries removed.
constexpr std::string_view kIndexRemoveScript =
    "local removed = 0\n"
    "for i = 1, 2 do\n"
    "  local s = redis.call('ZSCORE', KEYS[i], ARGV[2])\n"
    "  if s then\n"
    "    local t, limit = tonumber(s), tonumber(ARGV[1])\n"
    "    if (ARGV[3] == 'eq' and t == limit) or (ARGV[3] == 'le' and t <= limit) then\n"
    "      removed = removed + redis.call('ZREM', KEYS[i], ARGV[2])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return removed\n";

const Script& recordPut() {
  static const Script script{std::string(kRecordPutScript)};
  return script;
}
const Script& recordDel() {
  static const Script script{std::string(kRecordDelScript)};
  return script;
}
const Script& recordUnlock() {
  static const Script script{std::string(kRecordUnlockScript)};
  return script;
}
const Script& indexAdd() {
  static const Script script{std::string(kIndexAddScript)};
  return script;
}
const Script& indexRemove() {
  static const Script script{std::string(kIndexRemoveScript)};
  return script;
}

// Appends "{<kind><bucket>}" to `out`. The key builders below run for every write to an
// enhanced store (four or five keys a put), so each builds its key in one string, sized first.
void appendTag(std::string& out, char kind, std::string_view text) {
  char digits[8];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), stableHash64(text) % kTags);
  (void)ec;  // kTags has four digits at most
  out += '{';
  out += kind;
  out.append(digits, end);
  out += '}';
}

std::string tag(char kind, std::string_view text) {
  std::string out;
  appendTag(out, kind, text);
  return out;
}

// prefix + tag(kind, hashed) + the parts, in one allocation.
std::string layoutKey(std::string_view prefix, char kind, std::string_view hashed,
                      std::initializer_list<std::string_view> parts) {
  size_t size = prefix.size() + 7;  // the tag: braces, kind, up to four digits
  for (std::string_view part : parts) size += part.size();
  std::string out;
  out.reserve(size);
  out.append(prefix);
  appendTag(out, kind, hashed);
  for (std::string_view part : parts) out.append(part);
  return out;
}

Status unexpected(std::string_view where, std::string_view what) {
  return Status::internal(std::string(where) + ": unexpected reply to " + std::string(what));
}

Status failure(const Result<resp::Value>& reply, std::string_view where) {
  if (!reply.isOk()) return reply.status();
  if (reply->isError()) return errorStatus(*reply, where);
  return Status::ok();
}

bool isText(const resp::Value& v) { return v.type == resp::Type::kBulkString; }

std::optional<int64_t> parseInt(std::string_view text) {
  int64_t out = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return out;
}

// What a record held before a write ended it: {value, prepare score, pull, repo}; the delete
// script leaves value empty.
struct Ended {
  std::string value, score, pull, repo;
};
Result<std::optional<Ended>> readEnded(const Result<resp::Value>& reply, std::string_view where,
                                       std::string_view what) {
  if (Status status = failure(reply, where); !status) return status;
  if (reply->type == resp::Type::kNull) return std::optional<Ended>();
  const auto& e = reply->elements;
  if (reply->type != resp::Type::kArray || e.size() != 4 ||
      !std::all_of(e.begin(), e.end(), isText)) {
    return unexpected(where, what);
  }
  return std::optional<Ended>(Ended{e[0].str, e[1].str, e[2].str, e[3].str});
}

// A score no earlier prepare of this process had: the wall clock in microseconds, or one more
// than the last score when the clock has not moved (or went back). Exact as a double (Redis
// scores) until the year 2255.
int64_t nextPrepareScore() {
  static std::atomic<int64_t> last{0};
  const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  int64_t seen = last.load(std::memory_order_relaxed);
  int64_t next;
  do {
    next = std::max(now, seen + 1);
  } while (!last.compare_exchange_weak(seen, next, std::memory_order_relaxed));
  return next;
}

int64_t nowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---- Layout ----

std::string recordKey(std::string_view prefix, std::string_view key) {
  return layoutKey(prefix, 'r', key, {"k:", key});
}

std::string fenceKey(std::string_view prefix, std::string_view key) {
  return layoutKey(prefix, 'r', key, {"fence"});
}

std::string repoIndexKey(std::string_view prefix, std::string_view repo) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), repo.size());
  (void)ec;  // 24 digits hold any size_t
  return layoutKey(prefix, 'x', repo, {"r:", std::string_view(digits, end - digits), ":", repo});
}

std::string pullIndexKey(std::string_view prefix, std::string_view repo, int64_t pull_num) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), pull_num);
  (void)ec;  // 24 digits hold any int64_t
  return layoutKey(prefix, 'x', repo, {"p:", std::string_view(digits, end - digits), ":", repo});
}

std::string namesKey(std::string_view prefix) { return std::string(prefix) + "{n}names"; }

std::string namesBuiltKey(std::string_view prefix) {
  return std::string(prefix) + "{n}names-built";
}

std::optional<std::string> keyOfRecord(std::string_view prefix, std::string_view wire_key) {
  if (wire_key.substr(0, prefix.size()) != prefix) return std::nullopt;
  std::string_view rest = wire_key.substr(prefix.size());
  if (rest.substr(0, 2) != "{r") return std::nullopt;
  size_t close = rest.find('}');
  if (close == std::string_view::npos || close == 2 || close > 6) return std::nullopt;
  std::string_view digits = rest.substr(2, close - 2);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  if (rest.substr(close + 1, 2) != "k:") return std::nullopt;
  std::string key(rest.substr(close + 3));
  // Only a key whose record would be exactly this wire key (the bucket must match).
  if (tag('r', key) != rest.substr(0, close + 1)) return std::nullopt;
  return key;
}

std::string recordScanPattern(std::string_view prefix, std::string_view match) {
  return escapeGlob(prefix) + "{r[0-9]*}k:" + (match.empty() ? std::string("*") : std::string(match));
}

Result<ScanPage> readRecordScan(const Result<resp::Value>& reply, std::string_view prefix,
                                std::string_view match, std::string_view where) {
  Result<ScanPage> page = readScan(reply, "", where);
  if (!page.isOk()) return page;
  std::vector<std::string> keys;
  keys.reserve(page->keys.size());
  for (const std::string& wire : page->keys) {
    std::optional<std::string> key = keyOfRecord(prefix, wire);
    if (key && (match.empty() || globMatch(match, *key))) keys.push_back(std::move(*key));
  }
  page->keys = std::move(keys);
  return page;
}

// ---- Operations ----
// Awaitables are named before co_await (GCC 12, see redis_store.cc).

asio::awaitable<Result<resp::Value>> Records::script(const Script& script,
                                                     std::initializer_list<std::string_view> keys,
                                                     std::initializer_list<std::string_view> args) const {
  return runScript(script, std::string(*keys.begin()), scriptWire("EVALSHA", script.sha, keys, args));
}

asio::awaitable<Result<resp::Value>> Records::runScript(const Script& script, std::string routing_key,
                                                        std::string evalsha_wire) const {
  // The call gets a copy: the wire is kept for the EVAL retry (a rare path; the copy is one
  // allocation, where re-encoding would need the caller's strings to outlive this frame).
  auto first = call_(routing_key, evalsha_wire);
  Result<resp::Value> reply = co_await std::move(first);
  if (!isNoScript(reply)) co_return reply;
  auto again = call_(routing_key, evalOfEvalsha(evalsha_wire, script.sha, script.body));
  co_return co_await std::move(again);
}

asio::awaitable<void> Records::unindex(std::string repo, int64_t pull_num, std::string key,
                                       std::string token, bool exact) const {
  auto op = script(indexRemove(),
                   {repoIndexKey(prefix_, repo), pullIndexKey(prefix_, repo, pull_num)},
                   {std::move(token), std::move(key), exact ? "eq" : "le"});
  co_await std::move(op);  // best effort: an entry left behind is skipped by readers
}

std::string Records::namesArg(std::string_view key) const {
  return single_node_ && nameIndexCovers(key) ? namesKey(prefix_) : std::string();
}

asio::awaitable<void> Records::unname(std::string key) const {
  if (!nameIndexCovers(key)) co_return;
  const std::string names = namesKey(prefix_);
  auto op = call(names, {"ZREM", names, std::move(key)});
  co_await std::move(op);  // best effort: an entry left behind is skipped by readers
}

asio::awaitable<Result<std::optional<std::string>>> Records::get(Self self, std::string key) {
  const std::string record = recordKey(self->prefix_, key);
  auto op = self->call(record, {"HGET", record, "v"});
  Result<resp::Value> reply = co_await std::move(op);
  co_return readOptionalString(std::move(reply), self->where_);
}

asio::awaitable<Result<PutResult>> Records::put(Self self, PutRequest request) {
  const bool single_node = self->single_node_;
  return single_node ? putOnOneNode(std::move(self), std::move(request))
                     : putAcrossSlots(std::move(self), std::move(request));
}

// The record put script's request (EVALSHA). ARGV[1..9] as the plain put script's, with the
// owner's five always present.
std::string Records::putScriptWire(const PutRequest& request, const std::optional<records::Holder>& holder,
                                   std::string_view record, std::string_view prepared, bool named) const {
  const std::string fence = fenceKey(prefix_, request.key);
  const std::string owner_pull = request.strict_owner ? std::to_string(request.strict_owner->pull_num) : "";
  const std::string pull = holder ? std::to_string(holder->identity.pull_num) : std::string();
  const std::string now = std::to_string(nowUnixMs());
  const std::string names = named && single_node_ ? namesKey(prefix_) : std::string();
  std::vector<std::string_view> args = putScriptArgViews(request, owner_pull);
  args.reserve(21);  // ARGV[1..21] of the record put script
  if (!request.strict_owner) args.insert(args.end(), 5, "");
  if (holder) {
    const LockIdentity& id = holder->identity;
    args.insert(args.end(), {"1", pull, id.repo_full_name, id.path, id.project_name, id.workspace,
                             holder->user});
  } else {
    args.insert(args.end(), {"0", "", "", "", "", "", ""});
  }
  args.insert(args.end(), {now, prepared, single_node_ ? "1" : "0", request.key, names});
  std::string repo_index, pull_index;
  std::vector<std::string_view> keys = {record, fence};
  if (single_node_ && holder) {
    repo_index = repoIndexKey(prefix_, holder->repo);
    pull_index = pullIndexKey(prefix_, holder->repo, holder->pull_num);
    keys.insert(keys.end(), {repo_index, pull_index});
  }
  return scriptWire("EVALSHA", recordPut().sha, keys, args);
}

Result<Records::PutReply> Records::readPutReply(const Result<resp::Value>& reply, bool return_previous) const {
  if (Status status = failure(reply, where_); !status) return status;
  const auto& e = reply->elements;
  if (reply->type != resp::Type::kArray || e.size() != 7 ||
      e[0].type != resp::Type::kInteger || e[0].integer < 0 || e[0].integer > 2 ||
      (!isText(e[1]) && e[1].type != resp::Type::kNull) ||
      !std::all_of(e.begin() + 2, e.end(), isText)) {
    return unexpected(where_, "the record put script");
  }
  PutReply read;
  read.result.outcome = static_cast<PutResult::Outcome>(e[0].integer);
  if (return_previous && isText(e[1])) read.result.previous = e[1].str;
  read.result.holder = e[2].str;
  read.old_score = e[4].str;
  read.old_pull = parseInt(e[5].str);
  read.old_repo = e[6].str;
  return read;
}

// One node: the script keeps the indexes itself, so the put is one call. Everything the call
// does not need across its suspension is built and read by plain functions: this frame stays
// small enough for Asio's recycled blocks.
asio::awaitable<Result<PutResult>> Records::putOnOneNode(Self self, PutRequest request) {
  const std::string record = recordKey(self->prefix_, request.key);
  const std::string prepared = std::to_string(nextPrepareScore());
  auto op = self->runScript(recordPut(), record,
                            self->putScriptWire(request, records::holderOf(request.strict_owner, request.value),
                                                record, prepared, nameIndexCovers(request.key)));
  Result<resp::Value> reply = co_await std::move(op);
  Result<PutReply> read = self->readPutReply(reply, request.return_previous);
  if (!read) co_return read.status();
  co_return std::move(read->result);
}

// Across a cluster's slots: the index entries are added before the record can say it holds,
// and the old holder's removed after.
asio::awaitable<Result<PutResult>> Records::putAcrossSlots(Self self, PutRequest request) {
  const std::string record = recordKey(self->prefix_, request.key);
  std::optional<records::Holder> holder = records::holderOf(request.strict_owner, request.value);

  // Prepare: the holder's index entries, before the record can say it holds.
  const std::string prepared = std::to_string(nextPrepareScore());
  if (holder) {
    auto add = self->script(indexAdd(),
                            {repoIndexKey(self->prefix_, holder->repo),
                             pullIndexKey(self->prefix_, holder->repo, holder->pull_num)},
                            {prepared, request.key});
    Result<resp::Value> added = co_await std::move(add);
    if (Status status = failure(added, self->where_); !status) co_return status;
  }

  const bool named = nameIndexCovers(request.key);
  if (named) {
    const std::string names = namesKey(self->prefix_);
    auto add = self->call(names, {"ZADD", names, "0", request.key});
    Result<resp::Value> added = co_await std::move(add);
    if (Status status = failure(added, self->where_); !status) co_return status;
  }

  auto op = self->runScript(recordPut(), record, self->putScriptWire(request, holder, record, prepared, named));
  Result<resp::Value> reply = co_await std::move(op);
  Result<PutReply> read = self->readPutReply(reply, request.return_previous);
  if (!read) co_return read.status();
  const bool same_holder =
      holder && read->old_pull && *read->old_pull == holder->pull_num && read->old_repo == holder->repo;
  if (read->result.outcome == PutResult::Outcome::kApplied) {
    // The old holder's grant ended: its entries go, unless the holder is the same.
    if (read->old_pull && !same_holder) {
      auto drop = self->unindex(read->old_repo, *read->old_pull, request.key, read->old_score, false);
      co_await std::move(drop);
    }
  } else if (holder && !same_holder) {
    // Refused: the entries this put added would only name a holder the record does not have.
    auto drop = self->unindex(holder->repo, holder->pull_num, request.key, prepared, true);
    co_await std::move(drop);
  }
  co_return std::move(read->result);
}

asio::awaitable<Result<int64_t>> Records::del(Self self, std::vector<std::string> keys) {
  int64_t deleted = 0;
  for (std::string& key : keys) {
    const std::string record = recordKey(self->prefix_, key);
    auto op = self->script(recordDel(), {record},
                           {self->single_node_ ? "1" : "0", key, self->namesArg(key)});
    Result<resp::Value> reply = co_await std::move(op);
    Result<std::optional<Ended>> ended = readEnded(reply, self->where_, "the record delete script");
    if (!ended.isOk()) co_return ended.status();
    if (!*ended) continue;
    ++deleted;
    if (self->single_node_) continue;  // the script kept the indexes
    auto unname = self->unname(key);
    co_await std::move(unname);
    if (std::optional<int64_t> pull = parseInt((*ended)->pull)) {
      auto drop = self->unindex((*ended)->repo, *pull, std::move(key), (*ended)->score, false);
      co_await std::move(drop);
    }
  }
  co_return deleted;
}

asio::awaitable<Result<std::optional<std::string>>> Records::deleteIfOwnedByPull(
    Self self, std::string key, std::string pull_num) {
  const std::string record = recordKey(self->prefix_, key);
  auto op = self->script(recordUnlock(), {record},
                         {std::move(pull_num), self->single_node_ ? "1" : "0", key, self->namesArg(key)});
  Result<resp::Value> reply = co_await std::move(op);
  constexpr std::string_view kNotJson = "failed to deserialize current lock";
  if (reply.isOk() && reply->isError() && reply->str.find(kNotJson) != std::string::npos) {
    co_return Status::invalidArgument(std::string(kNotJson));
  }
  Result<std::optional<Ended>> ended = readEnded(reply, self->where_, "the record unlock script");
  if (!ended.isOk()) co_return ended.status();
  if (!*ended) co_return std::optional<std::string>();
  if (self->single_node_) co_return std::optional<std::string>(std::move((*ended)->value));
  auto unname = self->unname(key);
  co_await std::move(unname);
  if (std::optional<int64_t> pull = parseInt((*ended)->pull)) {
    auto drop = self->unindex((*ended)->repo, *pull, std::move(key), (*ended)->score, false);
    co_await std::move(drop);
  }
  co_return std::optional<std::string>(std::move((*ended)->value));
}

asio::awaitable<Result<std::optional<LockRecord>>> Records::getRecord(Self self,
                                                                      std::string key) {
  const std::string record = recordKey(self->prefix_, key);
  auto op = self->call(record, {"HMGET", record, "v", "tok", "at", "pull", "user", "repo"});
  Result<resp::Value> reply = co_await std::move(op);
  if (Status status = failure(reply, self->where_); !status) co_return status;
  const auto& e = reply->elements;
  if (reply->type != resp::Type::kArray || e.size() != 6) co_return unexpected(self->where_, "HMGET");
  for (const resp::Value& v : e) {
    if (!isText(v) && v.type != resp::Type::kNull) co_return unexpected(self->where_, "HMGET");
  }
  if (!isText(e[0])) co_return std::optional<LockRecord>();
  LockRecord out;
  out.key = std::move(key);
  out.value = e[0].str;
  out.token = static_cast<uint64_t>(parseInt(e[1].str).value_or(0));
  out.acquired_at_unix_ms = parseInt(e[2].str).value_or(0);
  if (isText(e[3])) out.pull_num = parseInt(e[3].str);
  out.user = e[4].str;
  out.repo = e[5].str;
  co_return std::optional<LockRecord>(std::move(out));
}

asio::awaitable<Result<std::vector<std::string>>> Records::indexMembers(Self self,
                                                                        std::string index_key) {
  auto op = self->call(index_key, {"ZRANGE", index_key, "0", "-1"});
  Result<resp::Value> reply = co_await std::move(op);
  if (Status status = failure(reply, self->where_); !status) co_return status;
  if (reply->type != resp::Type::kArray) co_return unexpected(self->where_, "ZRANGE");
  std::vector<std::string> keys;
  keys.reserve(reply->elements.size());
  for (resp::Value& member : reply->elements) {
    if (!isText(member)) co_return unexpected(self->where_, "ZRANGE");
    keys.push_back(std::move(member.str));
  }
  co_return keys;
}

namespace {

// Runs fn(first), fn(first + stride), ... until one fails.
asio::awaitable<Status> strideWorker(const std::function<asio::awaitable<Status>(size_t)>* fn,
                                     size_t n, size_t first, size_t stride) {
  for (size_t i = first; i < n; i += stride) {
    auto op = (*fn)(i);
    if (Status status = co_await std::move(op); !status) co_return status;
  }
  co_return Status::ok();
}

// The exclusive ZRANGEBYLEX bound just above every string that starts with `prefix`: the prefix
// with its last byte that is not 0xFF incremented (and what follows dropped), or "+" when none.
std::string lexUpperBound(std::string_view prefix) {
  std::string bound(prefix);
  while (!bound.empty() && static_cast<unsigned char>(bound.back()) == 0xFF) bound.pop_back();
  if (bound.empty()) return "+";
  bound.back() = static_cast<char>(static_cast<unsigned char>(bound.back()) + 1);
  return "(" + bound;
}

}  // namespace

asio::awaitable<Status> Records::forEachParallel(
    size_t n, std::function<asio::awaitable<Status>(size_t)> fn) {
  const size_t workers = std::min(kReadConcurrency, n);
  // `fn` lives in this frame, which stays suspended until every worker finished.
  auto all = runParallel(workers, [&fn, n, workers](size_t w) { return strideWorker(&fn, n, w, workers); });
  co_return co_await std::move(all);
}

// `keys` and `out` live in this frame, which stays suspended until every read finished.
asio::awaitable<Result<std::vector<LockRecord>>> Records::readVerified(
    Self self, std::vector<std::string> keys, std::function<bool(const LockRecord&)> keep) {
  std::vector<std::optional<LockRecord>> out(keys.size());
  auto reads = forEachParallel(keys.size(), [&](size_t i) -> asio::awaitable<Status> {
    auto op = Records::getRecord(self, keys[i]);
    Result<std::optional<LockRecord>> record = co_await std::move(op);
    if (!record.isOk()) co_return record.status();
    out[i] = std::move(*record);
    co_return Status::ok();
  });
  if (Status status = co_await std::move(reads); !status) co_return status;
  std::vector<LockRecord> records;
  for (std::optional<LockRecord>& record : out) {
    if (record && keep(*record)) records.push_back(std::move(*record));
  }
  std::sort(records.begin(), records.end(),
            [](const LockRecord& a, const LockRecord& b) { return a.key < b.key; });
  co_return records;
}

asio::awaitable<Status> Records::buildNames(Self self, ScanRecords scan) {
  // ZADD arguments per call: enough to keep round trips few, small enough for any Redis.
  constexpr size_t kBatch = 500;
  const std::string names = namesKey(self->prefix_);
  uint64_t cursor = 0;
  do {
    auto next = scan(cursor);
    Result<ScanPage> page = co_await std::move(next);
    if (!page.isOk()) co_return page.status();
    for (size_t first = 0; first < page->keys.size(); first += kBatch) {
      std::vector<std::string> add = {"ZADD", names};
      for (size_t i = first; i < std::min(first + kBatch, page->keys.size()); ++i) {
        if (!nameIndexCovers(page->keys[i])) continue;
        add.push_back("0");
        add.push_back(page->keys[i]);
      }
      if (add.size() == 2) continue;
      auto op = self->call(names, std::move(add));
      Result<resp::Value> added = co_await std::move(op);
      if (Status status = failure(added, self->where_); !status) co_return status;
    }
    cursor = page->next_cursor;
  } while (cursor != 0);
  const std::string marker = namesBuiltKey(self->prefix_);
  auto set = self->call(marker, {"SET", marker, "1"});
  Result<resp::Value> done = co_await std::move(set);
  if (Status status = failure(done, self->where_); !status) co_return status;
  self->names_built_.store(true, std::memory_order_release);
  co_return Status::ok();
}

asio::awaitable<Result<std::vector<std::string>>> Records::keysWithPrefix(Self self,
                                                                          std::string prefix,
                                                                          ScanRecords scan) {
  if (Status status = checkNameIndexCovers(prefix); !status) co_return status;
  if (!self->names_built_.load(std::memory_order_acquire)) {
    const std::string marker = namesBuiltKey(self->prefix_);
    auto get = self->call(marker, {"EXISTS", marker});
    Result<resp::Value> exists = co_await std::move(get);
    if (Status status = failure(exists, self->where_); !status) co_return status;
    if (exists->type != resp::Type::kInteger) co_return unexpected(self->where_, "EXISTS");
    if (exists->integer == 1) {
      self->names_built_.store(true, std::memory_order_release);
    } else {
      auto build = buildNames(self, std::move(scan));
      if (Status status = co_await std::move(build); !status) co_return status;
    }
  }
  const std::string names = namesKey(self->prefix_);
  auto range = self->call(names, {"ZRANGEBYLEX", names, "[" + prefix, lexUpperBound(prefix)});
  Result<resp::Value> reply = co_await std::move(range);
  if (Status status = failure(reply, self->where_); !status) co_return status;
  if (reply->type != resp::Type::kArray) co_return unexpected(self->where_, "ZRANGEBYLEX");
  std::vector<std::string> candidates;
  candidates.reserve(reply->elements.size());
  for (resp::Value& member : reply->elements) {
    if (!isText(member)) co_return unexpected(self->where_, "ZRANGEBYLEX");
    candidates.push_back(std::move(member.str));
  }
  // The index may name a key that is gone (see the layout comment): keep those with a record.
  std::vector<char> present(candidates.size(), 0);
  auto checks = forEachParallel(candidates.size(), [&](size_t i) -> asio::awaitable<Status> {
    const std::string record = recordKey(self->prefix_, candidates[i]);
    auto op = self->call(record, {"EXISTS", record});
    Result<resp::Value> exists = co_await std::move(op);
    if (Status status = failure(exists, self->where_); !status) co_return status;
    if (exists->type != resp::Type::kInteger) co_return unexpected(self->where_, "EXISTS");
    present[i] = exists->integer == 1;
    co_return Status::ok();
  });
  if (Status status = co_await std::move(checks); !status) co_return status;
  std::vector<std::string> keys;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (present[i]) keys.push_back(std::move(candidates[i]));
  }
  co_return keys;
}

asio::awaitable<Result<std::vector<LockRecord>>> Records::locksByRepo(Self self,
                                                                      std::string repo) {
  auto members = indexMembers(self, repoIndexKey(self->prefix_, repo));
  Result<std::vector<std::string>> keys = co_await std::move(members);
  if (!keys.isOk()) co_return keys.status();
  auto read = readVerified(self, std::move(*keys), [repo](const LockRecord& r) {
    return r.pull_num.has_value() && r.repo == repo;
  });
  co_return co_await std::move(read);
}

asio::awaitable<Result<std::vector<LockRecord>>> Records::locksByPull(Self self, std::string repo,
                                                                      int64_t pull_num) {
  auto members = indexMembers(self, pullIndexKey(self->prefix_, repo, pull_num));
  Result<std::vector<std::string>> keys = co_await std::move(members);
  if (!keys.isOk()) co_return keys.status();
  auto read = readVerified(self, std::move(*keys), [repo, pull_num](const LockRecord& r) {
    return r.pull_num == pull_num && r.repo == repo;
  });
  co_return co_await std::move(read);
}

}  // namespace lockshift::redis
