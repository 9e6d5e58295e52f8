// The test harness's ports: free ports stay out of the kernel's ephemeral range and are never
// handed out twice, and listensOn() tells a server's own port from one another process serves
// (tests run in parallel, and a server that lost its port to another would otherwise look up).

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <set>

#include "tests/support/ports.h"
#include "tests/support/process.h"
#include "tests/support/servers.h"

namespace lockshift::testing {
namespace {

// A socket listening on 127.0.0.1:port, closed when it goes out of scope.
class Listener {
 public:
  explicit Listener(uint16_t port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 4) == 0;
  }
  ~Listener() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

TEST(Ports, FreePortsAreBelowTheEphemeralRangeAndNeverRepeat) {
  int low = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> low;
  std::set<uint16_t> seen;
  for (int i = 0; i < 200; ++i) {
    const uint16_t port = freeLoopbackPort();
    EXPECT_TRUE(seen.insert(port).second) << "port " << port << " handed out twice";
    if (low - 1 - 10000 >= 1000) {
      EXPECT_LT(port, low) << "inside the ephemeral range";
    }
  }
}

TEST(Ports, ListensOnTellsWhoseListenerItIs) {
  const uint16_t port = freeLoopbackPort();
  EXPECT_FALSE(listensOn(::getpid(), port)) << "nothing listens yet";
  Listener mine(port);
  ASSERT_TRUE(mine.ok());
  EXPECT_TRUE(listensOn(::getpid(), port));
  mine.close();
  EXPECT_FALSE(listensOn(::getpid(), port));

  RedisServer redis;
  EXPECT_TRUE(listensOn(redis.process().pid(), redis.port()));
  EXPECT_FALSE(listensOn(::getpid(), redis.port())) << "the redis-server's listener, not this process's";
}

}  // namespace
}  // namespace lockshift::testing
