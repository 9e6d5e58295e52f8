#pragma once
// The allocator setting lockshift starts with: glibc's per-thread cache (tcache) holds up to
// kMallocTcacheCount freed chunks of each size instead of glibc's default of 7.
//
// Why: with tens of requests in flight, lockshift frees and allocates dozens of objects of the
// same few sizes per request (coroutine frames, keys, lock values, encoded commands, mirrored
// calls). Seven per size is far too few to hold them, so most allocations took the arena's slow
// paths (_int_malloc, malloc_consolidate, unlink_chunk: 5% of lockshift's CPU in legacy-only and
// 11% in shadow), which all but vanish with 256 per size. Side by side, lockshift's user time per
// request fell 4-11% and its CPU per request 0-10% (BENCHMARKS.md, round of 2026-12-06, late
// evening); 1024 per size measured the same as 256.
//
// How: glibc reads its tunables only from GLIBC_TUNABLES when a process starts, and has no
// mallopt() for the cache, so lockshift adds the setting to the variable and executes itself
// again (same pid, same arguments) before it opens anything. Another allocator (jemalloc,
// tcmalloc) is not among lockshift's dependencies. An operator's own glibc.malloc.tcache_count
// stands: then nothing is re-executed (GLIBC_TUNABLES=glibc.malloc.tcache_count=7 gives glibc's
// default back). Not for a set-user-ID or file-capability start, where glibc ignores the setting.
//
// Memory: a cached chunk is one that was in use at a peak; each thread keeps at most
// kMallocTcacheCount chunks of each of glibc's 64 cached sizes (24 to 1032 bytes), 8.25 MiB at
// the very most, and reuses them for the next requests.

#include <optional>
#include <string>
#include <string_view>

namespace lockshift {

inline constexpr int kMallocTcacheCount = 256;
inline constexpr std::string_view kTcacheCountTunable = "glibc.malloc.tcache_count";

// The value GLIBC_TUNABLES should have: `current` (the variable's value; nullptr when unset) with
// kTcacheCountTunable=kMallocTcacheCount added after its own entries. nullopt when `current`
// already sets kTcacheCountTunable, to any value: nothing is to change then.
std::optional<std::string> tunablesWithTcacheCount(const char* current);

// Called first thing by a process that serves: if GLIBC_TUNABLES lacks the cache setting, sets it
// and executes its own binary again with `argv` (the process's own), so it never returns then. Returns
// when there was nothing to do, or with a message when the execution failed; the process then
// goes on with glibc's defaults.
std::optional<std::string> applyMallocTunables(char** argv);

}  // namespace lockshift
