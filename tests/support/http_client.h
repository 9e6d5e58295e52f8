#pragma once
// A blocking HTTP/1.1 client for the admin API in tests (one request per connection).

#include <cstdint>
#include <string>

namespace lockshift::testing {

struct HttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};

// Sends one request to 127.0.0.1:port; throws std::runtime_error on connection failure.
HttpResponse httpRequest(uint16_t port, const std::string& method, const std::string& path,
                         const std::string& body = "", const std::string& bearer_token = "");

}  // namespace lockshift::testing
