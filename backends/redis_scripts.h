#pragma once
// The Lua script behind RedisStore::put() with a condition or strict acquire, and the SHA1s that
// EVALSHA needs. Private to backends/redis_*. (A strict acquire with no condition and no
// previous value asked is first tried as SET NX; the script runs only when the key is present.)
//
// The script is LmdbStore's applyPut (lmdb_write_ops.cc) in Lua, run atomically by Redis:
//   1. previous = the current value, when return_previous is asked;
//   2. NX with a value present, or XX with none: condition failed, nothing written;
//   3. strict acquire over a present value: the value must be a project lock as
//      parseProjectLock() reads it (an object with Pull.Num an integer, a Project object and a
//      Workspace string) held by the requested owner (LockIdentity::sameHolder: Pull.Num,
//      Project.RepoFullName, Project.Path, Project.ProjectName and Workspace all equal); else
//      locked by other, with the holder described as LockIdentity::describe() does, or
//      "an unreadable lock value";
//   4. SET.
//
// KEYS[1] is the key. ARGV[1] the value, ARGV[2] "NX", "XX" or "", ARGV[3] "1" to return the
// previous value, ARGV[4] "1" for strict acquire, then the requested owner: ARGV[5] Pull.Num in
// decimal, ARGV[6] RepoFullName, ARGV[7] Path, ARGV[8] ProjectName, ARGV[9] Workspace.
// Reply: a 3-element array {outcome, previous, holder}: outcome 0 applied, 1 condition failed,
// 2 locked by other; previous a bulk string or nil; holder a bulk string, empty unless locked.
//
// Redis's cjson reads numbers as doubles, so Pull.Num compares exactly up to 2^53 (far beyond
// any pull number). Inputs Atlantis never writes are read more leniently than Boost.JSON does in
// LmdbStore: an integral Num written with a fraction or exponent (12.0, 1.2e1), hex, NaN or
// Infinity literals, invalid UTF-8 inside strings, nesting deeper than 32, and an empty array
// where an object is expected (cjson decodes [] and {} alike). Such values count as readable
// here and as unreadable in LmdbStore.

#include <string>
#include <string_view>

namespace lockshift::redis {

inline constexpr std::string_view kPutScript = R"lua(
local function isObject(v)
  return type(v) == "table" and v[1] == nil
end
local function text(object, name)
  local v = object[name]
  if type(v) == "string" then return v end
  return ""
end
local function holderOf(value)
  local ok, lock = pcall(cjson.decode, value)
  if not ok or not isObject(lock) or not isObject(lock["Pull"]) then return nil end
  local num = lock["Pull"]["Num"]
  if type(num) ~= "number" or num ~= math.floor(num) or num < -2^63 or num >= 2^63 then
    return nil
  end
  local project = lock["Project"]
  if not isObject(project) or type(lock["Workspace"]) ~= "string" then return nil end
  local user = ""
  if isObject(lock["User"]) then user = text(lock["User"], "Username") end
  return {num = num, repo = text(project, "RepoFullName"), path = text(project, "Path"),
          name = text(project, "ProjectName"), workspace = lock["Workspace"], user = user}
end

local existing = redis.call("GET", KEYS[1])
local previous = false
if ARGV[3] == "1" then previous = existing end
if (ARGV[2] == "NX" and existing) or (ARGV[2] == "XX" and not existing) then
  return {1, previous, ""}
end
if ARGV[4] == "1" and existing then
  local h = holderOf(existing)
  if not h then return {2, previous, "an unreadable lock value"} end
  if h.num ~= tonumber(ARGV[5]) or h.repo ~= ARGV[6] or h.path ~= ARGV[7] or
      h.name ~= ARGV[8] or h.workspace ~= ARGV[9] then
    local who = "pull #" .. string.format("%d", h.num)
    if h.user ~= "" then who = who .. " (" .. h.user .. ")" end
    return {2, previous, who}
  end
end
redis.call("SET", KEYS[1], ARGV[1])
return {0, previous, ""}
)lua";

// The lower-case hex SHA1 of a script body, as SCRIPT LOAD returns it and EVALSHA takes it.
std::string scriptSha1(std::string_view body);

// scriptSha1(kPutScript), computed once. Thread-safe.
const std::string& putScriptSha1();

}  // namespace lockshift::redis
