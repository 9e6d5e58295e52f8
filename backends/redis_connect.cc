// RedisConnection's life cycle: resolving, connecting, the handshake, teardown, backoff and
// close. The request pipeline is in redis_connection.cc.

#include <algorithm>
#include <boost/asio/socket_base.hpp>
#include <utility>

#include "backends/redis_connection.h"
#include "backends/redis_scripts.h"
#include "common/files.h"
#include "proxy/atlantis_script.h"

namespace lockshift::redis {

void RedisConnection::start() {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (state_ != State::kIdle) return;
    connectLocked(done);
  }
  done.run();
}

void RedisConnection::close() {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    last_error_ = target_->where() + ": store closed";
    teardownLocked(Status::unavailable(last_error_), done, Leftovers::kGone);
  }
  done.run();
}

// One attempt: resolve (unless the pool already has the endpoints), then connect to each
// endpoint in turn, all within connect_timeout.
void RedisConnection::connectLocked(Completions& done) {
  const Result<RedisAddress>& address = target_->address();
  if (!address.isOk()) {
    // A configuration error that no retry can fix: stay idle and refuse every request.
    last_error_ = target_->where() + ": " + address.status().message();
    return;
  }
  const RedisOptions& options = target_->options();
  if (options.password_file.empty()) {
    password_ = options.password;
  } else {
    Result<std::string> secret = readSecretFile(options.password_file);
    if (!secret) {
      failLocked("password_file: " + secret.status().message(), done);
      return;
    }
    password_ = std::move(secret.value());
  }
  state_ = State::kConnecting;
  retry_timer_.expires_after(options.connect_timeout);
  retry_timer_.async_wait(
      [self = shared_from_this(), epoch = epoch_](const boost::system::error_code& ec) {
        self->onRetryTimer(epoch, ec);
      });
  endpoints_ = target_->endpoints();
  if (!endpoints_.empty()) {
    connectToLocked(0, "", done);
    return;
  }
  resolver_.async_resolve(
      address->tcp.host, address->tcp.port,
      [self = shared_from_this(), epoch = epoch_](const boost::system::error_code& ec,
                                                  const tcp::resolver::results_type& results) {
        self->onResolved(epoch, ec, results);
      });
}

void RedisConnection::onResolved(uint64_t epoch, const boost::system::error_code& ec,
                                 const tcp::resolver::results_type& results) {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (epoch != epoch_) return;
    if (ec) {
      failLocked("cannot resolve " + target_->address()->tcp.host + ": " + ec.message(), done);
    } else {
      endpoints_.clear();
      for (const auto& entry : results) {
        const tcp::endpoint& endpoint = entry.endpoint();
        endpoints_.push_back(
            {endpoint, endpoint.address().to_string() + " port " + std::to_string(endpoint.port())});
      }
      target_->setEndpoints(endpoints_);
      connectToLocked(0, "no address found", done);
    }
  }
  done.run();
}

// Connects to endpoints_[index], or to the next one that can be tried; fails the attempt with
// `previous_error` (the last endpoint's) when none is left.
void RedisConnection::connectToLocked(size_t index, std::string previous_error, Completions& done) {
  for (; index < endpoints_.size(); ++index) {
    boost::system::error_code ec;
    socket_.close(ec);
    socket_.open(endpoints_[index].endpoint.protocol(), ec);
    if (!ec) {
      auto connected = [self = shared_from_this(), epoch = epoch_, index](const boost::system::error_code& result) {
        self->onConnected(epoch, index, result);
      };
      socket_.async_connect(endpoints_[index].endpoint, std::move(connected));
      return;
    }
    previous_error = "cannot open a socket: " + ec.message();
  }
  failLocked(previous_error, done);
}

void RedisConnection::onConnected(uint64_t epoch, size_t index,
                                  const boost::system::error_code& ec) {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (epoch != epoch_) return;
    if (ec) {
      std::string error = "cannot connect to " + endpoints_[index].name + ": " + ec.message();
      connectToLocked(index + 1, std::move(error), done);
    } else {
      retry_timer_.cancel();
      if (endpoints_[index].isTcp()) {
        boost::system::error_code ignored;
        socket_.set_option(tcp::no_delay(true), ignored);
        socket_.set_option(asio::socket_base::keep_alive(true), ignored);
      }
      startHandshakeLocked();
    }
  }
  done.run();
}

void RedisConnection::onRetryTimer(uint64_t epoch, const boost::system::error_code& ec) {
  Completions done;
  {
    std::lock_guard lock(mu_);
    if (epoch != epoch_ || ec) return;
    if (state_ == State::kConnecting) {
      failLocked("cannot connect within " +
                     std::to_string(target_->options().connect_timeout.count()) + " ms",
                 done);
    } else if (state_ == State::kBackoff) {
      connectLocked(done);
    }
  }
  done.run();
}

// Writes every handshake command in one batch; the connection is ready when all have answered
// (see onHandshakeReplyLocked).
void RedisConnection::startHandshakeLocked() {
  state_ = State::kHandshake;
  parser_ = resp::Parser(resp::Parser::Mode::kReply, parser_.limits());
  read_buffer_ = std::make_shared<std::vector<char>>(kReadChunk);
  const RedisOptions& options = target_->options();
  auto step = [this](std::vector<std::string> args, Step kind, const char* what) {
    resp::encodeCommand(args, queued_);
    pending_.push_back(Pending{nullptr, deadlineFromNow(), kind, what});
    ++handshake_left_;
  };
  if (!password_.empty()) {
    std::vector<std::string> auth = {"AUTH", password_};
    if (!options.username.empty()) auth.insert(auth.begin() + 1, options.username);
    step(std::move(auth), Step::kRequired, "AUTH");
  }
  if (options.db != 0) step({"SELECT", std::to_string(options.db)}, Step::kRequired, "SELECT");
  // For fencing (redis_fences.h): which client this connection is.
  if (target_->fences().enabled()) step({"CLIENT", "INFO"}, Step::kClientInfo, "CLIENT INFO");
  // Optional: without them EVALSHA gets NOSCRIPT and the store falls back to EVAL.
  step({"SCRIPT", "LOAD", std::string(kPutScript)}, Step::kOptional, "SCRIPT LOAD");
  step({"SCRIPT", "LOAD", std::string(kAtlantisUnlockScript)}, Step::kOptional, "SCRIPT LOAD");
  flushLocked();
  armDeadlineLocked();
  readLocked();
}

bool RedisConnection::onHandshakeReplyLocked(const Pending& pending, const resp::Value& reply,
                                             Completions& done) {
  // An optional step refused for want of AUTH still means the connection cannot serve.
  bool fatal =
      reply.isError() && (pending.step == Step::kRequired || reply.str.rfind("NOAUTH", 0) == 0);
  if (fatal) {
    failLocked(std::string(pending.what) + " failed: " + reply.str, done);
    return false;
  }
  if (pending.step == Step::kClientInfo) {
    client_ = parseClientInfo(reply);
    if (client_.id == 0) {
      target_->fences().unavailable(reply.isError() ? "CLIENT INFO failed: " + reply.str
                                                    : std::string("CLIENT INFO gave no id and addr"));
    }
  }
  if (--handshake_left_ == 0) {
    state_ = State::kReady;
    last_error_.clear();
    backoff_ = initialBackoff();
    fences_seen_ = 0;
    // Every fence still open goes out now, not with the next request: the connection a teardown
    // fenced reconnects at once, so its kill follows within the backoff even when no request
    // does, and writers outside this process are ordered after it that much sooner.
    if (target_->fences().latest() != fences_seen_) fenceLocked(deadlineFromNow());
  }
  return true;
}

void RedisConnection::failLocked(const std::string& reason, Completions& done, Leftovers leftovers) {
  Status status = Status::unavailable(target_->where() + ": " + reason);
  last_error_ = status.message();
  teardownLocked(status, done, leftovers);
}

void RedisConnection::teardownLocked(const Status& status, Completions& done, Leftovers leftovers) {
  Fences& fences = target_->fences();
  const bool unanswered = std::any_of(pending_.begin(), pending_.end(), [](const Pending& pending) {
    return pending.step == Step::kUser || pending.step == Step::kFence;
  });
  // Added before any caller learns of the failure (done runs after mu_ is released), so every
  // request sent once it has is fenced. A client whose handshake did not finish has id 0: the
  // handshake's commands are harmless whenever they run, and nothing else was sent on it.
  if (leftovers == Leftovers::kUnanswered || (leftovers == Leftovers::kIfUnanswered && unanswered)) {
    fences.add(client_);
  }
  client_ = {};
  for (const Pending& pending : pending_) {
    if (pending.step == Step::kFence) fences.again(pending.fence_serial);  // not confirmed
  }
  ++epoch_;  // every handler still to come belongs to an earlier epoch and does nothing
  boost::system::error_code ignored;
  socket_.close(ignored);
  resolver_.cancel();
  retry_timer_.cancel();
  deadline_timer_.cancel();
  deadline_armed_ = false;
  for (Pending& pending : pending_) done.add(std::move(pending.done), status);
  pending_.clear();
  queued_.clear();
  writing_.reset();
  written_ = 0;
  handshake_left_ = 0;
  if (state_ == State::kClosed) return;

  state_ = State::kBackoff;
  retry_timer_.expires_after(backoff_);
  retry_timer_.async_wait(
      [self = shared_from_this(), epoch = epoch_](const boost::system::error_code& ec) {
        self->onRetryTimer(epoch, ec);
      });
  backoff_ = std::min(backoff_ * 2, std::max(target_->options().backoff_max, initialBackoff()));
}

std::chrono::milliseconds RedisConnection::initialBackoff() const {
  return std::max(target_->options().backoff_initial, std::chrono::milliseconds(1));
}

}  // namespace lockshift::redis
