#include "tests/support/ports.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

namespace lockshift::testing {

namespace {

// Binds 127.0.0.1:`port` (0: any) without SO_REUSEADDR and returns the port bound, or 0.
uint16_t tryBind(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  uint16_t bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) bound = ntohs(addr.sin_port);
  }
  ::close(fd);
  return bound;
}

// The lowest port of the kernel's ephemeral range (32768 when it cannot be read).
int ephemeralLow() {
  std::ifstream in("/proc/sys/net/ipv4/ip_local_port_range");
  int low = 0;
  if (!(in >> low) || low <= 0) low = 32768;
  return low;
}

}  // namespace

uint16_t freeLoopbackPort() {
  static std::mutex mu;
  static std::set<uint16_t> handed_out;
  static std::mt19937 rng(std::random_device{}() ^ static_cast<unsigned>(::getpid()));
  std::lock_guard lock(mu);
  constexpr int kLowest = 10000;
  const int highest = ephemeralLow() - 1;
  if (highest - kLowest >= 1000) {
    std::uniform_int_distribution<int> pick(kLowest, highest);
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const auto port = static_cast<uint16_t>(pick(rng));
      if (handed_out.count(port) == 0 && tryBind(port) == port) {
        handed_out.insert(port);
        return port;
      }
    }
  }
  // A machine whose ephemeral range leaves no room below it: any port the kernel gives.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    const uint16_t port = tryBind(0);
    if (port != 0 && handed_out.insert(port).second) return port;
  }
  throw std::runtime_error("no free loopback port");
}

bool listensOn(pid_t pid, uint16_t port) {
  // Inodes of the sockets listening on the port ("st" 0A is TCP_LISTEN; the local address is
  // "<hex address>:<hex port>").
  std::set<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode;
      if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode)) {
        continue;
      }
      const size_t colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;
      if (std::stoul(local.substr(colon + 1), nullptr, 16) == port) inodes.insert(inode);
    }
  }
  if (inodes.empty()) return false;
  std::error_code ec;
  for (const auto& fd : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    const std::string target = std::filesystem::read_symlink(fd.path(), link_ec).string();
    // "socket:[<inode>]"
    if (!link_ec && target.rfind("socket:[", 0) == 0 && inodes.count(target.substr(8, target.size() - 9)) != 0) {
      return true;
    }
  }
  return false;
}

}  // namespace lockshift::testing
