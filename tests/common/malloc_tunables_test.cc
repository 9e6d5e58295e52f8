// The GLIBC_TUNABLES value lockshift starts with (common/malloc_tunables.h): its cache setting is
// added to what the operator set, and an operator's own cache setting is never replaced.

#include "common/malloc_tunables.h"

#include <gtest/gtest.h>

namespace lockshift {
namespace {

TEST(MallocTunables, UnsetOrEmptyGetsTheCacheSetting) {
  EXPECT_EQ(tunablesWithTcacheCount(nullptr), "glibc.malloc.tcache_count=256");
  EXPECT_EQ(tunablesWithTcacheCount(""), "glibc.malloc.tcache_count=256");
}

TEST(MallocTunables, OtherTunablesAreKeptAndTheSettingAdded) {
  EXPECT_EQ(tunablesWithTcacheCount("glibc.malloc.mxfast=64"),
            "glibc.malloc.mxfast=64:glibc.malloc.tcache_count=256");
  EXPECT_EQ(tunablesWithTcacheCount("glibc.malloc.check=3:glibc.malloc.tcache_max=512"),
            "glibc.malloc.check=3:glibc.malloc.tcache_max=512:glibc.malloc.tcache_count=256");
}

TEST(MallocTunables, AnOperatorsCacheSettingStands) {
  EXPECT_EQ(tunablesWithTcacheCount("glibc.malloc.tcache_count=7"), std::nullopt);
  EXPECT_EQ(tunablesWithTcacheCount("glibc.malloc.mxfast=64:glibc.malloc.tcache_count=0"), std::nullopt);
  EXPECT_EQ(tunablesWithTcacheCount("glibc.malloc.tcache_count=1024:glibc.malloc.mxfast=64"), std::nullopt);
  // Even one glibc would refuse: the variable is the operator's to get right.
  EXPECT_EQ(tunablesWithTcacheCount("glibc.malloc.tcache_count=many"), std::nullopt);
}

TEST(MallocTunables, NamesThatOnlyLookAlikeDoNotCount) {
  EXPECT_EQ(tunablesWithTcacheCount("glibc.malloc.tcache_count_extra=1"),
            "glibc.malloc.tcache_count_extra=1:glibc.malloc.tcache_count=256");
  EXPECT_EQ(tunablesWithTcacheCount("x.glibc.malloc.tcache_count=1"),
            "x.glibc.malloc.tcache_count=1:glibc.malloc.tcache_count=256");
}

}  // namespace
}  // namespace lockshift
