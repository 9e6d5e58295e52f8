#include "proxy/admin_requests.h"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cctype>
#include <vector>

#include "common/json_events.h"
#include "common/json_text.h"

namespace lockshift {

namespace json = boost::json;
using boost::system::error_code;

namespace {

constexpr std::string_view kPhases = "legacy-only, shadow, hybrid, enhanced-only";

bool isBlank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// Boost.JSON 1.81 keeps the last of two equal keys when it builds an object and has no option to
// refuse them, so a first pass with its event parser looks for a top-level key given twice. Admin
// bodies are at most 64 KiB, so the second pass costs nothing that matters.
class TopLevelKeys : public JsonEvents {
 public:
  // The first key the top-level object names twice, if any.
  const std::optional<std::string>& duplicate() const { return duplicate_; }

  bool on_array_begin(error_code&) { return enter(); }
  bool on_array_end(size_t, error_code&) { return leave(); }
  bool on_object_begin(error_code&) { return enter(); }
  bool on_object_end(size_t, error_code&) { return leave(); }
  bool on_key_part(json::string_view s, size_t, error_code&) {
    if (depth_ == 1) key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, size_t, error_code&) {
    if (depth_ != 1) return true;
    key_.append(s.data(), s.size());
    if (std::find(keys_.begin(), keys_.end(), key_) != keys_.end()) {
      if (!duplicate_) duplicate_ = key_;
    } else {
      keys_.push_back(key_);
    }
    key_.clear();
    return true;
  }

 private:
  bool enter() {
    ++depth_;
    return true;
  }
  bool leave() {
    --depth_;
    return true;
  }

  int depth_ = 0;
  std::string key_;
  std::vector<std::string> keys_;
  std::optional<std::string> duplicate_;
};

std::optional<std::string> duplicateTopLevelKey(std::string_view body) {
  json::basic_parser<TopLevelKeys> parser(json::parse_options{});
  error_code ec;
  parser.write_some(false, body.data(), body.size(), ec);
  return ec ? std::nullopt : parser.handler().duplicate();
}

}  // namespace

std::optional<FieldError> parseRequestObject(std::string_view body, json::object* out) {
  if (isBlank(body)) return FieldError{"request body must be a JSON object", ""};
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) return FieldError{"invalid JSON: " + ec.message(), ""};
  if (!v.is_object()) return FieldError{"request body must be a JSON object", ""};
  if (auto key = duplicateTopLevelKey(body)) return FieldError{"field '" + *key + "' is given twice", *key};
  *out = std::move(v.get_object());
  return std::nullopt;
}

namespace {

FieldError unknownField(std::string_view key) {
  return FieldError{"unknown field '" + std::string(key) + "'", std::string(key)};
}

std::optional<FieldError> parsePhaseField(const json::value& value, MigrationChange* out) {
  if (!value.is_string()) {
    return FieldError{"phase must be a string, one of " + std::string(kPhases), "phase"};
  }
  std::string_view name(value.get_string());
  auto phase = parsePhase(name);
  if (!phase) {
    return FieldError{"phase '" + std::string(name) + "' is not one of " + std::string(kPhases),
                      "phase"};
  }
  out->phase = *phase;
  return std::nullopt;
}

std::optional<FieldError> parseSplitField(const json::value& value, MigrationChange* out) {
  // Boost.JSON keeps bool apart from numbers, so true/false are rejected here too.
  if (value.is_number()) {
    double split = value.to_number<double>();
    if (split >= 0 && split <= 100) {  // false for NaN
      out->traffic_split = split;
      return std::nullopt;
    }
  }
  return FieldError{"traffic_split must be a number from 0 to 100", "traffic_split"};
}

size_t utf8Length(std::string_view s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace

std::optional<FieldError> parseMigrationChange(std::string_view body, MigrationChange* out) {
  json::object obj;
  if (auto error = parseRequestObject(body, &obj)) return error;
  MigrationChange change;
  for (const auto& [key, value] : obj) {
    if (key == "phase") {
      if (auto error = parsePhaseField(value, &change)) return error;
    } else if (key == "traffic_split") {
      if (auto error = parseSplitField(value, &change)) return error;
    } else if (key == "force") {
      if (!value.is_bool()) return FieldError{"force must be true or false", "force"};
      change.force = value.get_bool();
    } else {
      return unknownField(key);
    }
  }
  if (!change.phase && !change.traffic_split) {
    return FieldError{"request needs phase or traffic_split", ""};
  }
  *out = change;
  return std::nullopt;
}

std::optional<FieldError> parseRollbackReason(std::string_view body, std::string* reason) {
  if (isBlank(body)) {
    reason->clear();
    return std::nullopt;
  }
  json::object obj;
  if (auto error = parseRequestObject(body, &obj)) return error;
  std::string parsed;
  for (const auto& [key, value] : obj) {
    if (key != "reason") return unknownField(key);
    if (!value.is_string()) return FieldError{"reason must be a string", "reason"};
    parsed = std::string(value.get_string());
    if (utf8Length(parsed) > kMaxRollbackReason) {
      return FieldError{
          "reason is longer than " + std::to_string(kMaxRollbackReason) + " characters", "reason"};
    }
  }
  *reason = std::move(parsed);
  return std::nullopt;
}

std::string errorBody(std::string_view message, std::string_view field) {
  return jsonText(json::object{{"error", message}, {"field", field}});
}

json::object controlStateJson(const ControlState& state) {
  // encodeControlState writes a whole-number split as an integer (25, not Boost.JSON's 2.5E1).
  return json::parse(encodeControlState(state)).as_object();
}

std::string changeOutcomeBody(const ChangeOutcome& outcome) {
  json::object body{{"applied", outcome.applied}};
  if (!outcome.applied) {
    json::array refusals;
    for (const auto& r : outcome.refusals) refusals.emplace_back(r);
    body["refusals"] = std::move(refusals);
  }
  body["state"] = controlStateJson(outcome.state);
  return jsonText(body);
}

std::optional<std::string_view> bearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size() || authorization[kScheme.size()] != ' ') {
    return std::nullopt;
  }
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) {
      return std::nullopt;
    }
  }
  std::string_view token = authorization.substr(kScheme.size());
  size_t begin = token.find_first_not_of(' ');
  if (begin == std::string_view::npos) return std::nullopt;
  token = token.substr(begin);
  size_t end = token.find_last_not_of(" \t");
  return token.substr(0, end + 1);
}

}  // namespace lockshift
