// lockshiftctl, the operator CLI, run as a real binary against the real lockshift binary: every
// command through the admin API, the exit codes its --help documents, and the offline `diff`
// straight against the stores of a stopped proxy.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "tests/support/atlantis.h"
#include "tests/support/enhanced_redis.h"
#include "tests/support/http_client.h"
#include "tests/support/ports.h"
#include "tests/support/servers.h"

extern char** environ;

namespace lockshift::testing {
namespace {

namespace json = boost::json;

struct Ctl {
  int code = -1;
  std::string out, err;
};

// Runs lockshiftctl with stdout and stderr kept apart (runCommand merges them), stdin from
// /dev/null, and the caller's $LOCKSHIFT_ADMIN / $LOCKSHIFT_TOKEN_FILE replaced by `env`.
Ctl ctl(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  std::vector<std::string> argv{LOCKSHIFTCTL_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> envs;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var(*e);
    if (!var.starts_with("LOCKSHIFT_ADMIN=") && !var.starts_with("LOCKSHIFT_TOKEN_FILE=")) envs.emplace_back(var);
  }
  envs.insert(envs.end(), env.begin(), env.end());
  auto cStrings = [](std::vector<std::string>& v) {
    std::vector<char*> out;
    for (auto& s : v) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
  };
  auto c_argv = cStrings(argv);
  auto c_env = cStrings(envs);
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  for (int fd : {out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) posix_spawn_file_actions_addclose(&actions, fd);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, c_argv[0], &actions, nullptr, c_argv.data(), c_env.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) throw std::runtime_error(std::string("cannot start lockshiftctl: ") + std::strerror(rc));
  Ctl result;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int open = 2;
  while (open > 0 && std::chrono::steady_clock::now() < deadline) {
    if (::poll(fds, 2, 1000) <= 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  if (open > 0) ::kill(pid, SIGKILL);
  for (const auto& fd : fds) {
    if (fd.fd >= 0) ::close(fd.fd);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Valid JSON on stdout (a failed parse fails the test and returns null).
json::value parsed(const Ctl& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.out, ec);
  EXPECT_FALSE(ec) << "stdout is not JSON: " << r.out;
  return v;
}

const std::string kToken = "ctl-test-token";

// A running lockshift whose admin API needs kToken, and the flags that reach it.
class LockshiftctlAdmin : public ::testing::Test {
 protected:
  // Gates on (forward moves need a clean report unless forced), nothing scheduled. The token
  // file ends in CR LF: only the first line, without its line ending, is the token.
  LockshiftctlAdmin()
      : server_(LockshiftOptions{.admin_token = kToken, .consistency_section = "gates = true\ninterval = \"0\"\n"}) {
    writeFile(dir_.file("token"), kToken + "\r\n");
  }
  std::string adminUrl() const { return "http://127.0.0.1:" + std::to_string(server_.adminPort()); }
  Ctl run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--admin", adminUrl(), "--token-file", dir_.file("token")});
    return ctl(args);
  }
  json::object status() {
    Ctl r = run({"--json", "status"});
    EXPECT_EQ(r.code, 0) << r.err;
    json::value v = parsed(r);
    return v.is_object() ? v.as_object() : json::object();
  }

  TempDir dir_;
  LockshiftServer server_;
};

// A Redis store whose user may not run CLIENT INFO cannot fence commands left unanswered
// (backends/redis_fences.h): lockshift serves on, and says so on stderr, in status and in
// `lockshiftctl status`.
TEST(LockshiftctlStatus, AStoreThatCannotFenceIsAWarning) {
  RedisServer legacy;
  RespClient raw(legacy.port());
  ASSERT_EQ(raw.call({"ACL", "SETUSER", "noinfo", "on", ">pw", "~*", "&*", "+@all", "-client|info"}).str, "OK");
  TempDir dir;
  writeFile(dir.file("legacy-password"), "pw\n");
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()) + "username = \"noinfo\"\n" +
                                                        "password_file = \"" + dir.file("legacy-password") + "\"\n"});
  RespClient c(ls.port());
  EXPECT_EQ(c.call({"SET", "k", "v"}).str, "OK");
  const std::string expected = "commands left unanswered are not fenced off (CLIENT INFO failed: NOPERM";
  auto status = json::parse(httpRequest(ls.adminPort(), "GET", "/api/v1/status").body).as_object();
  const std::string warning(status["stores"].as_object()["legacy"].as_object()["warning"].as_string());
  EXPECT_NE(warning.find(expected), std::string::npos) << warning;
  EXPECT_EQ(status["stores"].as_object()["enhanced"].as_object()["warning"].as_string(), "");
  Ctl r = ctl({"--admin", "http://127.0.0.1:" + std::to_string(ls.adminPort()), "status"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "redis, up; WARNING: " + expected)) << r.out;
  EXPECT_TRUE(contains(ls.log(), "cannot be fenced off")) << ls.log();
}

TEST(LockshiftctlCli, HelpForTheToolAndEveryCommand) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--help"}, {"-h"}, {"help"}}) {
    Ctl r = ctl(args);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(contains(r.out, "usage: lockshiftctl")) << r.out;
    EXPECT_TRUE(contains(r.out, "Exit codes")) << r.out;
    EXPECT_TRUE(contains(r.out, "4  divergent")) << r.out;
  }
  for (std::string cmd :
       {"status", "phase", "split", "rollback", "check", "report", "locks", "unlock", "events", "diff"}) {
    EXPECT_TRUE(contains(ctl({"--help"}).out, "\n  " + cmd + " ")) << cmd;
    Ctl r = ctl({cmd, "--help"});
    EXPECT_EQ(r.code, 0) << cmd << ": " << r.err;
    EXPECT_EQ(r.out.rfind("usage: lockshiftctl " + cmd, 0), 0u) << r.out;
    EXPECT_EQ(ctl({"help", cmd}).out, r.out);
  }
  Ctl none = ctl({});
  EXPECT_EQ(none.code, 2);
  EXPECT_TRUE(contains(none.err, "usage: lockshiftctl")) << none.err;
}

TEST(LockshiftctlCli, UsageErrorsExit2AndNameTheProblem) {
  // Values are checked before anything is sent, so no server is needed.
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(freeLoopbackPort());
  struct Case {
    std::vector<std::string> args;
    std::string named;
  };
  for (const auto& c : std::vector<Case>{
           {{"frobnicate"}, "unknown command 'frobnicate'"},
           {{"status", "--verbose"}, "--verbose"},
           {{"status", "extra"}, "unexpected argument 'extra'"},
           {{"phase", "sideways"}, "unknown phase 'sideways'"},
           {{"phase"}, "missing argument"},
           {{"phase", "hybrid", "--split", "150"}, "--split"},
           {{"split", "abc"}, "'abc'"},
           {{"split", "-1"}, "'-1'"},
           {{"locks", "--limit", "0"}, "--limit"},
           {{"events", "--limit", "many"}, "--limit"},
           {{"unlock", "k", "--db", "x"}, "--db"},
           {{"report", "latest", "--format", "pdf"}, "--format"},
           {{"--json", "report", "latest", "--format", "md"}, "exclude each other"},
           {{"rollback", "--clear", "--reason", "x"}, "exclude each other"},
           {{"rollback", "--reason"}, "--reason needs a value"},
           {{"check", "--wait=yes"}, "--wait takes no value"},
           {{"diff"}, "--config"},
           {{"diff", "--config", "x.toml", "--rounds", "0"}, "--rounds"},
           {{"diff", "--config", "x.toml", "--recheck-delay", "soon"}, "--recheck-delay"},
           {{"--admin", "https://127.0.0.1:9121", "status"}, "only http://"},
           {{"phase", "hybrid", "--split", "10", "--split", "90"}, "--split is given twice"},
           {{"split", "10", "--split=90"}, "unknown flag --split"},
           {{"--admin", "http://127.0.0.1:9121", "--admin", "http://127.0.0.1:9122", "status"},
            "--admin is given twice"},
           {{"--token-file", "a", "--token-file", "b", "status"}, "--token-file is given twice"},
       }) {
    // Cases that name the admin API themselves get no other.
    std::vector<std::string> args;
    if (c.args[0] != "--admin") args = {"--admin", nowhere};
    args.insert(args.end(), c.args.begin(), c.args.end());
    Ctl r = ctl(args);
    EXPECT_EQ(r.code, 2) << c.args[0] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, c.named)) << "wanted '" << c.named << "' in: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(LockshiftctlCli, UnreachableAdminApiExits1) {
  const std::string nowhere = "http://127.0.0.1:" + std::to_string(freeLoopbackPort());
  Ctl r = ctl({"--admin", nowhere, "status"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "lockshiftctl: cannot reach the admin API at " + nowhere)) << r.err;
  r = ctl({"status"}, {"LOCKSHIFT_ADMIN=" + nowhere});  // the environment names it too
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, nowhere)) << r.err;
  TempDir dir;  // a config whose stores were never created: diff opens nothing and says why
  writeFile(dir.file("c.toml"), "[server]\nstate_dir = \"" + dir.file("state") + "\"\n");
  r = ctl({"diff", "--config", dir.file("c.toml")});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "no legacy store at " + dir.file("state") + "/legacy")) << r.err;
  r = ctl({"diff", "--config", dir.file("missing.toml")});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "missing.toml")) << r.err;
}

TEST_F(LockshiftctlAdmin, StatusAsTextAndAsJson) {
  Ctl r = run({"status"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;
  EXPECT_TRUE(contains(r.out, "phase:")) << r.out;
  EXPECT_TRUE(contains(r.out, "legacy-only")) << r.out;
  EXPECT_TRUE(contains(r.out, "rollback:")) << r.out;
  EXPECT_TRUE(contains(r.out, "lmdb, up")) << r.out;
  EXPECT_FALSE(contains(r.out, "rollback possible")) << "legacy is kept in sync: " << r.out;
  EXPECT_FALSE(contains(r.out, "rollback_refused_because")) << r.out;
  json::object s = status();
  EXPECT_EQ(s["phase"], "legacy-only");
  // Global flags work after the command too, and the URL may come from the environment.
  r = ctl({"status", "--json"}, {"LOCKSHIFT_ADMIN=" + adminUrl()});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(parsed(r).at("phase"), "legacy-only");
  EXPECT_TRUE(r.err.empty()) << r.err;
}

TEST_F(LockshiftctlAdmin, PhaseAndSplitChangesShowInStatusAndEvents) {
  Ctl r = run({"phase", "hybrid", "--split", "10", "--force"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "phase hybrid, traffic split 10%")) << r.out;
  json::object s = status();
  EXPECT_EQ(s["phase"], "hybrid");
  EXPECT_EQ(s["traffic_split"].to_number<double>(), 10);
  EXPECT_EQ(s["sources"].at("phase"), "state");
  EXPECT_TRUE(contains(run({"status"}).out, "10% (from state)"));
  // Moving back is never gated.
  EXPECT_EQ(run({"split", "2.5"}).code, 0);
  EXPECT_EQ(status()["traffic_split"].to_number<double>(), 2.5);
  // Written as people write it, not as Boost.JSON's exponent form (2.5E0), in the JSON too.
  r = run({"--json", "status"});
  EXPECT_TRUE(contains(r.out, "\"traffic_split\": 2.5,")) << r.out;
  EXPECT_TRUE(contains(r.out, "\"divergence_rate\": 0.0,")) << r.out;
  r = run({"--json", "phase", "legacy-only"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(parsed(r).at("state").at("phase"), "legacy-only");

  r = run({"events"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("TIME", 0), 0u) << r.out;
  EXPECT_TRUE(contains(r.out, "migration.changed")) << r.out;
  EXPECT_TRUE(contains(r.out, "gate.overridden")) << r.out;
  r = run({"--json", "events", "--limit", "3"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::value events = parsed(r);
  ASSERT_EQ(events.at("events").as_array().size(), 3u);
  EXPECT_EQ(events.at("events").as_array().back().at("kind"), "migration.changed");
}

TEST_F(LockshiftctlAdmin, GateRefusesAForwardMoveUntilACheckIsClean) {
  RespClient c(server_.port());
  AtlantisClient a(c);
  ASSERT_TRUE(a.tryLock(LockSpec{}).first);
  Ctl r = run({"phase", "hybrid", "--split", "50"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "lockshiftctl: refused: no finished consistency report")) << r.err;
  r = run({"--json", "phase", "enhanced-only"});  // the refusal as JSON too
  EXPECT_EQ(r.code, 3);
  EXPECT_FALSE(parsed(r).at("refusals").as_array().empty());
  EXPECT_EQ(status()["phase"], "legacy-only");
  // Shadow hands no key to enhanced, so it is not gated; moving there fills enhanced, after
  // which a check can be clean.
  r = run({"phase", "shadow"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = run({"check", "--wait"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, ": clean")) << r.out;
  r = run({"phase", "hybrid", "--split", "50"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(status()["traffic_split"].to_number<double>(), 50);
}

TEST_F(LockshiftctlAdmin, RollbackRaiseClearAndTheFlagFile) {
  Ctl r = run({"rollback", "--reason", "enhanced p99 alert"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "RAISED")) << r.out;
  json::object s = status();
  EXPECT_EQ(s["rollback"].at("raised"), true);
  EXPECT_EQ(s["rollback"].at("reason"), "enhanced p99 alert");
  EXPECT_TRUE(contains(run({"status"}).out, "enhanced p99 alert"));
  r = run({"rollback", "--clear"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(status()["rollback"].at("raised"), false);

  // The flag file raises it and, while it exists, clearing is refused: exit 3, reason printed.
  const std::string flag = server_.stateDir() + "/ROLLBACK";
  writeFile(flag, "admin port down\n");
  for (int i = 0; i < 100 && status()["rollback"].at("raised") != true; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  r = run({"rollback", "--clear"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "lockshiftctl: remove " + flag + " first")) << r.err;
  std::remove(flag.c_str());
  EXPECT_EQ(run({"rollback", "--clear"}).code, 0);
  EXPECT_EQ(status()["rollback"].at("raised"), false);
}

// With keep_legacy_in_sync off once enhanced is in use, status says a rollback is not possible
// and why, and `rollback` fails with the server's reason (exit 3) and raises nothing.
TEST(LockshiftctlDecommission, StatusAndRollbackSayWhyARollbackIsRefused) {
  RedisServer legacy, enhanced;
  LockshiftServer ls(LockshiftOptions{.legacy_section = redisSection(legacy.port()),
                                      .enhanced_section = redisSection(enhanced.port()),
                                      .migration_extra = "keep_legacy_in_sync = false\n"});
  const std::string url = "http://127.0.0.1:" + std::to_string(ls.adminPort());
  Ctl r = ctl({"--admin", url, "status"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(contains(r.out, "rollback possible")) << "enhanced not in use yet: " << r.out;
  ASSERT_EQ(ctl({"--admin", url, "phase", "hybrid", "--split", "50"}).code, 0);
  r = ctl({"--admin", url, "status"});
  EXPECT_TRUE(contains(r.out, "rollback possible")) << r.out;
  EXPECT_TRUE(contains(r.out, "NO: [migration] keep_legacy_in_sync is off")) << r.out;
  r = ctl({"--admin", url, "rollback", "--reason", "test"});
  EXPECT_EQ(r.code, 3) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "rollback refused")) << r.err;
  EXPECT_EQ(json::parse(ctl({"--admin", url, "status", "--json"}).out).at("rollback").at("raised"), false);
}

TEST_F(LockshiftctlAdmin, TokenProblemsExit1WithAClearMessage) {
  const std::string url = adminUrl();
  Ctl r = ctl({"--admin", url, "split", "0"});  // no token at all
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "lockshiftctl: missing bearer token (HTTP 401)")) << r.err;
  EXPECT_TRUE(contains(r.err, "--token-file")) << r.err;
  writeFile(dir_.file("wrong"), "not-the-token\n");
  r = ctl({"--admin", url, "split", "0"}, {"LOCKSHIFT_TOKEN_FILE=" + dir_.file("wrong")});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "lockshiftctl: invalid bearer token (HTTP 403)")) << r.err;
  EXPECT_TRUE(contains(r.err, dir_.file("wrong"))) << r.err;
  r = ctl({"--admin", url, "--token-file", dir_.file("absent"), "split", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, dir_.file("absent"))) << r.err;
  // Reads need no token; the right token from the environment works for changes.
  EXPECT_EQ(ctl({"--admin", url, "status"}).code, 0);
  r = ctl({"--admin", url, "split", "0"}, {"LOCKSHIFT_TOKEN_FILE=" + dir_.file("token")});
  EXPECT_EQ(r.code, 0) << r.err;
}

// lockshift reads its admin_token_file at every change: a token rotated there works at once, with
// no restart, and a file it cannot read refuses changes instead of opening the API.
TEST_F(LockshiftctlAdmin, ATokenRotatedInLockshiftsFileNeedsNoRestart) {
  writeFile(server_.adminTokenFile(), "rotated-token\n");
  Ctl r = run({"split", "0"});  // the token lockshiftctl still has
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "invalid bearer token (HTTP 403)")) << r.err;
  writeFile(dir_.file("token"), "rotated-token\n");
  r = run({"phase", "hybrid", "--split", "10", "--force"});
  EXPECT_EQ(r.code, 0) << r.err;

  std::filesystem::remove(server_.adminTokenFile());
  r = run({"split", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "the admin token file cannot be read; see lockshift's log (HTTP 503)")) << r.err;
  EXPECT_TRUE(contains(server_.log(), "admin_token_file: cannot read " + server_.adminTokenFile())) << server_.log();
  EXPECT_EQ(json::value_to<double>(status().at("traffic_split")), 10.0);
}

TEST_F(LockshiftctlAdmin, LocksListAndUnlock) {
  RespClient c(server_.port());
  AtlantisClient a(c);
  LockSpec infra{.repo = "acme/infra", .path = "envs/prod", .project = "net", .pull = 7, .user = "alice"};
  LockSpec sub{.repo = "group/sub group/repo", .path = "a/b", .project = "x", .pull = 9, .user = "bob"};
  ASSERT_TRUE(a.tryLock(infra).first);
  ASSERT_TRUE(a.tryLock(sub).first);

  Ctl r = run({"locks"});
  EXPECT_EQ(r.code, 0) << r.err;
  std::string header = r.out.substr(0, r.out.find('\n'));
  EXPECT_TRUE(contains(header, "KEY") && contains(header, "OWNER") && contains(header, "PULL") &&
              contains(header, "USER"))
      << r.out;
  EXPECT_TRUE(contains(r.out, lockKey(infra)) && contains(r.out, lockKey(sub))) << r.out;
  EXPECT_TRUE(contains(r.out, "alice") && contains(r.out, "bob") && contains(r.out, "legacy")) << r.out;
  r = run({"locks", "--prefix", "pr/group/sub group/"});
  EXPECT_TRUE(contains(r.out, lockKey(sub)) && !contains(r.out, lockKey(infra))) << r.out;
  r = run({"--json", "locks", "--limit", "1"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::value listing = parsed(r);
  EXPECT_EQ(listing.at("locks").as_array().size(), 1u);
  EXPECT_EQ(listing.at("truncated"), true);

  // A key with spaces and slashes survives the percent-encoding.
  r = run({"unlock", lockKey(sub)});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "unlocked " + lockKey(sub))) << r.out;
  EXPECT_TRUE(isNil(c.call({"get", lockKey(sub)})));
  EXPECT_EQ(c.call({"get", lockKey(infra)}).str, lockJson(infra));
  r = run({"unlock", lockKey(sub)});
  EXPECT_EQ(r.code, 5) << r.err;
  EXPECT_TRUE(contains(r.err, "lockshiftctl: no such lock")) << r.err;
  EXPECT_TRUE(contains(run({"events"}).out, "lock.force_unlocked"));
}

TEST_F(LockshiftctlAdmin, LocksOfARepositoryOrPullAndUnlockingAPull) {
  RespClient c(server_.port());
  AtlantisClient a(c);
  std::vector<LockSpec> pull7, others;
  for (int i = 0; i < 6; ++i) {
    pull7.push_back(LockSpec{.repo = "acme/infra", .path = "m" + std::to_string(i), .pull = 7, .user = "alice"});
    others.push_back(LockSpec{.repo = "acme/infra", .path = "n" + std::to_string(i), .pull = 8, .user = "bob"});
    ASSERT_TRUE(a.tryLock(pull7.back()).first);
    ASSERT_TRUE(a.tryLock(others.back()).first);
  }
  ASSERT_EQ(run({"phase", "enhanced-only", "--force"}).code, 0);  // the embedded enhanced store's index answers

  Ctl r = run({"locks", "--repo", "acme/infra", "--pull", "7"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out.substr(0, r.out.find('\n')), "TOKEN")) << r.out;
  for (const auto& l : pull7) EXPECT_TRUE(contains(r.out, lockKey(l))) << r.out;
  for (const auto& l : others) EXPECT_FALSE(contains(r.out, lockKey(l))) << r.out;
  EXPECT_EQ(parsed(run({"--json", "locks", "--repo", "acme/infra"})).at("source"), "index");

  r = run({"unlock", "--repo", "acme/infra", "--pull", "7"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "6 lock(s) of acme/infra pull #7 released")) << r.out;
  for (const auto& l : pull7) EXPECT_TRUE(isNil(c.call({"get", lockKey(l)}))) << lockKey(l);
  for (const auto& l : others) EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));
  EXPECT_TRUE(contains(run({"events"}).out, "lock.pull_unlocked"));

  // Usage errors name the problem and send nothing.
  for (const auto& [args, named] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"unlock", "--repo", "acme/infra"}, "--repo and --pull"},
           {{"unlock", "k", "--repo", "acme/infra", "--pull", "8"}, "not both"},
           {{"unlock", "--repo", "acme/infra", "--pull", "x"}, "--pull"},
           {{"locks", "--pull", "8"}, "--pull needs --repo"},
           {{"locks", "--prefix", "pr/", "--repo", "acme/infra"}, "cannot be combined"}}) {
    r = run(args);
    EXPECT_EQ(r.code, 2) << args[0] << ": " << r.err;
    EXPECT_TRUE(contains(r.err, named)) << "wanted '" << named << "' in: " << r.err;
  }
  for (const auto& l : others) EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));
}

TEST_F(LockshiftctlAdmin, CheckWaitAndReports) {
  RespClient c(server_.port());
  AtlantisClient a(c);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(a.tryLock(LockSpec{.path = "m" + std::to_string(i), .pull = i + 1}).first);
  ASSERT_EQ(run({"phase", "hybrid", "--split", "0", "--force"}).code, 0);  // fills enhanced

  Ctl r = run({"check", "--wait"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, ": clean")) << r.out;
  EXPECT_TRUE(contains(r.out, "20 keys")) << r.out;
  EXPECT_FALSE(contains(r.err, "\033[")) << "no terminal, no bar: " << r.err;
  r = run({"--json", "check", "--wait"});
  EXPECT_EQ(r.code, 0) << r.err;
  json::value report = parsed(r);
  EXPECT_EQ(report.at("verdict"), "clean");
  const std::string id(report.at("id").as_string());

  r = run({"report", "latest", "--format", "md"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Verdict: clean")) << r.out;
  r = run({"report", id, "--format", "html"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "<html")) << r.out;
  r = run({"report", id});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("report " + id + ": clean", 0), 0u) << r.out;
  EXPECT_EQ(parsed(run({"--json", "report", "latest"})).at("id").as_string(), id);
  r = run({"report", "20000101T000000Z-0000"});
  EXPECT_EQ(r.code, 5);
  EXPECT_TRUE(contains(r.err, "lockshiftctl: no consistency report")) << r.err;

  r = run({"check"});  // without --wait: the id, at once
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "started check ")) << r.out;
}

// Enhanced on a redis-server, so the test can make the stores differ deterministically: it
// writes a different value for one lock straight into that Redis, behind lockshift's back.
// Legacy stays LMDB in the state directory, so `diff` reads one store of each type.
TEST(LockshiftctlDiff, OfflineDiffCleanDivergentAndRepaired) {
  RedisServer redis;
  TempDir dir;
  writeFile(dir.file("token"), kToken + "\n");
  LockshiftServer server(LockshiftOptions{.enhanced_section = redisSection(redis.port()), .admin_token = kToken});
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--admin", "http://127.0.0.1:" + std::to_string(server.adminPort()), "--token-file",
                               dir.file("token")});
    return ctl(args);
  };
  LockSpec held{.repo = "acme/infra", .path = "envs/prod", .project = "net", .pull = 4, .user = "carol"};
  {
    RespClient c(server.port());
    AtlantisClient a(c);
    ASSERT_TRUE(a.tryLock(held).first);
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(a.tryLock(LockSpec{.path = "m" + std::to_string(i), .pull = i + 1}).first);
  }
  // Hybrid at 0 %: enhanced is filled and kept in sync, legacy still owns every key.
  ASSERT_EQ(run({"phase", "hybrid", "--split", "0", "--force"}).code, 0);
  Ctl r = run({"check", "--wait"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;

  EnhancedRedis direct(redis.port());
  LockSpec other = held;
  other.pull = 99;
  direct.set(lockKey(held), lockJson(other));
  r = run({"check", "--wait"});  // online: divergent after every round
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "divergent") && contains(r.out, lockKey(held))) << r.out;

  // Offline repair is refused while lockshift serves the config: it would race its writes.
  r = ctl({"diff", "--config", server.configPath(), "--repair"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_TRUE(contains(r.err, "lockshift is serving")) << r.err;

  ASSERT_EQ(server.stop(), 0);
  r = ctl({"diff", "--config", server.configPath(), "--rounds", "2", "--recheck-delay", "50ms"});
  EXPECT_EQ(r.code, 4) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "divergent") && contains(r.out, "value_mismatch 1")) << r.out;
  EXPECT_TRUE(contains(r.out, lockKey(held))) << r.out;
  r = ctl({"diff", "--config", server.configPath(), "--rounds", "1", "--format", "json"});
  EXPECT_EQ(r.code, 4) << r.err;
  json::value report = parsed(r);
  EXPECT_EQ(report.at("verdict"), "divergent");
  EXPECT_EQ(report.at("mode"), "offline");
  EXPECT_EQ(report.at("divergences").as_array().at(0).at("owner"), "legacy");

  // The repair copies from the owner (legacy, by the state directory's control.json).
  r = ctl({"diff", "--config", server.configPath(), "--rounds", "1", "--repair"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "repaired")) << r.out;
  EXPECT_EQ(direct.get(lockKey(held)), lockJson(held));
  r = ctl({"diff", "--config", server.configPath(), "--format", "md"});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "Verdict: clean")) << r.out;
  r = ctl({"diff", "--config", server.configPath()});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, ": clean")) << r.out;
  EXPECT_TRUE(contains(r.out, "11 keys")) << r.out;
}

}  // namespace
}  // namespace lockshift::testing
