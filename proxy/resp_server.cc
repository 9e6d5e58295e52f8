#include "proxy/resp_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <iostream>

#include "proxy/session.h"

namespace lockshift {

Result<asio::ip::tcp::endpoint> resolveListenAddress(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return Status::invalidArgument("address '" + host_port + "' has no port");
  std::string host = host_port.substr(0, colon);
  std::string port = host_port.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto results = resolver.resolve(host, port, asio::ip::tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return Status::invalidArgument("cannot resolve '" + host_port + "': " + ec.message());
  }
  return results.begin()->endpoint();
}

// The acceptor has a strand of its own: stop()'s close may come from another thread while the
// accept loop starts its next accept.
RespServer::RespServer(asio::io_context& io, ServerContext& server, std::vector<asio::io_context*> more_loops)
    : io_(io), server_(server), more_loops_(std::move(more_loops)), acceptor_(asio::make_strand(io)) {}

Status RespServer::listen(const std::string& host_port) {
  auto endpoint = resolveListenAddress(host_port);
  if (!endpoint) return endpoint.status();
  boost::system::error_code ec;
  acceptor_.open(endpoint->protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::unavailable("cannot listen on " + host_port + ": " + ec.message());
  return Status::ok();
}

uint16_t RespServer::port() const {
  boost::system::error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void RespServer::start() {
  asio::co_spawn(acceptor_.get_executor(), acceptLoop(), asio::detached);
}

void RespServer::stop() {
  std::list<std::weak_ptr<Session>> sessions;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    sessions.swap(sessions_);
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  for (auto& weak : sessions) {
    if (auto s = weak.lock()) s->requestStop();
  }
  // Loop 0 keeps running until the sessions of every loop have closed, so what their last
  // commands hand to it (the mirror, the router's repairs) still runs, as with one loop.
  if (!more_loops_.empty()) asio::co_spawn(acceptor_.get_executor(), untilSessionsClosed(), asio::detached);
}

asio::awaitable<void> RespServer::untilSessionsClosed() {
  asio::steady_timer pause(acceptor_.get_executor());
  while (server_.connected_clients.load() > 0) {
    pause.expires_after(std::chrono::milliseconds(10));
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void RespServer::track(const std::shared_ptr<Session>& session) {
  std::lock_guard lock(mu_);
  sessions_.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
  sessions_.push_back(session);
}

asio::awaitable<void> RespServer::acceptLoop() {
  for (;;) {
    // Connections go to the event loops in turn. Each loop is driven by one thread, which
    // serializes a session's handlers without a strand.
    const size_t loop = next_loop_++ % (more_loops_.size() + 1);
    asio::io_context& io = loop == 0 ? io_ : *more_loops_[loop - 1];
    auto [ec, socket] = co_await acceptor_.async_accept(io, asio::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and similar: report, then keep serving existing clients.
      std::cerr << "lockshift: accept failed: " << ec.message() << "\n";
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    if (server_.connected_clients.load() >= static_cast<int64_t>(server_.config.server.max_clients)) {
      server_.metrics.connectionsRejected().Increment();
      static const std::string kFull = "-ERR max number of clients reached\r\n";
      boost::system::error_code ignored;
      asio::write(socket, asio::buffer(kFull), ignored);
      continue;
    }
    server_.metrics.connectionsAccepted().Increment();
    auto session = std::make_shared<Session>(std::move(socket), server_);
    {
      std::lock_guard lock(mu_);
      if (stopped_) co_return;
    }
    track(session);
    session->start();
  }
}

}  // namespace lockshift
