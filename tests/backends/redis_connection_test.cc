// RedisStore's transport against real redis-server processes: AUTH and SELECT, an unreachable
// server, a stopped or killed server, Unix domain sockets, command timeouts, close() with requests in flight,
// pipelining and how requests use the pool's connections.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "backends/redis_store.h"
#include "tests/backends/redis_test_fixture.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {
namespace {

using Clock = std::chrono::steady_clock;
using Futures = std::vector<std::future<std::optional<Result<std::optional<std::string>>>>>;

// Sends SIGCONT when it goes out of scope, so a failed assertion never leaves redis stopped.
class Stopped {
 public:
  explicit Stopped(Process& process) : process_(process) { process_.signal(SIGSTOP); }
  ~Stopped() { process_.signal(SIGCONT); }

 private:
  Process& process_;
};

bool ipv6LoopbackWorks() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return bound;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

class RedisConnectionTest : public RedisStoreTest {
 protected:
  // Pings `target` until its error names `part` (a failure when it never does within the fixture's
  // wait), and returns the last status, which must be kUnavailable.
  Status pingUntilTheErrorSays(RedisStore& target, const std::string& part) {
    Status last;
    EXPECT_TRUE(eventually([&] {
      last = await(target.ping());
      return contains(last.message(), part);
    })) << last.toString();
    EXPECT_EQ(last.code(), ErrorCode::kUnavailable) << last.toString();
    return last;
  }
  // Writes `value` under "k" through `target` and reads it back through it.
  void expectRoundTrip(RedisStore& target, const std::string& value) {
    PutRequest request;
    request.key = "k";
    request.value = value;
    ASSERT_TRUE(await(target.put(request)).isOk());
    auto got = await(target.get(0, "k"));
    ASSERT_TRUE(got.isOk()) << got.status().toString();
    EXPECT_EQ(got->value_or("(nil)"), value);
  }
  Futures startGets(RedisStore& target, int n, const std::string& key = "k") {
    Futures futures;
    for (int i = 0; i < n; ++i) futures.push_back(start(target.get(0, key)));
    return futures;
  }
};

TEST_F(RedisConnectionTest, AuthenticatesAndSelectsTheDatabase) {
  const uint16_t port = freeLoopbackPort();
  CustomRedis secured(port, {"--requirepass", "s3cret"});
  RedisOptions options = optionsFor(port);
  options.password = "s3cret";
  options.db = 3;
  auto store = open(options);
  PutRequest request;
  request.key = "pr/acme/infra/./default/";
  request.value = "in db 3";
  ASSERT_TRUE(await(store->put(request)).isOk());
  EXPECT_EQ(**await(store->get(0, request.key)), "in db 3");
  EXPECT_EQ(await(store->count(0)).value(), 1);

  RespClient raw(port);
  ASSERT_TRUE(isOk(raw.call({"AUTH", "s3cret"})));
  ASSERT_TRUE(isOk(raw.call({"SELECT", "3"})));
  EXPECT_EQ(str(raw.call({"GET", request.key})), "in db 3");
  ASSERT_TRUE(isOk(raw.call({"SELECT", "0"})));
  EXPECT_TRUE(isNil(raw.call({"GET", request.key})));

  options.username = "default";  // the AUTH username password form
  auto named = open(options);
  EXPECT_EQ(**await(named->get(0, request.key)), "in db 3");
}

TEST_F(RedisConnectionTest, WrongOrMissingPasswordIsAClearUnavailableError) {
  const uint16_t port = freeLoopbackPort();
  CustomRedis secured(port, {"--requirepass", "s3cret"});
  for (const char* password : {"wrong", ""}) {
    RedisOptions options = optionsFor(port);
    options.password = password;
    auto store = open(options, false);
    Status last;
    bool explained = eventually([&] {
      last = await(store->ping());
      return contains(last.message(), "AUTH") || contains(last.message(), "auth");
    });
    EXPECT_TRUE(explained) << password << ": " << last.toString();
    EXPECT_EQ(last.code(), ErrorCode::kUnavailable) << last.toString();
    EXPECT_TRUE(contains(last.message(), "redis 127.0.0.1:" + std::to_string(port)));
    EXPECT_EQ(await(store->get(0, "k")).status().code(), ErrorCode::kUnavailable);
  }
}

// A password rotated the way Redis's ACLs allow without downtime: the user takes the new password
// beside the old one, the file gets the new one, then the old one goes and the user's connections
// are closed. The store reconnects with the file's new password, with no restart.
TEST_F(RedisConnectionTest, ARotatedPasswordFileIsUsedFromTheNextConnectionOn) {
  RespClient admin(server().port());
  ASSERT_TRUE(isOk(admin.call({"ACL", "SETUSER", "atlantis", "on", ">first", "~*", "&*", "+@all"})));
  TempDir dir;
  const std::string file = dir.file("redis-password");
  writeFile(file, "first\n");
  RedisOptions options = optionsFor(server().port());
  options.username = "atlantis";
  options.password_file = file;
  options.backoff_initial = 10ms;
  options.backoff_max = 50ms;
  auto store = open(options);
  expectRoundTrip(*store, "with the first password");

  ASSERT_TRUE(isOk(admin.call({"ACL", "SETUSER", "atlantis", ">second", "<first"})));
  writeFile(file, "second\n");
  EXPECT_GT(admin.call({"CLIENT", "KILL", "USER", "atlantis"}).integer, 0);
  Status last;
  EXPECT_TRUE(eventually([&] { return (last = await(store->ping())).isOk(); })) << last.toString();
  expectRoundTrip(*store, "with the second password");

  // A file that cannot be read fails the attempt with the file's name; the next attempt that
  // can read it connects.
  std::filesystem::remove(file);
  EXPECT_GT(admin.call({"CLIENT", "KILL", "USER", "atlantis"}).integer, 0);
  pingUntilTheErrorSays(*store, "password_file: cannot read " + file);
  writeFile(file, "second");
  EXPECT_TRUE(eventually([&] { return (last = await(store->ping())).isOk(); })) << last.toString();
  expectRoundTrip(*store, "after the file came back");
}

TEST_F(RedisConnectionTest, SelectOfAMissingDatabaseIsReported) {
  RedisOptions options = optionsFor(server().port());
  options.db = 99;
  auto store = open(options, false);
  pingUntilTheErrorSays(*store, "SELECT failed");
}

TEST_F(RedisConnectionTest, UnreachableServerFailsFastThenReconnectsByItself) {
  const uint16_t port = freeLoopbackPort();
  RedisOptions options = optionsFor(port);
  options.connect_timeout = 300ms;
  auto store = open(options, false);
  auto began = Clock::now();
  auto failed = await(store->get(0, "k"));
  EXPECT_LT(Clock::now() - began, 1300ms);
  ASSERT_FALSE(failed.isOk());
  EXPECT_EQ(failed.status().code(), ErrorCode::kUnavailable);
  pingUntilTheErrorSays(*store, "cannot connect");

  CustomRedis late(port, {});
  EXPECT_TRUE(eventually([&] { return await(store->ping()).isOk(); }));
  expectRoundTrip(*store, "v");
}

// A client may reach lockshift before its pool has connected (lockshift listens at once): a call
// made while the first connections are still opening waits for them instead of failing.
TEST_F(RedisConnectionTest, CallsRightAfterStartWaitForTheFirstConnection) {
  for (int round = 0; round < 20; ++round) {
    auto store = open(optionsFor(server().port()), false);
    auto got = await(store->get(0, "k"));
    ASSERT_TRUE(got.isOk()) << "round " << round << ": " << got.status().toString();
    auto fresh = open(optionsFor(server().port()), false);
    PutRequest request;
    request.key = "k";
    request.value = "v" + std::to_string(round);
    auto put = await(fresh->put(request));
    ASSERT_TRUE(put.isOk()) << "round " << round << ": " << put.status().toString();
  }
}

TEST_F(RedisConnectionTest, InvalidAddressIsReported) {
  RedisOptions options = optionsFor(6379);
  options.address = "no-port-here";
  auto store = open(options, false);
  Status status = await(store->ping());
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(status.message(), "invalid redis address")) << status.toString();
}

TEST_F(RedisConnectionTest, InvalidUnixSocketAddressIsReported) {
  RedisOptions options = optionsFor(6379);
  options.address = "unix:redis.sock";
  auto store = open(options, false);
  Status status = await(store->ping());
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(status.message(),
                       "invalid redis address 'unix:redis.sock': the socket's path must be absolute"))
      << status.toString();
}

// Every connection of the pool, the handshake included (SELECT), goes over the socket.
TEST_F(RedisConnectionTest, UnixSocketAddressesConnect) {
  RedisOptions options = optionsFor(server().port());
  options.address = "unix:" + server().unixSocket();
  options.db = 2;
  auto store = open(options);
  expectRoundTrip(*store, "over a Unix socket");

  RespClient raw(server().port());
  ASSERT_EQ(str(raw.call({"SELECT", "2"})), "OK");
  EXPECT_EQ(str(raw.call({"GET", "k"})), "over a Unix socket");
  // redis-server names a client of its Unix socket by the socket's path.
  const std::string socket_client = " addr=" + server().unixSocket() + ":0 ";  // not laddr=
  std::string clients;
  EXPECT_TRUE(eventually([&] {
    clients = str(raw.call({"CLIENT", "LIST"}));
    size_t count = 0;
    for (size_t at = clients.find(socket_client); at != std::string::npos; at = clients.find(socket_client, at + 1)) {
      ++count;
    }
    return count == static_cast<size_t>(options.pool_size);
  })) << clients;
}

// A redis-server with no TCP listener (port 0), as one kept to its host is configured.
TEST_F(RedisConnectionTest, ServerListeningOnlyOnItsUnixSocketServes) {
  TempDir dir;
  const std::string socket = dir.file("redis.sock");
  Process redis = Process::spawn({"redis-server", "--port", "0", "--unixsocket", socket, "--save", "", "--appendonly",
                                  "no", "--dir", dir.path()},
                                 dir.file("redis.log"));
  RedisOptions options = optionsFor(6379);
  options.address = "unix:" + socket;
  auto store = open(options);  // waits until it answers PING
  expectRoundTrip(*store, "socket only");
}

TEST_F(RedisConnectionTest, MissingUnixSocketIsAClearUnavailableError) {
  TempDir dir;
  const std::string path = dir.file("absent.sock");
  RedisOptions options = optionsFor(6379);
  options.address = "unix:" + path;
  auto store = open(options, false);
  Status last = pingUntilTheErrorSays(*store, "cannot connect");
  EXPECT_EQ(last.message(), "redis unix:" + path + ": cannot connect to " + path + ": No such file or directory");
}

TEST_F(RedisConnectionTest, HostnamesAreResolved) {
  RedisOptions options = optionsFor(server().port());
  options.address = "localhost:" + std::to_string(server().port());  // ::1 may come first
  auto store = open(options);
  EXPECT_TRUE(await(store->ping()).isOk());
}

TEST_F(RedisConnectionTest, Ipv6AddressesConnect) {
  if (!ipv6LoopbackWorks()) GTEST_SKIP() << "no IPv6 loopback on this machine";
  const uint16_t port = freeLoopbackPort();
  CustomRedis dual(port, {"--bind", "127.0.0.1", "::1"});
  RedisOptions options = optionsFor(port);
  options.address = "[::1]:" + std::to_string(port);
  auto store = open(options);
  PutRequest request;
  request.key = "k";
  request.value = "over IPv6";
  ASSERT_TRUE(await(store->put(request)).isOk());
  RespClient raw(port);
  EXPECT_EQ(str(raw.call({"GET", "k"})), "over IPv6");
}

TEST_F(RedisConnectionTest, LateReplyTimesOutAndClosesTheConnection) {
  RedisOptions options = optionsFor(server().port());
  options.pool_size = 1;
  options.command_timeout = 200ms;
  auto store = open(options);
  {
    Stopped stopped(server().process());
    auto began = Clock::now();
    Futures futures = startGets(*store, 5);
    int timeouts = 0, unavailable = 0;
    for (auto& future : futures) {
      Result<std::optional<std::string>> result = collect(future);
      ASSERT_FALSE(result.isOk());
      timeouts += result.status().code() == ErrorCode::kTimeout;
      unavailable += result.status().code() == ErrorCode::kUnavailable;
    }
    auto elapsed = Clock::now() - began;
    EXPECT_EQ(timeouts, 1);  // the oldest request; the rest share its closed connection
    EXPECT_EQ(unavailable, 4);
    EXPECT_GE(elapsed, 150ms);
    EXPECT_LT(elapsed, 2s);
  }
  EXPECT_TRUE(eventually([&] { return await(store->get(0, "k")).isOk(); }));
}

TEST_F(RedisConnectionTest, ServerThatAcceptsButNeverAnswersIsNotReady) {
  RedisOptions options = optionsFor(server().port());
  options.command_timeout = 200ms;
  std::unique_ptr<RedisStore> store;
  {
    // The kernel still accepts connections for a stopped redis-server: only the handshake
    // shows that nobody answers.
    Stopped stopped(server().process());
    store = open(options, false);
    Status last;
    EXPECT_TRUE(eventually([&] {
      last = await(store->ping(), 1s);
      return contains(last.message(), "got no reply within 200 ms");
    })) << last.toString();
    EXPECT_EQ(last.code(), ErrorCode::kUnavailable);
  }
  EXPECT_TRUE(eventually([&] { return await(store->ping()).isOk(); }));
}

TEST_F(RedisConnectionTest, KilledServerFailsPendingRequestsThenComesBack) {
  const uint16_t port = freeLoopbackPort();
  auto first = std::make_unique<CustomRedis>(port, std::vector<std::string>{});
  auto store = open(optionsFor(port));
  first->process().signal(SIGSTOP);
  Futures futures = startGets(*store, 3);
  auto began = Clock::now();
  first->process().stop(SIGKILL);
  for (auto& future : futures) {
    auto result = collect(future);
    EXPECT_EQ(result.status().code(), ErrorCode::kUnavailable) << result.status().toString();
  }
  EXPECT_LT(Clock::now() - began, 2s);  // well before the 5 s command timeout
  first.reset();
  CustomRedis second(port, {});
  EXPECT_TRUE(eventually([&] { return await(store->ping()).isOk(); }));
}

TEST_F(RedisConnectionTest, CloseFailsRequestsInFlightAndLaterCalls) {
  auto store = open(optionsFor(server().port()));
  Stopped stopped(server().process());
  Futures futures = startGets(*store, 3);
  std::this_thread::sleep_for(50ms);  // let them reach the socket
  store->close();
  for (auto& future : futures) {
    auto result = collect(future, 2s);
    EXPECT_EQ(result.status().code(), ErrorCode::kUnavailable);
  }
  Status after = await(store->ping());
  EXPECT_EQ(after.code(), ErrorCode::kUnavailable);
  EXPECT_TRUE(contains(after.message(), "closed")) << after.toString();
}

TEST_F(RedisConnectionTest, DestroyingTheStoreFailsRequestsInFlight) {
  auto store = open(optionsFor(server().port()));
  Stopped stopped(server().process());
  Futures futures = startGets(*store, 10);
  auto later = store->get(0, "k");  // an awaitable created before, awaited after destruction
  store.reset();
  for (auto& future : futures) {
    EXPECT_EQ(collect(future, 2s).status().code(), ErrorCode::kUnavailable);
  }
  EXPECT_EQ(await(std::move(later)).status().code(), ErrorCode::kUnavailable);
}

TEST_F(RedisConnectionTest, PipelinedRequestsGetTheirOwnReplies) {
  constexpr int kKeys = 2000;
  RespClient raw(server().port());
  std::vector<std::string> mset = {"MSET"};
  for (int i = 0; i < kKeys; ++i) {
    mset.push_back("key:" + std::to_string(i));
    mset.push_back("value:" + std::to_string(i) + std::string(i % 37, 'x'));
  }
  ASSERT_TRUE(isOk(raw.call(mset)));
  RedisStore& pooled = store();  // pool_size 2
  std::vector<std::future<std::optional<Result<std::optional<std::string>>>>> futures;
  for (int i = 0; i < kKeys; ++i)
    futures.push_back(start(pooled.get(0, "key:" + std::to_string(i))));
  for (int i = 0; i < kKeys; ++i) {
    auto value = collect(futures[i]);
    ASSERT_TRUE(value.isOk()) << i << ": " << value.status().toString();
    ASSERT_EQ(value->value_or("(nil)"), "value:" + std::to_string(i) + std::string(i % 37, 'x'));
  }
}

// The lines of CLIENT LIST whose last command was GET: the pool's connections that served one.
std::vector<std::string> getServers(RespClient& raw) {
  std::vector<std::string> lines;
  std::istringstream list(str(raw.call({"CLIENT", "LIST"})));
  for (std::string line; std::getline(list, line);) {
    if (line.find(" cmd=get ") != std::string::npos) lines.push_back(line);
  }
  return lines;
}

std::string field(const std::string& line, const std::string& name) {
  const size_t at = line.find(" " + name + "=");
  if (at == std::string::npos) return "";
  const size_t from = at + name.size() + 2;
  return line.substr(from, line.find(' ', from) - from);
}

// Requests keep to one connection, so one write carries the requests of many sessions; when that
// connection closes, they move on to another.
TEST_F(RedisConnectionTest, RequestsKeepToOneConnectionAndMoveOnWhenItCloses) {
  RedisOptions options = optionsFor(server().port());
  options.pool_size = 4;
  auto pooled = open(options);
  RespClient raw(server().port());
  std::vector<std::string> served;
  auto oneServes = [&] {
    for (int i = 0; i < 8; ++i) {
      if (!await(pooled->get(0, "k")).isOk()) return false;
    }
    served = getServers(raw);
    return served.size() == 1;
  };
  ASSERT_TRUE(eventually(oneServes)) << ::testing::PrintToString(served);
  const std::string first = field(served[0], "addr");
  ASSERT_FALSE(first.empty()) << served[0];
  EXPECT_EQ(raw.call({"CLIENT", "KILL", "ADDR", first}).integer, 1);
  // A request sent before the pool saw the close may fail; later ones go to another connection.
  EXPECT_TRUE(eventually([&] { return oneServes() && field(served[0], "addr") != first; }))
      << ::testing::PrintToString(served);
}

}  // namespace
}  // namespace lockshift::testing
