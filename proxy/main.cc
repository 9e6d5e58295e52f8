// lockshift: the RESP proxy in front of Atlantis's lock store.
//   lockshift --config FILE          run
//   lockshift --check-config FILE    validate and exit (non-zero with "file:line: message")
// This is the one place where concrete classes are wired together.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/lmdb_store.h"
#include "proxy/command.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "proxy/resp_server.h"

namespace {

using namespace lockshift;

constexpr const char* kUsage =
    "usage: lockshift --config FILE        run the proxy\n"
    "       lockshift --check-config FILE  validate a config file and exit\n"
    "       lockshift --version\n";

// A secret file holds the secret on its first line; trailing CR/LF are not part of it.
Result<std::string> readSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::invalidArgument("cannot read " + path + ": " + std::strerror(errno));
  std::string secret;
  std::getline(in, secret);
  while (!secret.empty() && (secret.back() == '\r' || secret.back() == '\n')) secret.pop_back();
  if (secret.empty()) return Status::invalidArgument(path + " is empty");
  return secret;
}

// Until the migration engine lands, lockshift serves the legacy-only phase on an LMDB store.
Status checkSupported(const Config& config) {
  if (config.migration.phase != "legacy-only") {
    return Status::invalidArgument(config.source + ": [migration] phase '" + config.migration.phase +
                                   "' is not available in this version; only legacy-only is");
  }
  if (config.legacy.type != "lmdb") {
    return Status::invalidArgument(config.source + ": [legacy] type '" + config.legacy.type +
                                   "' is not available in this version; only lmdb is");
  }
  return Status::ok();
}

int run(const Config& config) {
  if (Status s = checkSupported(config); !s) {
    std::cerr << s.message() << "\n";
    return 1;
  }
  std::error_code fs_ec;
  std::filesystem::create_directories(config.server.state_dir, fs_ec);
  if (fs_ec) {
    std::cerr << "lockshift: cannot create state_dir " << config.server.state_dir << ": " << fs_ec.message() << "\n";
    return 1;
  }
  std::string password;
  if (!config.server.password_file.empty()) {
    auto secret = readSecretFile(config.server.password_file);
    if (!secret) {
      std::cerr << "lockshift: [server] password_file: " << secret.status().message() << "\n";
      return 1;
    }
    password = std::move(secret.value());
  }

  // Declared before the stores: a store posts completions to it, so it must outlive them.
  asio::io_context io;
  LmdbOptions lmdb;
  lmdb.path = config.legacy.path;
  lmdb.map_size = config.legacy.map_size;
  lmdb.sync = config.legacy.sync;
  lmdb.databases = config.server.databases;
  auto legacy = LmdbStore::open(lmdb);
  if (!legacy) {
    std::cerr << "lockshift: cannot open the legacy store: " << legacy.status().toString() << "\n";
    return 1;
  }

  Metrics metrics;
  ServerContext context{.store = **legacy, .store_label = "legacy", .metrics = metrics, .config = config,
                        .password = password};
  RespServer server(io, context);
  if (Status s = server.listen(config.server.resp_listen); !s) {
    std::cerr << "lockshift: " << s.message() << "\n";
    return 1;
  }
  server.start();

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    std::cerr << "lockshift: signal " << sig << ", finishing in-flight requests and stopping\n";
    server.stop();
  });

  int threads = config.server.threads > 0 ? config.server.threads
                                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::cerr << "lockshift: serving RESP on " << config.server.resp_listen << " (port " << server.port()
            << "), phase legacy-only, legacy store lmdb at " << config.legacy.path << ", "
            << threads << " threads\n";

  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  io.run();  // returns once the listener and every session have finished
  for (auto& t : pool) t.join();
  std::cerr << "lockshift: stopped\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() == 1 && args[0] == "--version") {
    std::cout << "lockshift 0.1.0\n";
    return 0;
  }
  if (args.size() != 2 || (args[0] != "--config" && args[0] != "--check-config")) {
    std::cerr << kUsage;
    return 2;
  }
  auto config = lockshift::loadConfig(args[1]);
  if (!config) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  if (args[0] == "--check-config") {
    if (lockshift::Status s = checkSupported(*config); !s) {
      std::cerr << s.message() << "\n";
      return 1;
    }
    std::cout << args[1] << ": ok\n";
    return 0;
  }
  return run(*config);
}
