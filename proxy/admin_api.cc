#include "proxy/admin_api.h"

#include <boost/json/value.hpp>
#include <iostream>
#include <string_view>

#include "common/constant_time.h"
#include "common/files.h"
#include "common/json_text.h"
#include "proxy/admin_requests.h"
#include "proxy/admin_target.h"
#include "proxy/status_page.h"

namespace lockshift {

namespace json = boost::json;

enum class AdminApi::Route {
  kHealthz, kReadyz, kMetrics, kStatus, kMigration, kRollback,
  kChecks, kCheck, kLocks, kLock, kEvents, kStatusPage,
};

namespace {

using Route = AdminApi::Route;

struct RouteSpec {
  std::string_view path;
  Route route;
  std::string_view allow;  // the Allow header: methods separated by ", "
  bool prefix = false;     // path is a prefix followed by one non-empty parameter ({id}, {key})
};

constexpr RouteSpec kRoutes[] = {
    {"/healthz", Route::kHealthz, "GET"},
    {"/readyz", Route::kReadyz, "GET"},
    {"/metrics", Route::kMetrics, "GET"},
    {"/api/v1/status", Route::kStatus, "GET"},
    {"/api/v1/migration", Route::kMigration, "PUT"},
    {"/api/v1/rollback", Route::kRollback, "POST, DELETE"},
    {"/api/v1/consistency/checks", Route::kChecks, "GET, POST"},
    {"/api/v1/consistency/checks/", Route::kCheck, "GET", true},
    {"/api/v1/locks", Route::kLocks, "GET, DELETE"},
    {"/api/v1/locks/", Route::kLock, "DELETE", true},
    {"/api/v1/events", Route::kEvents, "GET"},
    {"/", Route::kStatusPage, "GET"},
};

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

const RouteSpec* findRoute(std::string_view path) {
  for (const auto& spec : kRoutes) {
    if (spec.prefix ? path.size() > spec.path.size() && path.starts_with(spec.path) : spec.path == path) return &spec;
  }
  return nullptr;
}

bool allows(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    size_t comma = allow.find(", ");
    if (allow.substr(0, comma) == method) return true;
    allow = comma == std::string_view::npos ? std::string_view() : allow.substr(comma + 2);
  }
  return false;
}

}  // namespace

std::string adminActor(const std::string& peer) { return "admin:" + peer; }

AdminResponse jsonResponse(unsigned status, std::string body) {
  AdminResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

AdminResponse badRequest(const FieldError& error) {
  return jsonResponse(400, errorBody(error.error, error.field));
}

unsigned httpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument: return 400;
    case ErrorCode::kUnavailable:
    case ErrorCode::kStoreFull:
    case ErrorCode::kTimeout:
    case ErrorCode::kIoError: return 503;
    default: return 500;
  }
}

AdminApi::AdminApi(ControlPlane& control, ConsistencyService* consistency, std::function<std::string()> metrics_text,
                   std::string token, std::string token_file)
    : control_(control),
      consistency_(consistency),
      metrics_text_(std::move(metrics_text)),
      token_(std::move(token)),
      token_file_(std::move(token_file)) {}

boost::asio::awaitable<AdminResponse> AdminApi::handle(AdminRequest request) {
  Target target;
  if (auto error = parseTarget(request.target, &target)) co_return badRequest(*error);
  std::string_view path(target.path);
  const RouteSpec* spec = findRoute(path);
  if (spec == nullptr) {
    co_return jsonResponse(404, errorBody("no such endpoint: " + std::string(path)));
  }
  if (!allows(spec->allow, request.method)) {
    AdminResponse response = jsonResponse(
        405, errorBody("method " + request.method + " is not allowed on " + std::string(path)));
    response.headers.emplace_back("Allow", std::string(spec->allow));
    co_return response;
  }
  if (request.method != "GET") {
    if (auto denied = authorize(request)) co_return std::move(*denied);
  }
  co_return co_await serve(spec->route, request, target);
}

boost::asio::awaitable<AdminResponse> AdminApi::serve(Route route, const AdminRequest& request,
                                                      const Target& target) {
  switch (route) {
    case Route::kHealthz: co_return jsonResponse(200, R"({"status":"ok"})");
    case Route::kReadyz: {
      bool ready = co_await control_.ready();
      co_return jsonResponse(ready ? 200 : 503, ready ? R"({"ready":true})" : R"({"ready":false})");
    }
    case Route::kMetrics: {
      AdminResponse response = jsonResponse(200, metrics_text_());
      response.content_type = kMetricsContentType;
      co_return response;
    }
    case Route::kStatus: co_return jsonResponse(200, jsonText(co_await control_.status()));
    case Route::kMigration: co_return co_await changeMigration(request);
    case Route::kRollback:
      if (request.method == "POST") co_return co_await raiseRollback(request);
      co_return co_await clearRollback(request);
    case Route::kChecks:
      if (request.method == "POST") co_return startCheck(request, target);
      co_return listChecks(target);
    case Route::kCheck: co_return getCheck(target);
    case Route::kLocks:
      if (request.method == "DELETE") co_return co_await unlockPull(request, target);
      co_return co_await listLocks(target);
    case Route::kLock: co_return co_await forceUnlock(request, target);
    case Route::kEvents: co_return listEvents(target);
    case Route::kStatusPage: {
      AdminResponse response = jsonResponse(200, std::string(statusPageHtml()));
      response.content_type = "text/html; charset=utf-8";
      co_return response;
    }
  }
  co_return jsonResponse(500, errorBody("unhandled route"));
}

std::optional<AdminResponse> AdminApi::authorize(const AdminRequest& request) const {
  std::string token = token_;
  if (!token_file_.empty()) {
    // Read at every mutating call, so a rotated token needs no restart. Without it nothing can be
    // checked, so nothing is changed; the reason goes to the log, not to a caller not yet trusted.
    Result<std::string> secret = readSecretFile(token_file_);
    if (!secret) {
      std::cerr << "lockshift: admin_token_file: " << secret.status().message() << "\n";
      return jsonResponse(503, errorBody("the admin token file cannot be read; see lockshift's log"));
    }
    token = std::move(secret.value());
  }
  if (token.empty()) return std::nullopt;
  std::optional<std::string_view> presented;
  if (request.authorization) presented = bearerToken(*request.authorization);
  if (!presented) {
    AdminResponse response = jsonResponse(401, errorBody("missing bearer token"));
    response.headers.emplace_back("WWW-Authenticate", "Bearer");
    return response;
  }
  if (!constantTimeEquals(*presented, token)) {
    return jsonResponse(403, errorBody("invalid bearer token"));
  }
  return std::nullopt;
}

boost::asio::awaitable<AdminResponse> AdminApi::changeMigration(const AdminRequest& request) {
  MigrationChange change;
  if (auto error = parseMigrationChange(request.body, &change)) co_return badRequest(*error);
  ChangeOutcome outcome = co_await control_.changeMigration(change, adminActor(request.peer));
  co_return jsonResponse(outcome.applied ? 200 : 409, changeOutcomeBody(outcome));
}

boost::asio::awaitable<AdminResponse> AdminApi::raiseRollback(const AdminRequest& request) {
  std::string reason;
  if (auto error = parseRollbackReason(request.body, &reason)) co_return badRequest(*error);
  Status status = control_.raiseRollback(std::move(reason), adminActor(request.peer));
  co_return co_await rollbackAnswer(status);
}

boost::asio::awaitable<AdminResponse> AdminApi::clearRollback(const AdminRequest& request) {
  Status status = control_.clearRollback(adminActor(request.peer));
  co_return co_await rollbackAnswer(status);
}

// 200 {"applied":true,"status":<GET /api/v1/status>} after a rollback change, else the error.
// A well-formed request the current state refuses (e.g. clearing while the ROLLBACK flag file
// exists) is a conflict, not a bad request: 409.
boost::asio::awaitable<AdminResponse> AdminApi::rollbackAnswer(const Status& status) {
  if (!status) {
    unsigned code = status.code() == ErrorCode::kInvalidArgument ? 409 : httpStatusFor(status.code());
    co_return jsonResponse(code, errorBody(status.message()));
  }
  json::object state = co_await control_.status();
  json::object body{{"applied", true}, {"status", std::move(state)}};
  co_return jsonResponse(200, jsonText(body));
}

}  // namespace lockshift
