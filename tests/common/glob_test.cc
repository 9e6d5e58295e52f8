#include "common/glob.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

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

// The literal prefix decides which keys a name-index lookup reads, so every match must start
// with it: checked against globMatch for each case.
TEST(Glob, LiteralPrefixIsWhatEveryMatchStartsWith) {
  struct Case {
    std::string pattern, prefix;
  };
  const std::vector<Case> cases = {
      {"pr/acme/infra*", "pr/acme/infra"},   {"pr*", "pr"},
      {"pr/a?b*", "pr/a"},                    {"pr/[ab]*", "pr/"},
      {"pr/a\\*b*", "pr/a*b"},                {"exact/key", "exact/key"},
      {"", ""},                               {"*", ""},
      {"trailing\\", "trailing\\"},           {"pr/sp ace/*", "pr/sp ace/"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(globLiteralPrefix(c.pattern), c.prefix) << c.pattern;
  }
  for (const std::string text : {"pr/a*b/x", "exact/key", "trailing\\", "pr/sp ace/1"}) {
    for (const auto& c : cases) {
      if (globMatch(c.pattern, text)) {
        EXPECT_TRUE(text.starts_with(c.prefix)) << c.pattern << " " << text;
      }
    }
  }
}

}  // namespace
}  // namespace lockshift
