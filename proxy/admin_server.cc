#include "proxy/admin_server.h"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <iostream>
#include <list>
#include <mutex>

#include "proxy/admin_api.h"
#include "proxy/admin_requests.h"
#include "proxy/resp_server.h"

namespace lockshift {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr uint64_t kBodyLimit = 64 * 1024;
constexpr uint32_t kHeaderLimit = 16 * 1024;
constexpr std::chrono::seconds kWriteTimeout{10};
// After an error answer the rest of the request is read and dropped for a while before the
// close, so the client is not sent a reset that could discard the answer (nginx's lingering
// close).
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr size_t kLingerBytes = 1 << 20;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

std::string peerAddress(const tcp::socket& socket) {
  boost::system::error_code ec;
  tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) return "unknown";
  std::string address = peer.address().to_string();
  return peer.address().is_v6() ? "[" + address + "]" : address;
}

bool isHttpError(const beast::error_code& ec) {
  return ec.category() == http::make_error_code(http::error::bad_method).category();
}

// One admin connection: reads a request, answers it, and repeats while the client keeps the
// connection alive. Everything runs on the connection's strand (the socket's executor).
// Lifetime: owned by its coroutine (start()); requestStop() may be called from any thread.
class AdminSession : public std::enable_shared_from_this<AdminSession> {
 public:
  AdminSession(tcp::socket socket, std::shared_ptr<AdminApi> api,
               std::chrono::milliseconds read_timeout)
      : stream_(std::move(socket)),
        api_(std::move(api)),
        read_timeout_(read_timeout),
        peer_(peerAddress(stream_.socket())) {}

  void start() {
    asio::co_spawn(
        stream_.get_executor(), [self = shared_from_this()] { return self->run(); },
        [](std::exception_ptr e) {
          if (e) std::cerr << "lockshift: admin session ended by an exception\n";
        });
  }

  // A connection waiting for a request closes now; one being answered closes after the answer.
  void requestStop() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->stopping_ = true;
      if (self->reading_) self->close();
    });
  }

 private:
  using Request = http::request<http::string_body>;
  using Response = http::response<http::string_body>;

  asio::awaitable<void> run();
  // The next complete request; nullopt when the connection is done (closed or answered).
  asio::awaitable<std::optional<Request>> readRequest();
  asio::awaitable<void> answerReadError(const beast::error_code& ec);
  asio::awaitable<AdminResponse> dispatch(Request request);
  asio::awaitable<bool> write(AdminResponse answer, unsigned version, bool keep_alive);
  asio::awaitable<void> lingerAndClose();

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<AdminApi> api_;
  std::chrono::milliseconds read_timeout_;
  std::string peer_;
  bool reading_ = false;   // waiting for client bytes: a stop closes at once
  bool stopping_ = false;  // answer the request in hand, then close
};

asio::awaitable<void> AdminSession::run() {
  while (!stopping_) {
    std::optional<Request> request = co_await readRequest();
    if (!request) co_return;
    bool keep_alive = request->keep_alive();
    unsigned version = request->version();
    AdminResponse answer = co_await dispatch(std::move(*request));
    keep_alive = keep_alive && !stopping_;
    if (!co_await write(std::move(answer), version, keep_alive) || !keep_alive) break;
  }
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
}

asio::awaitable<std::optional<AdminSession::Request>> AdminSession::readRequest() {
  http::request_parser<http::string_body> parser;
  parser.body_limit(kBodyLimit);
  parser.header_limit(kHeaderLimit);
  reading_ = true;
  stream_.expires_after(read_timeout_);
  auto [ec, n] = co_await http::async_read_header(stream_, buffer_, parser, kTuple);
  if (!ec && !parser.is_done()) {
    if (beast::iequals(parser.get()[http::field::expect], "100-continue")) {
      http::response<http::empty_body> go_on{http::status::continue_, parser.get().version()};
      stream_.expires_after(kWriteTimeout);
      auto [wec, wn] = co_await http::async_write(stream_, go_on, kTuple);
      ec = wec;
    }
    if (!ec) {
      stream_.expires_after(read_timeout_);
      auto [bec, bn] = co_await http::async_read(stream_, buffer_, parser, kTuple);
      ec = bec;
    }
  }
  reading_ = false;
  if (ec) {
    co_await answerReadError(ec);
    co_return std::nullopt;
  }
  co_return parser.release();
}

// Limits and malformed requests get an answer before the close; a timeout, a reset or the
// client's own close end the connection quietly.
asio::awaitable<void> AdminSession::answerReadError(const beast::error_code& ec) {
  unsigned status = 0;
  std::string message;
  if (ec == http::error::body_limit) {
    status = 413;
    message = "request body exceeds " + std::to_string(kBodyLimit) + " bytes";
  } else if (ec == http::error::header_limit) {
    status = 431;
    message = "request header exceeds " + std::to_string(kHeaderLimit) + " bytes";
  } else if (isHttpError(ec) && ec != http::error::end_of_stream &&
             ec != http::error::partial_message) {
    status = 400;
    message = "malformed HTTP request: " + ec.message();
  }
  if (status == 0) {
    close();
    co_return;
  }
  AdminResponse answer;
  answer.status = status;
  answer.body = errorBody(message);
  if (co_await write(std::move(answer), 11, false)) co_await lingerAndClose();
  close();
}

asio::awaitable<AdminResponse> AdminSession::dispatch(Request request) {
  AdminRequest call;
  call.method = std::string(request.method_string());
  call.target = std::string(request.target());
  call.body = std::move(request.body());
  if (auto it = request.find(http::field::authorization); it != request.end()) {
    call.authorization = std::string(it->value());
  }
  call.peer = peer_;
  // The session boundary: nothing thrown below reaches Asio; the client gets a 500 instead.
  std::string what;
  try {
    co_return co_await api_->handle(std::move(call));
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown exception";
  }
  std::cerr << "lockshift: admin " << request.method_string() << " " << request.target()
            << " failed: " << what << "\n";
  AdminResponse answer;
  answer.status = 500;
  answer.body = errorBody("internal error: " + what);
  co_return answer;
}

asio::awaitable<bool> AdminSession::write(AdminResponse answer, unsigned version, bool keep_alive) {
  Response response{static_cast<http::status>(answer.status), version};
  response.set(http::field::server, "lockshift");
  response.set(http::field::content_type, answer.content_type);
  for (auto& [name, value] : answer.headers) response.set(name, value);
  response.keep_alive(keep_alive);
  response.body() = std::move(answer.body);
  response.prepare_payload();
  stream_.expires_after(kWriteTimeout);
  auto [ec, n] = co_await http::async_write(stream_, response, kTuple);
  co_return !ec;
}

asio::awaitable<void> AdminSession::lingerAndClose() {
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::array<char, 4096> scratch;
  size_t drained = 0;
  reading_ = true;
  stream_.expires_after(kLingerTimeout);
  while (drained < kLingerBytes && !stopping_) {
    auto [ec, n] = co_await stream_.async_read_some(asio::buffer(scratch), kTuple);
    if (ec) break;
    drained += n;
  }
  reading_ = false;
}

}  // namespace

// Accepts connections and keeps weak references to their sessions for stop().
// Thread-safety: the acceptor lives on its own strand; the session list is guarded by mu_.
// Lifetime: shared by AdminServer and the accept coroutine, so it outlives a pending accept.
class AdminServer::Impl : public std::enable_shared_from_this<AdminServer::Impl> {
 public:
  Impl(asio::io_context& io, ControlPlane& control, ConsistencyService* consistency,
       std::function<std::string()> metrics_text, AdminOptions options)
      : io_(io),
        options_(std::move(options)),
        api_(std::make_shared<AdminApi>(control, consistency, std::move(metrics_text), options_.token,
                                        options_.token_file)),
        acceptor_(asio::make_strand(io)) {}

  Status listen();
  uint16_t port() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }
  void start() {
    asio::co_spawn(
        acceptor_.get_executor(), [self = shared_from_this()] { return self->acceptLoop(); },
        [](std::exception_ptr e) {
          if (e) std::cerr << "lockshift: admin accept loop ended by an exception\n";
        });
  }
  void stop();

 private:
  asio::awaitable<void> acceptLoop();
  // False once stopped: the caller drops the connection.
  bool track(const std::shared_ptr<AdminSession>& session);

  asio::io_context& io_;
  AdminOptions options_;
  std::shared_ptr<AdminApi> api_;
  tcp::acceptor acceptor_;
  std::mutex mu_;
  std::list<std::weak_ptr<AdminSession>> sessions_;  // GUARDED_BY(mu_)
  bool stopped_ = false;                             // GUARDED_BY(mu_)
};

Status AdminServer::Impl::listen() {
  auto endpoint = resolveListenAddress(options_.listen);
  if (!endpoint) return Status::unavailable("admin API: " + endpoint.status().message());
  boost::system::error_code ec;
  acceptor_.open(endpoint->protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    return Status::unavailable("admin API cannot listen on " + options_.listen + ": " +
                               ec.message());
  }
  return Status::ok();
}

void AdminServer::Impl::stop() {
  std::list<std::weak_ptr<AdminSession>> sessions;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    sessions.swap(sessions_);
  }
  asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
  for (auto& weak : sessions) {
    if (auto session = weak.lock()) session->requestStop();
  }
}

bool AdminServer::Impl::track(const std::shared_ptr<AdminSession>& session) {
  std::lock_guard lock(mu_);
  if (stopped_) return false;
  sessions_.remove_if([](const std::weak_ptr<AdminSession>& w) { return w.expired(); });
  sessions_.push_back(session);
  return true;
}

asio::awaitable<void> AdminServer::Impl::acceptLoop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(io_), kTuple);
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
    if (ec) {
      // Out of file descriptors and similar: report, pause, keep serving existing clients.
      std::cerr << "lockshift: admin accept failed: " << ec.message() << "\n";
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(kTuple);
      continue;
    }
    auto session =
        std::make_shared<AdminSession>(tcp::socket(std::move(socket)), api_, options_.read_timeout);
    if (!track(session)) co_return;
    session->start();
  }
}

AdminServer::AdminServer(asio::io_context& io, ControlPlane& control, ConsistencyService* consistency,
                         std::function<std::string()> metrics_text, AdminOptions options)
    : impl_(std::make_shared<Impl>(io, control, consistency, std::move(metrics_text), std::move(options))) {}

AdminServer::~AdminServer() { impl_->stop(); }

Status AdminServer::listen() { return impl_->listen(); }
uint16_t AdminServer::port() const { return impl_->port(); }
void AdminServer::start() { impl_->start(); }
void AdminServer::stop() { impl_->stop(); }

}  // namespace lockshift
