#include "common/unix_socket.h"

#include <gtest/gtest.h>

#include <string>

namespace lockshift {
namespace {

TEST(UnixSocket, RecognisesThePrefix) {
  EXPECT_TRUE(isUnixAddress("unix:/run/redis/redis.sock"));
  EXPECT_TRUE(isUnixAddress("unix:"));
  EXPECT_FALSE(isUnixAddress("127.0.0.1:6379"));
  EXPECT_FALSE(isUnixAddress("unix.internal:6379"));
  EXPECT_FALSE(isUnixAddress("UNIX:/run/redis.sock"));
}

TEST(UnixSocket, AbsolutePathIsTaken) {
  std::string path = "unchanged";
  EXPECT_EQ(unixSocketPath("unix:/run/redis/redis.sock", path), "");
  EXPECT_EQ(path, "/run/redis/redis.sock");
}

TEST(UnixSocket, LongestPathThatFitsIsTakenOneMoreIsRefused) {
  std::string longest = "/" + std::string(kMaxUnixPathLength - 1, 'a');
  std::string path;
  EXPECT_EQ(unixSocketPath("unix:" + longest, path), "");
  EXPECT_EQ(path, longest);

  path = "unchanged";
  EXPECT_EQ(unixSocketPath("unix:" + longest + "a", path),
            "the socket's path is 108 bytes; a socket address holds at most 107");
  EXPECT_EQ(path, "unchanged");
}

TEST(UnixSocket, UnusablePathsAreRefusedWithTheReason) {
  struct Case {
    std::string address;
    std::string why;
  };
  const Case cases[] = {
      {"unix:", "missing the socket's path after \"unix:\""},
      {"unix:redis.sock", "the socket's path must be absolute, such as unix:/run/redis/redis.sock"},
      {"unix:./redis.sock", "the socket's path must be absolute, such as unix:/run/redis/redis.sock"},
      {std::string("unix:/run/re\0dis.sock", 21), "the socket's path holds a NUL byte"},
  };
  for (const Case& c : cases) {
    std::string path = "unchanged";
    EXPECT_EQ(unixSocketPath(c.address, path), c.why) << c.address;
    EXPECT_EQ(path, "unchanged") << c.address;
  }
}

}  // namespace
}  // namespace lockshift
