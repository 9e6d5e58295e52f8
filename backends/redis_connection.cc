// RedisConnection's request pipeline: queueing, batched writes, in-order replies and deadlines.
// Connecting and the handshake are in redis_connect.cc.

#include "backends/redis_connection.h"

#include <sys/un.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <utility>

#include "common/unix_socket.h"

namespace lockshift::redis {

namespace {

resp::Limits replyLimits() {
  // The server is trusted to send what was written to it; only its own limits apply.
  resp::Limits limits;
  limits.max_bulk_length = size_t{512} << 20;  // Redis's proto-max-bulk-len
  limits.max_array_length = size_t{16} << 20;
  return limits;
}

// A Unix domain socket's endpoint. Built from a sockaddr_un rather than converted from Asio's
// local endpoint, whose conversion GCC's bounds check cannot follow. parseRedisAddress() has
// checked that the path fits.
Stream::endpoint unixEndpoint(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), std::min(path.size(), kMaxUnixPathLength));
  return Stream::endpoint(&address, sizeof address);
}

}  // namespace

RedisTarget::RedisTarget(RedisOptions options, std::shared_ptr<Fences> fences)
    : options_(std::move(options)),
      where_("redis " + options_.address),
      address_(parseRedisAddress(options_.address)),
      fences_(fences ? std::move(fences) : std::make_shared<Fences>(where_)) {
  if (address_.isOk() && !address_->unix_path.empty()) {
    endpoints_.push_back({unixEndpoint(address_->unix_path), address_->unix_path});
  }
}

std::vector<RedisEndpoint> RedisTarget::endpoints() const {
  std::lock_guard lock(mu_);
  return endpoints_;
}

void RedisTarget::setEndpoints(std::vector<RedisEndpoint> endpoints) const {
  std::lock_guard lock(mu_);
  endpoints_ = std::move(endpoints);
}

void RedisConnection::Completions::add(std::unique_ptr<ReplyHandler> done, Result<resp::Value> result) {
  if (done) items_.emplace_back(std::move(done), std::move(result));
}

void RedisConnection::Completions::run() {
  for (auto& [done, result] : items_) done->complete(std::move(result));
  items_.clear();
}

RedisConnection::RedisConnection(asio::io_context& io, std::shared_ptr<const RedisTarget> target)
    : target_(std::move(target)),
      backoff_(initialBackoff()),
      socket_(io),
      resolver_(io),
      retry_timer_(io),
      deadline_timer_(io),
      parser_(resp::Parser::Mode::kReply, replyLimits()) {}

bool RedisConnection::trySubmit(RedisRequest& request, Status* refusal) {
  std::lock_guard lock(mu_);
  if (state_ != State::kReady) {
    *refusal = Status::unavailable(last_error_.empty() ? target_->where() + ": not connected yet"
                                                       : last_error_);
    return false;
  }
  if (pending_.size() + request.discard_replies >= kMaxPending ||
      queued_.size() >= kMaxQueuedBytes) {
    *refusal = Status::unavailable(target_->where() + ": too many requests in flight");
    return false;
  }
  const auto deadline = deadlineFromNow();
  // One atomic load on the way of every request; the list is looked at only after a teardown.
  if (target_->fences().latest() != fences_seen_) fenceLocked(deadline);
  for (size_t i = 0; i < request.discard_replies; ++i) {
    pending_.push_back(Pending{nullptr, deadline, Step::kUser, ""});  // its reply is dropped
  }
  pushLocked(std::move(request.wire), Pending{std::move(request.done), deadline, Step::kUser, ""});
  return true;
}

bool RedisConnection::ready() {
  std::lock_guard lock(mu_);
  return state_ == State::kReady;
}

bool RedisConnection::firstAttemptPending() {
  std::lock_guard lock(mu_);
  return (state_ == State::kConnecting || state_ == State::kHandshake) && last_error_.empty();
}

std::chrono::steady_clock::time_point RedisConnection::deadlineFromNow() const {
  return std::chrono::steady_clock::now() + target_->options().command_timeout;
}

void RedisConnection::pushLocked(std::string wire, Pending pending) {
  pending_.push_back(std::move(pending));
  if (queued_.empty() && queued_.capacity() < wire.size()) {
    queued_ = std::move(wire);
  } else {
    queued_.append(wire);
  }
  scheduleFlushLocked();
  armDeadlineLocked();
}

// Defers the write to the end of the io_context's current batch of ready handlers, so the
// requests of every session whose read completed in the same turn leave in one write: one
// syscall here and one read in Redis for many requests instead of one each.
void RedisConnection::scheduleFlushLocked() {
  if (writing_ || flush_scheduled_) return;
  flush_scheduled_ = true;
  asio::post(socket_.get_executor(), [self = shared_from_this()] {
    std::lock_guard lock(self->mu_);
    self->flush_scheduled_ = false;
    self->flushLocked();
  });
}

// Starts a write of everything queued, unless one is in flight: its completion writes the rest.
void RedisConnection::flushLocked() {
  if (writing_ || queued_.empty()) return;
  writing_ = std::make_shared<std::string>(std::move(queued_));
  // The next batch is queued in the buffer of the last write, which has the room a batch needs:
  // a batch appended to an empty string reallocates as it grows.
  queued_ = std::move(spare_);
  queued_.clear();
  written_ = 0;
  writeSomeLocked();
}

void RedisConnection::writeSomeLocked() {
  auto data = writing_;
  socket_.async_write_some(asio::buffer(data->data() + written_, data->size() - written_),
                           [self = shared_from_this(), epoch = epoch_, data](
                               const boost::system::error_code& ec, size_t bytes) {
                             self->onWritten(epoch, ec, bytes);
                           });
}

void RedisConnection::onWritten(uint64_t epoch, const boost::system::error_code& ec, size_t bytes) {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (epoch != epoch_) return;
    if (ec) {
      failLocked("write failed: " + ec.message(), done);
    } else if (written_ += bytes; written_ < writing_->size()) {
      writeSomeLocked();
    } else {
      if (writing_->capacity() <= kMaxSpareBytes) spare_ = std::move(*writing_);
      writing_.reset();
      flushLocked();
    }
  }
  done.run();
}

void RedisConnection::readLocked() {
  auto buffer = read_buffer_;
  socket_.async_read_some(
      asio::buffer(*buffer),
      [self = shared_from_this(), epoch = epoch_, buffer](
          const boost::system::error_code& ec, size_t bytes) { self->onRead(epoch, ec, bytes); });
}

void RedisConnection::onRead(uint64_t epoch, const boost::system::error_code& ec, size_t bytes) {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (epoch != epoch_) return;
    if (ec) {
      failLocked(ec == asio::error::eof ? std::string("connection closed by the server")
                                        : "read failed: " + ec.message(),
                 done);
    } else {
      std::string_view in(read_buffer_->data(), bytes);
      bool alive = true;
      while (alive && !in.empty()) {
        in.remove_prefix(parser_.feed(in));
        if (parser_.state() == resp::Parser::State::kError) {
          failLocked("unreadable reply: " + parser_.error(), done);
          alive = false;
        } else if (parser_.state() == resp::Parser::State::kReady) {
          alive = deliverLocked(parser_.takeValue(), done);
        }
      }
      if (alive) {
        armDeadlineLocked();
        readLocked();
      }
    }
  }
  done.run();
}

// Hands `reply` to the oldest pending request. False when the connection failed meanwhile.
bool RedisConnection::deliverLocked(resp::Value reply, Completions& done) {
  if (pending_.empty()) {
    failLocked("a reply arrived with no request pending", done);
    return false;
  }
  Pending pending = std::move(pending_.front());
  pending_.pop_front();
  if (pending.step == Step::kFence) {
    onFenceReplyLocked(pending, reply);
    return true;
  }
  if (pending.step != Step::kUser) return onHandshakeReplyLocked(pending, reply, done);
  done.add(std::move(pending.done), std::move(reply));
  return true;
}

void RedisConnection::fenceLocked(std::chrono::steady_clock::time_point deadline) {
  for (const Fences::Fence& fence : target_->fences().since(&fences_seen_)) {
    std::string wire;
    resp::encodeCommand({"CLIENT", "KILL", "ID", std::to_string(fence.client.id), "ADDR", fence.client.addr}, wire);
    pushLocked(std::move(wire), Pending{nullptr, deadline, Step::kFence, "CLIENT KILL", fence.serial});
  }
}

void RedisConnection::onFenceReplyLocked(const Pending& pending, const resp::Value& reply) {
  Fences& fences = target_->fences();
  if (reply.type == resp::Type::kInteger) {
    fences.done(pending.fence_serial);  // 0 or 1 killed: either way that client is gone
  } else if (reply.isError() && Fences::refusedForGood(reply.str)) {
    fences.unavailable("CLIENT KILL failed: " + reply.str);
  } else {
    fences.again(pending.fence_serial);
  }
}

// The timer waits for the deadline of the oldest pending request. Later requests have later
// deadlines, so one timer suffices: when it fires early (that request was answered), it waits
// again for the request that is oldest now.
void RedisConnection::armDeadlineLocked() {
  if (deadline_armed_ || pending_.empty()) return;
  deadline_armed_ = true;
  deadline_timer_.expires_at(pending_.front().deadline);
  deadline_timer_.async_wait(
      [self = shared_from_this(), epoch = epoch_](const boost::system::error_code& ec) {
        self->onDeadline(epoch, ec);
      });
}

void RedisConnection::onDeadline(uint64_t epoch, const boost::system::error_code& ec) {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (epoch != epoch_) return;
    deadline_armed_ = false;
    if (pending_.empty()) return;
    if (pending_.front().deadline > std::chrono::steady_clock::now()) {
      armDeadlineLocked();
      return;
    }
    const std::string ms = std::to_string(target_->options().command_timeout.count()) + " ms";
    Pending late = std::move(pending_.front());
    pending_.pop_front();
    if (late.step == Step::kFence) target_->fences().again(late.fence_serial);
    // Written and unanswered: Redis may still run it, and what was written after it.
    if (late.step == Step::kUser) {
      done.add(std::move(late.done), Status::timeout(target_->where() + ": no reply within " + ms));
      failLocked("a command got no reply within " + ms + "; connection closed", done, Leftovers::kUnanswered);
    } else {
      failLocked(std::string(late.what) + " got no reply within " + ms, done, Leftovers::kUnanswered);
    }
  }
  done.run();
}

}  // namespace lockshift::redis
