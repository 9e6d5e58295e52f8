// The admin HTTP API over real loopback sockets: routes and status codes, body validation (bad
// input changes nothing), bearer-token auth, limits, keep-alive, timeouts and stop(). The
// control plane is an in-memory double that records calls, so each answer can be checked
// against exactly what the API asked of it.

#include "proxy/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <vector>

#include "tests/support/process.h"

namespace lockshift {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* kMetricsText = "# TYPE lockshift_up gauge\nlockshift_up 1\n";

// ControlPlane double: records every call and answers with the configured outcome.
class FakeControl : public ControlPlane {
 public:
  struct Call {
    std::string what;  // "change", "raise", "clear"
    MigrationChange change;
    std::string reason;
    std::string actor;
  };

  asio::awaitable<json::object> status() override {
    if (status_throws_) throw std::runtime_error("status exploded");
    co_return json::object{{"phase", "shadow"}, {"journal_depth", 3}};
  }
  asio::awaitable<ChangeOutcome> changeMigration(MigrationChange change,
                                                 std::string actor) override {
    std::lock_guard lock(mu_);
    calls_.push_back({"change", change, "", std::move(actor)});
    co_return outcome_;
  }
  Status raiseRollback(std::string reason, std::string actor) override {
    std::lock_guard lock(mu_);
    calls_.push_back({"raise", {}, std::move(reason), std::move(actor)});
    return rollback_status_;
  }
  Status clearRollback(std::string actor) override {
    std::lock_guard lock(mu_);
    calls_.push_back({"clear", {}, "", std::move(actor)});
    return rollback_status_;
  }
  asio::awaitable<bool> ready() override { co_return ready_.load(); }
  // The operational routes are exercised against the real router by the integration tests.
  asio::awaitable<Result<LockListing>> listLocks(std::string, size_t) override { co_return LockListing{}; }
  asio::awaitable<Result<std::optional<std::string>>> forceUnlock(int, std::string, std::string) override {
    co_return std::optional<std::string>();
  }
  std::vector<std::string> events(size_t) override { return {}; }
  asio::awaitable<Result<LockListing>> findLocks(LockQuery query, size_t limit) override {
    std::lock_guard lock(mu_);
    queries_.push_back("find " + query.repo + (query.pull ? " #" + std::to_string(*query.pull) : "") + " limit " +
                       std::to_string(limit));
    LockListing listing;
    listing.source = "index";
    listing.locks.push_back(LockEntry{.db = 0, .key = "pr/" + query.repo + "/a/default/p", .value = "{}",
                                      .owner = StoreRole::kEnhanced, .token = 42, .acquired_at_unix_ms = 1700000000000});
    co_return listing;
  }
  asio::awaitable<Result<LockListing>> unlockPull(std::string repo, int64_t pull, std::string actor) override {
    std::lock_guard lock(mu_);
    calls_.push_back({"unlock-pull", {}, repo + " #" + std::to_string(pull), std::move(actor)});
    co_return LockListing{};
  }
  std::vector<std::string> queries() const {
    std::lock_guard lock(mu_);
    return queries_;
  }

  std::vector<Call> calls() const {
    std::lock_guard lock(mu_);
    return calls_;
  }
  void setOutcome(ChangeOutcome outcome) {
    std::lock_guard lock(mu_);
    outcome_ = std::move(outcome);
  }
  void setRollbackStatus(Status status) {
    std::lock_guard lock(mu_);
    rollback_status_ = std::move(status);
  }
  std::atomic<bool> ready_{true};
  std::atomic<bool> status_throws_{false};

 private:
  mutable std::mutex mu_;
  std::vector<Call> calls_;
  std::vector<std::string> queries_;
  ChangeOutcome outcome_{.applied = true};
  Status rollback_status_;
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
  json::object object() const { return json::parse(body).as_object(); }
  std::string field(const char* name) const { return std::string(object().at(name).as_string()); }
};

// A blocking HTTP/1.1 client on a POSIX socket; every wait has a deadline.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      throw std::runtime_error("connect failed");
    }
  }
  ~HttpClient() { ::close(fd_); }

  void send(const std::string& bytes) {
    for (size_t sent = 0; sent < bytes.size();) {
      ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      sent += static_cast<size_t>(n);
    }
  }

  // One response (a 100 Continue counts as one); throws if none arrives in 5 s.
  HttpReply read() {
    size_t end;
    while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) fillOrThrow();
    HttpReply reply;
    std::string head = buffer_.substr(0, end + 2);
    reply.status = std::stoi(head.substr(9, 3));
    for (size_t pos = head.find("\r\n") + 2; pos < head.size();) {
      size_t eol = head.find("\r\n", pos);
      std::string line = head.substr(pos, eol - pos);
      std::string name = line.substr(0, line.find(':'));
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      reply.headers[name] = line.substr(line.find(':') + 2);
      pos = eol + 2;
    }
    size_t length =
        reply.headers.count("content-length") ? std::stoul(reply.header("content-length")) : 0;
    while (buffer_.size() < end + 4 + length) fillOrThrow();
    reply.body = buffer_.substr(end + 4, length);
    buffer_.erase(0, end + 4 + length);
    return reply;
  }

  HttpReply call(const std::string& method, const std::string& target, const std::string& body = "",
                 const std::string& headers = "") {
    send(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" + headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    return read();
  }

  // True if the server closes the connection (EOF or reset) within `wait`.
  bool closedByServer(std::chrono::milliseconds wait) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      int got = fill(left);
      if (got < 0) return false;
      if (got == 0) return true;
    }
  }

 private:
  // Bytes read (> 0), 0 on EOF or reset, -1 on timeout.
  int fill(std::chrono::milliseconds wait) {
    pollfd p{fd_, POLLIN, 0};
    int ready;
    while ((ready = ::poll(&p, 1, static_cast<int>(wait.count()))) < 0 && errno == EINTR) {
    }
    if (ready <= 0) return -1;
    char chunk[8192];
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return 0;
    buffer_.append(chunk, static_cast<size_t>(n));
    return static_cast<int>(n);
  }
  void fillOrThrow() {
    int got = fill(5s);
    if (got <= 0) throw std::runtime_error(got == 0 ? "connection closed" : "read timed out");
  }

  int fd_ = -1;
  std::string buffer_;
};

class AdminServerTest : public ::testing::Test {
 protected:
  void start(AdminOptions options = {}) {
    options.listen = "127.0.0.1:0";
    server_ = std::make_unique<AdminServer>(
        io_, control_, nullptr, [] { return std::string(kMetricsText); }, options);
    ASSERT_TRUE(server_->listen().isOk());
    server_->start();
    // Two threads, so each session's strand is what keeps it serial.
    for (auto& runner : runners_) runner = std::thread([this] { io_.run(); });
  }
  void TearDown() override { stopAndJoin(); }
  // stop() must end every session: run() returns only when nothing is left.
  void stopAndJoin() {
    if (server_) server_->stop();
    for (auto& runner : runners_) {
      if (runner.joinable()) runner.join();
    }
  }
  HttpReply call(const std::string& method, const std::string& target, const std::string& body = "",
                 const std::string& headers = "") {
    HttpClient client(server_->port());
    return client.call(method, target, body, headers);
  }
  size_t mutations() const { return control_.calls().size(); }

  asio::io_context io_;
  FakeControl control_;
  std::unique_ptr<AdminServer> server_;
  std::thread runners_[2];
};

TEST_F(AdminServerTest, HealthReadinessAndMetrics) {
  start();
  HttpReply health = call("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.header("content-type"), "application/json");
  EXPECT_EQ(health.field("status"), "ok");

  EXPECT_EQ(call("GET", "/readyz").object().at("ready"), json::value(true));
  control_.ready_ = false;
  HttpReply unready = call("GET", "/readyz");
  EXPECT_EQ(unready.status, 503);
  EXPECT_EQ(unready.object().at("ready"), json::value(false));

  HttpReply metrics = call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("content-type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_EQ(metrics.body, kMetricsText);
}

TEST_F(AdminServerTest, StatusIsTheControlPlaneStatus) {
  start();
  for (const char* target : {"/api/v1/status", "/api/v1/status?verbose=1"}) {
    HttpReply status = call("GET", target);
    EXPECT_EQ(status.status, 200) << target;
    EXPECT_EQ(status.object(), (json::object{{"phase", "shadow"}, {"journal_depth", 3}}));
  }
}

TEST_F(AdminServerTest, MigrationChangeIsAppliedWithTheCallerAsActor) {
  ChangeOutcome outcome;
  outcome.applied = true;
  outcome.state.phase = Phase::kHybrid;
  outcome.state.traffic_split = 12.5;
  outcome.state.epoch = 7;
  control_.setOutcome(outcome);
  start();
  HttpReply reply =
      call("PUT", "/api/v1/migration", R"({"phase":"hybrid","traffic_split":12.5,"force":true})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  json::object body = reply.object();
  EXPECT_EQ(body.at("applied"), json::value(true));
  EXPECT_EQ(body.at("state").at("phase"), json::value("hybrid"));
  EXPECT_EQ(body.at("state").at("traffic_split").to_number<double>(), 12.5);
  // And a fractional one as 12.5, not as Boost.JSON's 1.25E1 (common/json_text.h).
  EXPECT_NE(reply.body.find(R"("traffic_split":12.5,)"), std::string::npos) << reply.body;
  EXPECT_EQ(body.at("state").at("epoch").to_number<uint64_t>(), 7u);
  EXPECT_FALSE(body.contains("refusals"));

  // A whole-number split reads as 50 for people using curl, not as Boost.JSON's 5E1.
  outcome.state.traffic_split = 50;
  control_.setOutcome(outcome);
  HttpReply whole = call("PUT", "/api/v1/migration", R"({"traffic_split":50})");
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_NE(whole.body.find(R"("traffic_split":50,)"), std::string::npos) << whole.body;
  auto calls = control_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].change.phase, Phase::kHybrid);
  EXPECT_EQ(calls[0].change.traffic_split, 12.5);
  EXPECT_TRUE(calls[0].change.force);
  EXPECT_EQ(calls[0].actor, "admin:127.0.0.1");
  EXPECT_FALSE(calls[1].change.phase.has_value());
  EXPECT_EQ(calls[1].change.traffic_split, 50.0);
  EXPECT_FALSE(calls[1].change.force);
}

TEST_F(AdminServerTest, RefusedChangeIs409WithRefusals) {
  ChangeOutcome outcome;
  outcome.refusals = {"consistency report is 2h old (max 30m)", "divergence rate 0.4% > 0.1%"};
  outcome.state.phase = Phase::kShadow;
  control_.setOutcome(outcome);
  start();
  HttpReply reply = call("PUT", "/api/v1/migration", R"({"phase":"hybrid"})");
  ASSERT_EQ(reply.status, 409) << reply.body;
  json::object body = reply.object();
  EXPECT_EQ(body.at("applied"), json::value(false));
  EXPECT_EQ(body.at("refusals"), (json::array{outcome.refusals[0], outcome.refusals[1]}));
  EXPECT_EQ(body.at("state").at("phase"), json::value("shadow"));
}

TEST_F(AdminServerTest, BadMigrationBodiesNameTheFieldAndChangeNothing) {
  start();
  struct Case {
    std::string body;
    std::string field;
  };
  const Case cases[] = {
      {"{", ""},
      {R"({"phase":"shadow"} trailing)", ""},
      {"", ""},
      {"[1]", ""},
      {R"({"force":true})", ""},
      {R"({"phase":"shadow","color":"blue"})", "color"},
      {R"({"traffic_split":101})", "traffic_split"},
      {R"({"traffic_split":-0.5})", "traffic_split"},
      {R"({"traffic_split":"50"})", "traffic_split"},
      {R"({"traffic_split":true})", "traffic_split"},
      {R"({"traffic_split":null})", "traffic_split"},
      {R"({"phase":"sideways"})", "phase"},
      {R"({"phase":2})", "phase"},
      {R"({"phase":"shadow","force":"yes"})", "force"},
      // A field given twice is refused, not settled by the last one, even when spelt with an escape.
      {R"({"phase":"shadow","phase":"hybrid"})", "phase"},
      {R"({"traffic_split":10,"force":false,"traffic_split":100})", "traffic_split"},
      {R"({"phase":"shadow","ph\u0061se":"enhanced-only"})", "phase"},
  };
  for (const auto& c : cases) {
    HttpReply reply = call("PUT", "/api/v1/migration", c.body);
    EXPECT_EQ(reply.status, 400) << c.body;
    EXPECT_EQ(reply.header("content-type"), "application/json");
    EXPECT_EQ(reply.field("field"), c.field) << c.body;
    EXPECT_FALSE(reply.field("error").empty());
  }
  EXPECT_EQ(call("PUT", "/api/v1/migration", "{").field("error").rfind("invalid JSON: ", 0), 0u);
  EXPECT_NE(call("PUT", "/api/v1/migration", R"({"colour":1})").field("error").find("colour"),
            std::string::npos);
  EXPECT_EQ(call("PUT", "/api/v1/migration", R"({"phase":"shadow","phase":"shadow"})").field("error"),
            "field 'phase' is given twice");
  EXPECT_EQ(mutations(), 0u);
}

TEST_F(AdminServerTest, BodyLimitIs64KiB) {
  start();
  std::string at_limit = R"({"phase":"shadow"})";
  at_limit.resize(64 * 1024, ' ');
  EXPECT_EQ(call("PUT", "/api/v1/migration", at_limit).status, 200);
  EXPECT_EQ(mutations(), 1u);

  HttpReply over = call("PUT", "/api/v1/migration", at_limit + " ");
  EXPECT_EQ(over.status, 413);
  EXPECT_EQ(over.field("field"), "");

  // Chunked bodies are counted as they arrive.
  HttpClient chunked(server_->port());
  chunked.send(
      "PUT /api/v1/migration HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10001\r\n" +
      std::string(0x10001, ' ') + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.read().status, 413);
  EXPECT_TRUE(chunked.closedByServer(5s));
  EXPECT_EQ(mutations(), 1u);
}

TEST_F(AdminServerTest, RollbackRaiseAndClear) {
  start();
  HttpReply raised = call("POST", "/api/v1/rollback", R"({"reason":"enhanced p99 at 2s"})");
  ASSERT_EQ(raised.status, 200) << raised.body;
  EXPECT_EQ(raised.object().at("status").at("phase"), json::value("shadow"));
  EXPECT_EQ(call("POST", "/api/v1/rollback").status, 200);  // the reason is optional
  EXPECT_EQ(call("POST", "/api/v1/rollback", "{}").status, 200);
  EXPECT_EQ(call("DELETE", "/api/v1/rollback").status, 200);
  auto calls = control_.calls();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].what, "raise");
  EXPECT_EQ(calls[0].reason, "enhanced p99 at 2s");
  EXPECT_EQ(calls[0].actor, "admin:127.0.0.1");
  EXPECT_EQ(calls[1].reason, "");
  EXPECT_EQ(calls[3].what, "clear");
  EXPECT_EQ(calls[3].actor, "admin:127.0.0.1");
}

TEST_F(AdminServerTest, BadRollbackBodiesChangeNothing) {
  start();
  std::string longest(1024, 'x');
  EXPECT_EQ(call("POST", "/api/v1/rollback", R"({"reason":")" + longest + "\"}").status, 200);
  // 1024 characters of two bytes each are still 1024 characters.
  std::string wide;
  for (int i = 0; i < 1024; ++i) wide += "\xC3\xA9";
  EXPECT_EQ(call("POST", "/api/v1/rollback", R"({"reason":")" + wide + "\"}").status, 200);
  const std::pair<std::string, std::string> cases[] = {
      {R"({"reason":")" + longest + "x\"}", "reason"},
      {R"({"reason":5})", "reason"},
      {R"({"why":"x"})", "why"},
      {"rollback please", ""},
      {R"("just a string")", ""},
      {R"({"reason":"a","reason":"b"})", "reason"},
  };
  for (const auto& [body, field] : cases) {
    HttpReply reply = call("POST", "/api/v1/rollback", body);
    EXPECT_EQ(reply.status, 400) << body;
    EXPECT_EQ(reply.field("field"), field) << body;
  }
  EXPECT_EQ(mutations(), 2u);
}

TEST_F(AdminServerTest, RollbackFailureIsReported) {
  control_.setRollbackStatus(Status::unavailable("cannot write control.json: disk full"));
  start();
  HttpReply reply = call("POST", "/api/v1/rollback", R"({"reason":"x"})");
  EXPECT_EQ(reply.status, 503);
  EXPECT_EQ(reply.field("error"), "cannot write control.json: disk full");
}

TEST_F(AdminServerTest, RollbackRefusedByStateIs409) {
  control_.setRollbackStatus(Status::invalidArgument("remove /state/ROLLBACK first"));
  start();
  HttpReply reply = call("DELETE", "/api/v1/rollback");
  EXPECT_EQ(reply.status, 409);
  EXPECT_EQ(reply.field("error"), "remove /state/ROLLBACK first");
}

TEST_F(AdminServerTest, TokenGuardsMutatingCallsOnly) {
  AdminOptions options;
  options.token = "s3cret-token";
  start(options);
  struct Call {
    std::string method, target, body;
  };
  const Call mutating[] = {{"PUT", "/api/v1/migration", R"({"phase":"shadow"})"},
                           {"POST", "/api/v1/rollback", R"({"reason":"r"})"},
                           {"DELETE", "/api/v1/rollback", ""}};
  for (const auto& c : mutating) {
    for (const char* auth :
         {"", "Authorization: Basic czNjcmV0\r\n", "Authorization: Bearer \r\n"}) {
      HttpReply reply = call(c.method, c.target, c.body, auth);
      EXPECT_EQ(reply.status, 401) << c.method << " " << auth;
      EXPECT_EQ(reply.header("www-authenticate"), "Bearer");
      EXPECT_EQ(reply.field("error"), "missing bearer token");
    }
    for (const char* auth : {"Authorization: Bearer wrong\r\n", "Authorization: Bearer s3cret\r\n",
                             "Authorization: Bearer s3cret-token2\r\n"}) {
      EXPECT_EQ(call(c.method, c.target, c.body, auth).status, 403) << c.method << " " << auth;
    }
    EXPECT_EQ(mutations(), 0u);
  }
  for (const auto& c : mutating) {
    HttpReply reply = call(c.method, c.target, c.body, "Authorization: bearer s3cret-token\r\n");
    EXPECT_EQ(reply.status, 200) << c.method << " " << reply.body;
  }
  EXPECT_EQ(mutations(), 3u);
  for (const char* target : {"/healthz", "/readyz", "/metrics", "/api/v1/status"}) {
    EXPECT_EQ(call("GET", target).status, 200) << target;
  }
}

// A token file is read at every mutating call: a rotated token works at once, the old one no
// longer does, and a file that cannot be read (or is empty) changes nothing rather than opening
// the API.
TEST_F(AdminServerTest, ATokenRotatedInItsFileNeedsNoRestart) {
  testing::TempDir dir;
  const std::string file = dir.file("admin-token");
  testing::writeFile(file, "first-token\n");
  AdminOptions options;
  options.token_file = file;
  start(options);
  auto raise = [&](const char* auth) { return call("POST", "/api/v1/rollback", R"({"reason":"r"})", auth); };
  EXPECT_EQ(raise("Authorization: Bearer first-token\r\n").status, 200);
  EXPECT_EQ(mutations(), 1u);

  testing::writeFile(file, "second-token\n");
  EXPECT_EQ(raise("Authorization: Bearer first-token\r\n").status, 403);
  EXPECT_EQ(raise("").status, 401);
  EXPECT_EQ(mutations(), 1u);
  EXPECT_EQ(raise("Authorization: Bearer second-token\r\n").status, 200);
  EXPECT_EQ(mutations(), 2u);

  for (bool removed : {true, false}) {
    if (removed) {
      std::filesystem::remove(file);
    } else {
      testing::writeFile(file, "\n");
    }
    for (const char* auth : {"", "Authorization: Bearer second-token\r\n", "Authorization: Bearer \r\n"}) {
      HttpReply reply = raise(auth);
      EXPECT_EQ(reply.status, 503) << auth;
      EXPECT_EQ(reply.field("error"), "the admin token file cannot be read; see lockshift's log");
    }
  }
  EXPECT_EQ(mutations(), 2u);
  EXPECT_EQ(call("GET", "/api/v1/status").status, 200);  // reads need no token
}

TEST_F(AdminServerTest, LockQueriesByRepositoryAndPull) {
  start();
  HttpReply found = call("GET", "/api/v1/locks?repo=acme%2Finfra%20net&pull=12&limit=5");
  ASSERT_EQ(found.status, 200) << found.body;
  EXPECT_EQ(found.field("source"), "index");
  const json::object entry = found.object().at("locks").as_array().at(0).as_object();
  EXPECT_EQ(entry.at("token"), json::value(42));
  EXPECT_EQ(entry.at("acquired_at_unix_ms"), json::value(1700000000000));
  EXPECT_EQ(entry.at("owner"), json::value("enhanced"));
  EXPECT_EQ(call("GET", "/api/v1/locks?repo=acme").status, 200);
  EXPECT_EQ(control_.queries(), (std::vector<std::string>{"find acme/infra net #12 limit 5", "find acme limit 1000"}));

  // Bad queries name the parameter and reach nothing.
  struct Bad {
    std::string method, target, field;
  };
  const Bad bad[] = {{"GET", "/api/v1/locks?pull=3", "repo"},
                     {"GET", "/api/v1/locks?repo=", "repo"},
                     {"GET", "/api/v1/locks?repo=a&pull=x", "pull"},
                     {"GET", "/api/v1/locks?repo=a&pull=-1", "pull"},
                     {"GET", "/api/v1/locks?repo=a&prefix=pr/", "prefix"},
                     {"GET", "/api/v1/locks?repo=a&owner=me", "owner"},
                     {"DELETE", "/api/v1/locks?repo=a", "pull"},
                     {"DELETE", "/api/v1/locks?pull=4", "repo"},
                     {"DELETE", "/api/v1/locks?repo=a&pull=99999999999999999999", "pull"},
                     {"DELETE", "/api/v1/locks?repo=a&pull=4&limit=3", "limit"},
                     // Which of two values was meant cannot be told: neither is used.
                     {"GET", "/api/v1/locks?repo=a&repo=b", "repo"},
                     {"DELETE", "/api/v1/locks?repo=a&pull=4&repo=b", "repo"},
                     {"DELETE", "/api/v1/locks?repo=a&pull=4&pull=5", "pull"}};
  for (const auto& b : bad) {
    HttpReply reply = call(b.method, b.target);
    EXPECT_EQ(reply.status, 400) << b.method << " " << b.target << " " << reply.body;
    EXPECT_EQ(reply.field("field"), b.field) << b.target << " " << reply.body;
  }
  EXPECT_EQ(control_.queries().size(), 2u);
  EXPECT_EQ(mutations(), 0u);

  HttpReply released = call("DELETE", "/api/v1/locks?repo=acme%2Finfra&pull=7");
  ASSERT_EQ(released.status, 200) << released.body;
  EXPECT_EQ(released.object().at("released"), json::value(0));
  ASSERT_EQ(mutations(), 1u);
  EXPECT_EQ(control_.calls()[0].what, "unlock-pull");
  EXPECT_EQ(control_.calls()[0].reason, "acme/infra #7");
}

TEST_F(AdminServerTest, UnknownPathIs404AndWrongMethodIs405) {
  start();
  for (const char* target : {"/nope", "/index.html", "/api/v1/status/extra", "/healthz/"}) {
    HttpReply reply = call("GET", target);
    EXPECT_EQ(reply.status, 404) << target;
    EXPECT_EQ(reply.header("content-type"), "application/json");
    EXPECT_FALSE(reply.field("error").empty());
  }
  const std::tuple<std::string, std::string, std::string> cases[] = {
      {"POST", "/healthz", "GET"},
      {"DELETE", "/api/v1/status", "GET"},
      {"GET", "/api/v1/migration", "PUT"},
      {"POST", "/api/v1/migration", "PUT"},
      {"PUT", "/api/v1/rollback", "POST, DELETE"},
  };
  for (const auto& [method, target, allow] : cases) {
    HttpReply reply = call(method, target, "{}");
    EXPECT_EQ(reply.status, 405) << method << " " << target;
    EXPECT_EQ(reply.header("allow"), allow);
  }
  EXPECT_EQ(mutations(), 0u);
}

TEST_F(AdminServerTest, KeepAliveAndConnectionClose) {
  start();
  HttpClient client(server_->port());
  EXPECT_EQ(client.call("GET", "/healthz").status, 200);
  EXPECT_EQ(client.call("PUT", "/api/v1/migration", R"({"phase":"shadow"})").status, 200);
  EXPECT_FALSE(client.closedByServer(100ms));
  // Pipelined: both requests in one write, answered in order.
  client.send("GET /readyz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n");
  EXPECT_EQ(client.read().status, 200);
  EXPECT_EQ(client.read().status, 404);
  HttpReply last = client.call("GET", "/healthz", "", "Connection: close\r\n");
  EXPECT_EQ(last.status, 200);
  EXPECT_EQ(last.header("connection"), "close");
  EXPECT_TRUE(client.closedByServer(5s));
}

TEST_F(AdminServerTest, SilentClientIsClosedAfterTheReadTimeout) {
  AdminOptions options;
  options.read_timeout = 300ms;
  start(options);
  HttpClient silent(server_->port());
  EXPECT_FALSE(silent.closedByServer(100ms));
  EXPECT_TRUE(silent.closedByServer(5s));
  // The timer restarts for each request on a kept-alive connection.
  HttpClient steady(server_->port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(steady.closedByServer(200ms));
    EXPECT_EQ(steady.call("GET", "/healthz").status, 200);
  }
  EXPECT_TRUE(steady.closedByServer(5s));
}

TEST_F(AdminServerTest, StopClosesIdleKeepAliveConnections) {
  start();
  HttpClient idle(server_->port());
  EXPECT_EQ(idle.call("GET", "/healthz").status, 200);
  HttpClient silent(server_->port());
  server_->stop();
  EXPECT_TRUE(idle.closedByServer(2s));
  EXPECT_TRUE(silent.closedByServer(2s));
  stopAndJoin();
}

TEST_F(AdminServerTest, ExceptionInTheControlPlaneIs500AndTheConnectionLives) {
  control_.status_throws_ = true;
  start();
  HttpClient client(server_->port());
  HttpReply reply = client.call("GET", "/api/v1/status");
  EXPECT_EQ(reply.status, 500);
  EXPECT_NE(reply.field("error").find("status exploded"), std::string::npos);
  EXPECT_EQ(client.call("GET", "/healthz").status, 200);
}

TEST_F(AdminServerTest, MalformedOrOversizedRequestsAreAnsweredThenClosed) {
  start();
  HttpClient garbage(server_->port());
  garbage.send("NOT AN HTTP REQUEST\r\n\r\n");
  EXPECT_EQ(garbage.read().status, 400);
  EXPECT_TRUE(garbage.closedByServer(5s));

  HttpClient huge(server_->port());
  huge.send("GET /healthz HTTP/1.1\r\nX-Filler: " + std::string(20000, 'a') + "\r\n\r\n");
  EXPECT_EQ(huge.read().status, 431);
  EXPECT_TRUE(huge.closedByServer(5s));
}

TEST_F(AdminServerTest, ExpectContinueGetsAnInterimResponse) {
  start();
  HttpClient client(server_->port());
  std::string body = R"({"reason":"curl sends Expect for larger bodies"})";
  client.send(
      "POST /api/v1/rollback HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(client.read().status, 100);
  client.send(body);
  EXPECT_EQ(client.read().status, 200);
  ASSERT_EQ(mutations(), 1u);
  EXPECT_EQ(control_.calls()[0].reason, "curl sends Expect for larger bodies");
}

TEST_F(AdminServerTest, ListenFailureNamesTheAddress) {
  start();
  AdminOptions options;
  options.listen = "127.0.0.1:" + std::to_string(server_->port());
  AdminServer second(
      io_, control_, nullptr, [] { return std::string(); }, options);
  Status status = second.listen();
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable);
  EXPECT_NE(status.message().find(options.listen), std::string::npos) << status.message();
}

}  // namespace
}  // namespace lockshift
