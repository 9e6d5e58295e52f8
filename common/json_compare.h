#pragma once
// Comparing stored values as lock decisions do (DESIGN §4): JSON-equal when both parse as JSON,
// member order ignored; byte-equal otherwise.

#include <string_view>

namespace lockshift {

bool sameJsonValue(std::string_view a, std::string_view b);

}  // namespace lockshift
