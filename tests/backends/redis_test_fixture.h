#pragma once
// Shared set-up of the RedisStore tests: a real redis-server on a free loopback port, an
// io_context run by two fixture threads (as in production, handlers of one connection may run on
// either), and bounded waits for every store call, so a lost reply fails the test instead of
// hanging it. The destructor closes the stores and checks that the io_context then runs out of
// work by itself: nothing of a closed store may be left pending.

#include <gtest/gtest.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "backends/redis_store.h"
#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace lockshift::testing {

using namespace std::chrono_literals;

// A redis-server started with arguments RedisServer has no option for (a password, a given
// port). Throws if the port does not accept connections within 10 s; stops in the destructor.
class CustomRedis {
 public:
  CustomRedis(uint16_t port, const std::vector<std::string>& extra_args);
  Process& process() { return process_; }

 private:
  TempDir dir_;
  Process process_;
};

// Awaits `inner`; optional, so that co_spawn(..., use_future) can hold a Result.
template <typename T>
asio::awaitable<std::optional<T>> intoOptional(asio::awaitable<T> inner) {
  co_return co_await std::move(inner);
}

class RedisStoreTest : public ::testing::Test {
 protected:
  static constexpr auto kWait = 10s;

  RedisStoreTest();
  ~RedisStoreTest() override;

  // The default server, started on first use.
  RedisServer& server();
  RedisOptions optionsFor(uint16_t port) const;
  // Creates a store; with `wait_ready`, waits until it answers PING (ADD_FAILURE after kWait).
  std::unique_ptr<RedisStore> open(RedisOptions options, bool wait_ready = true);
  // store_ on server() with the default options of optionsFor().
  RedisStore& store();

  // Runs `op` on io_ and returns its future.
  template <typename T>
  std::future<std::optional<T>> start(asio::awaitable<T> op) {
    return asio::co_spawn(io_, intoOptional(std::move(op)), asio::use_future);
  }
  // Runs `op` on io_ and waits for it, at most `limit`.
  template <typename T>
  T await(asio::awaitable<T> op, std::chrono::milliseconds limit = kWait) {
    auto future = start(std::move(op));
    return collect(future, limit);
  }
  template <typename T>
  T collect(std::future<std::optional<T>>& future, std::chrono::milliseconds limit = kWait) {
    if (future.wait_for(limit) != std::future_status::ready) {
      ADD_FAILURE() << "a store call did not complete within " << limit.count() << " ms";
      return T(Status::internal("did not complete"));
    }
    return *future.get();
  }
  // Polls `condition` every 20 ms until it holds or `limit` passes.
  static bool eventually(const std::function<bool()>& condition,
                         std::chrono::milliseconds limit = kWait);

  // Short forms on store().
  Result<PutResult> put(const std::string& key, const std::string& value);
  std::string read(const std::string& key);  // the value, "(nil)" or "(error: ...)"

  asio::io_context io_;

 private:
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::vector<std::thread> threads_;
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<RedisStore> store_;
};

inline CustomRedis::CustomRedis(uint16_t port, const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   std::to_string(port),
                                   "--bind",
                                   "127.0.0.1",
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--dir",
                                   dir_.path(),
                                   "--protected-mode",
                                   "no"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = Process::spawn(argv, dir_.file("redis.log"));
  if (!waitForPort(port, 10s) || !listensOn(process_.pid(), port)) {
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port) + ": " +
                             readFile(dir_.file("redis.log")));
  }
}

inline RedisStoreTest::RedisStoreTest() {
  guard_.emplace(io_.get_executor());
  for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { io_.run(); });
}

inline RedisStoreTest::~RedisStoreTest() {
  store_.reset();
  guard_.reset();
  // Closed stores leave nothing behind, so run() returns by itself once their handlers ran.
  if (!eventually([this] { return io_.stopped(); }, 5s)) {
    ADD_FAILURE() << "the io_context still has work after every store was closed";
    io_.stop();
  }
  for (std::thread& thread : threads_) thread.join();
}

inline RedisServer& RedisStoreTest::server() {
  if (!server_) server_ = std::make_unique<RedisServer>();
  return *server_;
}

inline RedisOptions RedisStoreTest::optionsFor(uint16_t port) const {
  RedisOptions options;
  options.address = "127.0.0.1:" + std::to_string(port);
  options.pool_size = 2;
  options.connect_timeout = 1s;
  options.command_timeout = 5s;  // generous: the machine running the tests may be busy
  options.backoff_initial = 20ms;
  options.backoff_max = 200ms;
  return options;
}

inline std::unique_ptr<RedisStore> RedisStoreTest::open(RedisOptions options, bool wait_ready) {
  auto store = RedisStore::create(io_, std::move(options));
  if (wait_ready) {
    bool ready = eventually([&] { return await(store->ping()).isOk(); });
    if (!ready) ADD_FAILURE() << "the store did not become ready";
  }
  return store;
}

inline RedisStore& RedisStoreTest::store() {
  if (!store_) store_ = open(optionsFor(server().port()));
  return *store_;
}

inline bool RedisStoreTest::eventually(const std::function<bool()>& condition,
                                       std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

inline Result<PutResult> RedisStoreTest::put(const std::string& key, const std::string& value) {
  PutRequest request;
  request.key = key;
  request.value = value;
  return await(store().put(std::move(request)));
}

inline std::string RedisStoreTest::read(const std::string& key) {
  auto value = await(store().get(0, key));
  if (!value.isOk()) return "(error: " + value.status().toString() + ")";
  return value->has_value() ? **value : "(nil)";
}

}  // namespace lockshift::testing
