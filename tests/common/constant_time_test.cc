#include "common/constant_time.h"

#include <gtest/gtest.h>

#include <string>

namespace lockshift {
namespace {

TEST(ConstantTimeEquals, EqualOnlyForTheSameBytes) {
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_TRUE(constantTimeEquals("s3cret", "s3cret"));
  EXPECT_FALSE(constantTimeEquals("s3cret", "s3creT"));
  EXPECT_FALSE(constantTimeEquals("s3cret", "x3cret"));
  // A prefix, or the secret with more after it, is not the secret.
  EXPECT_FALSE(constantTimeEquals("s3cre", "s3cret"));
  EXPECT_FALSE(constantTimeEquals("s3cret", "s3cret!"));
  EXPECT_FALSE(constantTimeEquals("", "s3cret"));
  // Bytes past the shorter one are compared as zero: a trailing NUL still makes it longer.
  EXPECT_FALSE(constantTimeEquals(std::string("s3cret\0", 7), "s3cret"));
  EXPECT_TRUE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constantTimeEquals("\xff", "\x7f"));
}

}  // namespace
}  // namespace lockshift
