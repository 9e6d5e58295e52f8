#pragma once
// Redis's glob matching (stringmatchlen): `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes.
// Used for SCAN MATCH and routing rules.

#include <string_view>

namespace lockshift {

bool globMatch(std::string_view pattern, std::string_view text);

}  // namespace lockshift
