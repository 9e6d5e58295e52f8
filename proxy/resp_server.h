#pragma once
// The RESP listener: accepts connections and runs a Session for each, on the event loops in turn
// (common/event_loop.h).
//
// Thread-safety: listen() and start() are called once at start-up; stop() may be called from any
// thread. Lifetime: must outlive the io_context's run() calls; sessions hold only ServerContext&.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "proxy/command.h"

namespace lockshift {

class Session;

// "127.0.0.1:6380", "[::1]:6380", "localhost:6380" → endpoint (resolving names once).
Result<asio::ip::tcp::endpoint> resolveListenAddress(const std::string& host_port);

class RespServer {
 public:
  // Accepts on `io`; sessions run on `io` and `more_loops` in turn, each loop driven by one thread.
  RespServer(asio::io_context& io, ServerContext& server, std::vector<asio::io_context*> more_loops = {});

  // Binds and listens. Errors: kUnavailable naming the address (e.g. port already in use).
  Status listen(const std::string& host_port);
  uint16_t port() const;
  void start();
  // Stops accepting and asks every session to finish its current batch and close.
  void stop();

 private:
  asio::awaitable<void> acceptLoop();
  asio::awaitable<void> untilSessionsClosed();
  void track(const std::shared_ptr<Session>& session);

  asio::io_context& io_;
  ServerContext& server_;
  const std::vector<asio::io_context*> more_loops_;
  size_t next_loop_ = 0;  // used by the accept loop only
  asio::ip::tcp::acceptor acceptor_;
  std::mutex mu_;
  std::list<std::weak_ptr<Session>> sessions_;  // GUARDED_BY(mu_)
  bool stopped_ = false;                         // GUARDED_BY(mu_)
};

}  // namespace lockshift
