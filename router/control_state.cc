#include "router/control_state.h"

#include <boost/json.hpp>
#include <cmath>

#include "common/glob.h"
#include "common/json_text.h"
#include "common/stable_hash.h"

namespace lockshift {

namespace json = boost::json;

std::string_view phaseName(Phase phase) {
  switch (phase) {
    case Phase::kLegacyOnly: return "legacy-only";
    case Phase::kShadow: return "shadow";
    case Phase::kHybrid: return "hybrid";
    case Phase::kEnhancedOnly: return "enhanced-only";
  }
  return "?";
}

std::optional<Phase> parsePhase(std::string_view name) {
  for (Phase p : {Phase::kLegacyOnly, Phase::kShadow, Phase::kHybrid, Phase::kEnhancedOnly}) {
    if (phaseName(p) == name) return p;
  }
  return std::nullopt;
}

std::string_view roleName(StoreRole role) { return role == StoreRole::kLegacy ? "legacy" : "enhanced"; }

std::optional<StoreRole> parseRole(std::string_view name) {
  if (name == "legacy") return StoreRole::kLegacy;
  if (name == "enhanced") return StoreRole::kEnhanced;
  return std::nullopt;
}

uint32_t ControlState::enhancedBuckets() const {
  double b = std::round(traffic_split * 100.0);
  return static_cast<uint32_t>(std::clamp(b, 0.0, static_cast<double>(kBucketCount)));
}

double ControlState::enhancedOwnedPercent() const {
  if (rollback.raised || !enhanced_filled) return 0;
  switch (phase) {
    case Phase::kLegacyOnly:
    case Phase::kShadow: return 0;
    case Phase::kHybrid: return enhancedBuckets() / 100.0;
    case Phase::kEnhancedOnly: return 100;
  }
  return 0;
}

StoreRole ControlState::ownerOf(std::string_view key) const {
  // Enhanced owns nothing until it holds a full copy of legacy.
  if (rollback.raised || !enhanced_filled) return StoreRole::kLegacy;
  switch (phase) {
    case Phase::kLegacyOnly:
    case Phase::kShadow:
      return StoreRole::kLegacy;
    case Phase::kEnhancedOnly:
      return StoreRole::kEnhanced;
    case Phase::kHybrid:
      for (const auto& rule : rules) {
        if (globMatch(rule.match, key)) return rule.owner;
      }
      return stableBucket(key) < enhancedBuckets() ? StoreRole::kEnhanced : StoreRole::kLegacy;
  }
  return StoreRole::kLegacy;
}

std::string encodeControlState(const ControlState& s) {
  json::array rules;
  for (const auto& r : s.rules) rules.push_back(json::object{{"match", r.match}, {"owner", roleName(r.owner)}});
  // A whole-number split is written as an integer ("50", not Boost.JSON's "5E1").
  json::value split = s.traffic_split == std::floor(s.traffic_split) ? json::value(static_cast<int64_t>(s.traffic_split))
                                                                     : json::value(s.traffic_split);
  json::object out{
      {"phase", phaseName(s.phase)},
      {"traffic_split", std::move(split)},
      {"rules", std::move(rules)},
      {"rollback", json::object{{"raised", s.rollback.raised},
                                {"reason", s.rollback.reason},
                                {"actor", s.rollback.actor},
                                {"since_unix_ms", s.rollback.since_unix_ms}}},
      {"enhanced_in_use", s.enhanced_in_use},
      {"enhanced_filled", s.enhanced_filled},
      {"legacy_behind", s.legacy_behind},
      {"epoch", s.epoch},
  };
  return jsonText(out);
}

namespace {

Status fieldError(std::string_view field, std::string_view what) {
  return Status::invalidArgument("control state: " + std::string(field) + " " + std::string(what));
}

}  // namespace

Result<ControlState> decodeControlState(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !v.is_object()) return Status::invalidArgument("control state is not a JSON object");
  const json::object& o = v.get_object();
  ControlState s;
  s.phase_source = s.split_source = s.rules_source = "state";

  const json::value* phase = o.if_contains("phase");
  if (phase == nullptr || !phase->is_string()) return fieldError("phase", "must be a string");
  auto p = parsePhase(std::string_view(phase->get_string()));
  if (!p) return fieldError("phase", "is not a known phase");
  s.phase = *p;

  const json::value* split = o.if_contains("traffic_split");
  if (split == nullptr || !split->is_number()) return fieldError("traffic_split", "must be a number");
  s.traffic_split = split->to_number<double>();
  if (!(s.traffic_split >= 0 && s.traffic_split <= 100)) return fieldError("traffic_split", "must be 0..100");

  if (const json::value* rules = o.if_contains("rules")) {
    if (!rules->is_array()) return fieldError("rules", "must be an array");
    for (const auto& r : rules->get_array()) {
      const json::object* ro = r.if_object();
      if (ro == nullptr || !ro->contains("match") || !ro->at("match").is_string() || !ro->contains("owner") ||
          !ro->at("owner").is_string()) {
        return fieldError("rules", "entries need string match and owner");
      }
      auto owner = parseRole(std::string_view(ro->at("owner").get_string()));
      if (!owner) return fieldError("rules", "owner must be legacy or enhanced");
      s.rules.push_back({std::string(ro->at("match").get_string()), *owner});
    }
  }
  if (const json::value* behind = o.if_contains("legacy_behind")) {  // absent in files written before it existed
    if (!behind->is_bool()) return fieldError("legacy_behind", "must be true or false");
    s.legacy_behind = behind->get_bool();
  }
  if (const json::value* rb = o.if_contains("rollback")) {
    const json::object* ro = rb->if_object();
    if (ro == nullptr) return fieldError("rollback", "must be an object");
    if (auto* raised = ro->if_contains("raised"); raised && raised->is_bool()) s.rollback.raised = raised->get_bool();
    if (auto* reason = ro->if_contains("reason"); reason && reason->is_string()) s.rollback.reason = reason->get_string();
    if (auto* actor = ro->if_contains("actor"); actor && actor->is_string()) s.rollback.actor = actor->get_string();
    if (auto* since = ro->if_contains("since_unix_ms"); since && since->is_int64()) {
      s.rollback.since_unix_ms = since->get_int64();
    }
  }
  if (const json::value* in_use = o.if_contains("enhanced_in_use")) {
    if (!in_use->is_bool()) return fieldError("enhanced_in_use", "must be a boolean");
    s.enhanced_in_use = in_use->get_bool();
  }
  if (const json::value* filled = o.if_contains("enhanced_filled")) {
    if (!filled->is_bool()) return fieldError("enhanced_filled", "must be a boolean");
    s.enhanced_filled = filled->get_bool();
  }
  if (const json::value* epoch = o.if_contains("epoch")) {
    if (epoch->is_uint64()) {
      s.epoch = epoch->get_uint64();
    } else if (epoch->is_int64() && epoch->get_int64() >= 0) {
      s.epoch = static_cast<uint64_t>(epoch->get_int64());
    } else {
      return fieldError("epoch", "must be a non-negative integer");
    }
  }
  return s;
}

}  // namespace lockshift
