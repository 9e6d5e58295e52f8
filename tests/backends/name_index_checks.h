#pragma once
// The name index (LockStore::keysWithPrefix) checked the same way on every store with records:
// keys whose names are prefixes of one another, that are not JSON, whose JSON names another
// repository, that hold spaces, unicode and 0xFF bytes, and keys the index does not hold; written,
// deleted, unlocked and written again, each answer compared with the keys known to be present.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "backends/lock_store.h"

namespace lockshift::testing {

inline std::string nameIndexLock(const std::string& repo, int64_t pull) {
  return R"({"Project":{"ProjectName":"p","RepoFullName":")" + repo +
         R"(","Path":"."},"Pull":{"Num":)" + std::to_string(pull) +
         R"(},"User":{"Username":"u","Teams":null},"Workspace":"default","Time":"2026-11-22T10:00:00Z"})";
}

// `await` runs an awaitable to completion and returns its result.
template <typename Await>
void checkNameIndexFollowsWrites(LockStore& store, Await await) {
  ASSERT_TRUE(store.hasRecords());
  std::map<std::string, std::string> present;  // std::string orders bytewise, as the index does
  auto put = [&](const std::string& key, const std::string& value) {
    PutRequest request;
    request.key = key;
    request.value = value;
    auto result = await(store.put(request));
    ASSERT_TRUE(result.isOk()) << key << ": " << result.status().toString();
    ASSERT_EQ(result->outcome, PutResult::Outcome::kApplied) << key;
    present[key] = value;
  };
  auto expectPrefix = [&](const std::string& prefix) {
    std::vector<std::string> want;
    for (const auto& [key, value] : present) {
      if (key.starts_with(prefix)) want.push_back(key);
    }
    auto got = await(store.keysWithPrefix(0, prefix));
    ASSERT_TRUE(got.isOk()) << prefix << ": " << got.status().toString();
    EXPECT_EQ(*got, want) << "prefix " << prefix;
  };
  const std::vector<std::string> prefixes = {
      "pr/acme/infra", "pr/acme/infra/", "pr/acme/infra-", "pr/", "pr/acme/\xff", "pr/nobody/",
      "pr/acme/infra/vpc/default/p"};
  auto expectAll = [&] {
    for (const std::string& prefix : prefixes) expectPrefix(prefix);
  };

  put("pr/acme/infra/vpc/default/p", nameIndexLock("acme/infra", 7));
  put("pr/acme/infra-live/db/default/p", nameIndexLock("acme/infra-live", 7));
  put("pr/acme/infra/sub/x/default/p", nameIndexLock("acme/infra/sub", 8));  // GitLab subgroup
  put("pr/acme/infra/old/default", nameIndexLock("acme/infra", 7));          // the old key form
  put("pr/acme/infra/raw", "not json at all");
  put("pr/acme/infra/foreign/default/p", nameIndexLock("other/x", 7));
  put("pr/acme/infra with space/a/default/p", nameIndexLock("acme/infra with space", 7));
  put("pr/\xc3\xbcn\xc3\xaf/a/default/p", nameIndexLock("\xc3\xbcn\xc3\xaf", 7));
  put("pr/acme/infrb/a/default/p", nameIndexLock("acme/infrb", 7));
  put("pr/acme/\xff\xff", "binary");
  put("global/apply/lock", R"({"LockMetadata":{"UnixTime":1},"CommandName":0})");
  put("github.com::acme/infra::7", R"({"Projects":[],"Pull":{"Num":7}})");
  put("pr", "just pr");
  expectAll();

  // Keys the index does not hold are not listed; a prefix it does not cover is refused.
  auto all = await(store.keysWithPrefix(0, "pr/"));
  ASSERT_TRUE(all.isOk());
  for (const std::string& key : *all) EXPECT_TRUE(key.starts_with("pr/")) << key;
  auto refused = await(store.keysWithPrefix(0, "global/"));
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInvalidArgument);

  // Deletes (one of them of an absent key), Atlantis's unlock script, and overwrites.
  auto deleted = await(store.del(0, {"pr/acme/infra/raw", "pr/acme/infra-live/db/default/p",
                                     "pr/acme/infra/never"}));
  ASSERT_TRUE(deleted.isOk());
  EXPECT_EQ(*deleted, 2);
  present.erase("pr/acme/infra/raw");
  present.erase("pr/acme/infra-live/db/default/p");
  auto unlocked = await(store.deleteIfOwnedByPull(0, "pr/acme/infra/sub/x/default/p", "8"));
  ASSERT_TRUE(unlocked.isOk());
  EXPECT_TRUE(unlocked->has_value());
  present.erase("pr/acme/infra/sub/x/default/p");
  auto kept = await(store.deleteIfOwnedByPull(0, "pr/acme/infra/vpc/default/p", "99"));
  ASSERT_TRUE(kept.isOk());
  EXPECT_FALSE(kept->has_value());
  put("pr/acme/infra/vpc/default/p", nameIndexLock("acme/infra", 9));  // a new holder
  expectAll();

  // A deleted key written again is listed again.
  put("pr/acme/infra-live/db/default/p", nameIndexLock("acme/infra-live", 10));
  expectAll();
}

}  // namespace lockshift::testing
