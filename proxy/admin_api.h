#pragma once
// The admin API's routes (admin_server.h lists them), independent of the HTTP transport: one
// parsed request in, one response out. The transport (AdminServer) owns connections, limits and
// timeouts; this class owns routing, authentication, validation and the JSON answers.
//
// Thread-safety: handle() may run concurrently from any number of connections; the class keeps
// no mutable state. Lifetime: `control` and whatever `metrics_text` refers to must outlive every
// handle() call.

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "router/control_plane.h"

namespace lockshift {
class ConsistencyService;
struct FieldError;
struct Target;
}  // namespace lockshift

namespace lockshift {

struct AdminRequest {
  std::string method;  // "GET", "PUT", ... as sent
  std::string target;  // path, optionally followed by "?query" (ignored by every route)
  std::string body;
  std::optional<std::string> authorization;  // the Authorization header, when present
  std::string peer;                          // client address, for the audit actor
};

struct AdminResponse {
  unsigned status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // besides Content-Type
};

class AdminApi {
 public:
  // `token` empty: mutating calls need no Authorization header. `token_file` set: the token is
  // read from it at every mutating call instead (AdminOptions). `consistency` may be null (the
  // consistency routes then answer 503).
  AdminApi(ControlPlane& control, ConsistencyService* consistency, std::function<std::string()> metrics_text,
           std::string token, std::string token_file = "");

  // Never fails for bad input (that is a 4xx response); exceptions from the control plane or
  // the metrics callback propagate to the caller, which answers 500.
  boost::asio::awaitable<AdminResponse> handle(AdminRequest request);

  enum class Route;  // the known paths (admin_api.cc)

 private:
  boost::asio::awaitable<AdminResponse> serve(Route route, const AdminRequest& request, const Target& target);
  std::optional<AdminResponse> authorize(const AdminRequest& request) const;
  boost::asio::awaitable<AdminResponse> changeMigration(const AdminRequest& request);
  boost::asio::awaitable<AdminResponse> raiseRollback(const AdminRequest& request);
  boost::asio::awaitable<AdminResponse> clearRollback(const AdminRequest& request);
  boost::asio::awaitable<AdminResponse> rollbackAnswer(const Status& status);
  // admin_api_operations.cc
  AdminResponse startCheck(const AdminRequest& request, const Target& target);
  AdminResponse listChecks(const Target& target);
  AdminResponse getCheck(const Target& target);
  boost::asio::awaitable<AdminResponse> listLocks(const Target& target);
  boost::asio::awaitable<AdminResponse> forceUnlock(const AdminRequest& request, const Target& target);
  boost::asio::awaitable<AdminResponse> unlockPull(const AdminRequest& request, const Target& target);
  AdminResponse listEvents(const Target& target);

  ControlPlane& control_;
  ConsistencyService* consistency_;
  std::function<std::string()> metrics_text_;
  std::string token_;
  std::string token_file_;
};

// "admin:<peer>", the actor recorded in the audit log for a call from `peer`.
std::string adminActor(const std::string& peer);

// A JSON response with `status` and `body`.
AdminResponse jsonResponse(unsigned status, std::string body);
// 400 with {"error","field"}.
AdminResponse badRequest(const FieldError& error);
// The HTTP status for a failed store or control-plane call.
unsigned httpStatusFor(ErrorCode code);

}  // namespace lockshift
