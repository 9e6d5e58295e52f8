#include "common/lock_json.h"

#include "common/json_compare.h"

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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

// parseProjectLock() reads the value with a SAX handler. This is what it must agree with: the
// same fields read from Boost.JSON's document, where a member named twice is its last occurrence
// and a member of the wrong type is absent.
Result<LockIdentity> projectLockFromDocument(std::string_view text) {
  namespace json = boost::json;
  boost::system::error_code ec;
  json::value v = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return Status::invalidArgument("not JSON: " + ec.message());
  if (!v.is_object()) return Status::invalidArgument("lock value is not a JSON object");
  auto object = [](const json::object& o, const char* name) -> const json::object* {
    const json::value* f = o.if_contains(name);
    return f != nullptr && f->is_object() ? &f->get_object() : nullptr;
  };
  auto string = [](const json::object& o, const char* name) -> std::string {
    const json::value* f = o.if_contains(name);
    return f != nullptr && f->is_string() ? std::string(f->get_string()) : std::string();
  };
  const json::object& root = v.get_object();
  const json::object* pull = object(root, "Pull");
  if (pull == nullptr) return Status::invalidArgument("lock value has no Pull object");
  const json::value* num = pull->if_contains("Num");
  if (num == nullptr) return Status::invalidArgument("lock value has no Pull.Num");
  LockIdentity id;
  if (num->is_int64()) {
    id.pull_num = num->get_int64();
  } else if (num->is_uint64() && num->get_uint64() <= INT64_MAX) {
    id.pull_num = static_cast<int64_t>(num->get_uint64());
  } else {
    return Status::invalidArgument("lock value's Pull.Num is not an integer");
  }
  const json::object* project = object(root, "Project");
  if (project == nullptr) return Status::invalidArgument("lock value has no Project object");
  id.repo_full_name = string(*project, "RepoFullName");
  id.path = string(*project, "Path");
  id.project_name = string(*project, "ProjectName");
  const json::value* workspace = root.if_contains("Workspace");
  if (workspace == nullptr || !workspace->is_string()) {
    return Status::invalidArgument("lock value has no Workspace string");
  }
  id.workspace = std::string(workspace->get_string());
  if (const json::object* user = object(root, "User")) id.username = string(*user, "Username");
  return id;
}

// Random JSON text built around the members a lock has: the names parseProjectLock() reads (some
// spelled with escapes), at the right depth and elsewhere, named twice, of the right type and not.
std::string randomJson(int depth, const std::string& member = "");

std::string randomString() {
  static const std::vector<std::string> texts = {
      "", "default", "acme/infra", "envs/prod", "alice", "a\\\"b", "caf\\u00e9", "tab\\tx", "\\ud83d\\ude00",
      std::string(40, 'p')};
  return "\"" + *rc::gen::elementOf(texts) + "\"";
}

// An object whose members are mostly those a lock has in that place (`expected`), each present
// with a high chance, among others, in a random order, sometimes twice.
std::string randomObject(int depth, const std::vector<std::string>& expected = {}) {
  static const std::vector<std::string> names = {
      "Pull", "Num", "Project", "RepoFullName", "Path", "ProjectName", "User", "Username", "Workspace",
      "Pu\\u006cl", "Nu\\u006d", "Time", "Teams", "PullX", "Work space", ""};
  std::vector<std::string> members;
  auto insert = [&members](const std::string& name) {
    members.insert(members.begin() + *rc::gen::inRange<ptrdiff_t>(0, members.size() + 1), name);
  };
  for (const std::string& name : expected) {
    if (*rc::gen::inRange(0, 10) < 8) insert(name);
    if (*rc::gen::inRange(0, 10) < 3) insert(name);
  }
  const int others = *rc::gen::inRange(0, depth > 2 ? 4 : 3);
  for (int i = 0; i < others; ++i) insert(*rc::gen::elementOf(names));
  std::string out = "{";
  for (size_t i = 0; i < members.size(); ++i) {
    out += (i ? "," : "") + std::string("\"") + members[i] + "\":" + randomJson(depth - 1, members[i]);
  }
  return out + "}";
}

std::string randomJson(int depth, const std::string& member) {
  // Mostly the type a lock gives the member, so that whole locks come out often.
  const bool object_member = member == "Pull" || member == "Project" || member == "User" || member == "Pu\\u006cl";
  const bool string_member = member == "Workspace" || member == "RepoFullName" || member == "Path" ||
                             member == "ProjectName" || member == "Username";
  const bool number_member = member == "Num" || member == "Nu\\u006d";
  if (depth > 0 && object_member && *rc::gen::inRange(0, 10) < 8) {
    if (member == "Project") return randomObject(depth, {"RepoFullName", "Path", "ProjectName"});
    if (member == "User") return randomObject(depth, {"Username"});
    return randomObject(depth, {"Num"});
  }
  if (string_member && *rc::gen::inRange(0, 10) < 8) return randomString();
  if (number_member && *rc::gen::inRange(0, 10) < 8) {
    return std::to_string(*rc::gen::inRange<int64_t>(-5, 100000));
  }
  switch (*rc::gen::inRange(0, depth > 0 ? 9 : 7)) {
    case 0:
      return std::to_string(*rc::gen::arbitrary<int64_t>());
    case 1:
      return std::to_string(static_cast<uint64_t>(INT64_MAX) + 1 + *rc::gen::inRange<uint64_t>(0, 1000));
    case 2:
      return *rc::gen::elementOf(std::vector<std::string>{"1.5", "12.0", "1e3", "-0.0", "12e-1"});
    case 3:
      return randomString();
    case 4:
      return *rc::gen::arbitrary<bool>() ? "true" : "false";
    case 5:
      return "null";
    case 6:
      return std::to_string(*rc::gen::inRange(0, 20));
    case 7:
      return randomObject(depth);
    default: {
      std::string out = "[";
      const int n = *rc::gen::inRange(0, 4);
      for (int i = 0; i < n; ++i) out += (i ? "," : "") + randomJson(depth - 1);
      return out + "]";
    }
  }
}

// Checks one random document; the property checks several per case, since a difference may need
// a rare arrangement (a member named twice, the second time without the field).
void checkAgainstDocument() {
  std::string text = *rc::gen::inRange(0, 10) < 8 ? randomObject(4, {"Pull", "Project", "Workspace", "User"})
                                                  : randomJson(3);
  switch (*rc::gen::inRange(0, 10)) {
    case 0:  // truncated
      text = text.substr(0, *rc::gen::inRange<size_t>(0, text.size() + 1));
      break;
    case 1:  // trailing data
      text += *rc::gen::elementOf(std::vector<std::string>{" ", "\n", "x", "{}", " 1"});
      break;
    default:
      break;
  }
  const Result<LockIdentity> want = projectLockFromDocument(text);
  const Result<LockIdentity> got = parseProjectLock(text);
  RC_ASSERT(got.isOk() == want.isOk());
  if (!want.isOk()) {
    RC_ASSERT(got.status().code() == ErrorCode::kInvalidArgument);
    RC_ASSERT(got.status().message() == want.status().message());
    return;
  }
  RC_ASSERT(got->pull_num == want->pull_num);
  RC_ASSERT(got->repo_full_name == want->repo_full_name);
  RC_ASSERT(got->path == want->path);
  RC_ASSERT(got->project_name == want->project_name);
  RC_ASSERT(got->workspace == want->workspace);
  RC_ASSERT(got->username == want->username);
}

RC_GTEST_PROP(LockJson, ReadsWhatTheDocumentHolds, ()) {
  for (int i = 0; i < 20; ++i) checkAgainstDocument();
}

// Cases the handler has to get right whatever the generator happens to produce.
TEST(LockJson, LastMemberOfTheSameNameCounts) {
  const std::string lock = std::string(kLock).substr(0, std::string(kLock).size() - 1);
  auto twice = parseProjectLock(lock + R"(,"Pull":{"Num":13},"Workspace":"staging","User":{"Username":"bob"}})");
  ASSERT_TRUE(twice.isOk()) << twice.status().toString();
  EXPECT_EQ(twice->pull_num, 13);
  EXPECT_EQ(twice->workspace, "staging");
  EXPECT_EQ(twice->username, "bob");
  EXPECT_EQ(twice->repo_full_name, "acme/infra");
  auto not_object = parseProjectLock(lock + R"(,"Pull":12})");
  ASSERT_FALSE(not_object.isOk());
  EXPECT_EQ(not_object.status().message(), "lock value has no Pull object");
  auto escaped = parseProjectLock(R"({"P\u0075ll":{"Num":-4},"Project":{"Path":"a\u00e9"},"Workspace":"w\n"})");
  ASSERT_TRUE(escaped.isOk()) << escaped.status().toString();
  EXPECT_EQ(escaped->pull_num, -4);
  EXPECT_EQ(escaped->path, "a\xc3\xa9");
  EXPECT_EQ(escaped->workspace, "w\n");
  auto nested = parseProjectLock(R"({"Project":{"Pull":{"Num":1}},"Pull":{"Num":2,"Project":{}},"Workspace":"w"})");
  ASSERT_TRUE(nested.isOk()) << nested.status().toString();
  EXPECT_EQ(nested->pull_num, 2);
  EXPECT_EQ(parseProjectLock(R"({"Project":{},"Pull":{"Num":9223372036854775808},"Workspace":"w"})").status().message(),
            "lock value's Pull.Num is not an integer");
  EXPECT_EQ(parseProjectLock(R"({"Project":{},"Pull":{"Num":1},"Workspace":"w"} x)").status().message(),
            projectLockFromDocument(R"({"Project":{},"Pull":{"Num":1},"Workspace":"w"} x)").status().message());
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
