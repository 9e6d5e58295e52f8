#pragma once
// Atlantis's UnlockIfOwnedByPull Lua script (server/core/redis/redis.go), byte for byte, and its
// SHA1. lockshift executes it natively; the body is what EVAL carries on the wire.

#include <string_view>

namespace lockshift {

inline constexpr std::string_view kAtlantisUnlockScript =
    "local value = redis.call(\"GET\", KEYS[1])\n"
    "if not value then\n"
    "  return nil\n"
    "end\n"
    "\n"
    "local ok, lock = pcall(cjson.decode, value)\n"
    "if not ok then\n"
    "  return redis.error_reply(\"failed to deserialize current lock\")\n"
    "end\n"
    "\n"
    "if not lock[\"Pull\"] or tonumber(lock[\"Pull\"][\"Num\"]) ~= tonumber(ARGV[1]) then\n"
    "  return nil\n"
    "end\n"
    "\n"
    "redis.call(\"DEL\", KEYS[1])\n"
    "return value\n";

inline constexpr std::string_view kAtlantisUnlockScriptSha1 = "c09313c9247bdb6383a96b527fe8492ef19a1eeb";

}  // namespace lockshift
