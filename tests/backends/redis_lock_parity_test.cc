// RedisStore and LmdbStore are interchangeable for the router: the same put (NX/XX, SET ... GET,
// strict acquire) and deleteIfOwnedByPull give the same result and leave the same value, over a
// table of existing values and over random operation sequences. Both of RedisStore's layouts are
// checked: Atlantis's plain keys (legacy) and the enhanced records, whose scripts decide strict
// acquire from the holder fields they keep instead of decoding the JSON.

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <stdlib.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "backends/lmdb_store.h"
#include "backends/redis_store.h"
#include "tests/backends/lmdb_test_fixture.h"
#include "tests/backends/redis_test_fixture.h"

namespace lockshift::testing {
namespace {

using Condition = PutRequest::Condition;

// A ProjectLock with every identity field chosen (lockJson() fixes repo, path and project).
std::string lockWith(const std::string& num, const std::string& repo, const std::string& path,
                     const std::string& project, const std::string& workspace,
                     const std::string& user_object) {
  return R"({"Project":{"ProjectName":)" + project + R"(,"RepoFullName":)" + repo + R"(,"Path":)" +
         path + R"(},"Pull":{"Num":)" + num + R"(},"User":)" + user_object + R"(,"Workspace":)" +
         workspace + "}";
}

// Values a key may hold before a put or unlock: locks by the requester (pull 12, alice) and by
// others, and values that strict acquire must treat as unreadable.
std::vector<std::string> existingValues() {
  const std::string alice = R"({"Username":"alice","Teams":null})";
  const std::string repo = "\"acme/infra\"", path = "\".\"", none = "\"\"", ws = "\"default\"";
  return {
      lockJson(12, "alice"),
      lockJson(12, "alice", "default", "2020-01-01T00:00:00Z"),
      lockJson(12, "mallory"),  // same pull and project, another user: the same holder
      lockJson(13, "bob"),
      lockJson(12, "alice", "staging"),
      lockWith("12", "\"acme/other\"", path, none, ws, alice),
      lockWith("12", repo, "\"modules/vpc\"", none, ws, alice),
      lockWith("12", repo, path, "\"vpc\"", ws, alice),
      lockWith("12", "5", path, none, ws, alice),  // a non-string RepoFullName reads as ""
      lockWith("13", repo, path, none, ws, "null"),
      lockWith("13", repo, path, none, ws, R"({"Username":""})"),
      lockWith("13", repo, path, none, ws, R"({"Username":"bj\u00f8rn"})"),
      lockWith("-4", repo, path, none, ws, alice),
      lockWith("9007199254740992", repo, path, none, ws, alice),
      lockWith("\"12\"", repo, path, none, ws, alice),
      lockWith("12.5", repo, path, none, ws, alice),
      lockWith("12", repo, path, none, "7", alice),
      R"({"Pull":{"Num":12},"Workspace":"default"})",
      R"({"Pull":{},"Project":{},"Workspace":"default"})",
      R"({"Pull":"x","Project":{},"Workspace":"default"})",
      "not json",
      "",
      std::string("\0\xff\r\n", 4),
      "[]",
      "\"a string\"",
      R"({"Project":{"RepoFullName":"acme/infra"}} trailing)",
  };
}

// The parameter: true for the records layout, false for plain keys.
class RedisLockParityTest : public RedisStoreTest, public ::testing::WithParamInterface<bool> {
 protected:
  RedisLockParityTest() {
    std::string pattern = ::testing::TempDir() + "redis_parity_XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    LmdbOptions options;
    options.path = dir_ + "/env";
    options.map_size = size_t{64} << 20;
    options.sync = false;
    auto opened = LmdbStore::open(options);
    if (!opened.isOk()) throw std::runtime_error(opened.status().toString());
    lmdb_ = std::move(opened).value();
  }
  ~RedisLockParityTest() override {
    records_.reset();
    lmdb_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The Redis store under test.
  LockStore& redis() {
    if (!GetParam()) return store();
    if (!records_) {
      RedisOptions options = optionsFor(server().port());
      options.records = true;
      options.key_prefix = "parity:";
      records_ = open(options);
    }
    return *records_;
  }

  // Writes `value` (or nothing) to `key` in both stores.
  void seed(const std::string& key, const std::optional<std::string>& value) {
    if (!value) return;
    PutRequest request = putRequest(key, *value);
    ASSERT_TRUE(await(lmdb_->put(request)).isOk());
    ASSERT_TRUE(await(redis().put(request)).isOk());
  }

  std::string readFrom(LockStore& target, const std::string& key) {
    auto value = await(target.get(0, key));
    if (!value.isOk()) return "(error: " + value.status().toString() + ")";
    return value->has_value() ? **value : "(nil)";
  }

  // Runs `request` on both stores; "" when they agree, else what differs.
  std::string comparePut(const PutRequest& request) {
    auto lmdb = await(lmdb_->put(request));
    auto redis = await(this->redis().put(request));
    return describe(lmdb) == describe(redis)
               ? sameValue(request.key)
               : "lmdb " + describe(lmdb) + " | redis " + describe(redis);
  }

  std::string compareUnlock(const std::string& key, const std::string& pull) {
    auto lmdb = await(lmdb_->deleteIfOwnedByPull(0, key, pull));
    auto redis = await(this->redis().deleteIfOwnedByPull(0, key, pull));
    return describe(lmdb) == describe(redis)
               ? sameValue(key)
               : "lmdb " + describe(lmdb) + " | redis " + describe(redis);
  }

  std::string sameValue(const std::string& key) {
    std::string lmdb = readFrom(*lmdb_, key), redis = readFrom(this->redis(), key);
    return lmdb == redis ? "" : "stored: lmdb " + lmdb + " | redis " + redis;
  }

  static std::string describe(const Result<PutResult>& r) {
    if (!r.isOk()) return r.status().toString();
    return "outcome " + std::to_string(static_cast<int>(r->outcome)) + ", previous " +
           r->previous.value_or("(none)") + ", holder " + r->holder;
  }
  static std::string describe(const Result<std::optional<std::string>>& r) {
    if (!r.isOk()) return errorCodeName(r.status().code()) + (": " + r.status().message());
    return r->value_or("(nil)");
  }

  std::string dir_;
  std::unique_ptr<LmdbStore> lmdb_;
  std::unique_ptr<RedisStore> records_;
};

PutRequest requestFor(const std::string& key, Condition condition, bool previous, bool strict) {
  PutRequest request = putRequest(key, lockJson(12, "alice", "default", "2030-01-01T00:00:00Z"));
  request.condition = condition;
  request.return_previous = previous;
  if (strict) request.strict_owner = parseProjectLock(request.value).value();
  return request;
}

TEST_P(RedisLockParityTest, PutGivesTheSameResultsAsLmdb) {
  std::vector<std::optional<std::string>> before = {std::nullopt};
  for (const std::string& value : existingValues()) before.push_back(value);
  int scenario = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    for (Condition condition : {Condition::kAlways, Condition::kIfAbsent, Condition::kIfPresent}) {
      for (bool previous : {false, true}) {
        for (bool strict : {false, true}) {
          const std::string key = "pr/acme/infra/./default/" + std::to_string(++scenario);
          seed(key, before[i]);
          std::string diff = comparePut(requestFor(key, condition, previous, strict));
          EXPECT_EQ(diff, "") << "existing #" << i << " condition " << static_cast<int>(condition)
                              << " previous " << previous << " strict " << strict;
        }
      }
    }
  }
}

TEST_P(RedisLockParityTest, DeleteIfOwnedByPullGivesTheSameResultsAsLmdb) {
  // RedisStore runs Atlantis's script unchanged, which differs from LmdbStore where Atlantis
  // never goes: it fails with a Lua error when the value or its Pull is a JSON number, boolean or
  // null (none here), and it deletes a lock without a numeric Pull.Num when the argument is not a
  // number either (nil == nil). So non-numeric arguments only meet locks with a numeric Num.
  std::vector<std::optional<std::string>> before = {std::nullopt};
  for (const std::string& value : existingValues()) before.push_back(value);
  int scenario = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    std::vector<std::string> pulls = {"12", "13", "12.0", " 12 ", "-4", "0x0c", "1e400"};
    if (i <= 6) pulls.insert(pulls.end(), {"", "twelve"});
    for (const std::string& pull : pulls) {
      const std::string key = "pr/unlock/" + std::to_string(++scenario);
      seed(key, before[i]);
      EXPECT_EQ(compareUnlock(key, pull), "") << "existing #" << i << " pull '" << pull << "'";
    }
  }
}

TEST_P(RedisLockParityTest, RandomOperationSequencesAgree) {
  int case_number = 0;
  bool agreed = rc::check("put and unlock sequences give equal results", [&] {
    const std::string base = "pr/rc/" + std::to_string(++case_number) + "/";
    const auto values = existingValues();
    const int steps = *rc::gen::inRange(1, 25);
    for (int step = 0; step < steps; ++step) {
      const std::string key = base + std::to_string(*rc::gen::inRange(0, 3));
      if (*rc::gen::inRange(0, 4) == 0) {
        std::string pull = *rc::gen::element<std::string>("12", "13", "4", "x");
        RC_ASSERT(compareUnlock(key, pull) == "");
        continue;
      }
      PutRequest request = requestFor(
          key, *rc::gen::element(Condition::kAlways, Condition::kIfAbsent, Condition::kIfPresent),
          *rc::gen::arbitrary<bool>(), *rc::gen::arbitrary<bool>());
      request.value = values[*rc::gen::inRange<size_t>(0, 6)];  // the lock-shaped ones
      if (request.strict_owner) {
        request.strict_owner = parseProjectLock(request.value).value();
      }
      RC_ASSERT(comparePut(request) == "");
    }
  });
  EXPECT_TRUE(agreed);
}

INSTANTIATE_TEST_SUITE_P(Layouts, RedisLockParityTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return std::string(info.param ? "Records" : "PlainKeys");
                         });

}  // namespace
}  // namespace lockshift::testing
