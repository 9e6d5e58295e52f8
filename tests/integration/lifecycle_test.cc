// The binary's life: --check-config, restarts that keep every lock (LMDB durability), graceful
// SIGTERM, a full store answering errors instead of crashing, a store password rotated while
// running, and real clients (redis-cli).

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/atlantis.h"
#include "tests/support/process.h"
#include "tests/support/resp_client.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

TEST(CheckConfig, ShippedConfigIsValid) {
  auto r = runCommand({LOCKSHIFT_BINARY, "--check-config", LOCKSHIFT_SOURCE_DIR "/configs/lockshift.toml"});
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST(CheckConfig, BadConfigPrintsFileLineAndFails) {
  TempDir dir;
  writeFile(dir.file("bad.toml"), "[server]\nthreads = 2\nresp_listn = \"127.0.0.1:1\"\n");
  auto r = runCommand({LOCKSHIFT_BINARY, "--check-config", dir.file("bad.toml")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind(dir.file("bad.toml") + ":3: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("resp_listn"), std::string::npos) << r.out;

  writeFile(dir.file("syntax.toml"), "[server]\nthreads = \n");
  r = runCommand({LOCKSHIFT_BINARY, "--check-config", dir.file("syntax.toml")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out.rfind(dir.file("syntax.toml") + ":2: ", 0), 0u) << r.out;

  r = runCommand({LOCKSHIFT_BINARY, "--check-config", dir.file("missing.toml")});
  EXPECT_NE(r.exit_code, 0);
  r = runCommand({LOCKSHIFT_BINARY, "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
}

// lockshift logs GLIBC_TUNABLES as it runs with it. (/proc/PID/environ cannot tell: glibc cuts
// the variable's original text at each ':' as it reads it.)
TEST(Lifecycle, ServesWithTheMallocCacheSetting) {
  // Started without GLIBC_TUNABLES, it executes itself again with the setting added: the same
  // process (the one the test started), now serving.
  unsetenv("GLIBC_TUNABLES");
  LockshiftServer server;
  RespClient c(server.port());
  EXPECT_EQ(c.call({"PING"}).str, "PONG");
  EXPECT_TRUE(server.process().running());
  const std::string log = server.log();
  EXPECT_NE(log.find("lockshift: glibc tunables glibc.malloc.tcache_count=256\n"), std::string::npos) << log;
  // Once: the process it became did not execute itself again.
  EXPECT_EQ(log.find("glibc tunables"), log.rfind("glibc tunables")) << log;
  // Under its own name, as ps, top and pgrep show it.
  EXPECT_EQ(readFile("/proc/" + std::to_string(server.process().pid()) + "/comm"), "lockshift\n");
}

TEST(Lifecycle, AnOperatorsMallocSettingStands) {
  setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=7", 1);
  LockshiftServer own;
  EXPECT_NE(own.log().find("lockshift: glibc tunables glibc.malloc.tcache_count=7\n"), std::string::npos)
      << own.log();
  // Other tunables are kept, and the setting added after them.
  setenv("GLIBC_TUNABLES", "glibc.malloc.mxfast=64", 1);
  LockshiftServer other;
  unsetenv("GLIBC_TUNABLES");
  EXPECT_NE(other.log().find("lockshift: glibc tunables glibc.malloc.mxfast=64:glibc.malloc.tcache_count=256\n"),
            std::string::npos)
      << other.log();
  RespClient c(other.port());
  EXPECT_EQ(c.call({"PING"}).str, "PONG");
}

// The start-up line names the phase, and the traffic split only where it decides ownership.
TEST(Lifecycle, StartUpLineNamesThePhaseAndTheSplitOnlyInHybrid) {
  for (const auto& [phase, says] : std::vector<std::pair<std::string, std::string>>{
           {"hybrid", "phase hybrid split 30%"}, {"enhanced-only", "phase enhanced-only"}}) {
    LockshiftOptions options;
    options.migration_extra = "phase = \"" + phase + "\"\ntraffic_split = 30\n";
    LockshiftServer server(options);
    EXPECT_NE(server.log().find(", " + says + ", legacy lmdb, enhanced lmdb, 2 network threads\n"), std::string::npos)
        << server.log();
  }
}

TEST(Lifecycle, RestartKeepsEveryLock) {
  LockshiftServer server;
  std::vector<LockSpec> locks;
  {
    RespClient c(server.port());
    AtlantisClient a(c);
    for (int i = 0; i < 50; ++i) {
      locks.push_back(LockSpec{.path = "mod" + std::to_string(i), .project = "p", .pull = i + 1});
      ASSERT_TRUE(a.tryLock(locks.back()).first);
    }
  }
  server.restart();
  RespClient c(server.port());
  AtlantisClient a(c);
  auto listed = a.list();
  EXPECT_EQ(listed.size(), locks.size());
  for (const auto& l : locks) EXPECT_EQ(c.call({"get", lockKey(l)}).str, lockJson(l));
}

// A store password rotated in its file and in Redis needs no restart: the connections Redis
// closes come back with the file's new password, and every lock stays held.
TEST(Lifecycle, ARotatedStorePasswordNeedsNoRestart) {
  RedisServer legacy;
  RespClient admin(legacy.port());
  ASSERT_TRUE(isOk(admin.call({"ACL", "SETUSER", "atlantis", "on", ">first", "~*", "&*", "+@all"})));
  TempDir dir;
  const std::string file = dir.file("legacy-password");
  writeFile(file, "first\n");
  const std::string section =
      redisSection(legacy.port()) + "username = \"atlantis\"\npassword_file = \"" + file + "\"\n";
  LockshiftServer server(LockshiftOptions{.legacy_section = section});
  RespClient c(server.port());
  AtlantisClient a(c);
  const LockSpec before{.path = "before", .project = "p", .pull = 1};
  ASSERT_TRUE(a.tryLock(before).first);

  ASSERT_TRUE(isOk(admin.call({"ACL", "SETUSER", "atlantis", ">second", "<first"})));
  writeFile(file, "second\n");
  EXPECT_GT(admin.call({"CLIENT", "KILL", "USER", "atlantis"}).integer, 0);
  const LockSpec after{.path = "after", .project = "p", .pull = 2};
  // Requests fail while the connections come back, as Atlantis sees any store error.
  std::string why;
  auto take = [&] {
    try {
      return a.tryLock(after).first;
    } catch (const std::exception& e) {
      why = e.what();
      return false;
    }
  };
  bool taken = false;
  for (int i = 0; i < 100 && !(taken = take()); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(taken) << why;
  EXPECT_EQ(a.list().size(), 2u);
  EXPECT_EQ(admin.call({"GET", lockKey(before)}).str, lockJson(before));
  EXPECT_EQ(admin.call({"GET", lockKey(after)}).str, lockJson(after));
}

TEST(Lifecycle, AcknowledgedWritesSurviveSigkill) {
  LockshiftServer server;
  {
    RespClient c(server.port());
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(isOk(c.call({"set", "k" + std::to_string(i), "v"})));
  }
  server.process().stop(9);  // no chance to flush anything
  server.restart();
  RespClient c(server.port());
  EXPECT_EQ(c.call({"dbsize"}).integer, 100);
}

TEST(Lifecycle, SigtermFinishesInFlightPipelineAndExitsCleanly) {
  LockshiftServer server;
  RespClient c(server.port());
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 500; ++i) cmds.push_back({"set", "k" + std::to_string(i), "v"});
  std::string bytes;
  for (const auto& cmd : cmds) resp::encodeCommand(cmd, bytes);
  c.sendRaw(bytes);
  EXPECT_TRUE(isOk(c.readReply()));  // the batch is being served
  server.process().signal(SIGTERM);
  int ok = 1;
  try {
    for (int i = 1; i < 500; ++i) ok += isOk(c.readReply());
  } catch (const std::exception&) {
  }
  // An operator pressing Ctrl-C again, or a supervisor repeating SIGTERM, must not turn the
  // graceful stop into a kill at any moment of it, including while the stores close.
  for (int i = 0; i < 50 && server.process().running(); ++i) {
    server.process().signal(SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(server.stop(), 0) << server.log();
  // Every acknowledged write is there after a restart; unacknowledged ones may or may not be.
  server.restart();
  RespClient d(server.port());
  EXPECT_GE(d.call({"dbsize"}).integer, ok);
}

// A supervisor or a script may send SIGTERM over and over. However the signals fall on the stop
// (in the middle of it, while the stores close, or as the process exits), the stop stays
// graceful: exit status 0, never death by the signal's default action.
TEST(Lifecycle, AStormOfStopSignalsNeverKillsTheProcess) {
  LockshiftServer server;
  for (int round = 0; round < 10; ++round) {
    RespClient c(server.port());
    EXPECT_TRUE(isOk(c.call({"set", "k" + std::to_string(round), "v"})));
    // A signal every ~20 µs (spinning: a sleep would last far longer) until it has exited; the
    // cap only bounds a stop that hangs (~10 s).
    for (int i = 0; i < 500'000 && server.process().running(); ++i) {
      server.process().signal(SIGTERM);
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
      while (std::chrono::steady_clock::now() < until) {
      }
    }
    EXPECT_EQ(server.stop(), 0) << "round " << round << "\n" << server.log();
    server.restart();
  }
  RespClient d(server.port());
  EXPECT_EQ(d.call({"dbsize"}).integer, 10);
}

TEST(Lifecycle, FullStoreAnswersAnErrorAndKeepsServing) {
  LockshiftServer server(LockshiftOptions{.legacy_extra = "map_size = \"256KiB\"\n"});
  RespClient c(server.port());
  std::string value(8 * 1024, 'x');
  std::string error;
  int written = 0;
  for (int i = 0; i < 1000 && error.empty(); ++i) {
    resp::Value v = c.call({"set", "k" + std::to_string(i), value});
    if (v.isError()) {
      error = v.str;
    } else {
      ++written;
    }
  }
  ASSERT_FALSE(error.empty()) << "the 256 KiB map never filled";
  EXPECT_EQ(error.rfind("ERR store full", 0), 0u) << error;
  EXPECT_TRUE(server.process().running());
  EXPECT_EQ(c.call({"get", "k0"}).str, value);  // reads go on
  EXPECT_EQ(c.call({"dbsize"}).integer, written);
  EXPECT_EQ(c.call({"del", "k0", "k1", "k2"}).integer, 3);  // deletes free room
}

// idle_timeout closes a connection that waits for its client's next command that long, and no
// other: not one whose client keeps sending, nor one whose command waited on its store for longer
// than the timeout (the idle time starts when the reply has gone out, not at the last read).
TEST(Lifecycle, IdleTimeoutClosesOnlyIdleConnections) {
  using namespace std::chrono_literals;
  RedisServer legacy;
  LockshiftServer server(LockshiftOptions{.server_extra = "idle_timeout = \"2s\"\n",
                                          .legacy_section = "type = \"redis\"\naddress = \"127.0.0.1:" +
                                                            std::to_string(legacy.port()) +
                                                            "\"\ncommand_timeout = \"20s\"\n"});
  RespClient idle(server.port());
  RespClient busy(server.port());
  RespClient slow(server.port());
  for (RespClient* c : {&idle, &busy, &slow}) ASSERT_EQ(c->call({"PING"}).str, "PONG");

  // `slow` waits 3.5 s for a GET on the frozen legacy while `busy` sends a PING every 250 ms.
  legacy.process().signal(SIGSTOP);
  std::thread thaw([&legacy] {
    std::this_thread::sleep_for(3500ms);
    legacy.process().signal(SIGCONT);
  });
  int pongs = 0;
  std::string busy_error;
  std::thread pinger([&busy, &pongs, &busy_error] {
    try {
      for (int i = 0; i < 14; ++i) {
        std::this_thread::sleep_for(250ms);
        if (busy.call({"PING"}).str == "PONG") ++pongs;
      }
    } catch (const std::exception& e) {
      busy_error = e.what();
    }
  });
  const auto asked = std::chrono::steady_clock::now();
  resp::Value got;
  std::string slow_error;
  try {
    got = slow.call({"GET", "nothing"});
  } catch (const std::exception& e) {
    slow_error = e.what();
  }
  const auto waited = std::chrono::steady_clock::now() - asked;
  thaw.join();
  pinger.join();
  ASSERT_EQ(slow_error, "");
  EXPECT_EQ(busy_error, "");
  EXPECT_TRUE(isNil(got)) << str(got);
  EXPECT_GE(waited, 3s);
  EXPECT_EQ(pongs, 14);

  // A second later the watchdog (once a second) has looked at `slow` at least once: it has been
  // waiting for its client for one second, which is not two.
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(slow.call({"PING"}).str, "PONG");
  EXPECT_EQ(busy.call({"PING"}).str, "PONG");
  EXPECT_TRUE(idle.closedByServer(3s));
}

TEST(RedisCli, WorksAgainstLockshift) {
  LockshiftServer server;
  const std::string port = std::to_string(server.port());
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{"redis-cli", "-h", "127.0.0.1", "-p", port};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv);
  };
  EXPECT_EQ(cli({"ping"}).out, "PONG\n");
  EXPECT_EQ(cli({"set", "pr/group/sub group/repo/./default/", R"({"Project":{"RepoFullName":"group/sub group/repo","Path":"."},"Pull":{"Num":3},"Workspace":"default"})"}).out, "OK\n");
  EXPECT_EQ(cli({"set", "global/apply/lock", "x"}).out, "OK\n");
  EXPECT_EQ(cli({"dbsize"}).out, "2\n");
  EXPECT_EQ(cli({"--scan", "--pattern", "pr/*"}).out, "pr/group/sub group/repo/./default/\n");
  EXPECT_EQ(cli({"get", "global/apply/lock"}).out, "x\n");
  EXPECT_NE(cli({"info", "keyspace"}).out.find("db0:keys=2,expires=0,avg_ttl=0"), std::string::npos);
  EXPECT_NE(cli({"info"}).out.find("loading:0"), std::string::npos);
  EXPECT_EQ(cli({"exists", "global/apply/lock", "nope", "global/apply/lock"}).out, "2\n");
  EXPECT_EQ(cli({"del", "global/apply/lock"}).out, "1\n");
  // Interactive mode: redis-cli asks COMMAND DOCS first, then runs lines from stdin.
  auto interactive = runCommand({"redis-cli", "-h", "127.0.0.1", "-p", port}, "ping\nget nothing\n");
  EXPECT_NE(interactive.out.find("PONG"), std::string::npos) << interactive.out;
  // redis-cli --pipe: a mass insert with one reply per command.
  std::string pipe_input;
  for (int i = 0; i < 1000; ++i) resp::encodeCommand({"set", "bulk:" + std::to_string(i), "v"}, pipe_input);
  auto piped = runCommand({"redis-cli", "-h", "127.0.0.1", "-p", port, "--pipe"}, pipe_input);
  EXPECT_NE(piped.out.find("errors: 0, replies: 1000"), std::string::npos) << piped.out;
}

TEST(Inline, TelnetStyleCommands) {
  LockshiftServer server;
  RespClient c(server.port());
  c.sendRaw("PING\r\nSET greeting \"hello world\"\r\n\r\nGET greeting\nECHO 'it\\'s'\r\n");
  EXPECT_EQ(c.readReply().str, "PONG");
  EXPECT_TRUE(isOk(c.readReply()));
  EXPECT_EQ(c.readReply().str, "hello world");
  EXPECT_EQ(c.readReply().str, "it's");
}

}  // namespace
}  // namespace lockshift::testing
