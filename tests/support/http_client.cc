#include "tests/support/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace lockshift::testing {

HttpResponse httpRequest(uint16_t port, const std::string& method, const std::string& path, const std::string& body,
                         const std::string& bearer_token) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot connect to the admin port " + std::to_string(port));
  }
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
  if (!bearer_token.empty()) req += "Authorization: Bearer " + bearer_token + "\r\n";
  if (!body.empty() || method == "PUT" || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string raw;
  char buf[65536];
  for (int i = 0; i < 1000; ++i) {
    pollfd pfd{fd, POLLIN, 0};
    // Generous: a phase change answers once its fill is done, which under ThreadSanitizer took
    // longer than 10 s for 10 000 keys next to other tests.
    if (::poll(&pfd, 1, 60000) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  HttpResponse r;
  size_t sp = raw.find(' ');
  if (sp == std::string::npos) throw std::runtime_error("no HTTP response");
  r.status = std::stoi(raw.substr(sp + 1, 3));
  size_t end = raw.find("\r\n\r\n");
  r.headers = raw.substr(0, end);
  r.body = end == std::string::npos ? "" : raw.substr(end + 4);
  // Chunked bodies are not expected from the admin server (it sends Content-Length).
  return r;
}

}  // namespace lockshift::testing
