#pragma once
// RedisConnection: one pipelined RESP2 connection of RedisStore's pool, which keeps itself
// connected. Private to backends/redis_*.
//
// Life cycle: start() resolves the address (once for the whole pool, see RedisTarget; a
// "unix:PATH" address needs no resolving), connects within connect_timeout, then writes the
// handshake in one batch (AUTH [username] password when a password is set, read again from the
// password file at every attempt when there is one; SELECT db when db != 0; CLIENT INFO unless
// the server cannot fence; SCRIPT LOAD of both scripts) and is ready once every handshake reply
// has arrived.
// A failed AUTH or SELECT, a read or write error, a close by the server, a reply that does not
// parse, or a command timeout tears the connection down: every pending request fails with
// kUnavailable "redis <address>: <reason>" and, after a backoff that starts at backoff_initial
// and doubles up to backoff_max (reset by a successful handshake), it connects again. While it
// is not ready, trySubmit() refuses at once: nothing queues for it.
//
// Pipelining: a submitted request is written at once; requests submitted while a write is in
// flight go out together in the next write. Replies are matched to requests in order.
// Timeouts: each request must be answered within command_timeout of its submission. When the
// oldest one is late it fails with kTimeout and the connection is torn down (the rest fail with
// kUnavailable), since the late reply would otherwise be matched to a later request.
// Fencing (redis_fences.h): the handshake asks CLIENT INFO for the connection's client id and
// address. A teardown that leaves a written request unanswered (a timeout, a reset, a close)
// fences that client, and every connection of the server writes CLIENT KILL for it ahead of its
// next request, so the request lockshift gave up on cannot run after that one. A connection that
// has just connected writes it at once.
//
// Thread-safety: every public method may be called from any thread. All state, and every
// operation started on the socket, resolver and timers, is guarded by mu_; handlers run on any
// thread of the io_context and take mu_. Request callbacks run outside mu_.
// Lifetime: create with std::make_shared. Each pending operation holds a shared_ptr to the
// connection, so it lives until close() has cancelled them and their handlers have run; the
// io_context must outlive it.

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/small_vector.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backends/redis_commands.h"
#include "backends/redis_fences.h"
#include "backends/redis_store.h"
#include "common/status.h"
#include "resp/parser.h"
#include "resp/value.h"

namespace lockshift::redis {

using tcp = asio::ip::tcp;
// One socket type for TCP and Unix domain sockets: the same reactor operations either way.
using Stream = asio::generic::stream_protocol;

// A place to connect to, and how messages name it ("127.0.0.1 port 6379", "/run/redis.sock").
struct RedisEndpoint {
  Stream::endpoint endpoint;
  std::string name;
  bool isTcp() const { return endpoint.protocol().family() != AF_UNIX; }
};

// What the connections of one pool share: the options, the parsed address, and the endpoints,
// resolved by the first connection that needs them and kept from then on.
// Thread-safety: options(), where(), address() and fences() are immutable (Fences is
// thread-safe itself); the endpoints are guarded.
class RedisTarget {
 public:
  // `fences`: those of every pool to this server; null for a pool of its own.
  explicit RedisTarget(RedisOptions options, std::shared_ptr<Fences> fences = nullptr);

  const RedisOptions& options() const { return options_; }
  Fences& fences() const { return *fences_; }
  const std::shared_ptr<Fences>& sharedFences() const { return fences_; }
  // "redis <address>": the start of every error message about this server.
  const std::string& where() const { return where_; }
  const Result<RedisAddress>& address() const { return address_; }

  // Empty until setEndpoints() has been called (a unix:PATH address has its one endpoint from
  // the start). The endpoints are a cache, so both are const.
  std::vector<RedisEndpoint> endpoints() const;
  void setEndpoints(std::vector<RedisEndpoint> endpoints) const;

 private:
  const RedisOptions options_;
  const std::string where_;
  const Result<RedisAddress> address_;
  const std::shared_ptr<Fences> fences_;
  mutable std::mutex mu_;
  mutable std::vector<RedisEndpoint> endpoints_;  // GUARDED_BY(mu_)
};

// Takes the reply to one request (or the error that replaces it). complete() is called at most
// once, outside the connection's lock, and must not block; the connection then destroys it.
// A virtual call on one allocation, where a std::function around the awaiting coroutine's
// handler took two (the function's own storage and a shared handler to make it copyable).
class ReplyHandler {
 public:
  virtual ~ReplyHandler() = default;
  virtual void complete(Result<resp::Value> reply) = 0;
};

// A command for a connection: its encoding and what takes its reply. `wire` may hold several
// commands, written back to back on the one connection: the replies to the first
// `discard_replies` are dropped and `done` takes the last (Redis Cluster's ASKING must reach the
// same connection immediately before the command it applies to).
struct RedisRequest {
  std::string wire;
  std::unique_ptr<ReplyHandler> done;
  size_t discard_replies = 0;
};

class RedisConnection : public std::enable_shared_from_this<RedisConnection> {
 public:
  // Most requests awaiting a reply, and most bytes waiting to be written, on one connection;
  // beyond either trySubmit() refuses, so a slow server cannot make the queue grow unbounded.
  static constexpr size_t kMaxPending = 16384;
  static constexpr size_t kMaxQueuedBytes = size_t{64} << 20;
  // Bytes read from the socket at a time.
  static constexpr size_t kReadChunk = 64 * 1024;
  // A written batch's buffer up to this size is kept for the next batch.
  static constexpr size_t kMaxSpareBytes = 1024 * 1024;

  RedisConnection(asio::io_context& io, std::shared_ptr<const RedisTarget> target);
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Starts connecting. Call once.
  void start();
  // When ready: takes the request (moving from it) and returns true. Otherwise leaves it as it
  // is, sets *refusal to a kUnavailable status saying why, and returns false.
  bool trySubmit(RedisRequest& request, Status* refusal);
  // Closes for good: fails every pending request with kUnavailable and cancels every operation.
  void close();
  // True when trySubmit() would take a request now.
  bool ready();
  // True while the first attempt to connect since start() is in progress and nothing has failed
  // yet: a refusal now says nothing about the server.
  bool firstAttemptPending();

 private:
  enum class State { kIdle, kConnecting, kHandshake, kReady, kBackoff, kClosed };
  // Whom a reply belongs to: a caller, a handshake command that must (or may) succeed, the
  // handshake's CLIENT INFO, or a CLIENT KILL of a fenced client.
  enum class Step { kUser, kRequired, kOptional, kClientInfo, kFence };
  // Whether a teardown fences the connection's client (redis_fences.h): never when the store
  // closes; when requests it wrote are still unanswered, whatever failed (a reset or a closed
  // socket may come from something between lockshift and Redis, while Redis still holds the
  // bytes); always when one of them timed out (and is no longer pending).
  enum class Leftovers { kGone, kIfUnanswered, kUnanswered };
  struct Pending {
    std::unique_ptr<ReplyHandler> done;  // kUser only
    std::chrono::steady_clock::time_point deadline;
    Step step = Step::kUser;
    const char* what = "";   // the handshake command, for messages
    uint64_t fence_serial = 0;  // kFence: the fence the kill is for (Fence::serial)
  };
  // Replies and failures collected under mu_, delivered by run() after it is released.
  class Completions {
   public:
    void add(std::unique_ptr<ReplyHandler> done, Result<resp::Value> result);
    void run();

   private:
    // Inline room for a read's replies under load: with 50 clients a read brings tens of them,
    // and a vector grown on the heap for each read cost several allocations above a kilobyte.
    // On the stack of the read's handler (about 6 KB).
    boost::container::small_vector<
        std::pair<std::unique_ptr<ReplyHandler>, Result<resp::Value>>, 64>
        items_;
  };

  // ---- redis_connect.cc: connecting, handshake, backoff, close. All REQUIRE mu_. ----
  void connectLocked(Completions& done);
  void onResolved(uint64_t epoch, const boost::system::error_code& ec,
                  const tcp::resolver::results_type& results);
  void connectToLocked(size_t index, std::string previous_error, Completions& done);
  void onConnected(uint64_t epoch, size_t index, const boost::system::error_code& ec);
  void onRetryTimer(uint64_t epoch, const boost::system::error_code& ec);
  void startHandshakeLocked();
  // A handshake reply; false when it failed the connection.
  bool onHandshakeReplyLocked(const Pending& pending, const resp::Value& reply, Completions& done);
  // Fails every pending request with kUnavailable(`reason`), closes the socket and, unless
  // closed, schedules the next attempt.
  void failLocked(const std::string& reason, Completions& done,
                  Leftovers leftovers = Leftovers::kIfUnanswered);
  void teardownLocked(const Status& status, Completions& done, Leftovers leftovers);

  // ---- redis_connection.cc: the request pipeline. All ...Locked REQUIRE mu_. ----
  void pushLocked(std::string wire, Pending pending);
  void scheduleFlushLocked();
  void flushLocked();
  void writeSomeLocked();
  void onWritten(uint64_t epoch, const boost::system::error_code& ec, size_t bytes);
  void readLocked();
  void onRead(uint64_t epoch, const boost::system::error_code& ec, size_t bytes);
  bool deliverLocked(resp::Value reply, Completions& done);
  // Queues a CLIENT KILL for every fence this connection has not put ahead of its requests yet.
  void fenceLocked(std::chrono::steady_clock::time_point deadline);
  void onFenceReplyLocked(const Pending& pending, const resp::Value& reply);
  void armDeadlineLocked();
  void onDeadline(uint64_t epoch, const boost::system::error_code& ec);
  std::chrono::steady_clock::time_point deadlineFromNow() const;
  std::chrono::milliseconds initialBackoff() const;

  const std::shared_ptr<const RedisTarget> target_;

  std::mutex mu_;
  State state_ = State::kIdle;  // GUARDED_BY(mu_)
  // Increases at every teardown; a handler started in an earlier epoch does nothing.
  uint64_t epoch_ = 0;                    // GUARDED_BY(mu_)
  std::string last_error_;                // GUARDED_BY(mu_): why it is not ready
  std::string password_;                  // GUARDED_BY(mu_): this attempt's, for AUTH
  std::chrono::milliseconds backoff_;     // GUARDED_BY(mu_): the next retry delay
  Stream::socket socket_;                 // GUARDED_BY(mu_)
  tcp::resolver resolver_;                // GUARDED_BY(mu_)
  asio::steady_timer retry_timer_;        // GUARDED_BY(mu_): connect timeout, then backoff
  asio::steady_timer deadline_timer_;     // GUARDED_BY(mu_): the oldest pending request
  bool deadline_armed_ = false;           // GUARDED_BY(mu_)
  std::vector<RedisEndpoint> endpoints_;  // GUARDED_BY(mu_): this attempt's candidates
  size_t handshake_left_ = 0;             // GUARDED_BY(mu_)
  std::deque<Pending> pending_;           // GUARDED_BY(mu_): in the order of the wire
  std::string queued_;                    // GUARDED_BY(mu_): bytes not yet written
  // The write in flight (shared with its handler) and how much of it is written.
  std::shared_ptr<std::string> writing_;            // GUARDED_BY(mu_)
  std::string spare_;                               // GUARDED_BY(mu_): the last write's buffer
  size_t written_ = 0;                              // GUARDED_BY(mu_)
  bool flush_scheduled_ = false;                    // GUARDED_BY(mu_)
  std::shared_ptr<std::vector<char>> read_buffer_;  // GUARDED_BY(mu_), shared with the read
  resp::Parser parser_;                             // GUARDED_BY(mu_)
  ClientIdentity client_;     // GUARDED_BY(mu_): from the handshake's CLIENT INFO; id 0 if unknown
  uint64_t fences_seen_ = 0;  // GUARDED_BY(mu_): every fence up to it is ahead of what is queued
};

}  // namespace lockshift::redis
