#pragma once
// Validation of admin API request bodies and JSON encoding of its answers, kept apart from the
// HTTP transport so each rule is a plain function. Bad input is reported as a FieldError naming
// the offending field ("" when the body as a whole is wrong); nothing here has side effects.
//
// Thread-safety: free functions without shared state.

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "router/control_plane.h"
#include "router/control_state.h"

namespace lockshift {

// Longest accepted rollback reason, in characters (UTF-8 code points).
inline constexpr size_t kMaxRollbackReason = 1024;

struct FieldError {
  std::string error;  // "traffic_split must be a number from 0 to 100"
  std::string field;  // "traffic_split"; "" for the body as a whole
};

// A request body that must be one JSON object: fills `*out`. Refuses invalid JSON, another type,
// and an object naming one field twice (which of two answers an operator meant cannot be told).
std::optional<FieldError> parseRequestObject(std::string_view body, boost::json::object* out);

// PUT /api/v1/migration: a JSON object with optional "phase" (a phase name), "traffic_split"
// (a number 0..100) and "force" (a bool); at least one of phase and traffic_split; no other
// fields. On success fills `*out` and returns nullopt.
std::optional<FieldError> parseMigrationChange(std::string_view body, MigrationChange* out);

// POST /api/v1/rollback: an empty body, or a JSON object with an optional string "reason" of at
// most kMaxRollbackReason characters and no other fields. On success fills `*reason`.
std::optional<FieldError> parseRollbackReason(std::string_view body, std::string* reason);

// {"error": message, "field": field}
std::string errorBody(std::string_view message, std::string_view field = "");
// The control state as a JSON object (the shape of encodeControlState()).
boost::json::object controlStateJson(const ControlState& state);
// {"applied":true,"state":{...}} or {"applied":false,"refusals":[...],"state":{...}}.
std::string changeOutcomeBody(const ChangeOutcome& outcome);

// The token of an `Authorization: Bearer <token>` header value (scheme matched without regard
// to case, RFC 7235); nullopt for another scheme or an empty token.
std::optional<std::string_view> bearerToken(std::string_view authorization);

}  // namespace lockshift
