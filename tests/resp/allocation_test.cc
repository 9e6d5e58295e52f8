// A count on the wire must not size an allocation: the parser reserves at most
// min(count, Limits::kReserveCap) slots and min(length, 64 KiB) bulk bytes, and grows only with the
// bytes that arrive. This binary replaces the global operator new to measure what is allocated
// while a probe is active.

#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <tuple>
#include <vector>

#include "resp/parser.h"

namespace {

std::atomic<bool> g_tracking{false};
std::atomic<size_t> g_largest{0};
std::atomic<size_t> g_total{0};

void* allocate(size_t n) {
  if (g_tracking.load(std::memory_order_relaxed)) {
    g_total.fetch_add(n, std::memory_order_relaxed);
    size_t seen = g_largest.load(std::memory_order_relaxed);
    while (n > seen && !g_largest.compare_exchange_weak(seen, n)) {
    }
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

}  // namespace

void* operator new(size_t n) { return allocate(n); }
void* operator new[](size_t n) { return allocate(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace lockshift::resp {
namespace {

constexpr size_t kBulkReserve = 64 * 1024;
constexpr size_t kSlack = 1024;

// Measures the allocations made while it lives (single-threaded tests only).
class AllocationProbe {
 public:
  AllocationProbe() {
    g_largest = 0;
    g_total = 0;
    g_tracking = true;
  }
  ~AllocationProbe() { g_tracking = false; }
  size_t largest() const { return g_largest; }
  size_t total() const { return g_total; }
};

Limits unbounded() {
  Limits limits;
  limits.max_bulk_length = SIZE_MAX;
  limits.max_array_length = SIZE_MAX;
  limits.max_depth = 64;
  return limits;
}

TEST(ParserAllocation, ProbeSeesAllocations) {
  AllocationProbe probe;
  std::vector<char> v(100000);
  asm volatile("" : : "g"(v.data()) : "memory");  // keep the allocation
  EXPECT_GE(probe.largest(), 100000u);
}

TEST(ParserAllocation, HugeArrayCountReservesAtMostReserveCap) {
  for (auto mode : {Parser::Mode::kRequest, Parser::Mode::kReply}) {
    Parser parser(mode, unbounded());
    AllocationProbe probe;
    EXPECT_EQ(parser.feed("*2147483647\r\n"), 13u);
    EXPECT_EQ(parser.state(), Parser::State::kNeedMore);
    EXPECT_EQ(parser.bufferedBytes(), 13u);
    EXPECT_LE(probe.total(), Limits::kReserveCap * sizeof(Value) + kSlack);
  }
}

TEST(ParserAllocation, NestedHugeArrayCountsReserveAtMostReserveCapEach) {
  Parser parser(Parser::Mode::kReply, unbounded());
  AllocationProbe probe;
  for (int i = 0; i < 32; ++i) EXPECT_EQ(parser.feed("*2147483647\r\n"), 13u);
  EXPECT_EQ(parser.state(), Parser::State::kNeedMore);
  EXPECT_LE(probe.largest(), Limits::kReserveCap * sizeof(Value) + kSlack);
}

TEST(ParserAllocation, HugeBulkLengthGrowsWithTheBytesReceived) {
  for (const char* header : {"$2147483647\r\n", "$9223372036854775807\r\n"}) {
    SCOPED_TRACE(header);
    for (auto mode : {Parser::Mode::kRequest, Parser::Mode::kReply}) {
      Parser parser(mode, unbounded());
      const std::string prefix = mode == Parser::Mode::kRequest ? "*1\r\n" : "";
      const std::string chunk(4096, 'x');
      AllocationProbe probe;
      EXPECT_NO_THROW({
        parser.feed(prefix + header);
        parser.feed("x");
      });
      EXPECT_LE(probe.total(), kBulkReserve + 2 * (prefix.size() + 32) + kSlack);
      size_t received = 1;
      for (int i = 0; i < 256; ++i) received += parser.feed(chunk);
      EXPECT_EQ(received, 1 + 256 * chunk.size());
      EXPECT_EQ(parser.state(), Parser::State::kNeedMore);
      EXPECT_EQ(parser.bufferedBytes(), prefix.size() + std::strlen(header) + received);
      EXPECT_LE(probe.largest(), 2 * received + kSlack);
    }
  }
}

// Headers with huge counts and lengths, in any order, with unbounded limits: no single allocation
// is larger than the fixed reservations or twice the input.
RC_GTEST_PROP(ParserAllocation, randomHugeCountsAllocateWithTheInput, ()) {
  const auto mode = *rc::gen::element(Parser::Mode::kRequest, Parser::Mode::kReply);
  // Mostly well-formed header lines ("*2147483647\r\n") with huge numbers, and long filler.
  const auto piece =
      rc::gen::tuple(rc::gen::element<std::string>("*", "$", "+", ":", ""),
                     rc::gen::element<std::string>("2147483647", "9223372036854775807", "1048576",
                                                   "1", "0", "-1", std::string(3000, 'y')),
                     rc::gen::element<std::string>("\r\n", "\r\n", ""));
  std::string wire;
  for (const auto& [type, number, end] :
       *rc::gen::container<std::vector<std::tuple<std::string, std::string, std::string>>>(piece)) {
    wire += type + number + end;
  }
  Parser parser(mode, unbounded());
  size_t largest = 0;
  {
    AllocationProbe probe;
    std::string_view rest = wire;
    while (parser.state() != Parser::State::kError) {
      rest.remove_prefix(parser.feed(rest));
      if (parser.state() != Parser::State::kReady) break;
      mode == Parser::Mode::kRequest ? (void)parser.takeRequest() : (void)parser.takeValue();
    }
    largest = probe.largest();
  }
  RC_ASSERT(largest <=
            std::max(Limits::kReserveCap * sizeof(Value), kBulkReserve) + 2 * wire.size() + kSlack);
}

// A handled request's arguments, handed back, carry the next request of the same shape: a GET
// of a key longer than a string's inline buffer and a SET of a lock-sized value allocate nothing
// once warm.
TEST(ParserAllocation, RecycledArgumentsServeTheNextRequest) {
  const std::string get = "*2\r\n$3\r\nGET\r\n$16\r\nkey:000000012345\r\n";
  const std::string set = "*3\r\n$3\r\nSET\r\n$16\r\nkey:000000012345\r\n$600\r\n" +
                          std::string(600, 'v') + "\r\n";
  for (const std::string& wire : {get, set}) {
    Parser parser(Parser::Mode::kRequest, unbounded());
    auto once = [&] {
      ASSERT_EQ(parser.feed(wire), wire.size());
      ASSERT_EQ(parser.state(), Parser::State::kReady);
      std::vector<std::string> args = parser.takeRequest();
      ASSERT_EQ(args.back().size(), wire == get ? 16u : 600u);
      parser.recycle(std::move(args));
    };
    once();  // warms the spares
    AllocationProbe probe;
    once();
    once();
    EXPECT_EQ(probe.total(), 0u) << wire.substr(0, 20);
  }
}

// What is kept stays bounded: strings above kSpareCapacity are released, not hoarded.
TEST(ParserAllocation, RecycleKeepsNoLargeBuffers) {
  Parser parser(Parser::Mode::kRequest, unbounded());
  const std::string big(Parser::kSpareCapacity * 4, 'b');
  const std::string wire = "*2\r\n$3\r\nSET\r\n$" + std::to_string(big.size()) + "\r\n" + big + "\r\n";
  ASSERT_EQ(parser.feed(wire), wire.size());
  std::vector<std::string> args = parser.takeRequest();
  parser.recycle(std::move(args));
  // The next bulk must allocate afresh, since the large buffer was not kept.
  AllocationProbe probe;
  ASSERT_EQ(parser.feed(wire), wire.size());
  EXPECT_GE(probe.total(), big.size());
}

}  // namespace
}  // namespace lockshift::resp
