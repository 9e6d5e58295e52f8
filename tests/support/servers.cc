#include "tests/support/servers.h"

#include <stdexcept>
#include <thread>

#include "tests/support/ports.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {

namespace {

// Waits until the server answers PING with PONG (or NOAUTH, which also proves it is serving).
// A Redis still loading its AOF answers -LOADING: that is waited out too.
bool answersPing(uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!waitForPort(port, timeout)) return false;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      RespClient c(port, std::chrono::seconds(5));
      resp::Value v = c.call({"ping"});
      if (v.str == "PONG" || v.str.rfind("NOAUTH", 0) == 0) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options) : options_(options) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = freeLoopbackPort();
    if (start()) return;
    process_.stop(9);
  }
  throw std::runtime_error("redis-server did not start: " + readFile(dir_.file("redis.log")));
}

bool RedisServer::start() {
  process_ = Process::spawn({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", options_.durable ? "yes" : "no", "--appendfsync", "always", "--dir",
                             dir_.path(), "--protected-mode", "no", "--unixsocket", unixSocket()},
                            dir_.file("redis.log"));
  // The answer must come from this process: another test's server may have taken the port.
  return answersPing(port_, std::chrono::seconds(10)) && listensOn(process_.pid(), port_);
}

void RedisServer::restart() {
  process_.stop();
  if (!start()) throw std::runtime_error("redis-server did not restart: " + readFile(dir_.file("redis.log")));
}

std::string redisSection(uint16_t port, std::string_view command_timeout) {
  return "type = \"redis\"\naddress = \"127.0.0.1:" + std::to_string(port) + "\"\ncommand_timeout = \"" +
         std::string(command_timeout) + "\"\n";
}

LockshiftServer::LockshiftServer(LockshiftOptions options) : options_(std::move(options)) {
  config_path_ = dir_.file("lockshift.toml");
  state_dir_ = dir_.file("state");
  log_path_ = dir_.file("lockshift.log");
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = freeLoopbackPort();
    admin_port_ = freeLoopbackPort();
    try {
      start();
      return;
    } catch (const std::exception&) {
      process_.stop(9);
    }
  }
  throw std::runtime_error("lockshift did not start: " + log());
}

LockshiftServer::~LockshiftServer() { stop(); }

void LockshiftServer::start() {
  std::string password_line;
  if (!options_.password.empty()) {
    writeFile(dir_.file("password"), options_.password + "\n");
    password_line = "password_file = \"" + dir_.file("password") + "\"\n";
  }
  std::string token_line;
  if (!options_.admin_token.empty()) {
    writeFile(dir_.file("admin-token"), options_.admin_token + "\n");
    token_line = "admin_token_file = \"" + dir_.file("admin-token") + "\"\n";
  }
  std::string legacy = options_.legacy_section.empty() ? "type = \"lmdb\"\n" + options_.legacy_extra
                                                       : options_.legacy_section;
  std::string enhanced = options_.enhanced_section.empty() ? "type = \"lmdb\"\n" : options_.enhanced_section;
  writeFile(config_path_, "[server]\n"
                          "resp_listen = \"127.0.0.1:" + std::to_string(port_) + "\"\n"
                          "admin_listen = \"127.0.0.1:" + std::to_string(admin_port_) + "\"\n"
                          "state_dir = \"" + state_dir_ + "\"\n"
                          "threads = " + std::to_string(options_.threads) + "\n" + password_line + token_line + options_.server_extra + "\n"
                          "[legacy]\n" + legacy + "\n"
                          "[enhanced]\n" + enhanced + "\n"
                          "[migration]\n"
                          "acquire = \"" + options_.acquire + "\"\n" + options_.migration_extra +
                          "[consistency]\n" + options_.consistency_section + "[fallback]\n" +
                          options_.fallback_section + "[shadow]\n" + options_.shadow_section);
  process_ = Process::spawn({LOCKSHIFT_BINARY, "--config", config_path_}, log_path_);
  if (!answersPing(port_, std::chrono::seconds(15))) throw std::runtime_error("lockshift did not answer");
  // Both ports must be this process's: another test's server may have taken one of them, and
  // would then be the one answering.
  for (uint16_t port : {port_, admin_port_}) {
    bool own = listensOn(process_.pid(), port);
    for (int i = 0; i < 100 && !own && process_.running(); ++i) {  // the admin listener may come a moment later
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      own = listensOn(process_.pid(), port);
    }
    if (!own) throw std::runtime_error("lockshift does not listen on port " + std::to_string(port));
  }
}

std::string LockshiftServer::log() const { return readFile(log_path_); }

int LockshiftServer::stop() { return process_.stop(15, std::chrono::seconds(15)); }

void LockshiftServer::restart() {
  stop();
  start();
}

void LockshiftServer::restart(LockshiftOptions options) {
  stop();
  options_ = std::move(options);
  start();
}

}  // namespace lockshift::testing
