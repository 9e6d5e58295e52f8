#include "common/lock_json.h"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <cmath>
#include <cstdlib>

namespace lockshift {

namespace json = boost::json;

namespace {

// Lock values are parsed on every strict acquire and every record write. The parsed value lives
// only while its fields are read, so it is built in a caller's stack buffer (a monotonic
// resource, which takes the heap only for a document that does not fit) instead of one heap
// allocation per object and per string longer than Boost.JSON's inline size.
struct JsonArena {
  unsigned char buffer[8192];
  json::monotonic_resource resource{buffer, sizeof buffer};
};

Result<json::value> parseJson(std::string_view text, JsonArena& arena) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec, &arena.resource);
  if (ec) return Status::invalidArgument("not JSON: " + ec.message());
  return v;
}

std::string stringField(const json::object& obj, std::string_view name) {
  const json::value* v = obj.if_contains(json::string_view(name.data(), name.size()));
  if (v == nullptr || !v->is_string()) return {};
  return std::string(v->get_string());
}

const json::object* objectField(const json::object& obj, std::string_view name) {
  const json::value* v = obj.if_contains(json::string_view(name.data(), name.size()));
  return v != nullptr && v->is_object() ? &v->get_object() : nullptr;
}

}  // namespace

bool LockIdentity::sameHolder(const LockIdentity& other) const {
  return pull_num == other.pull_num && repo_full_name == other.repo_full_name &&
         path == other.path && project_name == other.project_name && workspace == other.workspace;
}

std::string LockIdentity::describe() const {
  std::string out = "pull #" + std::to_string(pull_num);
  if (!username.empty()) out += " (" + username + ")";
  return out;
}

Result<LockIdentity> parseProjectLock(std::string_view text) {
  JsonArena arena;
  auto parsed = parseJson(text, arena);
  if (!parsed) return parsed.status();
  if (!parsed->is_object()) return Status::invalidArgument("lock value is not a JSON object");
  const json::object& root = parsed->get_object();

  const json::object* pull = objectField(root, "Pull");
  if (pull == nullptr) return Status::invalidArgument("lock value has no Pull object");
  const json::value* num = pull->if_contains("Num");
  if (num == nullptr) return Status::invalidArgument("lock value has no Pull.Num");
  LockIdentity id;
  if (num->is_int64()) {
    id.pull_num = num->get_int64();
  } else if (num->is_uint64() && num->get_uint64() <= INT64_MAX) {
    id.pull_num = static_cast<int64_t>(num->get_uint64());
  } else {
    return Status::invalidArgument("lock value's Pull.Num is not an integer");
  }

  const json::object* project = objectField(root, "Project");
  if (project == nullptr) return Status::invalidArgument("lock value has no Project object");
  id.repo_full_name = stringField(*project, "RepoFullName");
  id.path = stringField(*project, "Path");
  id.project_name = stringField(*project, "ProjectName");

  const json::value* workspace = root.if_contains("Workspace");
  if (workspace == nullptr || !workspace->is_string()) {
    return Status::invalidArgument("lock value has no Workspace string");
  }
  id.workspace = std::string(workspace->get_string());
  if (const json::object* user = objectField(root, "User")) {
    id.username = stringField(*user, "Username");
  }
  return id;
}

Result<std::optional<double>> lockPullNumber(std::string_view text) {
  JsonArena arena;
  auto parsed = parseJson(text, arena);
  if (!parsed) return Status::invalidArgument("failed to deserialize current lock");
  if (!parsed->is_object()) return std::optional<double>();
  const json::object* pull = objectField(parsed->get_object(), "Pull");
  if (pull == nullptr) return std::optional<double>();
  const json::value* num = pull->if_contains("Num");
  if (num == nullptr) return std::optional<double>();
  if (num->is_number()) return std::optional<double>(num->to_number<double>());
  if (num->is_string()) {
    const json::string& s = num->get_string();
    return luaToNumber(std::string_view(s.data(), s.size()));
  }
  return std::optional<double>();
}

std::optional<double> luaToNumber(std::string_view text) {
  // Lua 5.1's tonumber: surrounding whitespace allowed, decimal/float/hex via strtod.
  auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!text.empty() && isSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && isSpace(text.back())) text.remove_suffix(1);
  if (text.empty() || text.size() > 64) return std::nullopt;
  std::string buf(text);
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(buf.c_str(), &end);
  if (end != buf.c_str() + buf.size() || !std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace lockshift
