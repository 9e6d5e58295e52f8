// The status page at GET / rendered by a real browser: Debian's headless Chromium loads it from a
// running lockshift, runs its JavaScript against the admin API, and dumps the resulting DOM.
// The page must show the phase and split lockshift reports, follow a migration change on the
// next load, and render to a screenshot (kept in <build>/test-artifacts/ for people to look at).

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "tests/support/atlantis.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/http_client.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

// Installed by tools/setup.sh (Debian 12 package `chromium`).
constexpr const char* kChromium = "chromium";

bool chromiumInstalled() {
  try {
    return runCommand({kChromium, "--version"}, "", std::chrono::seconds(30)).exit_code == 0;
  } catch (const std::exception&) {
    return false;
  }
}

// Headless Chromium with a private profile. --virtual-time-budget lets the page's timers and
// fetches run for 4 s of virtual time (two polls) before the DOM is dumped or the shot taken.
std::vector<std::string> chromiumArgs(const TempDir& profile, std::vector<std::string> extra, uint16_t admin_port) {
  std::vector<std::string> argv{kChromium,
                                "--headless=new",
                                "--no-sandbox",
                                "--disable-gpu",
                                "--no-first-run",
                                "--log-level=3",  // only fatal messages: stderr shares stdout here
                                "--user-data-dir=" + profile.path(),
                                "--virtual-time-budget=4000"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("http://127.0.0.1:" + std::to_string(admin_port) + "/");
  return argv;
}

// The rendered document: from "<html" to "</html>", leaving out anything the launcher prints.
std::string dumpDom(const TempDir& profile, uint16_t admin_port) {
  auto r = runCommand(chromiumArgs(profile, {"--dump-dom"}, admin_port), "", std::chrono::seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  size_t begin = r.out.find("<html");
  size_t end = r.out.rfind("</html>");
  if (begin == std::string::npos || end == std::string::npos) {
    ADD_FAILURE() << "no document in chromium's output:\n" << r.out;
    return "";
  }
  return r.out.substr(begin, end + 7 - begin);
}

// The text directly inside the element with `id` (the page writes plain text into #phase and
// #split); "<no element #id>" when it is missing.
std::string elementText(const std::string& dom, const std::string& id) {
  size_t at = dom.find("id=\"" + id + "\"");
  if (at == std::string::npos) return "<no element #" + id + ">";
  size_t open_end = dom.find('>', at);
  if (open_end == std::string::npos) return "<no element #" + id + ">";
  size_t close = dom.find('<', open_end + 1);
  return dom.substr(open_end + 1, close - open_end - 1);
}

uint32_t bigEndian32(const std::string& bytes, size_t at) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

std::filesystem::path artifactsDir() {
  return std::filesystem::path(LOCKSHIFT_BINARY).parent_path() / "test-artifacts";
}

class StatusPage : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(chromiumInstalled()) << "chromium is not installed: run tools/setup.sh";
  }
};

TEST_F(StatusPage, IsServedAsSelfContainedHtml) {
  LockshiftServer server;
  auto r = httpRequest(server.adminPort(), "GET", "/");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.headers.find("text/html"), std::string::npos) << r.headers;
  EXPECT_EQ(r.body.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(r.body.find("id=\"phase\""), std::string::npos);
  EXPECT_NE(r.body.find("id=\"split\""), std::string::npos);
  // Nothing is loaded from elsewhere: no external scripts, styles or images.
  for (const char* external : {"src=\"http", "href=\"http", "src=\"//", "href=\"//", "@import"}) {
    EXPECT_EQ(r.body.find(external), std::string::npos) << external;
  }
}

TEST_F(StatusPage, ShowsPhaseAndSplitAndFollowsMigrationChanges) {
  LockshiftServer server;
  TempDir profile;

  std::string dom = dumpDom(profile, server.adminPort());
  EXPECT_EQ(elementText(dom, "phase"), "legacy-only") << dom;
  EXPECT_EQ(elementText(dom, "split"), "0%");

  auto changed =
      httpRequest(server.adminPort(), "PUT", "/api/v1/migration", R"({"phase":"hybrid","traffic_split":40})");
  ASSERT_EQ(changed.status, 200) << changed.body;

  dom = dumpDom(profile, server.adminPort());
  EXPECT_EQ(elementText(dom, "phase"), "hybrid") << dom;
  EXPECT_EQ(elementText(dom, "split"), "40%");
  // Parts that do not exist yet are said to be missing, not left looking like they load.
  EXPECT_NE(elementText(dom, "breaker"), "\u2026");
  EXPECT_NE(elementText(dom, "shadow"), "\u2026");
}

// A check that repaired divergent keys is not shown as clean: the gates wait for a newer clean
// check, and the page says so. A closed breaker's reason is labelled as its last trip's.
TEST_F(StatusPage, ARepairedReportAsksForAConfirmingCheck) {
  RedisServer legacy, enhanced;
  LockshiftServer server(LockshiftOptions{
      .legacy_section = redisSection(legacy.port()),
      .enhanced_section = redisSection(enhanced.port()),
      .consistency_section = "gates = true\ninterval = \"0\"\nrounds = 1\nrecheck_delay = \"50ms\"\n"});
  {
    RespClient c(legacy.port());
    for (int i = 0; i < 5; ++i) {
      LockSpec l{.path = "mod" + std::to_string(i), .pull = 10 + i};
      ASSERT_TRUE(isOk(c.call({"set", lockKey(l), lockJson(l)})));
    }
  }
  ASSERT_EQ(httpRequest(server.adminPort(), "PUT", "/api/v1/migration", R"({"phase":"hybrid","traffic_split":0})").status, 200);
  ASSERT_EQ(EnhancedRedis(enhanced.port()).del(lockKey(LockSpec{.path = "mod0", .pull = 10})), 1);
  auto started = httpRequest(server.adminPort(), "POST", "/api/v1/consistency/checks", R"({"repair":true})");
  ASSERT_EQ(started.status, 202) << started.body;
  std::string verdict;
  for (int i = 0; i < 200; ++i) {
    auto latest = httpRequest(server.adminPort(), "GET", "/api/v1/consistency/checks/latest");
    if (latest.status == 200) {
      auto report = boost::json::parse(latest.body).as_object();
      if (report["state"] != "running") {
        verdict = std::string(report["verdict"].as_string());
        EXPECT_TRUE(report["duration_ms"].is_int64()) << latest.body;
        break;
      }
      EXPECT_TRUE(report["duration_ms"].is_null()) << "a running check has no duration yet: " << latest.body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(verdict, "repaired");

  TempDir profile;
  std::string dom = dumpDom(profile, server.adminPort());
  EXPECT_EQ(elementText(dom, "consistency-verdict"), "repaired: check again to confirm") << dom;
  EXPECT_NE(dom.find("class=\"big warn\" id=\"consistency-verdict\""), std::string::npos) << dom;
  EXPECT_EQ(elementText(dom, "breaker"), "closed");
  EXPECT_NE(dom.find("last trip reason"), std::string::npos) << dom;
}

// Lock contention is an answer, not a failure: while a client keeps trying to take a lock another
// pull holds (each attempt refused with LOCKED), the page's error rate stays at zero.
TEST_F(StatusPage, LeavesLockContentionOutOfTheErrorRate) {
  LockshiftServer server;
  const LockSpec held{.path = "contended", .pull = 1};
  const LockSpec other{.path = "contended", .pull = 2};
  {
    RespClient c(server.port());
    ASSERT_TRUE(isOk(c.call({"set", lockKey(held), lockJson(held)})));
    resp::Value refused = c.call({"set", lockKey(other), lockJson(other)});
    ASSERT_TRUE(refused.isError());
    ASSERT_EQ(refused.str.rfind("LOCKED", 0), 0u) << refused.str;
  }
  std::atomic<bool> stop{false};
  std::atomic<int> refusals{0};
  std::thread contender([&] {
    RespClient c(server.port());
    // Bounded: at most 60 s, normally stopped once the page has been dumped.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!stop && std::chrono::steady_clock::now() < deadline) {
      if (c.call({"set", lockKey(other), lockJson(other)}).isError()) refusals.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  TempDir profile;
  std::string dom = dumpDom(profile, server.adminPort());
  stop = true;
  contender.join();
  ASSERT_GT(refusals.load(), 0);
  EXPECT_NE(elementText(dom, "rate"), "measuring\u2026") << "the page polled metrics only once";
  EXPECT_EQ(elementText(dom, "error-rate"), "0.00") << dom;
}

TEST_F(StatusPage, RendersAScreenshot) {
  LockshiftServer server;
  {
    RespClient c(server.port());
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(isOk(c.call({"set", "k" + std::to_string(i), "v"})));
  }
  TempDir profile;
  std::filesystem::create_directories(artifactsDir());
  const std::string shot = (artifactsDir() / "status_page.png").string();
  std::filesystem::remove(shot);

  auto r = runCommand(chromiumArgs(profile, {"--screenshot=" + shot, "--window-size=1280,900"}, server.adminPort()), "",
                      std::chrono::seconds(60));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_TRUE(std::filesystem::exists(shot)) << r.out;
  std::string png = readFile(shot);
  // A PNG signature, an IHDR of the window's size, and more bytes than a blank page compresses to.
  ASSERT_GE(png.size(), 24u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  EXPECT_EQ(bigEndian32(png, 16), 1280u);
  EXPECT_EQ(bigEndian32(png, 20), 900u);
  EXPECT_GT(png.size(), 20u * 1024) << "the screenshot looks blank: " << shot;
}

}  // namespace
}  // namespace lockshift::testing
