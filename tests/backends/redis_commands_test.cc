// RedisStore's command builders and reply readers, without a server.

#include "backends/redis_commands.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backends/redis_scripts.h"
#include "common/glob.h"
#include "proxy/atlantis_script.h"

namespace lockshift::redis {
namespace {

using Outcome = PutResult::Outcome;
using resp::Value;

std::string wire(std::initializer_list<std::string_view> args) {
  std::string out;
  resp::encodeCommand(args, out);
  return out;
}

constexpr char kWhere[] = "redis 127.0.0.1:6379";

TEST(RedisAddressTest, AcceptsHostPortForms) {
  auto v4 = parseAddress("127.0.0.1:6379");
  ASSERT_TRUE(v4.isOk());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, "6379");
  auto v6 = parseAddress("[::1]:6380");
  ASSERT_TRUE(v6.isOk()) << v6.status().toString();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, "6380");
  auto name = parseAddress("redis.internal:7000");
  ASSERT_TRUE(name.isOk());
  EXPECT_EQ(name->host, "redis.internal");
}

TEST(RedisAddressTest, RejectsAddressesWithoutAUsablePort) {
  for (const char* bad : {"localhost", "localhost:", "localhost:0", "localhost:65536",
                          "localhost:63x", ":6379", "::1:6379", "[::1]6379", "[::1"}) {
    auto parsed = parseAddress(bad);
    ASSERT_FALSE(parsed.isOk()) << bad;
    EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.status().message().find(bad), std::string::npos);
  }
}

TEST(RedisGlobTest, EscapedPrefixMatchesOnlyItself) {
  const std::string prefix = "ls[1]*?\\x:";
  std::string pattern = escapeGlob(prefix);
  EXPECT_EQ(pattern, "ls\\[1\\]\\*\\?\\\\x:");
  EXPECT_TRUE(globMatch(pattern, prefix));
  EXPECT_FALSE(globMatch(pattern, "ls1*?\\x:"));
  EXPECT_TRUE(globMatch(scanPattern(prefix, "pr/*"), prefix + "pr/acme"));
  EXPECT_FALSE(globMatch(scanPattern(prefix, "pr/*"), "ls1xx\\x:pr/acme"));
  EXPECT_TRUE(globMatch(scanPattern(prefix, ""), prefix + "anything"));
  EXPECT_EQ(scanPattern("", ""), "");
  EXPECT_EQ(scanPattern("", "pr*"), "pr*");
}

TEST(RedisCommandTest, ScanCommandHasMatchOnlyWhenNeeded) {
  EXPECT_EQ(scanCommand(0, 10, ""), (std::vector<std::string>{"SCAN", "0", "COUNT", "10"}));
  EXPECT_EQ(
      scanCommand(18446744073709551615ULL, 0, "p\\*x*"),
      (std::vector<std::string>{"SCAN", "18446744073709551615", "MATCH", "p\\*x*", "COUNT", "1"}));
}

TEST(RedisCommandTest, PutFormFollowsTheRequest) {
  PutRequest request;
  request.key = "k";
  request.value = "v";
  EXPECT_EQ(putForm(request), PutForm::kSet);
  EXPECT_EQ(setWire(request, "p:k"), wire({"SET", "p:k", "v"}));
  request.return_previous = true;
  EXPECT_EQ(putForm(request), PutForm::kSetGet);
  EXPECT_EQ(setWire(request, "k"), wire({"SET", "k", "v", "GET"}));
  request.condition = PutRequest::Condition::kIfAbsent;
  EXPECT_EQ(putForm(request), PutForm::kScript);
  EXPECT_EQ(putScriptArgs(request), (std::vector<std::string>{"v", "NX", "1", "0"}));
  request.condition = PutRequest::Condition::kAlways;
  request.return_previous = false;
  request.strict_owner = LockIdentity{12, "acme/infra", ".", "", "default", "alice"};
  EXPECT_EQ(putForm(request), PutForm::kScript);
  EXPECT_EQ(putScriptArgs(request),
            (std::vector<std::string>{"v", "", "0", "1", "12", "acme/infra", ".", "", "default"}));
  const std::string pull = "12";
  EXPECT_EQ(putScriptArgViews(request, pull),
            (std::vector<std::string_view>{"v", "", "0", "1", "12", "acme/infra", ".", "", "default"}));
}

TEST(RedisCommandTest, OnlyAPlainStrictAcquireTriesSetNxFirst) {
  PutRequest request;
  request.key = "k";
  request.value = "v";
  EXPECT_FALSE(isPlainAcquire(request));  // no strict owner: a plain SET
  request.strict_owner = LockIdentity{12, "acme/infra", ".", "", "default", "alice"};
  EXPECT_TRUE(isPlainAcquire(request));
  EXPECT_EQ(setIfAbsentWire(request, "p:k"), wire({"SET", "p:k", "v", "NX"}));
  request.return_previous = true;  // SET ... GET must see the previous value: the script
  EXPECT_FALSE(isPlainAcquire(request));
  request.return_previous = false;
  request.condition = PutRequest::Condition::kIfPresent;
  EXPECT_FALSE(isPlainAcquire(request));
}

TEST(RedisReplyTest, SetNxRepliesSayWhetherTheKeyWasTaken) {
  EXPECT_TRUE(*readSetIfAbsent(Value::simple("OK"), kWhere));
  EXPECT_FALSE(*readSetIfAbsent(Value::null(), kWhere));
  EXPECT_EQ(readSetIfAbsent(Value::error("OOM full"), kWhere).status().code(), ErrorCode::kStoreFull);
  EXPECT_EQ(readSetIfAbsent(Value::integer_(1), kWhere).status().code(), ErrorCode::kInternal);
}

TEST(RedisCommandTest, ScriptWireIsTheEncodedCommandWithItsKeyCount) {
  const std::vector<std::string> keys = {"k", "{t}x"};
  const std::vector<std::string> args = {"1", "", std::string(300, 'v')};
  std::string expected;
  resp::encodeCommand({"EVALSHA", "abc", "2", "k", "{t}x", "1", "", std::string(300, 'v')}, expected);
  EXPECT_EQ(scriptWire("EVALSHA", "abc", keys, args), expected);

  const std::vector<std::string_view> one_key = {"lock"};
  expected.clear();
  resp::encodeCommand({"EVAL", "return 1", "1", "lock"}, expected);
  EXPECT_EQ(scriptWire("EVAL", "return 1", one_key, std::vector<std::string>()), expected);
}

// The NOSCRIPT retry: the same request with the body in place of the SHA, for any argument count.
TEST(RedisCommandTest, EvalOfEvalshaSwapsOnlyTheScript) {
  const std::string sha(40, 'a');
  const std::string body = "return redis.call('GET', KEYS[1])";
  const std::vector<std::string> keys = {"k"};
  for (size_t n : {0, 1, 12}) {
    std::vector<std::string> args;
    for (size_t i = 0; i < n; ++i) args.push_back(std::string(i * 40, 'x') + "\r\n$3");
    EXPECT_EQ(evalOfEvalsha(scriptWire("EVALSHA", sha, keys, args), sha, body),
              scriptWire("EVAL", body, keys, args))
        << n << " arguments";
  }
}

TEST(RedisScriptTest, Sha1MatchesRedis) {
  EXPECT_EQ(scriptSha1(kAtlantisUnlockScript), kAtlantisUnlockScriptSha1);
  EXPECT_EQ(scriptSha1(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(putScriptSha1(), scriptSha1(kPutScript));
}

TEST(RedisReplyTest, ErrorRepliesMapToCodes) {
  EXPECT_EQ(errorStatus(Value::error("OOM command not allowed"), kWhere).code(),
            ErrorCode::kStoreFull);
  EXPECT_EQ(errorStatus(Value::error("LOADING Redis is loading"), kWhere).code(),
            ErrorCode::kUnavailable);
  EXPECT_EQ(errorStatus(Value::error("READONLY replica"), kWhere).code(), ErrorCode::kUnavailable);
  Status wrongtype = errorStatus(Value::error("WRONGTYPE Operation against a key"), kWhere);
  EXPECT_EQ(wrongtype.code(), ErrorCode::kIoError);
  EXPECT_EQ(wrongtype.message(), "redis 127.0.0.1:6379: WRONGTYPE Operation against a key");
  EXPECT_TRUE(isNoScript(Value::error("NOSCRIPT No matching script")));
  EXPECT_FALSE(isNoScript(Value::error("ERR NOSCRIPT")));
  EXPECT_FALSE(isNoScript(Status::unavailable("down")));
}

TEST(RedisReplyTest, TransportErrorsPassThrough) {
  Result<Value> down = Status::timeout("redis x: no reply within 5 ms");
  EXPECT_EQ(readOptionalString(down, kWhere).status().code(), ErrorCode::kTimeout);
  EXPECT_EQ(readInteger(down, kWhere).status().message(), "redis x: no reply within 5 ms");
  EXPECT_EQ(readPong(down, kWhere).code(), ErrorCode::kTimeout);
}

TEST(RedisReplyTest, GetRepliesKeepBytes) {
  std::string binary("a\0b\r\nc", 6);
  EXPECT_EQ(readOptionalString(Value::bulk(binary), kWhere).value(), binary);
  EXPECT_FALSE(readOptionalString(Value::null(), kWhere).value().has_value());
  EXPECT_EQ(readOptionalString(Value::integer_(1), kWhere).status().code(), ErrorCode::kInternal);
}

TEST(RedisReplyTest, PutScriptReplyCarriesOutcomePreviousAndHolder) {
  Value refused =
      Value::array({Value::integer_(2), Value::bulk("old"), Value::bulk("pull #12 (alice)")});
  auto result = readPut(PutForm::kScript, true, refused, kWhere);
  ASSERT_TRUE(result.isOk());
  EXPECT_EQ(result->outcome, Outcome::kLockedByOther);
  EXPECT_EQ(result->previous, "old");
  EXPECT_EQ(result->holder, "pull #12 (alice)");
  Value applied = Value::array({Value::integer_(0), Value::null(), Value::bulk("")});
  auto ok = readPut(PutForm::kScript, true, applied, kWhere);
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->outcome, Outcome::kApplied);
  EXPECT_FALSE(ok->previous.has_value());
  for (const Value& bad :
       {Value::array({Value::integer_(3), Value::null(), Value::bulk("")}),
        Value::array({Value::integer_(0), Value::null()}), Value::simple("OK")}) {
    EXPECT_EQ(readPut(PutForm::kScript, false, bad, kWhere).status().code(), ErrorCode::kInternal);
  }
}

TEST(RedisReplyTest, SetRepliesMapToApplied) {
  EXPECT_EQ(readPut(PutForm::kSet, false, Value::simple("OK"), kWhere)->outcome, Outcome::kApplied);
  EXPECT_EQ(readPut(PutForm::kSetGet, true, Value::bulk("old"), kWhere)->previous, "old");
  EXPECT_FALSE(readPut(PutForm::kSetGet, true, Value::null(), kWhere)->previous.has_value());
  EXPECT_EQ(readPut(PutForm::kSet, false, Value::error("OOM full"), kWhere).status().code(),
            ErrorCode::kStoreFull);
}

TEST(RedisReplyTest, UnlockScriptErrorIsInvalidArgument) {
  auto failed = readUnlock(Value::error("failed to deserialize current lock"), kWhere);
  ASSERT_FALSE(failed.isOk());
  EXPECT_EQ(failed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(failed.status().message(), "failed to deserialize current lock");
  EXPECT_EQ(readUnlock(Value::bulk("v"), kWhere).value(), "v");
  EXPECT_FALSE(readUnlock(Value::null(), kWhere).value().has_value());
}

TEST(RedisReplyTest, ScanStripsThePrefixAndPassesTheCursor) {
  Value reply =
      Value::array({Value::bulk("18446744073709551615"),
                    Value::array({Value::bulk("p:a"), Value::bulk("p:"), Value::bulk("other")})});
  auto page = readScan(reply, "p:", kWhere);
  ASSERT_TRUE(page.isOk()) << page.status().toString();
  EXPECT_EQ(page->next_cursor, 18446744073709551615ULL);
  EXPECT_EQ(page->keys, (std::vector<std::string>{"a", ""}));
  for (const char* cursor : {"", "-1", "18446744073709551616", "1x"}) {
    Value bad = Value::array({Value::bulk(cursor), Value::array({})});
    EXPECT_EQ(readScan(bad, "", kWhere).status().code(), ErrorCode::kInternal) << cursor;
  }
}

}  // namespace
}  // namespace lockshift::redis
