#pragma once
// Redis Cluster's addressing, as pure functions and values (no I/O), so RedisClusterStore's
// routing can be tested without a cluster: the key slot, the slot map read from CLUSTER SLOTS,
// MOVED/ASK redirects, and the cluster scan cursor. Private to backends/redis_cluster_*.
// Thread-safety: stateless functions; a SlotMap is immutable once built and shared read-only.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "resp/value.h"

namespace lockshift::redis {

inline constexpr uint16_t kSlotCount = 16384;

// The slot of a key, exactly as Redis computes it (cluster.c keyHashSlot): CRC16-XMODEM of the
// key modulo 16384, where a key with a "{...}" hash tag is hashed on the tag only: the bytes
// between the first '{' and the first '}' after it, when there is at least one such byte.
uint16_t keySlot(std::string_view key);

// "host:port", with the host in brackets when it is an IPv6 address ("[::1]:7000"), the form
// parseAddress() reads.
std::string joinAddress(std::string_view host, int64_t port);

// Which master serves each slot, from one node's CLUSTER SLOTS.
struct SlotMap {
  // Every master that serves a slot, by address, sorted and unique: the scan's node order.
  std::vector<std::string> masters;
  // kSlotCount entries: the index in `masters` of the slot's master, or -1 when none serves it.
  std::vector<int16_t> owner;
  // Slots no master serves.
  size_t unassigned = kSlotCount;
  // A hash of `masters` and of every slot range and its master: equal maps have equal
  // fingerprints.
  uint64_t fingerprint = 0;
  // The node ID of each master whose CLUSTER SLOTS entry gave one, by address. A node keeps its
  // ID when it announces another address, so this tells a moved node from a new one.
  std::map<std::string, std::string> node_ids;

  // The master of `slot`, or nullptr.
  const std::string* masterOf(uint16_t slot) const;
  // A copy in which `slot` is served by `address` (what a MOVED reply says); the node IDs of the
  // masters that remain are kept.
  SlotMap withOwner(uint16_t slot, const std::string& address) const;

  // Reads a CLUSTER SLOTS reply: [[start, end, [host, port, id, ...], replicas...], ...]; the id
  // is optional (Redis before 4.0 sends none).
  // `answering_host` replaces an empty host (Redis's "the address you reached me on"); a range
  // whose master's endpoint is unknown ("?") stays unassigned. kIoError for any other shape.
  static Result<SlotMap> fromClusterSlots(const resp::Value& reply,
                                          std::string_view answering_host);
  // Builds the map from `owner` entries naming addresses (for withOwner and tests).
  static SlotMap fromOwners(const std::vector<std::string>& owner_by_slot);
};

// A MOVED or ASK error reply: "MOVED 3999 127.0.0.1:6381", "ASK 3999 [::1]:6381" or
// "MOVED 3999 :6381" (an empty host means the host of the node that answered).
struct Redirect {
  enum class Kind { kMoved, kAsk };
  Kind kind = Kind::kMoved;
  uint16_t slot = 0;
  std::string address;  // as joinAddress() writes it
};
std::optional<Redirect> parseRedirect(std::string_view error, std::string_view answering_host);

// The cluster scan cursor: which master (an index in SlotMap::masters), that master's own SCAN
// cursor, and the low bits of the fingerprint of the slot map the scan started with, so a
// continuation after the map changed is recognised. Bit layout of the 64-bit cursor:
//   bits  0..39  the master's SCAN cursor (Redis's cursor is below its hash table's size, and in
//                Redis 7.4+ cluster mode that size shifted left by 14 slot bits: 40 bits leave
//                room for 2^26 buckets per slot);
//   bits 40..49  the master's index (up to 1024 masters, Redis Cluster's documented maximum of
//                nodes);
//   bits 50..62  the map's fingerprint (13 bits: a changed map goes unnoticed with odds 1/8192);
//   bit  63      always 0: the router's own cursors have it set.
// Cursor 0 is the start of a scan.
struct ClusterCursor {
  static constexpr int kNodeCursorBits = 40;
  static constexpr int kNodeIndexBits = 10;
  static constexpr int kFingerprintBits = 13;
  static constexpr uint64_t kMaxNodeCursor = (uint64_t{1} << kNodeCursorBits) - 1;
  static constexpr uint64_t kMaxNodes = uint64_t{1} << kNodeIndexBits;

  uint64_t node_cursor = 0;
  uint32_t node = 0;
  uint32_t fingerprint = 0;  // only kFingerprintBits are kept

  static uint32_t fingerprintBits(uint64_t fingerprint);
  // REQUIRES: node_cursor <= kMaxNodeCursor and node < kMaxNodes.
  uint64_t encode() const;
  static ClusterCursor decode(uint64_t cursor);
};

}  // namespace lockshift::redis
