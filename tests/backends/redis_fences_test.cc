// Fencing of connections that timed out (backends/redis_fences.h): the bookkeeping on its own, and
// against a real redis-server, and a node of a real cluster, behind a relay that holds a written
// command back, the way a busy or stopped Redis leaves it unread, until after the writes that
// follow it.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/redis_cluster_client.h"
#include "backends/redis_fences.h"
#include "backends/redis_store.h"
#include "tests/backends/redis_cluster_test_fixture.h"
#include "tests/backends/redis_test_fixture.h"
#include "tests/support/held_relay.h"
#include "tests/support/resp_client.h"

namespace lockshift::testing {
namespace {

using redis::ClientIdentity;
using redis::Fences;

std::vector<uint64_t> ids(const std::vector<Fences::Fence>& fences) {
  std::vector<uint64_t> out;
  for (const auto& fence : fences) out.push_back(fence.client.id);
  return out;
}

TEST(ClientInfo, ReadsTheIdAndAddress) {
  auto info = redis::parseClientInfo(resp::Value::bulk(
      "id=42 addr=127.0.0.1:50412 laddr=127.0.0.1:6379 fd=8 name= age=0 idle=0 flags=N db=0\n"));
  EXPECT_EQ(info.id, 42u);
  EXPECT_EQ(info.addr, "127.0.0.1:50412");
}

TEST(ClientInfo, AnythingElseGivesNoIdentity) {
  for (const auto& reply : {resp::Value::bulk("addr=127.0.0.1:1 fd=8"), resp::Value::bulk("id=7 fd=8"),
                            resp::Value::bulk("id=x7 addr=127.0.0.1:1"), resp::Value::bulk("myid=7 addr=a:1"),
                            resp::Value::bulk("id=7 laddr=127.0.0.1:1"), resp::Value::bulk(""),
                            resp::Value::error("ERR unknown subcommand 'INFO'"), resp::Value::integer_(7)}) {
    EXPECT_EQ(redis::parseClientInfo(reply).id, 0u) << resp::encode(reply);
  }
}

// The serial of the fence for client `id`, as a connection has it from since().
uint64_t serialOf(const Fences& fences, uint64_t id) {
  uint64_t all = 0;
  for (const auto& fence : fences.since(&all)) {
    if (fence.client.id == id) return fence.serial;
  }
  ADD_FAILURE() << "no fence for client " << id;
  return 0;
}

TEST(Fences, ConnectionsSeeEachFenceUntilItIsConfirmed) {
  Fences fences("redis test");
  EXPECT_EQ(fences.latest(), 0u);
  fences.add({7, "127.0.0.1:1"});
  fences.add({0, "127.0.0.1:2"});  // unknown client: nothing to fence
  fences.add({8, "127.0.0.1:3"});
  const uint64_t seven = serialOf(fences, 7), eight = serialOf(fences, 8);
  uint64_t first = 0, second = 0;
  EXPECT_EQ(ids(fences.since(&first)), (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(first, fences.latest());
  EXPECT_TRUE(fences.since(&first).empty());  // nothing new for a connection that has both

  fences.done(seven);
  EXPECT_EQ(ids(fences.since(&second)), (std::vector<uint64_t>{8}));  // 7 needs no kill any more
  // An unconfirmed kill comes back for every connection, those that had it included.
  fences.again(eight);
  EXPECT_EQ(ids(fences.since(&first)), (std::vector<uint64_t>{8}));
  EXPECT_EQ(ids(fences.since(&second)), (std::vector<uint64_t>{8}));
  EXPECT_EQ(serialOf(fences, 8), eight);  // the same fence, sent again
  fences.done(eight);
  fences.again(eight);  // confirmed meanwhile by another connection: stays done
  EXPECT_EQ(fences.size(), 0u);
}

// A node found where another pool is takes that pool's list, with its own open fences added.
TEST(Fences, AListTakesInAnothersOpenFencesOnce) {
  Fences mine("redis here"), other("redis there");
  mine.add({7, "127.0.0.1:1"});
  other.add({7, "127.0.0.1:2"});  // the same id on another server: another client
  other.add({9, "127.0.0.1:3"});
  other.add({8, "127.0.0.1:4"});
  other.done(serialOf(other, 9));  // confirmed: nothing to take in
  uint64_t seen = 0;
  EXPECT_EQ(ids(mine.since(&seen)), (std::vector<uint64_t>{7}));
  mine.absorb(other);
  mine.absorb(other);  // what it has already is not added twice
  mine.absorb(mine);
  // A connection that had the list's own fence sees the two taken in.
  const std::vector<Fences::Fence> taken = mine.since(&seen);
  ASSERT_EQ(ids(taken), (std::vector<uint64_t>{7, 8}));
  EXPECT_EQ(taken[0].client.addr, "127.0.0.1:2");
  EXPECT_EQ(mine.size(), 3u);
  EXPECT_EQ(other.size(), 2u);  // the other list is left as it was
  // Confirming one client's kill leaves the other client with the same id fenced.
  mine.done(taken[0].serial);
  EXPECT_EQ(mine.size(), 2u);
  uint64_t all = 0;
  EXPECT_EQ(ids(mine.since(&all)), (std::vector<uint64_t>{7, 8}));

  // A server that cannot fence takes in nothing.
  Fences off("redis off");
  off.unavailable("CLIENT KILL failed: NOPERM");
  off.absorb(other);
  EXPECT_EQ(off.size(), 0u);
}

TEST(Fences, AServerThatCannotFenceTurnsItOff) {
  Fences fences("redis test");
  fences.add({7, "127.0.0.1:1"});
  fences.unavailable("CLIENT KILL failed: NOPERM this user has no permissions");
  EXPECT_FALSE(fences.enabled());
  EXPECT_EQ(fences.size(), 0u);
  fences.add({8, "127.0.0.1:2"});
  EXPECT_EQ(fences.size(), 0u);
}

TEST(Fences, TheListIsBounded) {
  Fences fences("redis test");
  for (uint64_t id = 1; id <= Fences::kMaxFences + 10; ++id) fences.add({id, "127.0.0.1:1"});
  EXPECT_EQ(fences.size(), Fences::kMaxFences);
  uint64_t seen = 0;
  EXPECT_EQ(fences.since(&seen).front().client.id, 11u);  // the oldest were dropped
}

TEST(Fences, ErrorsThatNoRetryCanFix) {
  EXPECT_TRUE(Fences::refusedForGood("NOPERM User limited has no permissions to run the 'client|kill' command"));
  EXPECT_TRUE(Fences::refusedForGood("ERR unknown command 'CLIENT', with args beginning with: 'KILL'"));
  EXPECT_TRUE(Fences::refusedForGood("ERR Unknown subcommand or wrong number of arguments for 'KILL'"));
  EXPECT_TRUE(Fences::refusedForGood("ERR syntax error"));
  EXPECT_FALSE(Fences::refusedForGood("BUSY Redis is busy running a script."));
  EXPECT_FALSE(Fences::refusedForGood("LOADING Redis is loading the dataset in memory"));
}

// A cluster keeps a node's fences by node ID, for a master that comes back under another address.
TEST(NodeFences, AreForgottenWithTheirNodeOnceNoneIsOpen) {
  using redis::ClusterClient;
  redis::SlotMap map;
  map.node_ids = {{"10.0.0.1:7000", "a"}, {"10.0.0.2:7000", "d"}};
  ClusterClient::NodeFences fences;
  auto node = [&fences](const std::string& id, bool open) {
    fences[id] = std::make_shared<Fences>("redis " + id);
    if (open) fences[id]->add({7, "127.0.0.1:1"});
  };
  node("a", true);   // a master: kept
  node("d", false);  // a master with nothing open: kept
  node("b", false);  // gone, nothing open: forgotten
  node("c", true);   // gone, one open: kept, in case it comes back elsewhere
  ClusterClient::pruneNodeFences(fences, map);
  auto ids = [&fences] {
    std::vector<std::string> out;
    for (const auto& [id, f] : fences) out.push_back(id);
    return out;
  };
  EXPECT_EQ(ids(), (std::vector<std::string>{"a", "c", "d"}));

  // Up to kMaxDepartedNodes departed nodes keep their open fences; beyond it none does.
  for (size_t i = 1; i < ClusterClient::kMaxDepartedNodes; ++i) node("gone-" + std::to_string(i), true);
  ClusterClient::pruneNodeFences(fences, map);
  EXPECT_EQ(fences.size(), 2 + ClusterClient::kMaxDepartedNodes);
  node("one-more", true);
  ClusterClient::pruneNodeFences(fences, map);
  EXPECT_EQ(ids(), (std::vector<std::string>{"a", "d"}));
}

// A node found at the address of a pool takes that pool's list, and no two nodes share one.
TEST(NodeFences, ANodeTakesThePoolAtItsAddressAndNoTwoShareAList) {
  using redis::ClusterClient;
  auto clients = [](const std::shared_ptr<Fences>& list) {
    uint64_t all = 0;
    std::vector<std::string> out;
    for (const auto& fence : list->since(&all)) out.push_back(fence.client.addr);
    return out;
  };
  ClusterClient::NodeFences fences;
  fences["x"] = std::make_shared<Fences>("redis a");
  fences["x"]->add({7, "x-client"});  // x left a command unanswered at its old address
  auto pool_b = std::make_shared<Fences>("redis b");
  pool_b->add({7, "y-client"});       // so did y, at b, before it moved on
  fences["y"] = pool_b;

  ClusterClient::adoptPoolFences(fences, "x", pool_b);  // x is found at b
  EXPECT_EQ(fences["x"], pool_b);
  EXPECT_EQ(clients(pool_b), (std::vector<std::string>{"y-client", "x-client"}));
  ASSERT_NE(fences["y"], pool_b);
  EXPECT_EQ(clients(fences["y"]), (std::vector<std::string>{"y-client"}));
  // The kill of y's client runs on x's server and kills nothing: y's own list still has it.
  uint64_t seen = 0;
  pool_b->done(pool_b->since(&seen).at(0).serial);
  EXPECT_EQ(clients(fences["y"]), (std::vector<std::string>{"y-client"}));
  EXPECT_EQ(clients(pool_b), (std::vector<std::string>{"x-client"}));

  // Found again where it is: nothing changes. A seed's pool, of no node yet, becomes z's.
  ClusterClient::adoptPoolFences(fences, "x", pool_b);
  EXPECT_EQ(clients(pool_b), (std::vector<std::string>{"x-client"}));
  auto seed = std::make_shared<Fences>("redis seed");
  ClusterClient::adoptPoolFences(fences, "z", seed);
  EXPECT_EQ(fences["z"], seed);
  EXPECT_EQ(fences.size(), 3u);
}

// What the tests behind a relay share, on a single server or a cluster: writes to `key_`, and the
// write that is held back until after the writes that follow it.
template <typename Base>
class Fenced : public Base {
 protected:
  Status set(LockStore& store, const std::string& value) {
    PutRequest request;
    request.key = key_;
    request.value = value;
    return this->await(store.put(request)).status();
  }
  // Writes "stale" into the held connection, where it times out (or, with `cut`, loses its
  // connection first), then "fresh" through a new one, then lets the held bytes reach the
  // redis-server listening on `server_port`, and returns what it holds once it has read them.
  std::string staleAfterFresh(HeldRelay& relay, LockStore& store, uint16_t server_port, bool cut = false) {
    EXPECT_TRUE(set(store, "before").isOk());
    const std::vector<std::string> held = relay.hold();
    EXPECT_EQ(held.size(), 1u);
    auto stale = this->start(store.put(PutRequest{.key = key_, .value = "stale"}));
    EXPECT_TRUE(this->eventually([&] { return relay.held() > 0; }));  // the SET has not reached Redis
    if (cut) {
      EXPECT_EQ(relay.cutClients(), 1u);
    }
    const Status failed = this->collect(stale).status();
    EXPECT_EQ(failed.code(), cut ? ErrorCode::kUnavailable : ErrorCode::kTimeout) << failed.toString();
    // Refused while the store reconnects (never sent), then through the new connection.
    Status fresh;
    EXPECT_TRUE(this->eventually([&] { return (fresh = set(store, "fresh")).isOk(); })) << fresh.toString();
    return releaseAndRead(relay, held.at(0), server_port);
  }
  // Lets the bytes `relay` holds for the connection `held` reach the redis-server on
  // `server_port`, and returns what it holds for `key_` once it has read them.
  std::string releaseAndRead(HeldRelay& relay, const std::string& held, uint16_t server_port) {
    relay.release();
    // The held connection is gone once Redis has read it to the end (or has killed it).
    RespClient raw(server_port);
    EXPECT_TRUE(this->eventually([&] {
      return str(raw.call({"CLIENT", "LIST"})).find(" addr=" + held + " ") == std::string::npos;
    }));
    return str(raw.call({"GET", key_}));
  }
  // How many CLIENT KILL commands the redis-server on `server_port` ran.
  static std::string killCalls(uint16_t server_port) {
    RespClient raw(server_port);
    const std::string stats = str(raw.call({"INFO", "commandstats"}));
    const std::string label = "cmdstat_client|kill:calls=";
    const size_t at = stats.find(label);
    if (at == std::string::npos) return "0";
    return stats.substr(at + label.size(), stats.find(',', at) - at - label.size());
  }

  std::string key_ = "k";
};

class FencedConnectionTest : public Fenced<RedisStoreTest> {
 protected:
  // A store with one connection through `relay`, which gives up on a command after 300 ms.
  std::unique_ptr<RedisStore> openThrough(HeldRelay& relay, const std::string& user = "",
                                          const std::string& password = "") {
    RedisOptions options = optionsFor(relay.port());
    options.pool_size = 1;
    options.command_timeout = 300ms;
    options.backoff_initial = 10ms;
    options.username = user;
    options.password = password;
    return open(options);
  }
  // The same as an ACL user allowed everything but `command`.
  std::unique_ptr<RedisStore> openThroughWithout(HeldRelay& relay, const std::string& command) {
    RespClient raw(server().port());
    const std::string user = "without-" + command;
    EXPECT_TRUE(isOk(raw.call({"ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-" + command})));
    return openThrough(relay, user, "pw");
  }
  std::string staleAfterFresh(HeldRelay& relay, RedisStore& store, bool cut = false) {
    return Fenced::staleAfterFresh(relay, store, server().port(), cut);
  }
};

TEST_F(FencedConnectionTest, AWriteThatTimedOutNeverRunsAfterTheWritesThatFollowIt) {
  HeldRelay relay(server().port());
  auto store = openThrough(relay);
  EXPECT_EQ(staleAfterFresh(relay, *store), "fresh");
  EXPECT_EQ(store->warning(), "");
  // Later writes find no fence left to put ahead of them: one kill in all, confirmed once.
  EXPECT_TRUE(set(*store, "after").isOk());
  RespClient raw(server().port());
  EXPECT_EQ(str(raw.call({"GET", "k"})), "after");
  EXPECT_EQ(killCalls(server().port()), "1");
}

// A connection something between lockshift and Redis drops (a load balancer, a NAT timeout)
// while Redis still holds what was written on it.
TEST_F(FencedConnectionTest, AWriteWhoseConnectionWasCutNeverRunsAfterTheWritesThatFollowIt) {
  HeldRelay relay(server().port());
  auto store = openThrough(relay);
  EXPECT_EQ(staleAfterFresh(relay, *store, /*cut=*/true), "fresh");
}

// The connection that timed out reconnects and kills its old client by itself: the held write is
// fenced off even when no request follows it.
TEST_F(FencedConnectionTest, TheKillGoesOutWithoutWaitingForTheNextRequest) {
  HeldRelay relay(server().port());
  auto store = openThrough(relay);
  ASSERT_TRUE(set(*store, "before").isOk());
  const std::vector<std::string> held = relay.hold();
  ASSERT_EQ(held.size(), 1u);
  auto stale = start(store->put(PutRequest{.key = key_, .value = "stale"}));
  EXPECT_TRUE(eventually([&] { return relay.held() > 0; }));
  EXPECT_EQ(collect(stale).status().code(), ErrorCode::kTimeout);
  EXPECT_TRUE(eventually([&] { return killCalls(server().port()) == "1"; }));
  EXPECT_EQ(releaseAndRead(relay, held.at(0), server().port()), "before");
}

TEST_F(FencedConnectionTest, WithoutPermissionToKillRequestsFlowUnfenced) {
  HeldRelay relay(server().port());
  auto store = openThroughWithout(relay, "client|kill");
  EXPECT_EQ(store->warning(), "");  // nothing refused yet
  // The kill is refused, the write behind it runs, and fencing is off from then on: the write
  // that timed out runs last, as it would have before fencing. Status says so.
  EXPECT_EQ(staleAfterFresh(relay, *store), "stale");
  EXPECT_NE(store->warning().find("not fenced off (CLIENT KILL failed: NOPERM"), std::string::npos)
      << store->warning();
  EXPECT_TRUE(set(*store, "after").isOk());
  RespClient raw(server().port());
  EXPECT_EQ(str(raw.call({"GET", "k"})), "after");
}

TEST_F(FencedConnectionTest, WithoutClientInfoTheStoreStillServes) {
  HeldRelay relay(server().port());
  auto store = openThroughWithout(relay, "client|info");
  // Known from the first handshake.
  EXPECT_NE(store->warning().find("not fenced off (CLIENT INFO failed: NOPERM"), std::string::npos)
      << store->warning();
  EXPECT_EQ(staleAfterFresh(relay, *store), "stale");
}

// In a cluster each node's connections are fenced by the pool of that node. Node 0 is reached
// through the relay: it announces the relay's port, so CLUSTER SLOTS sends the store there.
class FencedClusterTest : public Fenced<RedisClusterStoreTest> {
 protected:
  // True once every node's CLUSTER SLOTS names `port` for `slot`.
  bool everyNodeAnnounces(uint16_t slot, uint16_t port) {
    for (size_t node = 0; node < cluster().size(); ++node) {
      bool found = false;
      for (const resp::Value& range : cluster().call(node, {"CLUSTER", "SLOTS"}).elements) {
        if (range.elements[0].integer <= slot && slot <= range.elements[1].integer) {
          found = range.elements[2].elements[1].integer == port;
        }
      }
      if (!found) return false;
    }
    return true;
  }
  // Has `node` announce `port` as its own.
  bool announce(size_t node, uint16_t port) {
    return isOk(cluster().call(node, {"CONFIG", "SET", "cluster-announce-port", std::to_string(port)}));
  }
  // A store with one connection per node, which gives up on a command after 300 ms.
  std::unique_ptr<RedisClusterStore> openFenced(
      std::chrono::milliseconds refresh_interval = RedisClusterOptions{}.refresh_interval) {
    RedisClusterOptions options = clusterOptions();
    options.pool_size = 1;
    options.command_timeout = 300ms;
    options.backoff_initial = 10ms;
    options.refresh_interval = refresh_interval;
    return openCluster(options);
  }
  // Writes "stale" into the held connection at `old_address`, where it times out, after which
  // the address takes no connection, so no pool there can send the kill. Returns the held
  // connection's server-side address.
  std::string strandStaleWrite(HeldRelay& old_address, LockStore& store) {
    EXPECT_TRUE(set(store, "before").isOk());
    const std::vector<std::string> held = old_address.hold();
    EXPECT_EQ(held.size(), 1u);
    old_address.refuseNew();
    auto stale = start(store.put(PutRequest{.key = key_, .value = "stale"}));
    EXPECT_TRUE(eventually([&] { return old_address.held() > 0; }));
    EXPECT_EQ(collect(stale).status().code(), ErrorCode::kTimeout);
    return held.empty() ? "" : held.front();
  }
  // Writes "fresh" once the store reaches node 0 again, releases the held write, and returns what
  // node 0 then holds.
  std::string freshThenReleased(HeldRelay& old_address, LockStore& store, const std::string& held) {
    Status fresh;
    EXPECT_TRUE(eventually([&] { return (fresh = set(store, "fresh")).isOk(); })) << fresh.toString();
    return releaseAndRead(old_address, held, cluster().port(0));
  }
};

TEST_F(FencedClusterTest, AWriteThatTimedOutOnANodeNeverRunsAfterTheWritesThatFollowIt) {
  key_ = keysOn(0, "fenced-", 1).at(0);
  HeldRelay relay(cluster().port(0));
  ASSERT_TRUE(announce(0, relay.port()));
  ASSERT_TRUE(eventually([&] { return everyNodeAnnounces(redis::keySlot(key_), relay.port()); }))
      << cluster().logs();
  auto store = openFenced();
  EXPECT_EQ(staleAfterFresh(relay, *store, cluster().port(0)), "fresh");
  EXPECT_EQ(store->warning(), "");
  EXPECT_EQ(killCalls(cluster().port(0)), "1");
}

// A node that announces another address is the same redis-server, still holding what was sent to
// the old one: its pool at the new address puts the old pool's fences in front of its requests.
TEST_F(FencedClusterTest, AFenceFollowsItsNodeToAnotherAddress) {
  key_ = keysOn(0, "fenced-", 1).at(0);
  const uint16_t slot = redis::keySlot(key_);
  HeldRelay relay(cluster().port(0));
  ASSERT_TRUE(announce(0, relay.port()));
  ASSERT_TRUE(eventually([&] { return everyNodeAnnounces(slot, relay.port()); })) << cluster().logs();
  auto store = openFenced();
  const std::string held = strandStaleWrite(relay, *store);

  ASSERT_TRUE(announce(0, cluster().port(0)));
  ASSERT_TRUE(eventually([&] { return everyNodeAnnounces(slot, cluster().port(0)); })) << cluster().logs();
  EXPECT_EQ(freshThenReleased(relay, *store, held), "fresh");
  EXPECT_EQ(killCalls(cluster().port(0)), "1");
  EXPECT_EQ(store->warning(), "");
}

// The same when the new address has a pool already, with fences of its own: node 1 leaves the
// address and node 0 takes it over between two refreshes, so the store finds node 0 where its
// pool for node 1 is. That pool puts node 0's fences in front of its requests from then on.
TEST_F(FencedClusterTest, AFenceFollowsItsNodeToAnAddressThatHasAPool) {
  key_ = keysOn(0, "fenced-", 1).at(0);
  const uint16_t slot = redis::keySlot(key_);
  const uint16_t node1_slot = redis::keySlot(keysOn(1, "other-", 1).at(0));
  HeldRelay old_address(cluster().port(0));
  HeldRelay shared_address(cluster().port(1));
  ASSERT_TRUE(announce(0, old_address.port()));
  ASSERT_TRUE(announce(1, shared_address.port()));
  ASSERT_TRUE(eventually([&] {
    return everyNodeAnnounces(slot, old_address.port()) && everyNodeAnnounces(node1_slot, shared_address.port());
  })) << cluster().logs();
  auto store = openFenced(std::chrono::hours(1));  // only calls that fail ask for a refresh
  const std::string held = strandStaleWrite(old_address, *store);
  std::this_thread::sleep_for(300ms);  // the refresh the timeout asked for is over

  // No call meanwhile, so the store sees no map in between.
  ASSERT_TRUE(announce(1, cluster().port(1)));
  shared_address.retarget(cluster().port(0));
  ASSERT_TRUE(announce(0, shared_address.port()));
  ASSERT_TRUE(eventually([&] {
    return everyNodeAnnounces(slot, shared_address.port()) && everyNodeAnnounces(node1_slot, cluster().port(1));
  })) << cluster().logs();
  EXPECT_EQ(freshThenReleased(old_address, *store, held), "fresh");
  EXPECT_EQ(killCalls(cluster().port(0)), "1");
  EXPECT_EQ(store->warning(), "");
}

}  // namespace
}  // namespace lockshift::testing
