#include "tests/support/redis_cluster.h"

#include <algorithm>
#include <set>
#include <stdexcept>
#include <thread>

#include "tests/support/ports.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {

namespace {

constexpr int kMigrateTimeoutMs = 5000;

// A port not in `taken` (the cluster bus ports are separate ports, not port + 10000, which may
// not exist above 55535).
uint16_t freshPort(std::set<uint16_t>& taken) {
  for (;;) {
    uint16_t port = freeLoopbackPort();
    if (taken.insert(port).second) return port;
  }
}

}  // namespace

RedisCluster::RedisCluster() {
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (tryStart(&why)) return;
    nodes_.clear();
  }
  throw std::runtime_error("the redis cluster did not start: " + why);
}

RedisCluster::~RedisCluster() = default;

bool RedisCluster::tryStart(std::string* why) {
  std::set<uint16_t> taken;
  for (size_t i = 0; i < kMasters; ++i) {
    auto node = std::make_unique<Node>();
    node->port = freshPort(taken);
    node->bus_port = freshPort(taken);
    node->process = Process::spawn(
        {"redis-server", "--port", std::to_string(node->port), "--cluster-enabled", "yes",
         "--cluster-config-file", node->dir.file("nodes.conf"), "--cluster-port",
         std::to_string(node->bus_port), "--cluster-node-timeout", std::to_string(kNodeTimeoutMs),
         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", node->dir.path(),
         "--protected-mode", "no"},
        node->dir.file("redis.log"));
    nodes_.push_back(std::move(node));
  }
  for (size_t i = 0; i < kMasters; ++i) {
    if (!waitForPort(port(i), std::chrono::seconds(10)) || !listensOn(nodes_[i]->process.pid(), port(i))) {
      *why = "node " + std::to_string(i) + " did not listen on its port:\n" + logs();
      return false;
    }
  }
  std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
  for (const std::string& a : addresses()) create.push_back(a);
  for (const char* arg : {"--cluster-replicas", "0", "--cluster-yes"}) create.push_back(arg);
  CommandResult created = runCommand(create, "", std::chrono::seconds(60));
  if (created.exit_code != 0) {
    *why = "redis-cli --cluster create failed (" + std::to_string(created.exit_code) + "):\n" +
           created.out + "\n" + logs();
    return false;
  }
  if (!waitUntilOk(std::chrono::seconds(30))) {
    *why = "cluster_state did not become ok on every node:\n" + logs();
    return false;
  }
  return true;
}

std::vector<std::string> RedisCluster::addresses() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < size(); ++i) out.push_back(address(i));
  return out;
}

resp::Value RedisCluster::call(size_t node, const std::vector<std::string>& args) {
  RespClient client(port(node));
  return client.call(args);
}

std::string RedisCluster::nodeId(size_t node) { return call(node, {"CLUSTER", "MYID"}).str; }

std::vector<size_t> RedisCluster::slotOwners() {
  std::vector<size_t> owners(16384, kMasters);
  resp::Value slots = call(0, {"CLUSTER", "SLOTS"});
  for (const resp::Value& range : slots.elements) {
    const int64_t owner_port = range.elements[2].elements[1].integer;
    for (size_t i = 0; i < size(); ++i) {
      if (port(i) != owner_port) continue;
      for (int64_t slot = range.elements[0].integer; slot <= range.elements[1].integer; ++slot) {
        owners[static_cast<size_t>(slot)] = i;
      }
    }
  }
  return owners;
}

size_t RedisCluster::ownerOf(uint16_t slot) {
  const size_t owner = slotOwners()[slot];
  if (owner == kMasters) throw std::runtime_error("no node serves slot " + std::to_string(slot));
  return owner;
}

uint16_t RedisCluster::keySlot(const std::string& key) {
  return static_cast<uint16_t>(call(0, {"CLUSTER", "KEYSLOT", key}).integer);
}

int64_t RedisCluster::errorCount(size_t node, const std::string& code) {
  const std::string info = call(node, {"INFO", "errorstats"}).str;
  const std::string label = "errorstat_" + code + ":count=";
  const size_t at = info.find(label);
  if (at == std::string::npos) return 0;
  return std::stoll(info.substr(at + label.size()));
}

bool RedisCluster::waitUntilOk(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    bool ok = true;
    for (size_t i = 0; i < size() && ok; ++i) {
      try {
        ok = call(i, {"CLUSTER", "INFO"}).str.find("cluster_state:ok") != std::string::npos;
      } catch (const std::exception&) {
        ok = false;
      }
    }
    if (ok) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

void RedisCluster::beginMigration(uint16_t slot, size_t from, size_t to) {
  const std::string slot_text = std::to_string(slot);
  resp::Value importing = call(to, {"CLUSTER", "SETSLOT", slot_text, "IMPORTING", nodeId(from)});
  if (!isOk(importing)) throw std::runtime_error("SETSLOT IMPORTING: " + importing.str);
  resp::Value migrating = call(from, {"CLUSTER", "SETSLOT", slot_text, "MIGRATING", nodeId(to)});
  if (!isOk(migrating)) throw std::runtime_error("SETSLOT MIGRATING: " + migrating.str);
}

void RedisCluster::migrateKeys(size_t from, size_t to, const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  std::vector<std::string> migrate = {"MIGRATE", "127.0.0.1", std::to_string(port(to)), "", "0",
                                      std::to_string(kMigrateTimeoutMs), "KEYS"};
  migrate.insert(migrate.end(), keys.begin(), keys.end());
  resp::Value reply = call(from, migrate);
  if (reply.isError()) throw std::runtime_error("MIGRATE: " + reply.str);
}

void RedisCluster::finishMigration(uint16_t slot, size_t from, size_t to) {
  const std::string slot_text = std::to_string(slot);
  for (;;) {
    resp::Value keys = call(from, {"CLUSTER", "GETKEYSINSLOT", slot_text, "1000"});
    if (keys.elements.empty()) break;
    std::vector<std::string> names;
    for (const resp::Value& key : keys.elements) names.push_back(key.str);
    migrateKeys(from, to, names);
  }
  // The new owner first, then the old one, then the rest (as redis-cli does).
  const std::string owner = nodeId(to);
  std::vector<size_t> order = {to, from};
  for (size_t i = 0; i < size(); ++i) {
    if (i != to && i != from) order.push_back(i);
  }
  for (size_t node : order) {
    resp::Value reply = call(node, {"CLUSTER", "SETSLOT", slot_text, "NODE", owner});
    if (!isOk(reply)) throw std::runtime_error("SETSLOT NODE: " + reply.str);
  }
}

void RedisCluster::moveSlot(uint16_t slot, size_t to) {
  const size_t from = ownerOf(slot);
  if (from == to) return;
  beginMigration(slot, from, to);
  finishMigration(slot, from, to);
}

std::string RedisCluster::logs() const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    out += "--- node " + std::to_string(i) + " (port " + std::to_string(nodes_[i]->port) + ")\n" +
           readFile(nodes_[i]->dir.file("redis.log"));
  }
  return out;
}

std::string clusterSection(const RedisCluster& cluster) {
  std::string addresses;
  for (const std::string& address : cluster.addresses()) {
    addresses += (addresses.empty() ? "\"" : ", \"") + address + "\"";
  }
  return "type = \"redis-cluster\"\naddresses = [" + addresses + "]\ncommand_timeout = \"1s\"\n";
}

}  // namespace lockshift::testing
