#pragma once
// A real Redis Cluster for tests: three redis-server masters (no replicas) on free loopback ports,
// each in its own temp directory, joined by `redis-cli --cluster create`, plus the operations
// tests need to move slots between masters the way `redis-cli --cluster reshard` does.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "resp/value.h"
#include "tests/support/process.h"

namespace lockshift::testing {

class RedisCluster {
 public:
  static constexpr size_t kMasters = 3;
  // Failure detection: a master that does not answer for this long is marked failed and, with
  // no replica to take over, the cluster goes down. Short, so tests of an outage finish soon.
  static constexpr int kNodeTimeoutMs = 2000;

  // Starts the nodes, creates the cluster and waits until every node says cluster_state:ok.
  // Throws (with the nodes' logs) if that does not happen within 60 s.
  RedisCluster();
  ~RedisCluster();
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  size_t size() const { return nodes_.size(); }
  uint16_t port(size_t node) const { return nodes_[node]->port; }
  std::string address(size_t node) const { return "127.0.0.1:" + std::to_string(port(node)); }
  std::vector<std::string> addresses() const;
  Process& process(size_t node) { return nodes_[node]->process; }

  // One command on one node, on a new connection. Throws on a network error or timeout.
  resp::Value call(size_t node, const std::vector<std::string>& args);
  // The node's cluster id (CLUSTER MYID).
  std::string nodeId(size_t node);
  // The node serving each slot (kMasters for none), by node 0's CLUSTER SLOTS.
  std::vector<size_t> slotOwners();
  // The node serving `slot`, likewise.
  size_t ownerOf(uint16_t slot);
  // CLUSTER KEYSLOT, asked of node 0.
  uint16_t keySlot(const std::string& key);
  // The count in the node's INFO errorstats for error replies starting with `code` (MOVED, ASK).
  int64_t errorCount(size_t node, const std::string& code);
  // True once every node says cluster_state:ok, polling until `limit`.
  bool waitUntilOk(std::chrono::milliseconds limit);

  // A slot migration in steps: `to` imports `slot` from its current owner `from`, which marks it
  // migrating; then keys move with MIGRATE; then every node is told the slot is `to`'s.
  void beginMigration(uint16_t slot, size_t from, size_t to);
  void migrateKeys(size_t from, size_t to, const std::vector<std::string>& keys);
  // Every key still in the slot on `from` moves to `to`, then the slot is assigned to `to`.
  void finishMigration(uint16_t slot, size_t from, size_t to);
  // The three steps at once, for `slot`'s current owner.
  void moveSlot(uint16_t slot, size_t to);

  // Every node's logs, for failure messages.
  std::string logs() const;

 private:
  struct Node {
    TempDir dir;
    uint16_t port = 0;
    uint16_t bus_port = 0;
    Process process;
  };
  bool tryStart(std::string* why);

  std::vector<std::unique_ptr<Node>> nodes_;
};

// The [enhanced] section body for the cluster: type = "redis-cluster", addresses = [...].
std::string clusterSection(const RedisCluster& cluster);

}  // namespace lockshift::testing
