#pragma once
// A blocking RESP2 client for tests: plain POSIX sockets and lockshift's own reply parser.
// Every read has a timeout, so a missing reply fails the test instead of hanging it.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "resp/parser.h"
#include "resp/value.h"

namespace lockshift::testing {

class RespClient {
 public:
  explicit RespClient(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~RespClient();
  RespClient(const RespClient&) = delete;
  RespClient& operator=(const RespClient&) = delete;

  // Sends one command and returns its reply. Throws std::runtime_error on timeout or close.
  resp::Value call(const std::vector<std::string>& args);
  // Sends all commands in one write, then reads one reply per command.
  std::vector<resp::Value> pipeline(const std::vector<std::vector<std::string>>& commands);
  // Raw bytes in and replies out, for protocol tests.
  void sendRaw(const std::string& bytes);
  resp::Value readReply();
  // Reads whatever arrives until the server closes the connection or `wait` passes.
  std::string readUntilClosed(std::chrono::milliseconds wait = std::chrono::seconds(5));
  // True if the server closed the connection (a read returns EOF) within `wait`.
  bool closedByServer(std::chrono::milliseconds wait = std::chrono::seconds(5));

 private:
  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  resp::Parser parser_;
  std::string buffered_;
};

// Short forms for assertions.
std::string str(const resp::Value& v);  // the string of a simple, bulk or error value
bool isNil(const resp::Value& v);
bool isOk(const resp::Value& v);

// Every key and value of one redis-server, or of each master of a cluster (a master answers GET
// for the keys its SCAN found), read with SCAN and GET.
std::map<std::string, std::string> dumpRedis(const std::vector<uint16_t>& ports);

}  // namespace lockshift::testing
