#include "common/unix_socket.h"

namespace lockshift {

std::string unixSocketPath(std::string_view address, std::string& path) {
  std::string_view rest = address.substr(kUnixAddressPrefix.size());
  if (rest.empty()) return "missing the socket's path after \"unix:\"";
  if (rest.front() != '/') return "the socket's path must be absolute, such as unix:/run/redis/redis.sock";
  if (rest.find('\0') != std::string_view::npos) return "the socket's path holds a NUL byte";
  if (rest.size() > kMaxUnixPathLength) {
    return "the socket's path is " + std::to_string(rest.size()) + " bytes; a socket address holds at most " +
           std::to_string(kMaxUnixPathLength);
  }
  path = std::string(rest);
  return {};
}

}  // namespace lockshift
