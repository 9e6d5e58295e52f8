#include "common/glob.h"

#include <gtest/gtest.h>

#include <string>

namespace lockshift {
namespace {

struct GlobCase {
  const char* pattern;
  const char* text;
  bool match;
};

TEST(Glob, RedisSemantics) {
  const GlobCase cases[] = {
      {"*", "", true},
      {"*", "anything", true},
      {"pr*", "pr/acme/infra/./default/", true},
      {"pr*", "global/apply/lock", false},
      {"pr/acme/infra*", "pr/acme/infra/./default/", true},
      {"pr/acme/infra*", "pr/acme/infrastructure/x", true},  // Atlantis's own prefix semantics
      {"pr/acme/infra*", "pr/acme/inf", false},
      {"h?llo", "hello", true},
      {"h?llo", "hllo", false},
      {"h[ae]llo", "hallo", true},
      {"h[ae]llo", "hillo", false},
      {"h[^e]llo", "hallo", true},
      {"h[^e]llo", "hello", false},
      {"h[a-c]llo", "hbllo", true},
      {"h[c-a]llo", "hbllo", true},  // reversed range, like Redis
      {"h[a-c]llo", "hdllo", false},
      {"h\\*llo", "h*llo", true},
      {"h\\*llo", "hello", false},
      {"*a*b*c*", "xxaxxbxxcxx", true},
      {"*a*b*c*", "xxaxxcxxbxx", false},
      {"pr/group/sub group/*", "pr/group/sub group/repo/./default/", true},
      {"", "", true},
      {"", "x", false},
      {"abc", "abcd", false},
      {"a*", "a", true},
      {"[abc", "b", true},  // unclosed class runs to the end
  };
  for (const auto& c : cases) {
    EXPECT_EQ(globMatch(c.pattern, c.text), c.match) << c.pattern << " vs " << c.text;
  }
}

TEST(Glob, PathologicalPatternIsFast) {
  std::string text(5000, 'a');
  std::string pattern;
  for (int i = 0; i < 50; ++i) pattern += "*a";
  pattern += "*b";
  EXPECT_FALSE(globMatch(pattern, text));  // exponential in a naive matcher
}

}  // namespace
}  // namespace lockshift
