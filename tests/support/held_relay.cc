#include "tests/support/held_relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <utility>

namespace lockshift::testing {

namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// Writes all of `data` (a loopback socket takes test-sized writes at once); false when the peer
// is gone.
bool sendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

// One relayed connection: the client's side (down) and the server's (up).
struct HeldRelay::Link {
  int down = -1;
  int up = -1;
  std::string up_address;  // the up socket's local address, as the server sees the client
  bool holding = false;
  std::string held;        // bytes from down kept back while holding
  bool down_closed = false;

  ~Link() {
    if (down >= 0) ::close(down);
    if (up >= 0) ::close(up);
  }
  void closeDown() {
    if (down >= 0) ::close(down);
    down = -1;
    down_closed = true;
  }
  void closeUp() {
    if (up >= 0) ::close(up);
    up = -1;
  }
  bool finished() const { return down < 0 && up < 0; }
};

HeldRelay::HeldRelay(uint16_t upstream) : upstream_(upstream) {
  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = loopback(0);
  socklen_t length = sizeof address;
  if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener_, 64) != 0 ||
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (listener_ >= 0) ::close(listener_);
    throw std::runtime_error("HeldRelay: cannot listen on loopback");
  }
  port_ = ntohs(address.sin_port);
  thread_ = std::thread([this] { run(); });
}

HeldRelay::~HeldRelay() {
  stop_ = true;
  thread_.join();
  links_.clear();
  ::close(listener_);
}

void HeldRelay::acceptOne() {
  auto link = std::make_unique<Link>();
  link->down = ::accept(listener_, nullptr, nullptr);
  if (link->down < 0 || refusing_) return;  // closed by ~Link
  link->up = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in server = loopback(upstream_);
  if (link->up < 0 || ::connect(link->up, reinterpret_cast<sockaddr*>(&server), sizeof server) != 0) {
    return;  // the client sees its connection closed, as with a server that is down
  }
  int one = 1;
  ::setsockopt(link->up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(link->down, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in local{};
  socklen_t length = sizeof local;
  ::getsockname(link->up, reinterpret_cast<sockaddr*>(&local), &length);
  link->up_address = "127.0.0.1:" + std::to_string(ntohs(local.sin_port));
  links_.push_back(std::move(link));
}

void HeldRelay::run() {
  char buffer[64 * 1024];
  while (!stop_) {
    {
      std::lock_guard lock(mu_);
      if (request_) {
        request_();
        request_ = nullptr;
        cv_.notify_all();
      }
    }
    std::vector<pollfd> fds{{listener_, POLLIN, 0}};
    for (const auto& link : links_) {
      fds.push_back({link->down, static_cast<short>(link->down >= 0 ? POLLIN : 0), 0});
      fds.push_back({link->up, static_cast<short>(link->up >= 0 ? POLLIN : 0), 0});
    }
    if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
    const size_t polled = links_.size();  // acceptOne() may add one that was not polled
    if (fds[0].revents & POLLIN) acceptOne();
    for (size_t i = 0; i < polled; ++i) {
      Link& link = *links_[i];
      const pollfd& down = fds[1 + 2 * i];
      const pollfd& up = fds[2 + 2 * i];
      if (link.down >= 0 && (down.revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::recv(link.down, buffer, sizeof buffer, 0);
        if (n <= 0) {
          link.closeDown();
          if (!link.holding) link.closeUp();  // held: the server has yet to read up to the close
        } else if (link.holding) {
          link.held.append(buffer, static_cast<size_t>(n));
        } else if (link.up < 0 || !sendAll(link.up, buffer, static_cast<size_t>(n))) {
          link.closeUp();
          link.closeDown();
        }
      }
      if (link.up >= 0 && (up.revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t n = ::recv(link.up, buffer, sizeof buffer, 0);
        if (n <= 0) {
          link.closeUp();  // the server closed it (a CLIENT KILL, say): held bytes can never run
          link.held.clear();
          link.closeDown();
        } else if (link.down >= 0 && !sendAll(link.down, buffer, static_cast<size_t>(n))) {
          link.closeDown();
          if (!link.holding) link.closeUp();
        }
      }
    }
    std::erase_if(links_, [](const auto& link) { return link->finished(); });
  }
}

void HeldRelay::onRelayThread(std::function<void()> op) {
  std::unique_lock lock(mu_);
  request_ = std::move(op);
  if (!cv_.wait_for(lock, std::chrono::seconds(5), [this] { return !request_; })) {
    throw std::runtime_error("HeldRelay: the relay thread did not answer within 5 s");
  }
}

std::vector<std::string> HeldRelay::hold() {
  std::vector<std::string> held;
  onRelayThread([&] {
    for (auto& link : links_) {
      if (link->up < 0) continue;
      link->holding = true;
      held.push_back(link->up_address);
    }
  });
  return held;
}

std::vector<std::string> HeldRelay::release() {
  std::vector<std::string> delivered;
  onRelayThread([&] {
    for (auto& link : links_) {
      if (!link->holding) continue;
      link->holding = false;
      const bool sent = link->up >= 0 && !link->held.empty() && sendAll(link->up, link->held.data(), link->held.size());
      link->held.clear();
      if (link->down_closed) {
        link->closeUp();
        if (sent) delivered.push_back(link->up_address);
      }
    }
  });
  return delivered;
}

size_t HeldRelay::cutClients() {
  size_t cut = 0;
  onRelayThread([&] {
    for (auto& link : links_) {
      if (!link->holding || link->down < 0) continue;
      link->closeDown();
      ++cut;
    }
  });
  return cut;
}

void HeldRelay::retarget(uint16_t upstream) {
  onRelayThread([&] {
    upstream_ = upstream;
    links_.clear();  // ~Link closes both sides
  });
}

size_t HeldRelay::held() {
  size_t bytes = 0;
  onRelayThread([&] {
    for (const auto& link : links_) bytes += link->held.size();
  });
  return bytes;
}

}  // namespace lockshift::testing
