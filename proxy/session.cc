#include "proxy/session.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "resp/writer.h"

namespace lockshift {

namespace {
constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

// Counts one command in ServerContext::commands_in_flight while it lives.
class InFlight {
 public:
  explicit InFlight(std::atomic<int64_t>& count) : count_(count) { count_.fetch_add(1, std::memory_order_relaxed); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() { count_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::atomic<int64_t>& count_;
};
}

Session::Session(asio::ip::tcp::socket socket, ServerContext& server)
    : socket_(std::move(socket)),
      server_(server),
      parser_(resp::Parser::Mode::kRequest, server.limits(false)),
      watchdog_timer_(socket_.get_executor()),
      last_activity_(std::chrono::steady_clock::now()) {
  client_.id = server_.next_client_id.fetch_add(1);
  client_.parser = &parser_;
  boost::system::error_code ec;
  auto peer = socket_.remote_endpoint(ec);
  if (!ec) client_.peer = peer.address().to_string() + ":" + std::to_string(peer.port());
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.set_option(asio::socket_base::keep_alive(true), ec);
  // Writes are tried at once (see flush()); reads and writes that must wait still go through
  // the reactor.
  socket_.non_blocking(true, ec);
  server_.connected_clients.fetch_add(1);
  server_.metrics.connectionsActive().Increment();
}

Session::~Session() {
  server_.connected_clients.fetch_sub(1);
  server_.metrics.connectionsActive().Decrement();
}

void Session::start() {
  auto self = shared_from_this();
  asio::co_spawn(socket_.get_executor(), [self] { return self->run(); }, asio::detached);
  asio::co_spawn(socket_.get_executor(), [self] { return self->watchdog(); }, asio::detached);
}

void Session::close() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    self->closed_ = true;
    boost::system::error_code ec;
    self->socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    self->socket_.close(ec);
    self->watchdog_timer_.cancel();
  });
}

void Session::requestStop() {
  asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
    self->stopping_ = true;
    if (self->reading_) self->close();
  });
}

// The requests run in this coroutine itself, and a write that the socket takes at once needs no
// coroutine either: a coroutine per batch or per write would be a frame to allocate for almost
// every request.
asio::awaitable<void> Session::run() {
  in_.reserve(kReadChunk);
  read_buf_.resize(kReadChunk);
  for (;;) {
    // Every complete request in in_[in_pos_...], in order; `open` false when the connection
    // closes after the replies so far (a protocol error, QUIT, a failed write).
    bool open = true;
    while (open && in_pos_ < in_.size() && !closed_) {
      in_pos_ += parser_.feed(std::string_view(in_).substr(in_pos_));
      if (parser_.state() == resp::Parser::State::kError) {
        protocolError(parser_.error());
        open = false;
        break;
      }
      if (parser_.state() != resp::Parser::State::kReady) break;

      Args args = parser_.takeRequest();
      CommandContext ctx{server_, client_, out_, "proxy", {}};
      {
        InFlight counted(server_.commands_in_flight);
        CommandRecord record;
        if (Handler handler = beginCommand(ctx, args, record)) co_await handler(ctx, args);
        endCommand(ctx, record);
      }
      parser_.recycle(std::move(args));
      if (client_.close_after_reply) open = false;
      if (open && out_.size() >= kMaxPendingOutput) {
        auto write = flush();
        open = co_await std::move(write);
      }
    }
    const bool replied = !out_.empty();
    if (replied) {
      const WriteState written = writeNow();
      if (written == WriteState::kFailed) break;
      if (written == WriteState::kPending) {
        auto rest = writeRest();
        if (!co_await std::move(rest)) break;
      }
    }
    if (!open || closed_) break;

    // Compact what was consumed, then enforce the per-connection input cap.
    in_.erase(0, in_pos_);
    in_pos_ = 0;
    if (in_.size() + parser_.bufferedBytes() > server_.config.server.max_input_buffer) {
      protocolError("client input buffer exceeds max_input_buffer");
      auto write = flush();
      co_await std::move(write);
      break;
    }

    // Asio tries every read on the socket before it waits on epoll for it. Right after a reply
    // the client has rarely sent its next command yet, so that try finds nothing: a wasted
    // recv() per command, then the real one when epoll reports the data. While other sessions
    // have commands under way, letting the handlers already queued run first (their replies,
    // the poll for new events) gives the client that time, and the try then mostly finds the
    // command (BENCHMARKS.md, "The read after a reply"). A lone client would only gain a
    // scheduler pass and an extra poll, so its read starts at once.
    if (replied && server_.commands_in_flight.load(std::memory_order_relaxed) > 0) {
      co_await asio::post(socket_.get_executor(), asio::use_awaitable);
    }
    if (stopping_ || closed_) break;
    // Read into a fixed buffer and append only what arrived: resizing in_ first would zero-fill
    // kReadChunk bytes on every read.
    // The idle time starts here; a write that has to wait restarts it (writeRest()). Only these
    // two read the clock: the watchdog looks at it while a read or such a write is under way.
    last_activity_ = std::chrono::steady_clock::now();
    reading_ = true;
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(read_buf_), kUseTuple);
    reading_ = false;
    in_.append(read_buf_.data(), n);
    if (ec) break;
  }
  close();
}

Session::WriteState Session::writeNow() {
  if (closed_) return WriteState::kFailed;
  if (out_.empty()) return WriteState::kDone;
  // The replies almost always fit the socket's send buffer: written straight away, the request
  // is done without suspending the session and resuming it through the scheduler.
  boost::system::error_code ec;
  size_t n = socket_.write_some(asio::buffer(out_), ec);
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    ec = {};
    n = 0;
  }
  if (!ec && n < out_.size()) {
    out_.erase(0, n);
    return WriteState::kPending;
  }
  clearOutput();
  return ec ? WriteState::kFailed : WriteState::kDone;
}

asio::awaitable<bool> Session::writeRest() {
  last_activity_ = std::chrono::steady_clock::now();
  writing_ = true;
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out_), kUseTuple);
  writing_ = false;
  clearOutput();
  co_return !ec;
}

asio::awaitable<bool> Session::flush() {
  const WriteState written = writeNow();
  if (written != WriteState::kPending) co_return written == WriteState::kDone;
  auto rest = writeRest();
  co_return co_await std::move(rest);
}

void Session::clearOutput() {
  out_.clear();
  if (out_.capacity() > kMaxPendingOutput * 4) out_.shrink_to_fit();
}

void Session::protocolError(const std::string& message) {
  server_.metrics.countError("protocol");
  resp::writeError(out_, "ERR Protocol error: " + message);
}

// Closes connections idle for longer than idle_timeout, or stuck in a write for kWriteTimeout.
// It checks once a second instead of re-arming a timer per operation, which keeps the request
// path free of timer work.
asio::awaitable<void> Session::watchdog() {
  const auto idle = server_.config.server.idle_timeout;
  while (!closed_) {
    watchdog_timer_.expires_after(std::chrono::seconds(1));
    co_await watchdog_timer_.async_wait(kUseTuple);  // cancelled by close()
    if (closed_) break;
    auto quiet = std::chrono::steady_clock::now() - last_activity_;
    if ((writing_ && quiet > kWriteTimeout) || (reading_ && idle.count() > 0 && quiet > idle)) {
      close();
      break;
    }
  }
}

}  // namespace lockshift
