// Redis Cluster addressing without a cluster: key slots with hash tags, the slot map read from a
// CLUSTER SLOTS reply, MOVED/ASK parsing, and the cluster scan cursor. (Key slots are checked
// against a real cluster's CLUSTER KEYSLOT in redis_cluster_store_test.cc.)

#include "backends/redis_cluster_slots.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace lockshift::redis {
namespace {

using resp::Value;

Value node(const std::string& host, int64_t port, const std::string& id) {
  return Value::array({Value::bulk(host), Value::integer_(port), Value::bulk(id)});
}

Value range(int64_t start, int64_t end, std::vector<Value> nodes) {
  std::vector<Value> out = {Value::integer_(start), Value::integer_(end)};
  for (Value& n : nodes) out.push_back(std::move(n));
  return Value::array(std::move(out));
}

TEST(ClusterKeySlot, IsCrc16XmodemModulo16384) {
  // 0x31C3 is CRC16-XMODEM's check value for "123456789".
  EXPECT_EQ(keySlot("123456789"), 0x31C3);
  EXPECT_EQ(keySlot(""), 0);
  for (const char* key : {"foo", "pr/acme/infra/./default/", "global/apply/lock"}) {
    EXPECT_LT(keySlot(key), kSlotCount);
  }
}

TEST(ClusterKeySlot, HashTagRulesAreRedisOwn) {
  // The examples of the Redis Cluster specification.
  EXPECT_EQ(keySlot("{user1000}.following"), keySlot("user1000"));
  EXPECT_EQ(keySlot("{user1000}.followers"), keySlot("user1000"));
  EXPECT_EQ(keySlot("foo{}{bar}"), keySlot(std::string("foo{}{bar}")));  // empty tag: whole key
  EXPECT_NE(keySlot("foo{}{bar}"), keySlot("bar"));
  EXPECT_EQ(keySlot("foo{{bar}}zap"), keySlot("{bar"));  // from the first '{' to the first '}'
  EXPECT_EQ(keySlot("foo{bar}{zap}"), keySlot("bar"));   // only the first tag counts
  EXPECT_EQ(keySlot("{a"), keySlot(std::string("{a")));  // no '}': whole key
  EXPECT_EQ(keySlot("a}b{c}"), keySlot("c"));            // a '}' before the '{' does not close it
  EXPECT_EQ(keySlot(std::string("x{\0}y", 5)), keySlot(std::string("\0", 1)));
}

TEST(ClusterAddress, JoinsIpv6InBrackets) {
  EXPECT_EQ(joinAddress("127.0.0.1", 7000), "127.0.0.1:7000");
  EXPECT_EQ(joinAddress("::1", 7000), "[::1]:7000");
  EXPECT_EQ(joinAddress("redis-0.example", 6379), "redis-0.example:6379");
}

TEST(ClusterRedirect, ParsesMovedAndAsk) {
  auto moved = parseRedirect("MOVED 3999 127.0.0.1:6381", "10.0.0.1");
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->kind, Redirect::Kind::kMoved);
  EXPECT_EQ(moved->slot, 3999);
  EXPECT_EQ(moved->address, "127.0.0.1:6381");

  auto ask = parseRedirect("ASK 16383 ::1:6381", "10.0.0.1");  // Redis writes IPv6 bare
  ASSERT_TRUE(ask.has_value());
  EXPECT_EQ(ask->kind, Redirect::Kind::kAsk);
  EXPECT_EQ(ask->slot, 16383);
  EXPECT_EQ(ask->address, "[::1]:6381");

  auto same_host = parseRedirect("MOVED 0 :7001", "10.0.0.1");
  ASSERT_TRUE(same_host.has_value());
  EXPECT_EQ(same_host->address, "10.0.0.1:7001");

  for (const char* other :
       {"ERR unknown command", "MOVED", "MOVED 16384 a:1", "MOVED x a:1", "ASK 1 a", "ASK 1 a:0",
        "MOVED 1 a:99999", "MOVEDX 1 a:1", "CLUSTERDOWN The cluster is down"}) {
    EXPECT_FALSE(parseRedirect(other, "h").has_value()) << other;
  }
}

TEST(ClusterSlotMap, ReadsClusterSlots) {
  Value reply = Value::array({
      range(10923, 16383, {node("10.0.0.3", 7002, "c"), node("10.0.0.6", 7005, "f")}),
      range(0, 5460, {node("10.0.0.1", 7000, "a")}),
      range(5461, 10922, {node("", 7001, "b")}),  // empty host: the node that answered
  });
  auto map = SlotMap::fromClusterSlots(reply, "10.0.0.9");
  ASSERT_TRUE(map.isOk()) << map.status().toString();
  EXPECT_EQ(map->masters,
            (std::vector<std::string>{"10.0.0.1:7000", "10.0.0.3:7002", "10.0.0.9:7001"}));
  EXPECT_EQ(map->unassigned, 0u);
  EXPECT_EQ(*map->masterOf(0), "10.0.0.1:7000");
  EXPECT_EQ(*map->masterOf(5460), "10.0.0.1:7000");
  EXPECT_EQ(*map->masterOf(5461), "10.0.0.9:7001");
  EXPECT_EQ(*map->masterOf(16383), "10.0.0.3:7002");

  // The same map in another order has the same fingerprint; a moved slot changes it.
  Value shuffled = Value::array({reply.elements[2], reply.elements[0], reply.elements[1]});
  EXPECT_EQ(SlotMap::fromClusterSlots(shuffled, "10.0.0.9")->fingerprint, map->fingerprint);
  SlotMap moved = map->withOwner(0, "10.0.0.3:7002");
  EXPECT_EQ(*moved.masterOf(0), "10.0.0.3:7002");
  EXPECT_EQ(*moved.masterOf(1), "10.0.0.1:7000");
  EXPECT_NE(moved.fingerprint, map->fingerprint);
  // Every slot of a master moved away: it stays in the list (until a refresh), which the
  // fingerprint tells apart from the map without it, since scan cursors index that list.
  SlotMap emptied = *map;
  for (uint16_t slot = 0; slot <= 5460; ++slot) emptied = emptied.withOwner(slot, "10.0.0.3:7002");
  EXPECT_EQ(emptied.masters.size(), 3u);
  std::vector<std::string> owners(kSlotCount);
  for (uint16_t slot = 0; slot < kSlotCount; ++slot) owners[slot] = *emptied.masterOf(slot);
  SlotMap rebuilt = SlotMap::fromOwners(owners);
  EXPECT_EQ(rebuilt.masters.size(), 2u);
  EXPECT_NE(rebuilt.fingerprint, emptied.fingerprint);
  SlotMap added = map->withOwner(7, "10.0.0.4:7003");  // a master it did not know
  EXPECT_EQ(added.masters.size(), 4u);
  EXPECT_EQ(*added.masterOf(7), "10.0.0.4:7003");
  EXPECT_EQ(*added.masterOf(8), "10.0.0.1:7000");
}

// The IDs tell a master that announces another address from a new one (ClusterClient's fences).
TEST(ClusterSlotMap, KnowsEachMastersNodeId) {
  Value reply = Value::array({
      range(0, 5460, {node("10.0.0.1", 7000, "a")}),
      range(5461, 10922, {node("", 7001, "b"), node("10.0.0.5", 7004, "e")}),
      // Redis before 4.0 sends no ID.
      range(10923, 16383, {Value::array({Value::bulk("10.0.0.3"), Value::integer_(7002)})}),
  });
  auto map = SlotMap::fromClusterSlots(reply, "10.0.0.9");
  ASSERT_TRUE(map.isOk()) << map.status().toString();
  EXPECT_EQ(map->node_ids,
            (std::map<std::string, std::string>{{"10.0.0.1:7000", "a"}, {"10.0.0.9:7001", "b"}}));
  // A MOVED to a master it knows, and to one it does not: the known IDs stay, the new master has
  // none until a refresh reads it.
  EXPECT_EQ(map->withOwner(0, "10.0.0.9:7001").node_ids, map->node_ids);
  EXPECT_EQ(map->withOwner(0, "10.0.0.4:7003").node_ids, map->node_ids);
  // A range given twice: the address that lost it is no master, and its ID is not kept.
  Value retaken = Value::array({
      range(0, 16383, {node("10.0.0.1", 7000, "a")}),
      range(0, 16383, {node("10.0.0.2", 7000, "z")}),
  });
  EXPECT_EQ(SlotMap::fromClusterSlots(retaken, "h")->node_ids,
            (std::map<std::string, std::string>{{"10.0.0.2:7000", "z"}}));
}

TEST(ClusterSlotMap, UnservedSlotsAndBadShapes) {
  Value partial = Value::array({range(0, 99, {node("10.0.0.1", 7000, "a")}),
                                range(100, 199, {node("?", 7001, "b")})});  // unknown endpoint
  auto map = SlotMap::fromClusterSlots(partial, "h");
  ASSERT_TRUE(map.isOk());
  EXPECT_EQ(map->unassigned, kSlotCount - 100u);
  EXPECT_EQ(map->masterOf(100), nullptr);
  EXPECT_EQ(SlotMap::fromClusterSlots(Value::array({}), "h")->unassigned, kSlotCount);

  for (const Value& bad : {Value::bulk("x"), Value::array({Value::integer_(1)}),
                           Value::array({range(5, 4, {node("a", 1, "a")})}),
                           Value::array({range(0, 16384, {node("a", 1, "a")})}),
                           Value::array({range(0, 1, {Value::array({Value::bulk("a")})})}),
                           Value::array({range(0, 1, {node("a", 70000, "a")})})}) {
    auto result = SlotMap::fromClusterSlots(bad, "h");
    ASSERT_FALSE(result.isOk());
    EXPECT_NE(result.status().message().find("CLUSTER SLOTS"), std::string::npos);
  }
}

TEST(ClusterCursorLayout, RoundTripsAndKeepsTheTopBitClear) {
  for (uint64_t node_cursor :
       {uint64_t{0}, uint64_t{1}, uint64_t{12345}, ClusterCursor::kMaxNodeCursor}) {
    for (uint32_t node : {0u, 1u, 2u, 1023u}) {
      for (uint32_t fingerprint : {0u, 1u, 8191u}) {
        ClusterCursor cursor{node_cursor, node, fingerprint};
        uint64_t encoded = cursor.encode();
        EXPECT_EQ(encoded >> 63, 0u);
        ClusterCursor back = ClusterCursor::decode(encoded);
        EXPECT_EQ(back.node_cursor, node_cursor);
        EXPECT_EQ(back.node, node);
        EXPECT_EQ(back.fingerprint, fingerprint);
      }
    }
  }
  EXPECT_EQ(ClusterCursor::fingerprintBits(~uint64_t{0}), 8191u);
  // Only the start of a scan encodes as 0: a later position has a node cursor or a node index.
  EXPECT_NE((ClusterCursor{0, 1, 0}.encode()), 0u);
  EXPECT_NE((ClusterCursor{1, 0, 0}.encode()), 0u);
}

}  // namespace
}  // namespace lockshift::redis
