// atlantis_loadgen: Atlantis's TryLock/Unlock mix as go-redis puts it on the wire, from many
// connections, against any Redis-protocol server (lockshift or redis-server), for benchmarks.
//
//   atlantis_loadgen --port P [--clients 50] [--seconds 10] [--keys 1000] [--events 0|1]
//                    [--rate 0]
//
// Each client loops: pick a lock key; TryLock (GET, then SET of ProjectLock JSON if free);
// if granted, Unlock (GET, then DEL). Prints one line: cycles/s, commands/s, and the p50/p99
// latency of single commands in microseconds.
//
// Two ways to drive the clients:
//   --events 0 (default): one OS thread per client, blocking on its socket. Every reply wakes a
//     sleeping thread.
//   --events 1: one thread runs every client's connection from one epoll loop, the way Go's
//     runtime parks go-redis's goroutines on its network poller (Atlantis is a Go program: its
//     50 goroutines share a few threads). Replies that arrive together are handled in one wake.
// --rate R (thread clients only; 0, the default, means as fast as the server answers): the
// clients together send R commands per second, each on a fixed schedule, so that two servers
// can be compared at a load both sustain. A command's latency then counts from when the schedule
// meant to send it, not from when it went out, so a server that falls behind is charged for the
// wait it caused (the commands a closed loop would simply not have sent).
// Written by hand (no benchmark library) because it must speak RESP over plain sockets and
// measure per-command latency; it reuses lockshift's own RESP codec.

#include <sys/epoll.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <memory>
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
  bool events = false;
  double rate = 0;  // commands per second across all clients; 0: unpaced
};

std::string lockJson(int key, int pull) {
  return R"({"Project":{"ProjectName":"","RepoFullName":"acme/infra","Path":"mod)" + std::to_string(key) +
         R"("},"Pull":{"Num":)" + std::to_string(pull) +
         R"(,"HeadCommit":"0123abcd","URL":"","HeadBranch":"f","BaseBranch":"main","Author":"a","State":0,)"
         R"("BaseRepo":{"FullName":"acme/infra","Owner":"acme","Name":"infra","CloneURL":"","SanitizedCloneURL":"",)"
         R"("VCSHost":{"Hostname":"github.com","Type":0}}},"User":{"Username":"a","Teams":null},)"
         R"("Workspace":"default","Time":"2026-11-21T10:00:00Z"})";
}

// One client of --events 1: the mix as a state machine over a non-blocking connection.
class EventClient {
 public:
  EventClient(int port, int id, int keys)
      : fd_(lockshift::bench::connectLoopback(port)), id_(id), keys_(keys), rng_(id + 1),
        parser_(lockshift::resp::Parser::Mode::kReply) {
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~EventClient() { ::close(fd_); }
  int fd() const { return fd_; }

  void start() { beginCycle(); }
  // Reads what arrived and answers each reply with the next command. Returns the replies handled.
  int onReadable(std::vector<uint32_t>& latencies, long& cycles) {
    int handled = 0;
    char tmp[16384];
    for (;;) {
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, MSG_DONTWAIT);
      if (n == 0) {
        std::fprintf(stderr, "connection closed\n");
        std::exit(1);
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        std::perror("recv");
        std::exit(1);
      }
      buf_.append(tmp, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof tmp) break;  // drained: spare the EAGAIN read
    }
    while (!buf_.empty()) {
      size_t used = parser_.feed(buf_);
      buf_.erase(0, used);
      if (parser_.state() == lockshift::resp::Parser::State::kError) std::exit(2);
      if (parser_.state() != lockshift::resp::Parser::State::kReady) break;
      lockshift::resp::Value v = parser_.takeValue();
      latencies.push_back(static_cast<uint32_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent_at_).count()));
      ++handled;
      next(v, cycles);
    }
    return handled;
  }

 private:
  enum class Step { kTryGet, kSet, kGet, kDel };

  void beginCycle() {
    key_no_ = static_cast<int>(rng_() % static_cast<unsigned>(keys_));
    key_ = "pr/acme/infra/mod" + std::to_string(key_no_) + "/default/";
    send(Step::kTryGet, {"GET", key_});
  }
  void next(const lockshift::resp::Value& v, long& cycles) {
    switch (step_) {
      case Step::kTryGet:
        if (v.type != lockshift::resp::Type::kNull) return beginCycle();
        return send(Step::kSet, {"SET", key_, lockJson(key_no_, id_ + 1)});
      case Step::kSet:
        if (v.type == lockshift::resp::Type::kError) return beginCycle();  // strict acquire refused
        return send(Step::kGet, {"GET", key_});
      case Step::kGet:
        return send(Step::kDel, {"DEL", key_});
      case Step::kDel:
        ++cycles;
        return beginCycle();
    }
  }
  void send(Step step, const std::vector<std::string>& args) {
    step_ = step;
    out_.clear();
    lockshift::resp::encodeCommand(args, out_);
    sent_at_ = Clock::now();
    lockshift::bench::sendAll(fd_, out_);
  }

  int fd_;
  int id_;
  int keys_;
  std::mt19937 rng_;
  lockshift::resp::Parser parser_;
  std::string buf_, out_, key_;
  int key_no_ = 0;
  Step step_ = Step::kTryGet;
  Clock::time_point sent_at_;
};

// --events 1: every client on one epoll loop, until `seconds` have passed.
void runEvents(const Options& o, long& cycles, long& commands, std::vector<uint32_t>& latencies) {
  int ep = ::epoll_create1(0);
  std::vector<std::unique_ptr<EventClient>> clients;
  for (int c = 0; c < o.clients; ++c) {
    clients.push_back(std::make_unique<EventClient>(o.port, c, o.keys));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = clients.back().get();
    ::epoll_ctl(ep, EPOLL_CTL_ADD, clients.back()->fd(), &ev);
  }
  for (auto& c : clients) c->start();
  const auto end = Clock::now() + std::chrono::seconds(o.seconds);
  epoll_event ready[64];
  while (Clock::now() < end) {
    int n = ::epoll_wait(ep, ready, 64, 100);
    for (int i = 0; i < n; ++i) {
      commands += static_cast<EventClient*>(ready[i].data.ptr)->onReadable(latencies, cycles);
    }
  }
  ::close(ep);
}

}  // namespace

// Parses all of `text` as a number no smaller than `min` (and, for integers, no larger than
// `max`); false for anything else ("5k", "", "1e3" for an integer).
template <typename T>
bool parseFlag(const char* text, T min, T max, T& out) {
  const char* end = text + std::strlen(text);
  T v{};
  auto [ptr, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || ptr != end || ptr == text || !(v >= min) || !(v <= max)) return false;
  out = v;
  return true;
}

int main(int argc, char** argv) {
  Options o;
  constexpr const char* kUsage =
      "usage: atlantis_loadgen --port P [--clients N] [--seconds S] [--keys K] [--events 0|1] [--rate R]\n";
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : "";
    int events = o.events ? 1 : 0;
    bool ok = false;
    if (flag == "--rate") ok = parseFlag(value, 0.0, 1e9, o.rate);
    else if (flag == "--port") ok = parseFlag(value, 1, 65535, o.port);
    else if (flag == "--clients") ok = parseFlag(value, 1, 100000, o.clients);
    else if (flag == "--seconds") ok = parseFlag(value, 1, 86400, o.seconds);
    else if (flag == "--keys") ok = parseFlag(value, 1, 100000000, o.keys);
    else if (flag == "--events") ok = parseFlag(value, 0, 1, events);
    else {
      std::fprintf(stderr, "atlantis_loadgen: unknown flag '%s'\n%s", flag.c_str(), kUsage);
      return 2;
    }
    if (!ok) {
      std::fprintf(stderr, "atlantis_loadgen: bad value '%s' for %s\n%s", value, flag.c_str(), kUsage);
      return 2;
    }
    o.events = events != 0;
  }
  if (o.rate > 0 && o.events) {
    std::fprintf(stderr, "atlantis_loadgen: --rate needs thread clients (--events 0)\n");
    return 2;
  }
  long total_cycles = 0, total_commands = 0;
  std::vector<std::vector<uint32_t>> latencies(o.clients);
  if (o.events) {
    runEvents(o, total_cycles, total_commands, latencies[0]);
  } else {
    std::atomic<bool> stop{false};
    std::atomic<long> cycles{0}, commands{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < o.clients; ++c) {
      threads.emplace_back([&, c] {
        lockshift::bench::Conn conn(o.port);
        std::mt19937 rng(c + 1);
        // Paced clients start spread over one interval, not all at once.
        const auto interval = o.rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                                               std::chrono::duration<double>(o.clients / o.rate))
                                         : Clock::duration::zero();
        auto scheduled = Clock::now() + interval * c / o.clients;
        auto timed = [&](const std::vector<std::string>& args) {
          auto t = Clock::now();
          if (o.rate > 0) {
            if (t < scheduled) std::this_thread::sleep_until(scheduled);
            t = scheduled;
            scheduled += interval;
          }
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
    total_cycles = cycles.load();
    total_commands = commands.load();
  }
  std::vector<uint32_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0u : all[static_cast<size_t>(p * (all.size() - 1))]; };
  std::printf("cycles_per_s=%.0f commands_per_s=%.0f p50_us=%u p99_us=%u\n", total_cycles / double(o.seconds),
              total_commands / double(o.seconds), pct(0.5), pct(0.99));
  return 0;
}
