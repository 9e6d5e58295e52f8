#pragma once
// Shared set-up of the LmdbStore tests: a fresh environment directory per test, removed after.

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/lmdb_store.h"

namespace lockshift::testing {

// A ProjectLock value as Atlantis writes it.
inline std::string lockJson(int pull, const std::string& user,
                            const std::string& workspace = "default",
                            const std::string& time = "2026-11-21T10:00:00Z") {
  return R"({"Project":{"ProjectName":"","RepoFullName":"acme/infra","Path":"."},"Pull":{"Num":)" +
         std::to_string(pull) + R"(,"BaseRepo":{"FullName":"acme/infra"}},"User":{"Username":")" +
         user + R"(","Teams":null},"Workspace":")" + workspace + R"(","Time":")" + time + R"("})";
}

inline PutRequest putRequest(std::string key, std::string value) {
  PutRequest request;
  request.key = std::move(key);
  request.value = std::move(value);
  return request;
}

inline ScanRequest scanRequest(uint64_t cursor, size_t count, std::string match = "") {
  ScanRequest request;
  request.cursor = cursor;
  request.count = count;
  request.match = std::move(match);
  return request;
}

// Every io_context that awaits a write must outlive the store: the writer thread posts completions
// to it, and a post may still be signalling the io_context just after the handler ran. Tests use
// io_ (destroyed after the store) or close the store before their own io_contexts go.
class LmdbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "lmdb_store_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    options_.path = dir_ + "/env";
    options_.map_size = size_t{64} << 20;
    reopen();
  }

  // In the destructor rather than TearDown(): rapidcheck skips TearDown() for a failing case.
  ~LmdbStoreTest() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Closes the store (if open) and opens it again with options_.
  void reopen() {
    store_.reset();
    auto opened = LmdbStore::open(options_);
    ASSERT_TRUE(opened.isOk()) << opened.status().toString();
    store_ = std::move(opened).value();
  }

  // Runs io_ on this thread until everything spawned on it is done.
  void runIo() {
    io_.restart();
    io_.run();
  }

  // Spawns `fn` on io_; an exception it throws fails the test.
  void spawn(asio::awaitable<void> fn) {
    asio::co_spawn(io_, std::move(fn), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  }

  // Spawns `operation` on io_; its result lands in *out once io_ has run.
  template <typename T>
  void spawnInto(asio::awaitable<T> operation, std::optional<T>* out) {
    auto keep = [](asio::awaitable<T> inner, std::optional<T>* out) -> asio::awaitable<void> {
      out->emplace(co_await std::move(inner));
    };
    spawn(keep(std::move(operation), out));
  }

  // Awaits one operation on io_.
  template <typename T>
  T await(asio::awaitable<T> operation) {
    std::optional<T> result;
    spawnInto(std::move(operation), &result);
    runIo();
    if (!result) {
      ADD_FAILURE() << "operation did not complete";
      return Status::internal("operation did not complete");
    }
    return std::move(*result);
  }

  Result<PutResult> put(std::string key, std::string value, int db = 0) {
    PutRequest request = putRequest(std::move(key), std::move(value));
    request.db = db;
    return await(store_->put(std::move(request)));
  }
  Result<PutResult> put(PutRequest request) { return await(store_->put(std::move(request))); }
  Result<std::optional<std::string>> get(std::string key, int db = 0) {
    return await(store_->get(db, std::move(key)));
  }
  Result<int64_t> del(std::vector<std::string> keys, int db = 0) {
    return await(store_->del(db, std::move(keys)));
  }
  // The value of `key` for comparisons: "(nil)" when absent, "(error: ...)" when the read failed.
  std::string read(std::string key, int db = 0) {
    auto value = get(std::move(key), db);
    if (!value.isOk()) return "(error: " + value.status().toString() + ")";
    return value->has_value() ? **value : "(nil)";
  }
  int64_t count(int db = 0) {
    auto n = await(store_->count(db));
    EXPECT_TRUE(n.isOk()) << n.status().toString();
    return n.isOk() ? n.value() : -1;
  }

  asio::io_context io_;  // declared before store_, so destroyed after it
  std::string dir_;
  LmdbOptions options_;
  std::unique_ptr<LmdbStore> store_;
};

}  // namespace lockshift::testing
