// Promise 4: bad input gets a clear error and changes nothing (DESIGN §6), through the real
// binary: malformed RESP, counts over the limits, invalid lock JSON, bad AUTH, unknown commands.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "proxy/atlantis_script.h"
#include "resp/parser.h"
#include "tests/support/atlantis.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

class BadInput : public ::testing::Test {
 protected:
  // Sends raw bytes on a fresh connection; expects one protocol error and a close.
  std::string protocolErrorFor(const std::string& bytes) {
    RespClient c(server_.port());
    c.sendRaw(bytes);
    std::string got = c.readUntilClosed(std::chrono::seconds(5));
    EXPECT_FALSE(got.empty());
    return got;
  }

  // The store still answers and holds what it held.
  void expectStoreUnchanged() {
    RespClient c(server_.port());
    EXPECT_EQ(c.call({"get", "sentinel"}).str, "kept");
    EXPECT_EQ(c.call({"dbsize"}).integer, 1);
  }

  void SetUp() override {
    RespClient c(server_.port());
    ASSERT_TRUE(isOk(c.call({"set", "sentinel", "kept"})));
  }

  LockshiftServer server_{LockshiftOptions{.server_extra = "max_bulk_length = 262144\nmax_array_length = 64\n"
                                                           "max_input_buffer = 1048576\n"}};
};

TEST_F(BadInput, MalformedRespGetsProtocolErrorAndCloseOnlyThatConnection) {
  RespClient bystander(server_.port());
  ASSERT_EQ(bystander.call({"ping"}).str, "PONG");
  const std::pair<std::string, std::string> cases[] = {
      {"*1\r\n:5\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"},
      {"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
      {"*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
      {"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
      {"*99999999999999999999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
      {"set \"unbalanced\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
  };
  for (const auto& [input, reply] : cases) {
    EXPECT_EQ(protocolErrorFor(input), reply) << input;
  }
  EXPECT_EQ(bystander.call({"ping"}).str, "PONG");  // other connections are untouched
  expectStoreUnchanged();
}

TEST_F(BadInput, CountsOverTheLimitsAreRefusedWithoutAllocating) {
  EXPECT_EQ(protocolErrorFor("*65\r\n"), "-ERR Protocol error: invalid multibulk length\r\n");
  EXPECT_EQ(protocolErrorFor("*3\r\n$3\r\nset\r\n$1\r\nk\r\n$262145\r\n"),
            "-ERR Protocol error: invalid bulk length\r\n");
  EXPECT_EQ(protocolErrorFor("*2147483647\r\n"), "-ERR Protocol error: invalid multibulk length\r\n");
  expectStoreUnchanged();
}

TEST_F(BadInput, ValueAtTheLimitIsAccepted) {
  RespClient c(server_.port());
  EXPECT_TRUE(isOk(c.call({"set", "big", std::string(262144, 'x')})));
  EXPECT_EQ(c.call({"get", "big"}).str.size(), 262144u);
}

TEST_F(BadInput, InlineRequestOverTheLimitIsRefused) {
  std::string got = protocolErrorFor(std::string(70 * 1024, 'a'));
  EXPECT_EQ(got, "-ERR Protocol error: too big inline request\r\n");
  expectStoreUnchanged();
}

TEST_F(BadInput, NonJsonValueOnLockKeyIsRefusedInStrictMode) {
  RespClient c(server_.port());
  resp::Value v = c.call({"set", "pr/acme/infra/./default/", "not json"});
  ASSERT_TRUE(v.isError());
  EXPECT_EQ(v.str.rfind("ERR invalid lock value for key 'pr/acme/infra/./default/'", 0), 0u) << v.str;
  v = c.call({"set", "pr/acme/infra/./default/", R"({"Pull":{"Num":1}})"});
  ASSERT_TRUE(v.isError());
  EXPECT_TRUE(isNil(c.call({"get", "pr/acme/infra/./default/"})));
  expectStoreUnchanged();
}

TEST_F(BadInput, ExpiryIsRefused) {
  RespClient c(server_.port());
  LockSpec l;
  resp::Value v = c.call({"set", lockKey(l), lockJson(l), "EX", "60"});
  ASSERT_TRUE(v.isError());
  EXPECT_NE(v.str.find("a held lock must not vanish"), std::string::npos);
  EXPECT_TRUE(isNil(c.call({"get", lockKey(l)})));
  EXPECT_TRUE(c.call({"set", "other", "v", "PX", "100"}).isError());
  EXPECT_EQ(c.call({"set", "other", "v", "EX", "0"}).str, "ERR invalid expire time in 'set' command");
  EXPECT_EQ(c.call({"set", "other", "v", "NX", "XX"}).str, "ERR syntax error");
  EXPECT_TRUE(isOk(c.call({"set", "other", "v", "KEEPTTL"})));
}

TEST_F(BadInput, UnknownCommandsAndWrongArityUseRedisShapes) {
  RespClient c(server_.port());
  EXPECT_EQ(c.call({"flushall"}).str, "ERR unknown command 'flushall', with args beginning with: ");
  EXPECT_EQ(c.call({"FOO", "a", "b"}).str, "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ");
  EXPECT_EQ(c.call({"get"}).str, "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.call({"GET", "a", "b"}).str, "ERR wrong number of arguments for 'get' command");
  EXPECT_EQ(c.call({"scan", "notanumber"}).str, "ERR invalid cursor");
  EXPECT_EQ(c.call({"client", "bogus"}).str, "ERR unknown subcommand 'bogus'. Try CLIENT HELP.");
  resp::Value script = c.call({"eval", "return 1", "0"});
  ASSERT_TRUE(script.isError());
  EXPECT_NE(script.str.find("only Atlantis's UnlockIfOwnedByPull script"), std::string::npos);
  EXPECT_EQ(c.call({"evalsha", "0000000000000000000000000000000000000000", "0"}).str,
            "NOSCRIPT No matching script. Please use EVAL.");
  EXPECT_EQ(c.call({"script", "load", std::string(kAtlantisUnlockScript)}).str,
            "c09313c9247bdb6383a96b527fe8492ef19a1eeb");
  expectStoreUnchanged();
}

class Authenticated : public ::testing::Test {
 protected:
  LockshiftServer server_{LockshiftOptions{.password = "correct horse"}};
};

TEST_F(Authenticated, CommandsBeforeAuthAreRefused) {
  RespClient c(server_.port());
  EXPECT_EQ(c.call({"get", "k"}).str, "NOAUTH Authentication required.");
  EXPECT_EQ(c.call({"set", "k", "v"}).str, "NOAUTH Authentication required.");
  EXPECT_EQ(c.call({"auth", "wrong"}).str, "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(c.call({"auth", "admin", "correct horse"}).str,
            "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(c.call({"set", "k", "v"}).str, "NOAUTH Authentication required.");
  EXPECT_TRUE(isOk(c.call({"auth", "correct horse"})));
  EXPECT_TRUE(isNil(c.call({"get", "k"})));  // nothing was written before AUTH
  EXPECT_TRUE(isOk(c.call({"set", "k", "v"})));
  RespClient other(server_.port());
  EXPECT_TRUE(isOk(other.call({"auth", "default", "correct horse"})));
  EXPECT_EQ(other.call({"get", "k"}).str, "v");
}

TEST_F(Authenticated, TighterLimitsBeforeAuth) {
  RespClient c(server_.port());
  // Redis allows 10 arguments of 16 KB before AUTH.
  c.sendRaw("*11\r\n");
  EXPECT_EQ(c.readUntilClosed(), "-ERR Protocol error: invalid multibulk length\r\n");
  RespClient d(server_.port());
  d.sendRaw("*2\r\n$4\r\nauth\r\n$20000\r\n");
  EXPECT_EQ(d.readUntilClosed(), "-ERR Protocol error: invalid bulk length\r\n");
  RespClient e(server_.port());
  EXPECT_TRUE(isOk(e.call({"auth", "correct horse"})));
  EXPECT_TRUE(isOk(e.call({"set", "big", std::string(20000, 'x')})));  // limits raised after AUTH
}

// The password file is read at every AUTH and each of its lines is accepted: a password is
// rotated by adding the new line, moving Atlantis to it, then removing the old line. Connections
// already authenticated stay so; a file that cannot be read refuses AUTH and says so in the log.
TEST_F(Authenticated, APasswordRotatedInItsFileNeedsNoRestart) {
  RespClient before(server_.port());
  EXPECT_TRUE(isOk(before.call({"auth", "correct horse"})));
  writeFile(server_.passwordFile(), "correct horse\nbattery staple\n");
  RespClient during(server_.port());
  EXPECT_TRUE(isOk(during.call({"auth", "battery staple"})));
  EXPECT_TRUE(isOk(RespClient(server_.port()).call({"auth", "correct horse"})));
  writeFile(server_.passwordFile(), "battery staple\n");
  RespClient after(server_.port());
  EXPECT_EQ(after.call({"auth", "correct horse"}).str, "WRONGPASS invalid username-password pair or user is disabled.");
  EXPECT_EQ(after.call({"get", "k"}).str, "NOAUTH Authentication required.");
  EXPECT_TRUE(isOk(after.call({"auth", "default", "battery staple"})));
  EXPECT_TRUE(isOk(before.call({"set", "k", "v"})));  // still authenticated
  EXPECT_EQ(after.call({"get", "k"}).str, "v");

  std::filesystem::remove(server_.passwordFile());
  RespClient unreadable(server_.port());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(unreadable.call({"auth", "battery staple"}).str,
              "ERR lockshift cannot read its password file; see its log");
  }
  EXPECT_EQ(unreadable.call({"get", "k"}).str, "NOAUTH Authentication required.");
  const std::string line = "lockshift: [server] password_file: cannot read " + server_.passwordFile();
  const std::string log = server_.log();
  EXPECT_NE(log.find(line), std::string::npos) << log;
  EXPECT_EQ(log.find(line), log.rfind(line)) << log;  // once, however many clients retry
  writeFile(server_.passwordFile(), "battery staple\n");
  EXPECT_TRUE(isOk(unreadable.call({"auth", "battery staple"})));
}

}  // namespace
}  // namespace lockshift::testing
