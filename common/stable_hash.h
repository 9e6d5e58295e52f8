#pragma once
// The stable key hash. It orders LMDB scans (the scan cursor is a position in hash order) and,
// with the router, assigns keys to traffic-split buckets. Its output is part of the on-disk format
// and of routing: it must never change between versions and is equal on every replica.
//
// Definition: h = FNV-1a 64 over the key bytes (offset 0xcbf29ce484222325, prime 0x100000001b3),
// then the splitmix64 finaliser:
//   h ^= h >> 30; h *= 0xbf58476d1ce4e5b9; h ^= h >> 27; h *= 0x94d049bb133111eb; h ^= h >> 31.
// bucket(key) = stableHash64(key) % 10000.
// Written by hand because it is eight lines and its exact output is a compatibility promise that
// a library upgrade must not be able to break.

#include <cstdint>
#include <string_view>

namespace lockshift {

constexpr uint64_t stableHash64(std::string_view key) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

constexpr uint32_t kBucketCount = 10000;
constexpr uint32_t stableBucket(std::string_view key) {
  return static_cast<uint32_t>(stableHash64(key) % kBucketCount);
}

}  // namespace lockshift
