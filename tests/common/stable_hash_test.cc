// The stable hash is a compatibility promise (scan cursors on disk, split buckets on every
// replica). These golden values were computed independently from the definition in
// common/stable_hash.h; if this test fails, the hash changed and must be changed back.
#include "common/stable_hash.h"

#include <gtest/gtest.h>

#include <array>
#include <string>

namespace lockshift {
namespace {

TEST(StableHash, GoldenValuesNeverChange) {
  EXPECT_EQ(stableHash64(""), 0xf52a15e9a9b5e89bULL);
  EXPECT_EQ(stableHash64("pr/acme/infra/./default/"), 0xc6b69874c64ff41cULL);
  EXPECT_EQ(stableHash64("global/apply/lock"), 0x797df5e9d955f7e6ULL);
  EXPECT_EQ(stableHash64("github.com::acme/infra::12"), 0xcfab605c113d9bf8ULL);
  EXPECT_EQ(stableHash64("pr/group/sub group/repo/mod/\xc3\xbc/default/x"), 0x89ed62803c22b8d0ULL);
}

TEST(StableHash, BucketsAreHashModTenThousand) {
  EXPECT_EQ(stableBucket(""), 6203u);
  EXPECT_EQ(stableBucket("pr/acme/infra/./default/"), 7612u);
  EXPECT_EQ(stableBucket("global/apply/lock"), 7238u);
  EXPECT_EQ(stableBucket("github.com::acme/infra::12"), 2952u);
}

TEST(StableHash, BucketsSpreadEvenly) {
  // 100k lock-like keys into 10 deciles: each within 5% of the mean.
  std::array<int, 10> deciles{};
  for (int i = 0; i < 100000; ++i) {
    std::string key = "pr/acme/repo" + std::to_string(i % 97) + "/mod" + std::to_string(i) + "/default/";
    ++deciles[stableBucket(key) / 1000];
  }
  for (int n : deciles) {
    EXPECT_GT(n, 9500);
    EXPECT_LT(n, 10500);
  }
}

}  // namespace
}  // namespace lockshift
