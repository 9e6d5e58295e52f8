#pragma once
// Parsing an admin request's target: the percent-decoded path and query parameters, and the
// validation of the query parameters and bodies of the consistency, locks and events routes.
// Bad input is a FieldError naming the parameter; nothing here has side effects.
//
// Thread-safety: free functions without shared state.

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "proxy/admin_requests.h"
#include "router/control_plane.h"

namespace lockshift {

struct Target {
  std::string path;                          // percent-decoded
  std::map<std::string, std::string> query;  // percent-decoded; a repeated name keeps the last
};

// An origin-form target ("/a/b?x=1"). Errors name "target", or the repeated parameter.
std::optional<FieldError> parseTarget(std::string_view target, Target* out);

// Every query parameter is one of `allowed`.
std::optional<FieldError> checkQuery(const Target& target, std::span<const std::string_view> allowed);

// An integer parameter in [min, max]; `*out` keeps its default when the parameter is absent.
std::optional<FieldError> queryInt(const Target& target, std::string_view name, int64_t min, int64_t max,
                                   int64_t* out);

// POST /api/v1/consistency/checks: an empty body, or {"repair": bool} with no other fields.
std::optional<FieldError> parseCheckRequest(std::string_view body, bool* repair);

// One lock of GET /api/v1/locks: db, key, owner, and, when the value is Atlantis's lock JSON,
// pull, user, repo, path, workspace and time (else "value" with the raw text).
boost::json::object lockEntryJson(const LockEntry& entry);

}  // namespace lockshift
