#include "common/malloc_tunables.h"

#include <sys/auxv.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace lockshift {

std::optional<std::string> tunablesWithTcacheCount(const char* current) {
  const std::string_view tunables = current == nullptr ? std::string_view() : std::string_view(current);
  // name=value entries separated by ':' (glibc's syntax).
  size_t begin = 0;
  while (begin <= tunables.size()) {
    size_t end = tunables.find(':', begin);
    if (end == std::string_view::npos) end = tunables.size();
    const std::string_view entry = tunables.substr(begin, end - begin);
    if (entry.substr(0, entry.find('=')) == kTcacheCountTunable) return std::nullopt;
    begin = end + 1;
  }
  std::string value(tunables);
  if (!value.empty()) value += ':';
  value += kTcacheCountTunable;
  value += '=';
  value += std::to_string(kMallocTcacheCount);
  return value;
}

std::optional<std::string> applyMallocTunables(char** argv) {
  // A set-user-ID or file-capability start (AT_SECURE) has glibc drop such tunables, so the
  // setting would never arrive and the process would execute itself again and again.
  if (getauxval(AT_SECURE) != 0) return std::nullopt;
  const std::optional<std::string> tunables = tunablesWithTcacheCount(std::getenv("GLIBC_TUNABLES"));
  if (!tunables) return std::nullopt;
  if (setenv("GLIBC_TUNABLES", tunables->c_str(), 1) != 0) {
    return std::string("cannot set GLIBC_TUNABLES: ") + std::strerror(errno);
  }
  // By its path, not as /proc/self/exe, which would rename the process "exe" (comm, what ps,
  // top and pgrep show). A binary replaced or removed since it started fails here.
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return std::string("cannot find the binary to apply GLIBC_TUNABLES: ") + std::strerror(errno);
  path[n] = '\0';
  execv(path, argv);
  // Still here: the execution failed. The variable stays set, harmless.
  return std::string("cannot execute ") + path + " to apply GLIBC_TUNABLES: " + std::strerror(errno);
}

}  // namespace lockshift
