#include "common/lock_json.h"

#include <gtest/gtest.h>

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
