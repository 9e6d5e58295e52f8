#pragma once
// Fences: keeps a command that lockshift gave up on from running after the commands that follow
// it. Private to backends/redis_*.
//
// A command that timed out may still be run by Redis: its bytes can sit in Redis's socket buffer
// (Redis was stopped, or busy with something long) after lockshift closed the connection, and
// Redis reads and runs them before it notices the close. Meanwhile later commands, sent on other
// connections, may already have run, so the late one lands on top of them: a lock the router
// undid from legacy, or a repair the journal made, would be overwritten by a write whose client
// was told it failed.
//
// So when a connection is torn down with a request it may have written still unanswered (a
// timeout; a reset or a close, which may come from something between lockshift and Redis; an
// unreadable reply), its Redis client is fenced: until Redis confirms that client is
// gone, every connection to the server puts "CLIENT KILL ID <id> ADDR <addr>" in front of the
// next request it writes. Redis runs one command at a time and frees a killed client's unread
// input with it, so once the kill has run, the late command has run already or never will; a
// command written after the kill on the same connection runs after it. Redundant kills are
// harmless (they kill nothing), and the address in the filter keeps a kill from reaching a new
// client that reuses the id after Redis restarted.
//
// The id and address come from CLIENT INFO in each connection's handshake (Redis 6.2 and later).
// A server that refuses CLIENT INFO or CLIENT KILL (an older Redis, an ACL user without
// @admin, a renamed command) cannot be fenced: fencing is turned off for it, once, with a line
// on stderr saying why, and requests flow as before.
//
// Shared by every pool to one server (RedisStore has one pool per event loop).
// Thread-safety: every method may be called from any thread; latest() is one atomic load, the
// rest take mu_. Called with a connection's lock held: the order is connection, then fences.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "resp/value.h"

namespace lockshift::redis {

// A connection's Redis client, as CLIENT INFO describes it.
struct ClientIdentity {
  uint64_t id = 0;   // 0: unknown, the connection cannot be fenced
  std::string addr;  // "ip:port" as Redis sees it
};

// Reads the id= and addr= fields of a CLIENT INFO reply; id 0 when either is missing.
ClientIdentity parseClientInfo(const resp::Value& reply);

class Fences {
 public:
  // Most fences kept; beyond it the oldest is dropped. A fence is added per torn-down connection
  // whose handshake had completed, so an outage adds about one per pooled connection.
  static constexpr size_t kMaxFences = 1024;

  struct Fence {
    uint64_t seq = 0;  // the order added (or re-added); connections remember the last one they fenced
    uint64_t serial = 0;  // names the fence for done() and again(); never changes
    ClientIdentity client;
  };

  // `where`: "redis <address>", for the stderr line when fencing is turned off.
  explicit Fences(std::string where) : where_(std::move(where)) {}

  // The seq of the newest fence: a connection that has put every fence up to it in front of its
  // requests needs no look at the list.
  uint64_t latest() const { return latest_.load(std::memory_order_acquire); }
  // The fences added after `seen`, oldest first; *seen becomes latest().
  std::vector<Fence> since(uint64_t* seen) const;

  // Adds a fence for `client` (ignored when id 0 or fencing is off).
  void add(ClientIdentity client);
  // Adds every fence open in `other` that this list lacks (ignored when fencing is off here):
  // `other` belonged to the pools of a server that the connections of this list reach now.
  // The fences are compared by client id and address, since ids of different servers coincide.
  void absorb(const Fences& other);
  // The kill of fence `serial` has run: nothing of its client can run any more.
  void done(uint64_t serial);
  // The kill of fence `serial` was not confirmed (its connection failed, or Redis answered an error
  // that may pass, such as BUSY or LOADING): every connection puts it in front again.
  void again(uint64_t serial);
  // This server cannot fence (`why` names the command and Redis's answer): clears the list and
  // ignores later add()s. Writes one line on stderr the first time.
  void unavailable(const std::string& why);

  bool enabled() const;
  // Why fencing is off ("" while on).
  std::string whyUnavailable() const;
  size_t size() const;

  // How a kill's error reply is taken: true when it says the server can never run the kill.
  static bool refusedForGood(const std::string& error);

 private:
  void addLocked(ClientIdentity client);  // REQUIRES mu_

  const std::string where_;
  std::atomic<uint64_t> latest_{0};
  mutable std::mutex mu_;
  std::vector<Fence> fences_;  // GUARDED_BY(mu_), by seq
  uint64_t next_seq_ = 1;      // GUARDED_BY(mu_)
  uint64_t next_serial_ = 1;   // GUARDED_BY(mu_)
  bool enabled_ = true;        // GUARDED_BY(mu_)
  std::string why_;            // GUARDED_BY(mu_): set when turned off
};

// The store's warning() (LockStore) when `fences` is off; "" while it is on.
std::string fencingWarning(const Fences& fences);

}  // namespace lockshift::redis
