#pragma once
// Redis's glob matching (stringmatchlen): `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes.
// Used for SCAN MATCH and routing rules.

#include <string>
#include <string_view>

namespace lockshift {

bool globMatch(std::string_view pattern, std::string_view text);

// The text every match of `pattern` starts with: its characters up to the first `*`, `?` or `[`,
// with `\x` read as x. The whole pattern (unescaped) when it has no wildcard.
std::string globLiteralPrefix(std::string_view pattern);

}  // namespace lockshift
