// What ships in configs/ stays usable: every example config passes `lockshift --check-config`,
// the Grafana dashboard is valid JSON of the expected shape, the Prometheus rules define the
// expected alerts, and every lockshift_* metric either file refers to is one a running lockshift
// actually exports.

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <filesystem>
#include <regex>
#include <set>
#include <string>

#include "tests/support/http_client.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

const fs::path kConfigs = fs::path(LOCKSHIFT_SOURCE_DIR) / "configs";
const fs::path kDashboard = kConfigs / "grafana" / "lockshift-dashboard.json";
const fs::path kAlerts = kConfigs / "prometheus" / "lockshift-alerts.yml";

// Metrics the dashboard and alerts may use before lockshift exports them. Empty: every name they
// reference must be exported.
const std::set<std::string> kMetricsAddedLater = {};

std::set<std::string> metricNamesIn(const std::string& text) {
  static const std::regex kName("lockshift_[a-z0-9_]*[a-z0-9]");
  std::set<std::string> names;
  for (std::sregex_iterator it(text.begin(), text.end(), kName), end; it != end; ++it) names.insert(it->str());
  return names;
}

// True if the exposition has a sample of `name` or declares it (# TYPE), so a histogram is found
// by its own name as well as by name_bucket, name_count and name_sum.
// `exposition` starts with a newline so that every line, the first included, follows one.
bool exported(const std::string& exposition, const std::string& name) {
  for (const std::string& line : {"\n" + name + "{", "\n" + name + " ", "\n# TYPE " + name + " "}) {
    if (exposition.find(line) != std::string::npos) return true;
  }
  return false;
}

TEST(Configs, ExampleConfigsPassCheckConfig) {
  std::set<std::string> checked;
  for (const auto& entry : fs::directory_iterator(kConfigs)) {
    if (entry.path().extension() != ".toml") continue;
    const std::string name = entry.path().filename().string();
    auto r = runCommand({LOCKSHIFT_BINARY, "--check-config", entry.path().string()});
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.out;
    checked.insert(name);
  }
  for (const char* expected : {"lockshift.toml", "development.toml", "staging.toml", "production.toml"}) {
    EXPECT_TRUE(checked.count(expected)) << "configs/" << expected << " is missing";
  }
}

TEST(Configs, DashboardIsValidGrafanaJson) {
  boost::system::error_code ec;
  json::value doc = json::parse(readFile(kDashboard.string()), ec);
  ASSERT_FALSE(ec) << kDashboard << ": " << ec.message();
  const json::object& d = doc.as_object();
  EXPECT_GE(d.at("schemaVersion").to_number<int64_t>(), 36);  // Grafana 10's schema
  EXPECT_EQ(d.at("uid").as_string(), "lockshift");
  const json::array& inputs = d.at("__inputs").as_array();
  ASSERT_EQ(inputs.size(), 1u);
  EXPECT_EQ(inputs[0].at("name").as_string(), "DS_PROMETHEUS");
  EXPECT_EQ(inputs[0].at("pluginId").as_string(), "prometheus");

  std::set<int64_t> ids;
  std::set<std::string> titles;
  size_t queries = 0;
  for (const json::value& p : d.at("panels").as_array()) {
    const json::object& panel = p.as_object();
    EXPECT_TRUE(ids.insert(panel.at("id").to_number<int64_t>()).second) << "panel id repeats";
    titles.insert(std::string(panel.at("title").as_string()));
    const json::object& grid = panel.at("gridPos").as_object();
    EXPECT_LE(grid.at("x").to_number<int64_t>() + grid.at("w").to_number<int64_t>(), 24);
    if (panel.at("type").as_string() == "row") continue;
    EXPECT_EQ(panel.at("datasource").at("uid").as_string(), "${DS_PROMETHEUS}") << panel.at("title");
    for (const json::value& t : panel.at("targets").as_array()) {
      EXPECT_EQ(t.at("datasource").at("uid").as_string(), "${DS_PROMETHEUS}");
      EXPECT_NE(t.at("expr").as_string().find("lockshift_"), json::string::npos);
      ++queries;
    }
  }
  EXPECT_GE(queries, 20u);
  for (const char* title : {"Phase", "Traffic split", "Rollback", "Circuit breaker", "Journal depth", "Consistency",
                            "Request rate by command", "Error rate", "p95 latency by command", "Store p95 latency",
                            "Store health", "Shadow divergences"}) {
    EXPECT_TRUE(titles.count(title)) << "no panel titled " << title;
  }
}

TEST(Configs, AlertRulesDefineTheExpectedAlerts) {
  const std::string text = readFile(kAlerts.string());
  ASSERT_EQ(text.rfind("#", 0), 0u);
  EXPECT_NE(text.find("\ngroups:\n"), std::string::npos);
  std::set<std::string> alerts;
  static const std::regex kAlert(R"(\n\s*- alert: (\w+)\n)");
  for (std::sregex_iterator it(text.begin(), text.end(), kAlert), end; it != end; ++it) {
    EXPECT_TRUE(alerts.insert((*it)[1].str()).second) << "alert repeats: " << (*it)[1];
  }
  for (const char* name : {"LockshiftHighErrorRate", "LockshiftHighLatencyP95", "LockshiftBreakerOpen",
                           "LockshiftJournalBacklogGrowing", "LockshiftShadowDivergence",
                           "LockshiftConsistencyReportStale", "LockshiftRollbackActive", "LockshiftStoreDown"}) {
    EXPECT_TRUE(alerts.count(name)) << "no alert " << name;
  }
  // Each rule carries an expression, a duration, a severity and both annotations.
  for (const char* field : {"expr:", "for:", "severity:", "summary:", "description:"}) {
    size_t count = 0;
    for (size_t at = text.find(field); at != std::string::npos; at = text.find(field, at + 1)) ++count;
    EXPECT_EQ(count, alerts.size()) << field;
  }
}

TEST(Configs, EveryReferencedMetricIsExported) {
  std::set<std::string> referenced = metricNamesIn(readFile(kDashboard.string()));
  for (const auto& name : metricNamesIn(readFile(kAlerts.string()))) referenced.insert(name);
  ASSERT_GE(referenced.size(), 20u);

  LockshiftServer server;
  {
    // prometheus-cpp prints a labelled family only once it has a child: make a command, a store
    // call and an error reply happen first.
    RespClient c(server.port());
    ASSERT_TRUE(isOk(c.call({"set", "k", "v"})));
    ASSERT_EQ(str(c.call({"get", "k"})), "v");
    ASSERT_TRUE(c.call({"nosuchcommand"}).isError());
  }
  auto metrics = httpRequest(server.adminPort(), "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);

  for (const auto& name : referenced) {
    if (kMetricsAddedLater.count(name)) continue;
    EXPECT_TRUE(exported("\n" + metrics.body, name))
        << name << " is referenced by configs/ but lockshift does not export it";
  }
}

}  // namespace
}  // namespace lockshift::testing
