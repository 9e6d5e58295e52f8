#include "tests/support/resp_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace lockshift::testing {

namespace {
resp::Limits clientLimits() {
  resp::Limits l;
  l.max_bulk_length = 512 * 1024 * 1024;
  l.max_array_length = 16 * 1024 * 1024;
  return l;
}
}  // namespace

RespClient::RespClient(uint16_t port, std::chrono::milliseconds timeout)
    : timeout_(timeout), parser_(resp::Parser::Mode::kReply, clientLimits()) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RespClient::~RespClient() {
  if (fd_ >= 0) ::close(fd_);
}

void RespClient::sendRaw(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    off += static_cast<size_t>(n);
  }
}

resp::Value RespClient::readReply() {
  auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    if (!buffered_.empty()) {
      size_t used = parser_.feed(buffered_);
      buffered_.erase(0, used);
      if (parser_.state() == resp::Parser::State::kReady) return parser_.takeValue();
      if (parser_.state() == resp::Parser::State::kError) {
        throw std::runtime_error("unparseable reply: " + parser_.error());
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("timed out waiting for a reply");
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) throw std::runtime_error("connection closed while waiting for a reply");
    buffered_.append(buf, static_cast<size_t>(n));
  }
}

resp::Value RespClient::call(const std::vector<std::string>& args) {
  std::string out;
  resp::encodeCommand(args, out);
  sendRaw(out);
  return readReply();
}

std::vector<resp::Value> RespClient::pipeline(const std::vector<std::vector<std::string>>& commands) {
  std::string out;
  for (const auto& c : commands) resp::encodeCommand(c, out);
  sendRaw(out);
  std::vector<resp::Value> replies;
  replies.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) replies.push_back(readReply());
  return replies;
}

std::string RespClient::readUntilClosed(std::chrono::milliseconds wait) {
  std::string data = buffered_;
  buffered_.clear();
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return data;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

bool RespClient::closedByServer(std::chrono::milliseconds wait) {
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

std::string str(const resp::Value& v) { return v.str; }
bool isNil(const resp::Value& v) { return v.type == resp::Type::kNull; }
bool isOk(const resp::Value& v) { return v.type == resp::Type::kSimpleString && v.str == "OK"; }

std::map<std::string, std::string> dumpRedis(const std::vector<uint16_t>& ports) {
  std::map<std::string, std::string> out;
  for (uint16_t port : ports) {
    RespClient c(port);
    std::string cursor = "0";
    do {
      resp::Value r = c.call({"scan", cursor, "count", "1000"});
      cursor = r.elements[0].str;
      for (const auto& k : r.elements[1].elements) out[k.str] = c.call({"get", k.str}).str;
    } while (cursor != "0");
  }
  return out;
}

}  // namespace lockshift::testing
