#pragma once
// "unix:PATH": how a Redis store's `address` names the server's Unix domain socket (redis.conf's
// `unixsocket`), for a lockshift that runs on the Redis host. Atlantis still reaches lockshift
// over TCP; only lockshift's own hop to Redis leaves the TCP stack.
// The config check and the Redis connection both read addresses with unixSocketPath(), so what
// `--check-config` accepts is what connects.
// Thread-safety: stateless.

#include <sys/un.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace lockshift {

inline constexpr std::string_view kUnixAddressPrefix = "unix:";
// The longest path a socket address holds: sun_path less its terminating NUL.
inline constexpr size_t kMaxUnixPathLength = sizeof(sockaddr_un::sun_path) - 1;

inline bool isUnixAddress(std::string_view address) { return address.starts_with(kUnixAddressPrefix); }

// Sets `path` to the path of a "unix:" address and returns why the address is unusable, empty
// when it is usable: the path must be absolute (a relative one would depend on the directory
// lockshift was started in), fit in a socket address, and hold no NUL byte.
std::string unixSocketPath(std::string_view address, std::string& path);

}  // namespace lockshift
