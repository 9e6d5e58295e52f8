#include "proxy/admin_target.h"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <boost/url/parse.hpp>
#include <charconv>

namespace lockshift {

namespace json = boost::json;

std::optional<FieldError> parseTarget(std::string_view target, Target* out) {
  auto url = boost::urls::parse_origin_form(target);
  if (!url) return FieldError{"the request target is not a valid path: " + url.error().message(), "target"};
  out->path = std::string(url->path());
  out->query.clear();
  for (const auto& param : url->params()) {
    auto [it, added] = out->query.try_emplace(std::string(param.key), param.has_value ? std::string(param.value) : "");
    if (!added) return FieldError{"query parameter '" + it->first + "' is given twice", it->first};
  }
  return std::nullopt;
}

std::optional<FieldError> checkQuery(const Target& target, std::span<const std::string_view> allowed) {
  for (const auto& [name, value] : target.query) {
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string list;
      for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
      return FieldError{"unknown query parameter '" + name + "'" + (list.empty() ? "" : " (accepted: " + list + ")"),
                        name};
    }
  }
  return std::nullopt;
}

std::optional<FieldError> queryInt(const Target& target, std::string_view name, int64_t min, int64_t max,
                                   int64_t* out) {
  auto it = target.query.find(std::string(name));
  if (it == target.query.end()) return std::nullopt;
  const std::string& text = it->second;
  int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return FieldError{std::string(name) + " must be an integer from " + std::to_string(min) + " to " +
                          std::to_string(max),
                      std::string(name)};
  }
  *out = value;
  return std::nullopt;
}

std::optional<FieldError> parseCheckRequest(std::string_view body, bool* repair) {
  *repair = false;
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return std::nullopt;
  json::object obj;
  if (auto error = parseRequestObject(body, &obj)) return error;
  for (const auto& [key, value] : obj) {
    if (key != "repair") return FieldError{"unknown field '" + std::string(key) + "'", std::string(key)};
    if (!value.is_bool()) return FieldError{"repair must be true or false", "repair"};
    *repair = value.as_bool();
  }
  return std::nullopt;
}

namespace {

const json::value* member(const json::value& v, std::string_view a, std::string_view b = {}) {
  if (!v.is_object()) return nullptr;
  const json::value* m = v.as_object().if_contains(a);
  if (m == nullptr || b.empty()) return m;
  return member(*m, b);
}

void copyString(json::object& to, std::string_view name, const json::value* from) {
  if (from != nullptr && from->is_string()) to[name] = from->as_string();
}

}  // namespace

boost::json::object lockEntryJson(const LockEntry& entry) {
  json::object o{{"db", entry.db}, {"key", entry.key}, {"owner", roleName(entry.owner)}};
  if (entry.token) o["token"] = *entry.token;
  if (entry.acquired_at_unix_ms) o["acquired_at_unix_ms"] = *entry.acquired_at_unix_ms;
  boost::system::error_code ec;
  json::value v = json::parse(entry.value, ec);
  const json::value* pull = ec ? nullptr : member(v, "Pull", "Num");
  if (pull == nullptr || !pull->is_number()) {
    o["value"] = entry.value;
    return o;
  }
  o["pull"] = *pull;
  copyString(o, "user", member(v, "User", "Username"));
  copyString(o, "repo", member(v, "Project", "RepoFullName"));
  copyString(o, "path", member(v, "Project", "Path"));
  copyString(o, "workspace", member(v, "Workspace"));
  copyString(o, "time", member(v, "Time"));
  return o;
}

}  // namespace lockshift
