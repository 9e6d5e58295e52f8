// `lockshiftctl diff --config FILE`: the consistency check offline, straight against the two
// stores a config names, for when the proxy is down or not trusted. Ownership (which store a
// repair copies from) is decided as the proxy would: the control state of the state directory
// (control.json) when there is one, else the config's initial state; and a key the repair
// journal holds as dirty is owned by the store that has the current value.

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>

#include "backends/lmdb_store.h"
#include "common/clock.h"
#include "consistency/checker.h"
#include "consistency/report_store.h"
#include "proxy/config.h"
#include "proxy/stores.h"
#include "router/control_store.h"
#include "router/repair_journal.h"
#include "tools/lockshiftctl_cli.h"
#include "tools/lockshiftctl_output.h"

namespace lockshift::ctl {

namespace fs = std::filesystem;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

// Large enough for any journal lockshift keeps (it bounds its own at 1 000 000 entries).
constexpr size_t kJournalEntries = 1000000;
// How long a store may take to answer its first ping before the diff gives up on it.
constexpr std::chrono::seconds kReadyTimeout{5};

// True when something accepts connections on the RESP listen address: lockshift is serving.
// A wildcard address is tried on loopback.
bool isServing(const std::string& listen) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  asio::io_context io;
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto addresses = resolver.resolve(host, port, ec);
  if (ec) return false;
  tcp::socket socket(io);
  asio::connect(socket, addresses, ec);
  return !ec;
}

struct DiffSettings {
  bool repair = false;
  std::string format;  // "" (human summary), json, md, html
  // From the flags; absent: the config's [consistency] rounds and recheck_delay.
  std::optional<int> rounds;
  std::optional<std::chrono::milliseconds> recheck_delay;
};

// Reads the flags; nullopt after printing a usage error.
std::optional<DiffSettings> readSettings(const Invocation& inv, int* exit) {
  DiffSettings s;
  s.repair = inv.has("--repair");
  s.format = inv.value("--format").value_or("");
  if (!s.format.empty() && !isReportFormat(s.format)) {
    *exit = usageError(inv, "--format must be json, md or html, not '" + s.format + "'");
    return std::nullopt;
  }
  if (inv.globals.json && !s.format.empty() && s.format != "json") {
    *exit = usageError(inv, "--json and --format " + s.format + " exclude each other");
    return std::nullopt;
  }
  if (inv.globals.json) s.format = "json";
  if (auto text = inv.value("--rounds")) {
    auto rounds = parseInteger(*text, 1, 100);
    if (!rounds) {
      *exit = usageError(inv, "--rounds must be a whole number from 1 to 100, not '" + *text + "'");
      return std::nullopt;
    }
    s.rounds = static_cast<int>(*rounds);
  }
  if (auto text = inv.value("--recheck-delay")) {
    auto delay = parseDuration(*text);
    if (!delay) {
      *exit = usageError(inv, "--recheck-delay must be a duration such as 500ms, 2s or 1m, not '" + *text + "'");
      return std::nullopt;
    }
    s.recheck_delay = *delay;
  }
  return s;
}

// A Redis store connects in the background and fails calls until it is connected: wait until
// the store answers a ping, for at most kReadyTimeout, so a slow connect is not a failed check.
asio::awaitable<Status> waitReady(LockStore* store) {
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto ping = store->ping();
    Status s = co_await std::move(ping);
    if (s || std::chrono::steady_clock::now() >= deadline) co_return s;
    timer.expires_after(std::chrono::milliseconds(50));
    auto wait = timer.async_wait(asio::use_awaitable);
    co_await std::move(wait);
  }
}

// Waits for both stores, counts their keys (for the progress bar), runs the check, then closes
// Redis connections so the io_context runs out of work. Parameters by value: they outlive
// suspensions.
asio::awaitable<void> diffTask(LockStore* legacy, LockStore* enhanced, CheckOptions options, Report* report,
                               uint64_t* total, std::vector<std::function<void()>> closers) {
  // A named array, not an initializer list: its elements must live across the suspensions.
  const std::pair<const char*, LockStore*> stores[] = {{"legacy", legacy}, {"enhanced", enhanced}};
  for (const auto& [role, store] : stores) {
    auto ready = waitReady(store);
    if (Status s = co_await std::move(ready); !s) {
      report->state = "failed";
      report->error = std::string("cannot reach the ") + role + " store: " + s.toString();
      report->finished_unix_ms = nowUnixMs();
      break;
    }
  }
  for (const auto& [role, store] : stores) {
    if (report->state == "failed") break;
    for (int db = 0; db < options.databases; ++db) {
      auto count = store->count(db);
      auto n = co_await std::move(count);
      if (n) *total += static_cast<uint64_t>(*n);
    }
  }
  if (report->state != "failed") {
    auto check = runCheck(*legacy, *enhanced, std::move(options), *report);
    co_await std::move(check);
  }
  // Closing the Redis connections lets io.run() return.
  for (auto& close : closers) close();
}

struct Offline;
std::vector<std::function<void()>> closersOf(Offline& offline);

// The stores and the ownership of a config, opened for an offline check.
struct Offline {
  asio::io_context io;  // declared first: a Redis store posts to it, so it must outlive the stores
  OpenedStore legacy, enhanced;
  ControlState state;                      // control.json's, else the config's initial state
  std::unique_ptr<RepairJournal> journal;  // null when the state directory has none
};

std::vector<std::function<void()>> closersOf(Offline& offline) {
  std::vector<std::function<void()>> out;
  for (OpenedStore* o : {&offline.legacy, &offline.enhanced}) {
    if (o->redis != nullptr) out.push_back([r = o->redis] { r->close(); });
    if (o->redis_cluster != nullptr) out.push_back([r = o->redis_cluster] { r->close(); });
  }
  return out;
}

// Refuses what an offline diff must not do: read stores that were never created (LMDB would
// create empty ones and call them consistent), or repair while lockshift serves the config.
int checkOffline(const Config& config, const DiffSettings& settings) {
  for (const auto& [role, store] : {std::pair{"legacy", &config.legacy}, std::pair{"enhanced", &config.enhanced}}) {
    if (store->type == "lmdb" && !fs::exists(store->path)) {
      return fail(kExitFailure, std::string("no ") + role + " store at " + store->path +
                                    " (has lockshift run with this config?)");
    }
  }
  if (!isServing(config.server.resp_listen)) return kExitOk;
  if (settings.repair) {
    return fail(kExitRefused, "lockshift is serving on " + config.server.resp_listen +
                                  ": an offline repair would race its writes. Stop it first, or repair through it "
                                  "with `lockshiftctl check --repair`");
  }
  std::cerr << "lockshiftctl: note: lockshift is serving on " << config.server.resp_listen
            << "; keys written during the diff may be reported until they settle\n";
  return kExitOk;
}

int openOffline(const Config& config, Offline* out) {
  auto legacy = openStore(config.legacy, "legacy", config.server.databases, out->io);
  if (!legacy) return fail(kExitFailure, "cannot open the legacy store: " + legacy.status().message());
  out->legacy = std::move(legacy.value());
  auto enhanced = openStore(config.enhanced, "enhanced", config.server.databases, out->io);
  if (!enhanced) return fail(kExitFailure, "cannot open the enhanced store: " + enhanced.status().message());
  out->enhanced = std::move(enhanced.value());
  const std::string& state_dir = config.server.state_dir;
  out->state = initialState(config.migration);
  if (fs::exists(state_dir + "/control.json")) {
    auto control = ControlStore::open(state_dir, out->state);
    if (!control) return fail(kExitFailure, "cannot read the control state: " + control.status().message());
    out->state = *(*control)->snapshot();
  }
  if (fs::exists(state_dir + "/journal")) {
    auto journal = RepairJournal::open(state_dir + "/journal", config.server.databases, kJournalEntries);
    if (!journal) return fail(kExitFailure, "cannot read the repair journal: " + journal.status().message());
    out->journal = std::move(journal.value());
  }
  return kExitOk;
}

// Rounds and delay from the flags or the config; ownership as the router decides it (a dirty key
// stays with the store that has its current value); repairs copy from the owner.
CheckOptions checkOptions(const Config& config, const DiffSettings& settings, const Offline& offline) {
  CheckOptions options;
  options.rounds = settings.rounds.value_or(config.consistency.rounds);
  options.recheck_delay = settings.recheck_delay.value_or(config.consistency.recheck_delay);
  options.repair = settings.repair;
  options.databases = std::min(offline.legacy.store->databases(), offline.enhanced.store->databases());
  options.owner = [state = offline.state, dirty = offline.journal.get()](int db, std::string_view key) {
    if (dirty != nullptr) {
      if (auto target = dirty->dirtyTarget(db, key)) {
        return *target == StoreRole::kLegacy ? StoreRole::kEnhanced : StoreRole::kLegacy;
      }
    }
    return state.ownerOf(key);
  };
  options.repair_key = [legacy = offline.legacy.store.get(), enhanced = offline.enhanced.store.get(),
                        owner = options.owner](int db, std::string key) {
    const bool from_legacy = owner(db, key) == StoreRole::kLegacy;
    return copyKey(from_legacy ? *legacy : *enhanced, from_legacy ? *enhanced : *legacy, db, std::move(key));
  };
  return options;
}

void printReport(const Report& report, const std::string& format) {
  if (format == "json") {
    printJson(reportToJson(report));
  } else if (format == "md") {
    std::cout << renderMarkdown(report);
  } else if (format == "html") {
    std::cout << renderHtml(report);
  } else {
    printReportSummary(std::cout, report);
  }
}

}  // namespace

int cmdDiff(const Invocation& inv) {
  auto path = inv.value("--config");
  if (!path) return usageError(inv, "diff needs --config FILE");
  int exit = kExitOk;
  auto settings = readSettings(inv, &exit);
  if (!settings) return exit;
  auto config = loadConfig(*path);
  if (!config) return fail(kExitFailure, config.status().message());
  if (Status s = checkSupported(*config); !s) return fail(kExitFailure, s.message());
  if (int refused = checkOffline(*config, *settings); refused != kExitOk) return refused;

  Offline offline;
  if (int failed = openOffline(*config, &offline); failed != kExitOk) return failed;
  CheckOptions options = checkOptions(*config, *settings, offline);
  uint64_t total = 0;
  Progress progress;
  // A sweep over an LMDB store maps every page it reads; releasing them now and then keeps the
  // diff's resident size bounded by what it holds, not by the size of the stores.
  std::vector<LmdbStore*> lmdb;
  for (OpenedStore* o : {&offline.legacy, &offline.enhanced}) {
    if (auto* l = dynamic_cast<LmdbStore*>(o->store.get())) lmdb.push_back(l);
  }
  uint64_t released_at = 0;
  options.on_progress = [&progress, &total, &lmdb, &released_at](const Report& r) {
    progress.update(r.keys_scanned, total, r.rounds, r.progress);
    if (r.keys_scanned >= released_at + 10000) {
      for (LmdbStore* l : lmdb) l->releaseMappedPages();
      released_at = r.keys_scanned;
    }
  };
  Report report;
  report.started_unix_ms = nowUnixMs();
  report.id = ReportStore::newId(report.started_unix_ms);
  report.mode = "offline";
  report.repair = settings->repair;
  std::exception_ptr thrown;
  asio::co_spawn(offline.io,
                 diffTask(offline.legacy.store.get(), offline.enhanced.store.get(), std::move(options), &report, &total,
                          closersOf(offline)),
                 [&thrown](std::exception_ptr e) { thrown = e; });
  offline.io.run();
  progress.finish();
  if (thrown) std::rethrow_exception(thrown);

  // A failed check has nothing to summarise; a requested format still gets the report.
  if (report.state != "failed" || !settings->format.empty()) printReport(report, settings->format);
  if (report.state == "failed") return fail(kExitFailure, report.error);
  return exitCodeForVerdict(report.verdict());
}

}  // namespace lockshift::ctl
