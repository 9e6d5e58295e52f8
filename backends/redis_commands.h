#pragma once
// RedisStore's commands and the reading of their replies, as pure functions (no I/O), so each
// LockStore call is one small builder and one small reader that tests can check without a server.
// Private to backends/redis_*. Thread-safety: stateless, callable from any thread.
//
// `where` in the readers is "redis host:port", the prefix of every error message.

#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/lock_store.h"
#include "common/status.h"
#include "resp/value.h"
#include "resp/writer.h"

namespace lockshift::redis {

// "host:port" or "[v6-address]:port", split. kInvalidArgument when there is no port.
struct HostPort {
  std::string host;
  std::string port;
};
Result<HostPort> parseAddress(std::string_view address);

// A single server's address: TCP (what parseAddress() reads) or, as "unix:PATH", its Unix domain
// socket (common/unix_socket.h). kInvalidArgument when it is neither.
struct RedisAddress {
  HostPort tcp;           // when unix_path is empty
  std::string unix_path;  // set for "unix:PATH"
};
Result<RedisAddress> parseRedisAddress(std::string_view address);

// A Redis glob that matches `literal` and nothing else: * ? [ ] \ are escaped with a backslash.
std::string escapeGlob(std::string_view literal);

// The MATCH pattern of a scan for `match` (empty: every key) among keys starting with `prefix`;
// empty when no MATCH is needed (no prefix and no match).
std::string scanPattern(std::string_view prefix, std::string_view match);

std::vector<std::string> scanCommand(uint64_t cursor, size_t count, const std::string& pattern);

// How put() sends a request: a plain SET, SET ... GET (return_previous only), or the put script
// (any condition or strict acquire).
enum class PutForm { kSet, kSetGet, kScript };
PutForm putForm(const PutRequest& request);
// A strict acquire with nothing else asked (no condition, no previous value): put() first tries
// it as SET key value NX, and runs the put script only when the key is present.
bool isPlainAcquire(const PutRequest& request);
// SET key value NX, encoded (no copy of the value on the way); `key` already carries the key
// prefix.
std::string setIfAbsentWire(const PutRequest& request, std::string_view key);
// SET NX's reply: true when it set the key, false when the key was present.
Result<bool> readSetIfAbsent(const Result<resp::Value>& reply, std::string_view where);
// SET key value [GET], for kSet and kSetGet, encoded; `key` already carries the key prefix.
std::string setWire(const PutRequest& request, std::string_view key);
// The put script's ARGV (see redis_scripts.h).
std::vector<std::string> putScriptArgs(const PutRequest& request);
// The same as views of `request`'s strings and of `owner_pull`, which holds the owner's pull
// number in decimal when the request has a strict owner. Both must outlive the views.
std::vector<std::string_view> putScriptArgViews(const PutRequest& request, const std::string& owner_pull);

// EVAL/EVALSHA `script_or_sha` numkeys keys... args..., encoded as the request goes on the wire;
// `keys` and `args` are ranges of strings or string views. Encoded straight from the caller's
// strings: the arguments carry whole lock values, and a command vector would copy each one.
// Sized first and written in place (resp/writer.h): a record put is about thirty bulk strings.
template <typename Keys, typename Args>
std::string scriptWire(std::string_view verb, std::string_view script_or_sha, const Keys& keys,
                       const Args& args) {
  const std::string numkeys = std::to_string(std::size(keys));
  const size_t count = 3 + std::size(keys) + std::size(args);
  size_t size = resp::headerLength(count);
  for (std::string_view s : {verb, script_or_sha, std::string_view(numkeys)}) size += resp::bulkLength(s);
  for (std::string_view s : keys) size += resp::bulkLength(s);
  for (std::string_view s : args) size += resp::bulkLength(s);
  std::string wire;
  char* p = resp::putHeader(resp::grow(wire, size), '*', count);
  for (std::string_view s : {verb, script_or_sha, std::string_view(numkeys)}) p = resp::putBulk(p, s);
  for (std::string_view s : keys) p = resp::putBulk(p, s);
  for (std::string_view s : args) p = resp::putBulk(p, s);
  return wire;
}
// The EVAL request for the same keys and arguments as `evalsha_wire` (scriptWire("EVALSHA",
// sha, ...)), with the script's `body` in place of its `sha`: the retry after NOSCRIPT, made from
// the request already encoded.
std::string evalOfEvalsha(std::string_view evalsha_wire, std::string_view sha, std::string_view body);

// ---- Replies ----

// The Status for an error reply: kStoreFull for OOM; kUnavailable when the server cannot serve
// now (LOADING, BUSY, READONLY, MASTERDOWN, NOAUTH, ...); kIoError otherwise.
Status errorStatus(const resp::Value& error, std::string_view where);
// True for the error reply to EVALSHA of a script the server does not have.
bool isNoScript(const Result<resp::Value>& reply);

Result<std::optional<std::string>> readOptionalString(const Result<resp::Value>& reply,
                                                      std::string_view where);
// The same, moving the string out of a reply the caller is done with (a lock's JSON is ~1 KB).
Result<std::optional<std::string>> readOptionalString(Result<resp::Value>&& reply, std::string_view where);
Result<int64_t> readInteger(const Result<resp::Value>& reply, std::string_view where);
Status readPong(const Result<resp::Value>& reply, std::string_view where);
// A put's reply in the given form; `return_previous` as in the request.
Result<PutResult> readPut(PutForm form, bool return_previous, const Result<resp::Value>& reply,
                          std::string_view where);
// Atlantis's unlock script: the deleted value, nil, or "failed to deserialize current lock".
Result<std::optional<std::string>> readUnlock(const Result<resp::Value>& reply,
                                              std::string_view where);
// SCAN's [cursor, [keys...]]; keys lose `prefix` (keys without it are dropped).
Result<ScanPage> readScan(const Result<resp::Value>& reply, std::string_view prefix,
                          std::string_view where);

}  // namespace lockshift::redis
