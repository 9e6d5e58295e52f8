// The admin API's operational routes: consistency checks and reports, locks, events.

#include <boost/json/parse.hpp>
#include <cstdint>
#include <boost/json/value.hpp>

#include "consistency/service.h"
#include "common/json_text.h"
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
    return jsonResponse(409, jsonText(body));
  }
  AdminResponse response = jsonResponse(202, jsonText(json::object{{"id", started.id}, {"state", "running"}}));
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
  return jsonResponse(200, jsonText(json::object{{"checks", std::move(checks)}}));
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
  if (fmt == "json") return jsonResponse(200, jsonText(reportToJson(*report)));
  AdminResponse response = jsonResponse(200, fmt == "html" ? renderHtml(*report) : renderMarkdown(*report));
  response.content_type = fmt == "html" ? "text/html; charset=utf-8" : "text/markdown; charset=utf-8";
  return response;
}

namespace {

json::object listingJson(const LockListing& listing) {
  json::array locks;
  for (const auto& entry : listing.locks) locks.push_back(lockEntryJson(entry));
  return json::object{{"locks", std::move(locks)}, {"truncated", listing.truncated}, {"source", listing.source}};
}

// ?repo=R[&pull=N]: the repository is required with a pull, and must not be empty.
std::optional<FieldError> lockQuery(const Target& target, bool pull_required, LockQuery* out) {
  auto repo = target.query.find("repo");
  if (repo == target.query.end() || repo->second.empty()) {
    return FieldError{"repo is required: the repository's full name, as in Project.RepoFullName", "repo"};
  }
  out->repo = repo->second;
  if (target.query.contains("pull") || pull_required) {
    int64_t pull = -1;
    if (auto error = queryInt(target, "pull", 0, INT64_MAX, &pull)) return error;
    if (pull < 0) return FieldError{"pull is required: the pull request's number", "pull"};
    out->pull = pull;
  }
  return std::nullopt;
}

}  // namespace

// Either ?prefix= (every key with the prefix, by scanning) or ?repo=[&pull=] (a repository's or
// a pull's project locks, from enhanced's indexes where enhanced owns the keys).
boost::asio::awaitable<AdminResponse> AdminApi::listLocks(const Target& target) {
  static constexpr std::string_view kAllowed[] = {"prefix", "repo", "pull", "limit"};
  if (auto error = checkQuery(target, kAllowed)) co_return badRequest(*error);
  int64_t limit = 1000;
  if (auto error = queryInt(target, "limit", 1, 100000, &limit)) co_return badRequest(*error);
  auto prefix = target.query.find("prefix");
  const bool by_holder = target.query.contains("repo") || target.query.contains("pull");
  if (by_holder && prefix != target.query.end()) {
    co_return badRequest(FieldError{"prefix cannot be combined with repo or pull", "prefix"});
  }
  Result<LockListing> listing = Status::internal("not listed");
  if (by_holder) {
    LockQuery query;
    if (auto error = lockQuery(target, false, &query)) co_return badRequest(*error);
    auto call = control_.findLocks(std::move(query), static_cast<size_t>(limit));
    listing = co_await std::move(call);
  } else {
    auto call = control_.listLocks(prefix == target.query.end() ? "" : prefix->second, static_cast<size_t>(limit));
    listing = co_await std::move(call);
  }
  if (!listing) co_return jsonResponse(httpStatusFor(listing.status().code()), errorBody(listing.status().message()));
  co_return jsonResponse(200, jsonText(listingJson(*listing)));
}

// DELETE /api/v1/locks?repo=R&pull=N: what Atlantis does for a closed pull request.
boost::asio::awaitable<AdminResponse> AdminApi::unlockPull(const AdminRequest& request, const Target& target) {
  static constexpr std::string_view kAllowed[] = {"repo", "pull"};
  if (auto error = checkQuery(target, kAllowed)) co_return badRequest(*error);
  LockQuery query;
  if (auto error = lockQuery(target, true, &query)) co_return badRequest(*error);
  auto call = control_.unlockPull(query.repo, *query.pull, adminActor(request.peer));
  auto released = co_await std::move(call);
  if (!released) co_return jsonResponse(httpStatusFor(released.status().code()), errorBody(released.status().message()));
  json::object body = listingJson(*released);
  body["released"] = released->locks.size();
  co_return jsonResponse(200, jsonText(body));
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
  co_return jsonResponse(200, jsonText(body));
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
  return jsonResponse(200, jsonText(json::object{{"events", std::move(events)}}));
}

}  // namespace lockshift
