// The admin API's operational routes: consistency checks and reports, locks, events.

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "consistency/service.h"
#include "proxy/admin_api.h"
#include "proxy/admin_requests.h"
#include "proxy/admin_target.h"

namespace lockshift {

namespace json = boost::json;

namespace {

constexpr std::string_view kChecksPrefix = "/api/v1/consistency/checks/";
constexpr std::string_view kLocksPrefix = "/api/v1/locks/";

AdminResponse noConsistency() {
  return jsonResponse(503, errorBody("the consistency checker is not running in this process"));
}

}  // namespace

AdminResponse AdminApi::startCheck(const AdminRequest& request, const Target& target) {
  if (auto error = checkQuery(target, {})) return badRequest(*error);
  bool repair = false;
  if (auto error = parseCheckRequest(request.body, &repair)) return badRequest(*error);
  if (consistency_ == nullptr) return noConsistency();
  StartOutcome started = consistency_->startCheck(repair, adminActor(request.peer));
  if (!started.started && started.id.empty()) return jsonResponse(503, errorBody("lockshift is stopping"));
  if (!started.started) {
    json::object body{{"error", "a consistency check is already running"}, {"id", started.id}};
    return jsonResponse(409, json::serialize(body));
  }
  AdminResponse response = jsonResponse(202, json::serialize(json::object{{"id", started.id}, {"state", "running"}}));
  response.headers.emplace_back("Location", std::string(kChecksPrefix) + started.id);
  return response;
}

AdminResponse AdminApi::listChecks(const Target& target) {
  static constexpr std::string_view kAllowed[] = {"limit"};
  if (auto error = checkQuery(target, kAllowed)) return badRequest(*error);
  int64_t limit = 20;
  if (auto error = queryInt(target, "limit", 1, 100, &limit)) return badRequest(*error);
  if (consistency_ == nullptr) return noConsistency();
  json::array checks;
  for (const auto& report : consistency_->list(static_cast<size_t>(limit))) checks.push_back(reportSummaryJson(report));
  return jsonResponse(200, json::serialize(json::object{{"checks", std::move(checks)}}));
}

AdminResponse AdminApi::getCheck(const Target& target) {
  static constexpr std::string_view kAllowed[] = {"format"};
  if (auto error = checkQuery(target, kAllowed)) return badRequest(*error);
  auto format = target.query.find("format");
  const std::string fmt = format == target.query.end() ? "json" : format->second;
  if (fmt != "json" && fmt != "html" && fmt != "md") {
    return badRequest(FieldError{"format must be one of json, html, md", "format"});
  }
  if (consistency_ == nullptr) return noConsistency();
  const std::string id = target.path.substr(kChecksPrefix.size());
  std::optional<Report> report = consistency_->report(id);
  if (!report) return jsonResponse(404, errorBody("no consistency report '" + id + "'"));
  if (fmt == "json") return jsonResponse(200, json::serialize(reportToJson(*report)));
  AdminResponse response = jsonResponse(200, fmt == "html" ? renderHtml(*report) : renderMarkdown(*report));
  response.content_type = fmt == "html" ? "text/html; charset=utf-8" : "text/markdown; charset=utf-8";
  return response;
}

boost::asio::awaitable<AdminResponse> AdminApi::listLocks(const Target& target) {
  static constexpr std::string_view kAllowed[] = {"prefix", "limit"};
  if (auto error = checkQuery(target, kAllowed)) co_return badRequest(*error);
  int64_t limit = 1000;
  if (auto error = queryInt(target, "limit", 1, 100000, &limit)) co_return badRequest(*error);
  auto prefix = target.query.find("prefix");
  auto call = control_.listLocks(prefix == target.query.end() ? "" : prefix->second, static_cast<size_t>(limit));
  auto listing = co_await std::move(call);
  if (!listing) co_return jsonResponse(httpStatusFor(listing.status().code()), errorBody(listing.status().message()));
  json::array locks;
  for (const auto& entry : listing->locks) locks.push_back(lockEntryJson(entry));
  co_return jsonResponse(200, json::serialize(json::object{{"locks", std::move(locks)}, {"truncated", listing->truncated}}));
}

boost::asio::awaitable<AdminResponse> AdminApi::forceUnlock(const AdminRequest& request, const Target& target) {
  static constexpr std::string_view kAllowed[] = {"db"};
  if (auto error = checkQuery(target, kAllowed)) co_return badRequest(*error);
  int64_t db = 0;
  if (auto error = queryInt(target, "db", 0, 1023, &db)) co_return badRequest(*error);
  std::string key = target.path.substr(kLocksPrefix.size());
  auto call = control_.forceUnlock(static_cast<int>(db), key, adminActor(request.peer));
  auto previous = co_await std::move(call);
  if (!previous) {
    if (previous.status().code() == ErrorCode::kInvalidArgument) {
      co_return badRequest(FieldError{previous.status().message(), "db"});
    }
    co_return jsonResponse(httpStatusFor(previous.status().code()), errorBody(previous.status().message()));
  }
  if (!previous->has_value()) co_return jsonResponse(404, errorBody("no such lock: " + key));
  json::object body{{"deleted", true}, {"db", db}, {"key", key}, {"value", **previous}};
  co_return jsonResponse(200, json::serialize(body));
}

AdminResponse AdminApi::listEvents(const Target& target) {
  static constexpr std::string_view kAllowed[] = {"limit"};
  if (auto error = checkQuery(target, kAllowed)) return badRequest(*error);
  int64_t limit = 200;
  if (auto error = queryInt(target, "limit", 1, 10000, &limit)) return badRequest(*error);
  json::array events;
  for (const auto& line : control_.events(static_cast<size_t>(limit))) {
    boost::system::error_code ec;
    json::value event = json::parse(line, ec);
    if (!ec) events.push_back(std::move(event));  // a line damaged on disk is skipped, not served
  }
  return jsonResponse(200, json::serialize(json::object{{"events", std::move(events)}}));
}

}  // namespace lockshift
