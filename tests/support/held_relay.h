#pragma once
// HeldRelay: a TCP relay on 127.0.0.1 in front of a server, for the one fault no real part makes
// at an exact step: bytes a client wrote that the server reads only later, after bytes written
// later on other connections. That is what a busy or stopped Redis does with a command whose
// client has given up on it; stopping the whole process cannot order it, since a thawed server
// reads its connections in the order their bytes arrived.
//
// hold() holds back what the connections open now send toward the server (connections opened
// later pass), keeping their server side open even when the client side closes, as the kernel
// keeps the bytes of a closed socket for the server to read. release() sends the held bytes on
// and then closes what the client had closed.
//
// One thread runs every connection with poll(), in steps of at most 20 ms; the destructor stops
// it and closes everything. Thread-safety: every method may be called from any thread.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace lockshift::testing {

class HeldRelay {
 public:
  // Listens on a free loopback port; each accepted connection opens one to 127.0.0.1:`upstream`.
  explicit HeldRelay(uint16_t upstream);
  ~HeldRelay();
  HeldRelay(const HeldRelay&) = delete;
  HeldRelay& operator=(const HeldRelay&) = delete;

  uint16_t port() const { return port_; }

  // Holds back what every connection open now sends toward the server, from now on. Returns the
  // server-side addresses ("127.0.0.1:port", as the server's CLIENT LIST shows them) of the
  // connections held.
  std::vector<std::string> hold();
  // Sends the held bytes on to the server and stops holding; a held connection whose client side
  // closed is then closed toward the server too. Bytes for a connection the server closed
  // meanwhile are dropped. Returns the server-side addresses of the connections that got bytes and
  // were closed: once the server's CLIENT LIST has none of them, it has run what they carried.
  std::vector<std::string> release();
  // Closes the client side of every held connection, as a middlebox that drops a connection
  // would, while the server side stays open with the held bytes. Returns how many it closed.
  size_t cutClients();
  // Bytes held back so far and not released.
  size_t held();
  // Closes each connection accepted from now on at once, as an address the server no longer
  // listens on would refuse it; those open now go on.
  void refuseNew() { refusing_ = true; }
  // Relays the connections accepted from now on to 127.0.0.1:`upstream`, and closes those open
  // now on both sides (held bytes are dropped), as when another server takes over the address.
  void retarget(uint16_t upstream);

 private:
  struct Link;
  void run();
  void acceptOne();
  // Runs `op` on the relay's thread and waits for it (bounded).
  void onRelayThread(std::function<void()> op);

  int listener_ = -1;
  uint16_t port_ = 0;
  uint16_t upstream_;  // the relay thread's only
  std::vector<std::unique_ptr<Link>> links_;  // the relay thread's only
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> request_;  // GUARDED_BY(mu_): run by the relay thread, then cleared
  std::atomic<bool> stop_{false};
  std::atomic<bool> refusing_{false};
  std::thread thread_;
};

}  // namespace lockshift::testing
