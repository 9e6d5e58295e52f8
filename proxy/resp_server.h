#pragma once
// The RESP listener: accepts connections and runs a Session for each on its own strand.
//
// Thread-safety: listen() and start() are called once at start-up; stop() may be called from any
// thread. Lifetime: must outlive the io_context's run() calls; sessions hold only ServerContext&.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <list>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "proxy/command.h"

namespace lockshift {

class Session;

// "127.0.0.1:6380", "[::1]:6380", "localhost:6380" → endpoint (resolving names once).
Result<asio::ip::tcp::endpoint> resolveListenAddress(const std::string& host_port);

class RespServer {
 public:
  RespServer(asio::io_context& io, ServerContext& server);

  // Binds and listens. Errors: kUnavailable naming the address (e.g. port already in use).
  Status listen(const std::string& host_port);
  uint16_t port() const;
  void start();
  // Stops accepting and asks every session to finish its current batch and close.
  void stop();

 private:
  asio::awaitable<void> acceptLoop();
  void track(const std::shared_ptr<Session>& session);

  asio::io_context& io_;
  ServerContext& server_;
  asio::ip::tcp::acceptor acceptor_;
  std::mutex mu_;
  std::list<std::weak_ptr<Session>> sessions_;  // GUARDED_BY(mu_)
  bool stopped_ = false;                         // GUARDED_BY(mu_)
};

}  // namespace lockshift
