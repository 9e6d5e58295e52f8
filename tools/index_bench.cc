// index_bench: how long finding and releasing a repository's or a pull's locks takes with many
// held locks, the way Atlantis does it on its Redis (SCAN ... MATCH, then GET each key) against
// lockshift's enhanced indexes (GET / DELETE /api/v1/locks?repo=&pull=), and Atlantis's own
// sequences sent to lockshift (whose SCAN MATCH pr/{repo}* reads enhanced's name index). For
// tools/bench_index.sh.
//
//   index_bench seed --port P --repos R --locks-per-repo K --pulls-per-repo N
//       SETs R*K project locks (Atlantis's JSON) into a Redis-protocol server, pipelined.
//   index_bench measure --legacy-port L --lockshift-port S --admin-port A --repos R
//                       --pulls-per-repo N --runs X
//       X rounds; each uses repositories no earlier round touched, so every release finds locks.
//       Prints one line per measurement: "<what> <milliseconds> <locks found>".
//
// Atlantis's own sequences (server/core/redis/redis.go): List is SCAN MATCH pr* with no COUNT
// until the cursor is 0, then a GET per key; UnlockByPull is SCAN MATCH pr/{repo}* the same way,
// a GET per key, and a DEL for each whose Pull.Num is the pull. Written by hand because it must
// replay those exact command sequences and time them; it reuses lockshift's RESP codec.

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tools/bench_conn.h"

namespace {

namespace json = boost::json;
using lockshift::bench::Conn;
using Clock = std::chrono::steady_clock;

std::string repoName(int repo) { return "bench/repo" + std::to_string(repo); }
std::string lockKey(int repo, int lock) {
  return "pr/" + repoName(repo) + "/mod" + std::to_string(lock) + "/default/p";
}
int pullOf(int lock, int pulls) { return lock % pulls + 1; }

std::string lockJson(int repo, int lock, int pull) {
  const std::string r = repoName(repo);
  return R"({"Project":{"ProjectName":"p","RepoFullName":")" + r + R"(","Path":"mod)" + std::to_string(lock) +
         R"("},"Pull":{"Num":)" + std::to_string(pull) +
         R"(,"HeadCommit":"0123abcd","URL":"","HeadBranch":"f","BaseBranch":"main","Author":"a","State":0,)"
         R"("BaseRepo":{"FullName":")" + r + R"(","Owner":"bench","Name":"repo","CloneURL":"",)"
         R"("SanitizedCloneURL":"","VCSHost":{"Hostname":"github.com","Type":0}}},)"
         R"("User":{"Username":"a","Teams":null},"Workspace":"default","Time":"2026-11-22T10:00:00Z"})";
}

// Pull.Num of a lock value, as Atlantis's client reads it (enough for the values seeded here).
long pullNum(const std::string& value) {
  const char* at = std::strstr(value.c_str(), "\"Pull\":{\"Num\":");
  return at == nullptr ? -1 : std::strtol(at + 14, nullptr, 10);
}

double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// SCAN MATCH `match` (no COUNT, as Atlantis) until the cursor is 0; then GET each key, and when
// `release_pull` > 0 DEL those whose Pull.Num is it. Returns the keys found (or released).
size_t atlantisScan(Conn& conn, const std::string& match, long release_pull) {
  std::vector<std::string> keys;
  std::string cursor = "0";
  do {
    lockshift::resp::Value page = conn.call({"SCAN", cursor, "MATCH", match});
    cursor = page.elements.at(0).str;
    for (auto& key : page.elements.at(1).elements) keys.push_back(std::move(key.str));
  } while (cursor != "0");
  size_t n = 0;
  for (const std::string& key : keys) {
    lockshift::resp::Value value = conn.call({"GET", key});
    if (value.type != lockshift::resp::Type::kBulkString) continue;
    if (release_pull <= 0) {
      ++n;
    } else if (pullNum(value.str) == release_pull) {
      conn.call({"DEL", key});
      ++n;
    }
  }
  return n;
}

// One HTTP/1.1 request to the admin API on loopback; returns the body (exits on failure).
std::string http(int port, const std::string& method, const std::string& target) {
  int fd = lockshift::bench::connectLoopback(port);
  const std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  if (response.rfind("HTTP/1.1 200", 0) != 0) {
    std::fprintf(stderr, "%s %s: %s\n", method.c_str(), target.c_str(), response.substr(0, 300).c_str());
    std::exit(1);
  }
  return response.substr(response.find("\r\n\r\n") + 4);
}

std::string encoded(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c == '/') {
      out += "%2F";
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

size_t listed(const std::string& body) { return json::parse(body).as_object().at("locks").as_array().size(); }

int seed(std::map<std::string, int>& o) {
  Conn conn(o["--port"]);
  std::vector<std::vector<std::string>> batch;
  for (int repo = 0; repo < o["--repos"]; ++repo) {
    for (int lock = 0; lock < o["--locks-per-repo"]; ++lock) {
      batch.push_back({"SET", lockKey(repo, lock), lockJson(repo, lock, pullOf(lock, o["--pulls-per-repo"]))});
      if (batch.size() == 1000) {
        conn.pipeline(batch);
        batch.clear();
      }
    }
  }
  if (!batch.empty()) conn.pipeline(batch);
  return 0;
}

int measure(std::map<std::string, int>& o) {
  Conn legacy(o["--legacy-port"]);
  Conn lockshift(o["--lockshift-port"]);
  const int admin = o["--admin-port"];
  for (int run = 0; run < o["--runs"]; ++run) {
    // Three repositories per round, one per way of releasing, so each release finds its locks.
    // From 100 on, no name is a prefix of another (repo1 would also match repo10..repo19
    // in Atlantis's MATCH pr/{repo}*, and Atlantis would release their pulls too).
    const int direct = 100 + 3 * run, indexed = 101 + 3 * run, wire = 102 + 3 * run;
    const long pull = run % o["--pulls-per-repo"] + 1;
    auto t = Clock::now();
    size_t n = atlantisScan(legacy, "pr/" + repoName(direct) + "/*", 0);
    std::printf("list-repo-legacy-scan %.3f %zu\n", msSince(t), n);
    t = Clock::now();
    n = listed(http(admin, "GET", "/api/v1/locks?limit=100000&repo=" + encoded(repoName(indexed))));
    std::printf("list-repo-index %.3f %zu\n", msSince(t), n);
    t = Clock::now();
    n = atlantisScan(legacy, "pr/" + repoName(direct) + "*", pull);
    std::printf("unlock-by-pull-legacy-scan %.3f %zu\n", msSince(t), n);
    t = Clock::now();
    n = listed(http(admin, "DELETE", "/api/v1/locks?repo=" + encoded(repoName(indexed)) + "&pull=" +
                                         std::to_string(pull)));
    std::printf("unlock-by-pull-index %.3f %zu\n", msSince(t), n);
    t = Clock::now();
    n = atlantisScan(lockshift, "pr/" + repoName(wire) + "/*", 0);
    std::printf("list-repo-atlantis-via-lockshift %.3f %zu\n", msSince(t), n);
    t = Clock::now();
    n = atlantisScan(lockshift, "pr/" + repoName(wire) + "*", pull);
    std::printf("unlock-by-pull-atlantis-via-lockshift %.3f %zu\n", msSince(t), n);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "seed") != 0 && std::strcmp(argv[1], "measure") != 0)) {
    std::fprintf(stderr, "usage: index_bench seed|measure --flag N ... (see tools/index_bench.cc)\n");
    return 2;
  }
  std::map<std::string, int> o = {{"--repos", 1000}, {"--locks-per-repo", 100}, {"--pulls-per-repo", 10}, {"--runs", 5}};
  for (int i = 2; i + 1 < argc; i += 2) o[argv[i]] = std::atoi(argv[i + 1]);
  return std::strcmp(argv[1], "seed") == 0 ? seed(o) : measure(o);
}
