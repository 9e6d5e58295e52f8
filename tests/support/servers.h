#pragma once
// Real servers for integration tests, each on a free loopback port in its own temp directory:
// redis-server from Debian, and the lockshift binary built by this tree.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "tests/support/process.h"

namespace lockshift::testing {

struct RedisServerOptions {
  // appendonly with appendfsync always: every acknowledged write survives a SIGKILL.
  bool durable = false;
};

class RedisServer {
 public:
  explicit RedisServer(RedisServerOptions options = {});  // throws if it does not answer within 10 s
  uint16_t port() const { return port_; }
  // It also listens on this Unix domain socket, in its directory.
  std::string unixSocket() const { return dir_.file("redis.sock"); }
  Process& process() { return process_; }
  // Starts it again (after a stop or a kill) on the same port and directory.
  void restart();

 private:
  bool start();
  RedisServerOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  Process process_;
};

struct LockshiftOptions {
  std::string acquire = "strict";  // [migration] acquire
  std::string password;            // written to a password_file when set
  std::string server_extra;        // more [server] lines, e.g. "max_bulk_length = 1024"
  // [server] threads. Tests run two by default, so the hand-offs between threads are exercised;
  // the shipped default (one) is run by the tests that ask for it.
  int threads = 2;
  std::string legacy_extra;        // more [legacy] lines, e.g. "map_size = \"1MiB\""
  // Whole [legacy] / [enhanced] bodies; empty: type = "lmdb" (plus legacy_extra).
  std::string legacy_section;
  std::string enhanced_section;
  std::string migration_extra;     // more [migration] lines, e.g. "phase = \"hybrid\""
  std::string admin_token;         // written to an admin_token_file when set
  // The [consistency] body. By default the rollout gates are off (tests of the data path move
  // the split freely) and nothing is scheduled; tests of the gates set their own.
  std::string consistency_section = "gates = false\ninterval = \"0\"\n";
  // The [fallback] and [shadow] bodies; empty: the defaults.
  std::string fallback_section;
  std::string shadow_section;
};

// "type = \"redis\"\naddress = \"127.0.0.1:<port>\"\ncommand_timeout = \"<command_timeout>\"\n". The
// default of 500 ms finds a stopped server fast; tests that load the machine and count any
// error as a failure give it longer.
std::string redisSection(uint16_t port, std::string_view command_timeout = "500ms");

class LockshiftServer {
 public:
  explicit LockshiftServer(LockshiftOptions options = {});  // throws if it does not come up
  ~LockshiftServer();

  uint16_t port() const { return port_; }
  uint16_t adminPort() const { return admin_port_; }
  const std::string& configPath() const { return config_path_; }
  const std::string& stateDir() const { return state_dir_; }
  // The admin_token_file the config names (written when LockshiftOptions::admin_token is set).
  std::string adminTokenFile() const { return dir_.file("admin-token"); }
  // The [server] password_file the config names (written when LockshiftOptions::password is set).
  std::string passwordFile() const { return dir_.file("password"); }
  std::string log() const;
  Process& process() { return process_; }

  // SIGTERM and wait; returns the exit status.
  int stop();
  // Stops (if running) and starts again on the same port and state directory.
  void restart();
  // The same with changed options (the config is written again from them), as an operator
  // editing the config and restarting would.
  void restart(LockshiftOptions options);

 private:
  void start();

  LockshiftOptions options_;
  TempDir dir_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
  std::string config_path_, state_dir_, log_path_;
  Process process_;
};

}  // namespace lockshift::testing
