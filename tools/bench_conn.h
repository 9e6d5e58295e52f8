#pragma once
// A blocking RESP connection on loopback for the benchmark tools (tools/atlantis_loadgen.cc,
// tools/index_bench.cc). It exits the process on any failure: a benchmark that lost its
// connection has nothing left to measure. Not for lockshift itself.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "resp/parser.h"
#include "resp/value.h"

namespace lockshift::bench {

// A TCP connection to 127.0.0.1:port; exits the process when it cannot be made.
inline int connectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  return fd;
}

// Writes all of `data` to `fd`; exits the process when the connection fails.
inline void sendAll(int fd, const std::string& data) {
  for (size_t sent = 0; sent < data.size();) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      std::perror("send");
      std::exit(1);
    }
    sent += static_cast<size_t>(n);
  }
}

class Conn {
 public:
  explicit Conn(int port) : parser_(lockshift::resp::Parser::Mode::kReply) {
    fd_ = connectLoopback(port);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Conn() { ::close(fd_); }

  lockshift::resp::Value call(const std::vector<std::string>& args) {
    send({args});
    return read();
  }
  // Writes every command at once, then reads one reply per command.
  std::vector<lockshift::resp::Value> pipeline(const std::vector<std::vector<std::string>>& commands) {
    send(commands);
    std::vector<lockshift::resp::Value> replies;
    replies.reserve(commands.size());
    for (size_t i = 0; i < commands.size(); ++i) replies.push_back(read());
    return replies;
  }

 private:
  void send(const std::vector<std::vector<std::string>>& commands) {
    std::string out;
    for (const auto& args : commands) lockshift::resp::encodeCommand(args, out);
    sendAll(fd_, out);
  }
  lockshift::resp::Value read() {
    for (;;) {
      if (!buf_.empty()) {
        size_t used = parser_.feed(buf_);
        buf_.erase(0, used);
        if (parser_.state() == lockshift::resp::Parser::State::kReady) return parser_.takeValue();
        if (parser_.state() == lockshift::resp::Parser::State::kError) std::exit(2);
      }
      char tmp[16384];
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        std::fprintf(stderr, "connection closed\n");
        std::exit(1);
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  int fd_;
  lockshift::resp::Parser parser_;
  std::string buf_;
};

}  // namespace lockshift::bench
