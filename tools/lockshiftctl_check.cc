// Consistency checks through the running proxy: `check` starts one (and with --wait follows it
// to its verdict), `report` shows a stored one.

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <iostream>
#include <thread>

#include "consistency/report.h"
#include "tools/lockshiftctl_cli.h"
#include "tools/lockshiftctl_http.h"
#include "tools/lockshiftctl_output.h"

namespace lockshift::ctl {

namespace json = boost::json;

namespace {

// How often `check --wait` asks for the report while the check runs.
constexpr auto kPollEvery = std::chrono::milliseconds(500);

std::string reportTarget(std::string_view id, std::string_view format) {
  return "/api/v1/consistency/checks/" + percentEncode(id) + "?format=" + std::string(format);
}

Result<Report> parseReport(const ApiResult& r) {
  auto report = reportFromJson(r.body);
  if (!report) return Status::invalidArgument("unexpected report from the admin API: " + report.status().message());
  return report;
}

}  // namespace

int cmdCheck(const Invocation& inv) {
  json::object body{{"repair", inv.has("--repair")}};
  ApiResult started = callApi(inv, "POST", "/api/v1/consistency/checks", json::serialize(body));
  if (started.exit == kExitRefused && started.json.is_object() && started.json.get_object().contains("id")) {
    const std::string running = fieldText(started.json, "id");
    fail(kExitRefused, "follow the running check with: lockshiftctl report " + running);
  }
  if (started.exit != kExitOk) return started.exit;
  const std::string id = fieldText(started.json, "id");
  if (id == "-" || id.empty()) return fail(kExitFailure, "unexpected answer to POST /api/v1/consistency/checks: no id");
  if (!inv.has("--wait")) {
    if (inv.globals.json) {
      printJson(started.json);
    } else {
      std::cout << "started check " << id << "\nfollow it with: lockshiftctl report " << id << "\n";
    }
    return kExitOk;
  }
  Progress progress;
  for (;;) {
    std::this_thread::sleep_for(kPollEvery);
    ApiResult polled = callApi(inv, "GET", reportTarget(id, "json"));
    if (polled.exit != kExitOk) return polled.exit;
    auto report = parseReport(polled);
    if (!report) return fail(kExitFailure, report.status().message());
    if (report->state == "running") {
      progress.update(report->keys_scanned, 0, report->rounds, report->progress);
      continue;
    }
    progress.finish();
    if (inv.globals.json) {
      printJson(polled.json);
    } else {
      printReportSummary(std::cout, *report);
    }
    if (report->state == "failed") return fail(kExitFailure, "check " + id + " failed: " + report->error);
    return exitCodeForVerdict(report->verdict());
  }
}

int cmdReport(const Invocation& inv) {
  const std::string& id = inv.args[0];
  std::string format = inv.value("--format").value_or("");
  if (!format.empty() && !isReportFormat(format)) {
    return usageError(inv, "--format must be json, md or html, not '" + format + "'");
  }
  if (inv.globals.json && !format.empty() && format != "json") {
    return usageError(inv, "--json and --format " + format + " exclude each other");
  }
  if (inv.globals.json) format = "json";
  if (format == "md" || format == "html") {
    ApiResult r = callApi(inv, "GET", reportTarget(id, format), "", /*want_json=*/false);
    if (r.exit != kExitOk) return r.exit;
    std::cout << r.body << (r.body.ends_with('\n') ? "" : "\n");
    return kExitOk;
  }
  ApiResult r = callApi(inv, "GET", reportTarget(id, "json"));
  if (r.exit != kExitOk) return r.exit;
  if (format == "json") {
    printJson(r.json);
    return kExitOk;
  }
  auto report = parseReport(r);
  if (!report) return fail(kExitFailure, report.status().message());
  printReportSummary(std::cout, *report);
  return kExitOk;
}

}  // namespace lockshift::ctl
