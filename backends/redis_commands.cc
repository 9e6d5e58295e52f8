#include "backends/redis_commands.h"

#include <algorithm>
#include <charconv>
#include <utility>

#include "common/unix_socket.h"

namespace lockshift::redis {

namespace {

const char* typeName(resp::Type type) {
  switch (type) {
    case resp::Type::kSimpleString:
      return "a simple string";
    case resp::Type::kError:
      return "an error";
    case resp::Type::kInteger:
      return "an integer";
    case resp::Type::kBulkString:
      return "a bulk string";
    case resp::Type::kNull:
      return "nil";
    case resp::Type::kArray:
      return "an array";
  }
  return "an unknown value";
}

Status unexpected(std::string_view where, std::string_view command, const resp::Value& reply) {
  return Status::internal(std::string(where) + ": unexpected reply to " + std::string(command) +
                          ": " + typeName(reply.type));
}

// The transport's status, or the error reply's, or OK when `reply` is a value to read.
Status failure(const Result<resp::Value>& reply, std::string_view where) {
  if (!reply.isOk()) return reply.status();
  if (reply->isError()) return errorStatus(*reply, where);
  return Status::ok();
}

bool parseDecimal(std::string_view text, uint64_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return !text.empty() && ec == std::errc() && ptr == end;
}

}  // namespace

Result<HostPort> parseAddress(std::string_view address) {
  auto invalid = [&](std::string_view why) {
    return Status::invalidArgument("invalid redis address '" + std::string(address) +
                                   "': " + std::string(why));
  };
  HostPort out;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    size_t close = address.find(']');
    if (close == std::string_view::npos) return invalid("missing ']'");
    out.host = address.substr(1, close - 1);
    if (address.substr(close + 1, 1) != ":") return invalid("expected host:port");
    port = address.substr(close + 2);
  } else {
    size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) return invalid("expected host:port");
    if (address.find(':') != colon) return invalid("write an IPv6 address as [address]:port");
    out.host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  uint64_t number = 0;
  if (out.host.empty()) return invalid("empty host");
  if (!parseDecimal(port, &number) || number == 0 || number > 65535) return invalid("bad port");
  out.port = std::string(port);
  return out;
}

Result<RedisAddress> parseRedisAddress(std::string_view address) {
  RedisAddress out;
  if (isUnixAddress(address)) {
    std::string why = unixSocketPath(address, out.unix_path);
    if (!why.empty()) return Status::invalidArgument("invalid redis address '" + std::string(address) + "': " + why);
    return out;
  }
  Result<HostPort> tcp = parseAddress(address);
  if (!tcp.isOk()) return tcp.status();
  out.tcp = std::move(*tcp);
  return out;
}

std::string escapeGlob(std::string_view literal) {
  std::string out;
  out.reserve(literal.size() + 8);
  for (char c : literal) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

std::string scanPattern(std::string_view prefix, std::string_view match) {
  if (prefix.empty()) return std::string(match);
  return escapeGlob(prefix) + (match.empty() ? std::string("*") : std::string(match));
}

std::vector<std::string> scanCommand(uint64_t cursor, size_t count, const std::string& pattern) {
  std::vector<std::string> args = {"SCAN", std::to_string(cursor)};
  if (!pattern.empty()) {
    args.push_back("MATCH");
    args.push_back(pattern);
  }
  args.push_back("COUNT");
  args.push_back(std::to_string(std::max<size_t>(count, 1)));
  return args;
}

PutForm putForm(const PutRequest& request) {
  if (request.condition != PutRequest::Condition::kAlways || request.strict_owner) {
    return PutForm::kScript;
  }
  return request.return_previous ? PutForm::kSetGet : PutForm::kSet;
}

bool isPlainAcquire(const PutRequest& request) {
  return request.strict_owner && request.condition == PutRequest::Condition::kAlways &&
         !request.return_previous;
}

std::string setIfAbsentWire(const PutRequest& request, std::string_view key) {
  std::string wire;
  resp::encodeCommand({"SET", key, request.value, "NX"}, wire);
  return wire;
}

Result<bool> readSetIfAbsent(const Result<resp::Value>& reply, std::string_view where) {
  if (Status status = failure(reply, where); !status) return status;
  const resp::Value& v = *reply;
  if (v.type == resp::Type::kSimpleString && v.str == "OK") return true;
  if (v.type == resp::Type::kNull) return false;
  return unexpected(where, "SET NX", v);
}

std::string setWire(const PutRequest& request, std::string_view key) {
  std::string wire;
  if (request.return_previous) {
    resp::encodeCommand({"SET", key, request.value, "GET"}, wire);
  } else {
    resp::encodeCommand({"SET", key, request.value}, wire);
  }
  return wire;
}

std::vector<std::string> putScriptArgs(const PutRequest& request) {
  const std::string owner_pull = request.strict_owner ? std::to_string(request.strict_owner->pull_num) : "";
  std::vector<std::string_view> views = putScriptArgViews(request, owner_pull);
  return std::vector<std::string>(views.begin(), views.end());
}

std::vector<std::string_view> putScriptArgViews(const PutRequest& request, const std::string& owner_pull) {
  using Condition = PutRequest::Condition;
  const char* condition = request.condition == Condition::kIfAbsent    ? "NX"
                          : request.condition == Condition::kIfPresent ? "XX"
                                                                       : "";
  std::vector<std::string_view> args = {request.value, condition, request.return_previous ? "1" : "0",
                                        request.strict_owner ? "1" : "0"};
  if (const auto& owner = request.strict_owner) {
    args.insert(args.end(), {owner_pull, owner->repo_full_name, owner->path, owner->project_name,
                             owner->workspace});
  }
  return args;
}

std::string evalOfEvalsha(std::string_view evalsha_wire, std::string_view sha, std::string_view body) {
  // "*<n>\r\n", then EVALSHA and the SHA as two bulk strings, then the rest as it is.
  const size_t header = evalsha_wire.find("\r\n") + 2;
  std::string replaced;
  resp::writeBulk(replaced, "EVALSHA");
  resp::writeBulk(replaced, sha);
  std::string wire(evalsha_wire.substr(0, header));
  wire.reserve(evalsha_wire.size() + body.size());
  resp::writeBulk(wire, "EVAL");
  resp::writeBulk(wire, body);
  wire.append(evalsha_wire.substr(header + replaced.size()));
  return wire;
}

// ---- Replies ----

Status errorStatus(const resp::Value& error, std::string_view where) {
  std::string_view code = std::string_view(error.str).substr(0, error.str.find(' '));
  std::string message = std::string(where) + ": " + error.str;
  if (code == "OOM") return Status::storeFull(std::move(message));
  for (std::string_view busy : {"LOADING", "BUSY", "READONLY", "MASTERDOWN", "NOAUTH", "NOREPLICAS",
                                "CLUSTERDOWN", "TRYAGAIN"}) {
    if (code == busy) return Status::unavailable(std::move(message));
  }
  return Status::ioError(std::move(message));
}

bool isNoScript(const Result<resp::Value>& reply) {
  return reply.isOk() && reply->isError() && reply->str.rfind("NOSCRIPT", 0) == 0;
}

Result<std::optional<std::string>> readOptionalString(const Result<resp::Value>& reply,
                                                      std::string_view where) {
  if (Status status = failure(reply, where); !status) return status;
  if (reply->type == resp::Type::kNull) return std::optional<std::string>();
  if (reply->type != resp::Type::kBulkString) return unexpected(where, "GET", *reply);
  return std::optional<std::string>(reply->str);
}

Result<std::optional<std::string>> readOptionalString(Result<resp::Value>&& reply, std::string_view where) {
  if (reply.isOk() && reply->type == resp::Type::kBulkString) return std::optional<std::string>(std::move(reply->str));
  return readOptionalString(std::as_const(reply), where);
}

Result<int64_t> readInteger(const Result<resp::Value>& reply, std::string_view where) {
  if (Status status = failure(reply, where); !status) return status;
  if (reply->type != resp::Type::kInteger) return unexpected(where, "a counting command", *reply);
  return reply->integer;
}

Status readPong(const Result<resp::Value>& reply, std::string_view where) {
  if (Status status = failure(reply, where); !status) return status;
  if (reply->type != resp::Type::kSimpleString || reply->str != "PONG") {
    return unexpected(where, "PING", *reply);
  }
  return Status::ok();
}

Result<PutResult> readPut(PutForm form, bool return_previous, const Result<resp::Value>& reply,
                          std::string_view where) {
  if (Status status = failure(reply, where); !status) return status;
  const resp::Value& v = *reply;
  PutResult result;
  if (form == PutForm::kSet) {
    if (v.type != resp::Type::kSimpleString || v.str != "OK") return unexpected(where, "SET", v);
    return result;
  }
  if (form == PutForm::kSetGet) {
    if (v.type == resp::Type::kBulkString) result.previous = v.str;
    if (v.type != resp::Type::kBulkString && v.type != resp::Type::kNull) {
      return unexpected(where, "SET GET", v);
    }
    return result;
  }
  if (v.type != resp::Type::kArray || v.elements.size() != 3 ||
      v.elements[0].type != resp::Type::kInteger || v.elements[0].integer < 0 ||
      v.elements[0].integer > 2 || v.elements[2].type != resp::Type::kBulkString ||
      (v.elements[1].type != resp::Type::kBulkString && v.elements[1].type != resp::Type::kNull)) {
    return unexpected(where, "the put script", v);
  }
  result.outcome = static_cast<PutResult::Outcome>(v.elements[0].integer);
  if (return_previous && v.elements[1].type == resp::Type::kBulkString) {
    result.previous = v.elements[1].str;
  }
  result.holder = v.elements[2].str;
  return result;
}

Result<std::optional<std::string>> readUnlock(const Result<resp::Value>& reply,
                                              std::string_view where) {
  constexpr std::string_view kNotJson = "failed to deserialize current lock";
  if (reply.isOk() && reply->isError() && reply->str.find(kNotJson) != std::string::npos) {
    return Status::invalidArgument(std::string(kNotJson));
  }
  return readOptionalString(reply, where);
}

Result<ScanPage> readScan(const Result<resp::Value>& reply, std::string_view prefix,
                          std::string_view where) {
  if (Status status = failure(reply, where); !status) return status;
  const resp::Value& v = *reply;
  ScanPage page;
  if (v.type != resp::Type::kArray || v.elements.size() != 2 ||
      v.elements[0].type != resp::Type::kBulkString ||
      !parseDecimal(v.elements[0].str, &page.next_cursor) ||
      v.elements[1].type != resp::Type::kArray) {
    return unexpected(where, "SCAN", v);
  }
  page.keys.reserve(v.elements[1].elements.size());
  for (const resp::Value& key : v.elements[1].elements) {
    if (key.type != resp::Type::kBulkString) return unexpected(where, "SCAN", v);
    if (key.str.compare(0, prefix.size(), prefix) != 0) continue;
    page.keys.push_back(key.str.substr(prefix.size()));
  }
  return page;
}

}  // namespace lockshift::redis
