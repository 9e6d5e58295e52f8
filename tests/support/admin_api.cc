#include "tests/support/admin_api.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/support/http_client.h"

namespace lockshift::testing {

namespace json = boost::json;

boost::json::object runConsistencyCheck(uint16_t admin_port, bool repair, std::chrono::milliseconds limit) {
  const HttpResponse started =
      httpRequest(admin_port, "POST", "/api/v1/consistency/checks", repair ? R"({"repair":true})" : "");
  if (started.status != 202) {
    ADD_FAILURE() << "the check did not start: " << started.status << " " << started.body;
    return {};
  }
  const std::string id(json::parse(started.body).as_object().at("id").as_string());
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    const HttpResponse r = httpRequest(admin_port, "GET", "/api/v1/consistency/checks/" + id);
    boost::system::error_code ec;
    json::value report = json::parse(r.body, ec);
    if (r.status != 200 || ec || !report.is_object()) {
      ADD_FAILURE() << "check " << id << ": " << r.status << " " << r.body;
      return {};
    }
    if (report.as_object()["state"] != "running") return std::move(report.as_object());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ADD_FAILURE() << "check " << id << " did not finish in " << limit.count() << " ms";
  return {};
}

}  // namespace lockshift::testing
