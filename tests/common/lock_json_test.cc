#include "common/lock_json.h"

#include "common/json_compare.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace lockshift {
namespace {

constexpr const char* kLock =
    R"({"Project":{"ProjectName":"net","RepoFullName":"acme/infra","Path":"envs/prod"},)"
    R"("Pull":{"Num":12,"HeadCommit":"abc","BaseRepo":{"FullName":"acme/infra"}},)"
    R"("User":{"Username":"alice","Teams":null},"Workspace":"default","Time":"2026-11-21T10:00:00Z"})";

TEST(LockJson, ParsesAtlantisProjectLock) {
  auto id = parseProjectLock(kLock);
  ASSERT_TRUE(id.isOk()) << id.status().toString();
  EXPECT_EQ(id->pull_num, 12);
  EXPECT_EQ(id->repo_full_name, "acme/infra");
  EXPECT_EQ(id->path, "envs/prod");
  EXPECT_EQ(id->project_name, "net");
  EXPECT_EQ(id->workspace, "default");
  EXPECT_EQ(id->username, "alice");
  EXPECT_EQ(id->describe(), "pull #12 (alice)");
}

// Values are parsed in a fixed stack buffer first; one far larger than it must read the same.
TEST(LockJson, ParsesLockLargerThanTheParseBuffer) {
  std::string big = R"({"Notes":[)";
  for (int i = 0; i < 2000; ++i) big += (i ? "," : "") + std::string(R"({"n":"note-)") + std::to_string(i) + R"("})";
  big += R"(],"Blob":")" + std::string(200 * 1024, 'x') + R"(",)";
  big += std::string(kLock).substr(1);
  ASSERT_GT(big.size(), 200u * 1024);
  auto id = parseProjectLock(big);
  ASSERT_TRUE(id.isOk()) << id.status().toString();
  EXPECT_EQ(id->pull_num, 12);
  EXPECT_EQ(id->repo_full_name, "acme/infra");
  EXPECT_EQ(id->username, "alice");
  auto pull = lockPullNumber(big);
  ASSERT_TRUE(pull.isOk());
  EXPECT_EQ(*pull, std::optional<double>(12));
}

TEST(JsonCompare, IgnoresMemberOrderAtAnySize) {
  EXPECT_TRUE(sameJsonValue(R"({"a":1,"b":[1,2]})", R"({"b":[1,2],"a":1})"));
  EXPECT_FALSE(sameJsonValue(R"({"a":1,"b":[1,2]})", R"({"b":[2,1],"a":1})"));
  EXPECT_FALSE(sameJsonValue("{}", "not json"));
  std::string a = R"({"x":")" + std::string(100 * 1024, 'y') + R"(","Pull":{"Num":1}})";
  std::string b = R"({"Pull":{"Num":1},"x":")" + std::string(100 * 1024, 'y') + R"("})";
  std::string c = R"({"Pull":{"Num":2},"x":")" + std::string(100 * 1024, 'y') + R"("})";
  EXPECT_TRUE(sameJsonValue(a, b));
  EXPECT_FALSE(sameJsonValue(a, c));
}

TEST(LockJson, SameHolderComparesPullProjectAndWorkspace) {
  auto a = parseProjectLock(kLock).value();
  LockIdentity b = a;
  b.username = "bob";  // the user does not make a different holder
  EXPECT_TRUE(a.sameHolder(b));
  b = a;
  b.pull_num = 13;
  EXPECT_FALSE(a.sameHolder(b));
  b = a;
  b.workspace = "staging";
  EXPECT_FALSE(a.sameHolder(b));
  b = a;
  b.path = "envs/dev";
  EXPECT_FALSE(a.sameHolder(b));
}

TEST(LockJson, RejectsValuesThatAreNotProjectLocks) {
  const char* bad[] = {
      "not json",
      "[1,2]",
      R"({"Project":{},"Workspace":"default"})",
      R"({"Project":{},"Pull":{"Num":"12"},"Workspace":"default"})",
      R"({"Project":{},"Pull":{"Num":1.5},"Workspace":"default"})",
      R"({"Pull":{"Num":1},"Workspace":"default"})",
      R"({"Project":{},"Pull":{"Num":1}})",
      "{\"Project\":{},\"Pull\":{\"Num\":1},\"Workspace\":\"default\"",  // truncated
  };
  for (const char* v : bad) {
    auto id = parseProjectLock(v);
    EXPECT_FALSE(id.isOk()) << v;
    EXPECT_EQ(id.status().code(), ErrorCode::kInvalidArgument) << v;
  }
}

TEST(LockJson, PullNumberFollowsLuaTonumber) {
  EXPECT_EQ(lockPullNumber(kLock).value(), std::optional<double>(12));
  EXPECT_EQ(lockPullNumber(R"({"Pull":{"Num":"7"}})").value(), std::optional<double>(7));
  EXPECT_EQ(lockPullNumber(R"({"Pull":{}})").value(), std::nullopt);
  EXPECT_EQ(lockPullNumber(R"({"Other":1})").value(), std::nullopt);
  auto bad = lockPullNumber("{oops");
  ASSERT_FALSE(bad.isOk());
  EXPECT_EQ(bad.status().message(), "failed to deserialize current lock");
}

TEST(LockJson, LuaToNumber) {
  EXPECT_EQ(luaToNumber("12"), std::optional<double>(12));
  EXPECT_EQ(luaToNumber(" 12 "), std::optional<double>(12));
  EXPECT_EQ(luaToNumber("1e2"), std::optional<double>(100));
  EXPECT_EQ(luaToNumber("0x10"), std::optional<double>(16));
  EXPECT_EQ(luaToNumber(""), std::nullopt);
  EXPECT_EQ(luaToNumber("12abc"), std::nullopt);
  EXPECT_EQ(luaToNumber("inf"), std::nullopt);
}

TEST(LockJson, KeyClasses) {
  EXPECT_TRUE(isProjectLockKey("pr/acme/infra/./default/"));
  EXPECT_FALSE(isProjectLockKey("global/apply/lock"));
  EXPECT_FALSE(isProjectLockKey("github.com::acme/infra::1"));
  EXPECT_FALSE(isProjectLockKey("pr"));
}

}  // namespace
}  // namespace lockshift
