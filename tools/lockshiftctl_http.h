#pragma once
// lockshiftctl's side of the admin API (proxy/admin_server.h lists the routes): a blocking
// HTTP/1.1 client on Boost.Beast, one connection per request, every step bounded by a timeout,
// and the mapping from HTTP answers to exit codes and messages.
//
// Thread-safety: no shared state; each call runs its own io_context on the calling thread.

#include <boost/json/value.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tools/lockshiftctl_cli.h"

namespace lockshift::ctl {

// Where the admin API is: from "http://host[:port][/base]", "host:port" or "[v6]:port".
struct AdminEndpoint {
  std::string host;  // without brackets
  std::string port;  // "80" when the URL names none
  std::string base;  // path prefix ("" or "/lockshift"), without a trailing slash
  std::string url;   // as given, for messages
};

// kInvalidArgument naming what is wrong (https, a missing host, a bad port).
Result<AdminEndpoint> parseAdminUrl(std::string_view url);

// RFC 3986 percent-encoding of everything but unreserved characters (so '/' becomes %2F).
std::string percentEncode(std::string_view text);

struct HttpAnswer {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

inline constexpr std::chrono::seconds kHttpTimeout{10};

// Sends one request (`target` is the path and query below the endpoint's base) and reads the
// whole answer, each of resolve+connect, write and read within `timeout`. `token` empty: no
// Authorization header. Errors: kUnavailable (refused, reset, unresolvable), kTimeout.
Result<HttpAnswer> sendHttp(const AdminEndpoint& endpoint, std::string_view method, std::string_view target,
                            std::string_view body, std::string_view token,
                            std::chrono::milliseconds timeout = kHttpTimeout);

// One admin API call, judged. On success `exit` is kExitOk and `json` the parsed body (when
// `want_json`; else only `body` is set). Otherwise the reason is already printed on stderr
// ("lockshiftctl: <error>"; refusals one per line) and `exit` says which failure it was:
// 400 kExitUsage, 401/403 kExitFailure (with a hint about the token), 404 kExitNotFound,
// 409 kExitRefused (with --json the server's JSON also goes to stdout), anything else
// kExitFailure.
struct ApiResult {
  int exit = kExitOk;
  unsigned status = 0;
  std::string body;
  boost::json::value json;
};
ApiResult callApi(const Invocation& inv, std::string_view method, std::string_view target,
                  std::string_view body = "", bool want_json = true);

}  // namespace lockshift::ctl
