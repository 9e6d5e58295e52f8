#include "backends/redis_cluster_slots.h"

#include <algorithm>
#include <boost/crc.hpp>
#include <charconv>

#include "common/stable_hash.h"

namespace lockshift::redis {

namespace {

Status badShape(std::string_view what) {
  return Status::ioError("unexpected reply to CLUSTER SLOTS: " + std::string(what));
}

bool isInteger(const resp::Value& v) { return v.type == resp::Type::kInteger; }

// The canonical text of a map, hashed into its fingerprint: the masters in order (a scan cursor
// holds an index in that list), then "start-end=address;" per range.
uint64_t fingerprintOf(const SlotMap& map) {
  std::string text;
  for (const std::string& master : map.masters) text += master + ",";
  text += ";";
  for (size_t slot = 0; slot < kSlotCount;) {
    size_t end = slot;
    while (end + 1 < kSlotCount && map.owner[end + 1] == map.owner[slot]) ++end;
    if (map.owner[slot] >= 0) {
      text += std::to_string(slot) + "-" + std::to_string(end) + "=" +
              map.masters[static_cast<size_t>(map.owner[slot])] + ";";
    }
    slot = end + 1;
  }
  return stableHash64(text);
}

// Gives `map` the IDs in `ids` of the addresses that are masters in it.
void keepMastersIds(SlotMap& map, const std::map<std::string, std::string>& ids) {
  for (const auto& [address, id] : ids) {
    if (std::binary_search(map.masters.begin(), map.masters.end(), address)) map.node_ids.emplace(address, id);
  }
}

}  // namespace

// Boost.CRC computes Redis's CRC16 (XMODEM: polynomial 0x1021, initial 0, no reflection, no final
// xor). Note that Boost's older `crc_xmodem_type` is a different, reflected CRC; `crc_xmodem_t` is
// the real XMODEM.
uint16_t keySlot(std::string_view key) {
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  boost::crc_xmodem_t crc;
  crc.process_bytes(key.data(), key.size());
  return static_cast<uint16_t>(crc.checksum() & (kSlotCount - 1));
}

std::string joinAddress(std::string_view host, int64_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  return out + ":" + std::to_string(port);
}

const std::string* SlotMap::masterOf(uint16_t slot) const {
  if (slot >= owner.size() || owner[slot] < 0) return nullptr;
  return &masters[static_cast<size_t>(owner[slot])];
}

SlotMap SlotMap::fromOwners(const std::vector<std::string>& owner_by_slot) {
  SlotMap map;
  for (const std::string& address : owner_by_slot) {
    if (!address.empty()) map.masters.push_back(address);
  }
  std::sort(map.masters.begin(), map.masters.end());
  map.masters.erase(std::unique(map.masters.begin(), map.masters.end()), map.masters.end());
  map.owner.assign(kSlotCount, -1);
  map.unassigned = 0;
  for (size_t slot = 0; slot < kSlotCount; ++slot) {
    const std::string& address = slot < owner_by_slot.size() ? owner_by_slot[slot] : "";
    if (address.empty()) {
      ++map.unassigned;
      continue;
    }
    auto it = std::lower_bound(map.masters.begin(), map.masters.end(), address);
    map.owner[slot] = static_cast<int16_t>(it - map.masters.begin());
  }
  map.fingerprint = fingerprintOf(map);
  return map;
}

SlotMap SlotMap::withOwner(uint16_t slot, const std::string& address) const {
  auto known = std::lower_bound(masters.begin(), masters.end(), address);
  if (known != masters.end() && *known == address) {
    // A master it knows: the indexes stay, one slot changes hands.
    SlotMap out = *this;
    if (out.owner[slot] < 0) --out.unassigned;
    out.owner[slot] = static_cast<int16_t>(known - masters.begin());
    out.fingerprint = fingerprintOf(out);
    return out;
  }
  // A new master shifts the indexes of the sorted list: rebuild.
  std::vector<std::string> owners(kSlotCount);
  for (size_t i = 0; i < kSlotCount; ++i) {
    if (const std::string* master = masterOf(static_cast<uint16_t>(i))) owners[i] = *master;
  }
  owners[slot] = address;
  SlotMap out = fromOwners(owners);
  keepMastersIds(out, node_ids);
  return out;
}

Result<SlotMap> SlotMap::fromClusterSlots(const resp::Value& reply,
                                          std::string_view answering_host) {
  if (reply.type != resp::Type::kArray) return badShape("not an array");
  std::vector<std::string> owners(kSlotCount);
  std::map<std::string, std::string> node_ids;
  for (const resp::Value& range : reply.elements) {
    if (range.type != resp::Type::kArray || range.elements.size() < 3 ||
        !isInteger(range.elements[0]) || !isInteger(range.elements[1]) ||
        range.elements[2].type != resp::Type::kArray || range.elements[2].elements.size() < 2) {
      return badShape("a slot range is not [start, end, [host, port, ...], ...]");
    }
    const int64_t start = range.elements[0].integer, end = range.elements[1].integer;
    const resp::Value& host = range.elements[2].elements[0];
    const resp::Value& port = range.elements[2].elements[1];
    if (start < 0 || end < start || end >= kSlotCount) return badShape("a slot out of range");
    if ((host.type != resp::Type::kBulkString && host.type != resp::Type::kNull) ||
        !isInteger(port) || port.integer < 0 || port.integer > 65535) {
      return badShape("a master is not [host, port, ...]");
    }
    if (host.str == "?" || port.integer == 0) continue;  // endpoint unknown to that node
    std::string address = joinAddress(host.str.empty() ? answering_host : host.str, port.integer);
    const std::vector<resp::Value>& master = range.elements[2].elements;
    if (master.size() >= 3 && master[2].type == resp::Type::kBulkString && !master[2].str.empty()) {
      node_ids[address] = master[2].str;
    }
    for (int64_t slot = start; slot <= end; ++slot) owners[static_cast<size_t>(slot)] = address;
  }
  SlotMap map = fromOwners(owners);
  keepMastersIds(map, node_ids);  // an address that lost all its ranges to later entries is no master
  return map;
}

std::optional<Redirect> parseRedirect(std::string_view error, std::string_view answering_host) {
  Redirect out;
  if (error.rfind("MOVED ", 0) == 0) {
    out.kind = Redirect::Kind::kMoved;
    error.remove_prefix(6);
  } else if (error.rfind("ASK ", 0) == 0) {
    out.kind = Redirect::Kind::kAsk;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t space = error.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  std::string_view slot_text = error.substr(0, space), endpoint = error.substr(space + 1);
  unsigned slot = 0;
  auto [ptr, ec] = std::from_chars(slot_text.data(), slot_text.data() + slot_text.size(), slot);
  if (ec != std::errc() || ptr != slot_text.data() + slot_text.size() || slot >= kSlotCount) {
    return std::nullopt;
  }
  // Redis writes "ip:port" with a bare IPv6 address: the port follows the last colon.
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = endpoint.substr(0, colon), port_text = endpoint.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int64_t port = 0;
  auto [pptr, pec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (pec != std::errc() || pptr != port_text.data() + port_text.size() || port <= 0 ||
      port > 65535) {
    return std::nullopt;
  }
  out.slot = static_cast<uint16_t>(slot);
  out.address = joinAddress(host.empty() ? answering_host : host, port);
  return out;
}

uint32_t ClusterCursor::fingerprintBits(uint64_t fingerprint) {
  return static_cast<uint32_t>(fingerprint & ((uint64_t{1} << kFingerprintBits) - 1));
}

uint64_t ClusterCursor::encode() const {
  return node_cursor | (uint64_t{node} << kNodeCursorBits) |
         (uint64_t{fingerprintBits(fingerprint)} << (kNodeCursorBits + kNodeIndexBits));
}

ClusterCursor ClusterCursor::decode(uint64_t cursor) {
  ClusterCursor out;
  out.node_cursor = cursor & kMaxNodeCursor;
  out.node = static_cast<uint32_t>((cursor >> kNodeCursorBits) & (kMaxNodes - 1));
  out.fingerprint = fingerprintBits(cursor >> (kNodeCursorBits + kNodeIndexBits));
  return out;
}

}  // namespace lockshift::redis
