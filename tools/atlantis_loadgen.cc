// atlantis_loadgen: Atlantis's TryLock/Unlock mix as go-redis puts it on the wire, from many
// connections, against any Redis-protocol server (lockshift or redis-server), for benchmarks.
//
//   atlantis_loadgen --port P [--clients 50] [--seconds 10] [--keys 1000]
//
// Each client loops: pick a lock key; TryLock (GET, then SET of ProjectLock JSON if free);
// if granted, Unlock (GET, then DEL). Prints one line: cycles/s, commands/s, and the p50/p99
// latency of single commands in microseconds.
// Written by hand (no benchmark library) because it must speak RESP over plain sockets and
// measure per-command latency; it reuses lockshift's own RESP codec.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tools/bench_conn.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int port = 6380;
  int clients = 50;
  int seconds = 10;
  int keys = 1000;
};

std::string lockJson(int key, int pull) {
  return R"({"Project":{"ProjectName":"","RepoFullName":"acme/infra","Path":"mod)" + std::to_string(key) +
         R"("},"Pull":{"Num":)" + std::to_string(pull) +
         R"(,"HeadCommit":"0123abcd","URL":"","HeadBranch":"f","BaseBranch":"main","Author":"a","State":0,)"
         R"("BaseRepo":{"FullName":"acme/infra","Owner":"acme","Name":"infra","CloneURL":"","SanitizedCloneURL":"",)"
         R"("VCSHost":{"Hostname":"github.com","Type":0}}},"User":{"Username":"a","Teams":null},)"
         R"("Workspace":"default","Time":"2026-11-21T10:00:00Z"})";
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (flag == "--port") o.port = v;
    else if (flag == "--clients") o.clients = v;
    else if (flag == "--seconds") o.seconds = v;
    else if (flag == "--keys") o.keys = v;
    else {
      std::fprintf(stderr, "usage: atlantis_loadgen --port P [--clients N] [--seconds S] [--keys K]\n");
      return 2;
    }
  }
  std::atomic<bool> stop{false};
  std::atomic<long> cycles{0}, commands{0};
  std::vector<std::vector<uint32_t>> latencies(o.clients);
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      lockshift::bench::Conn conn(o.port);
      std::mt19937 rng(c + 1);
      auto timed = [&](const std::vector<std::string>& args) {
        auto t = Clock::now();
        auto v = conn.call(args);
        latencies[c].push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count()));
        commands.fetch_add(1, std::memory_order_relaxed);
        return v;
      };
      while (!stop) {
        int k = static_cast<int>(rng() % static_cast<unsigned>(o.keys));
        std::string key = "pr/acme/infra/mod" + std::to_string(k) + "/default/";
        auto cur = timed({"GET", key});
        if (cur.type != lockshift::resp::Type::kNull) continue;
        auto set = timed({"SET", key, lockJson(k, c + 1)});
        if (set.type == lockshift::resp::Type::kError) continue;  // strict acquire refused
        timed({"GET", key});
        timed({"DEL", key});
        cycles.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(o.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  std::vector<uint32_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0u : all[static_cast<size_t>(p * (all.size() - 1))]; };
  std::printf("cycles_per_s=%.0f commands_per_s=%.0f p50_us=%u p99_us=%u\n", cycles.load() / double(o.seconds),
              commands.load() / double(o.seconds), pct(0.5), pct(0.99));
  return 0;
}
