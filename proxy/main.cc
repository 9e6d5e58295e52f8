// lockshift: the RESP proxy in front of Atlantis's lock store.
//   lockshift --config FILE          run
//   lockshift --check-config FILE    validate and exit (non-zero with "file:line: message")
// This is the one place where concrete classes are wired together.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <pthread.h>

#include <cctype>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backends/lmdb_store.h"
#include "common/event_loop.h"
#include "common/malloc_tunables.h"
#include "consistency/service.h"
#include "backends/redis_store.h"
#include "proxy/admin_server.h"
#include "proxy/command.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "proxy/resp_server.h"
#include "proxy/stores.h"
#include "router/circuit_breaker.h"
#include "router/control_store.h"
#include "router/repair_journal.h"
#include "router/router.h"
#include "shadow/shadow_mirror.h"

namespace {

using namespace lockshift;

constexpr const char* kUsage =
    "usage: lockshift --config FILE        run the proxy\n"
    "       lockshift --check-config FILE  validate a config file and exit\n"
    "       lockshift --version\n";

int fail(const std::string& what, const Status& s) {
  std::cerr << "lockshift: " << what << ": " << s.message() << "\n";
  return 1;
}

// SIGINT and SIGTERM, which start a graceful stop.
sigset_t stopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

// Runs with the stop signals blocked (main() blocks them first), so every thread it starts
// (store writers, network threads, workers) inherits a mask that blocks them: only the main
// thread takes them, and only while it serves (see io.run() below). A signal that arrives while
// they are blocked waits, harmlessly, instead of meeting a default disposition that would kill
// the process half-way through its start or its stop.
int run(const Config& config) {
  const sigset_t stop_signals = stopSignals();
  if (Status s = checkSupported(config); !s) return fail("config", s);
  std::error_code fs_ec;
  std::filesystem::create_directories(config.server.state_dir, fs_ec);
  if (fs_ec) return fail("state_dir", Status::ioError(config.server.state_dir + ": " + fs_ec.message()));
  std::string password, admin_token;
  if (!config.server.password_file.empty()) {
    auto secret = readSecretFile(config.server.password_file);
    if (!secret) return fail("[server] password_file", secret.status());
    password = std::move(secret.value());
  }
  if (!config.server.admin_token_file.empty()) {
    auto secret = readSecretFile(config.server.admin_token_file);
    if (!secret) return fail("[server] admin_token_file", secret.status());
    admin_token = std::move(secret.value());
  }

  const int threads = config.server.threads > 0 ? config.server.threads
                                                : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // One event loop per network thread (common/event_loop.h): `io`, loop 0, is run by this thread
  // and also carries the listeners and the background tasks; the others only client sessions and
  // the Redis stores' pools for them. Loops that share nothing on the request path scale with
  // the threads, where one io_context run by several threads made every completion cross threads
  // (BENCHMARKS.md, "Round of 2026-12-06 (afternoon)"). Declared before the stores: stores post
  // completions to them, so they must outlive them. Each loop is run by one thread (the hint 1),
  // so Asio keeps what a loop's own handlers post on a queue of that thread, without taking the
  // scheduler's lock, as it already did for the other loops.
  asio::io_context io(1);
  std::vector<std::unique_ptr<asio::io_context>> loops;
  std::vector<asio::io_context*> more_loops;
  for (int i = 1; i < threads; ++i) {
    loops.push_back(std::make_unique<asio::io_context>(1));
    more_loops.push_back(loops.back().get());
  }
  auto legacy = openStore(config.legacy, "legacy", config.server.databases, io, more_loops);
  if (!legacy) return fail("cannot open the legacy store", legacy.status());
  auto enhanced = openStore(config.enhanced, "enhanced", config.server.databases, io, more_loops);
  if (!enhanced) return fail("cannot open the enhanced store", enhanced.status());
  auto control = ControlStore::open(config.server.state_dir, initialState(config.migration));
  if (!control) return fail("cannot open the control state", control.status());
  auto journal = RepairJournal::open(config.server.state_dir + "/journal", config.server.databases, 1000000);
  if (!journal) return fail("cannot open the repair journal", journal.status());

  Metrics metrics;
  RouterMetrics router_metrics(*metrics.registry());
  RouterOptions router_options;
  router_options.keep_legacy_in_sync = config.migration.keep_legacy_in_sync;
  router_options.backfill_rate = config.shadow.backfill_rate;
  // The enhanced store goes through the circuit breaker, which takes it out of the path by itself.
  std::unique_ptr<CircuitBreakerStore> breaker;
  if (config.fallback.enabled) {
    const FallbackConfig& f = config.fallback;
    RepairJournal& journal_ref = **journal;
    ControlStore& control_ref = **control;
    breaker = std::make_unique<CircuitBreakerStore>(
        *enhanced->store,
        BreakerOptions{.failure_threshold = f.failure_threshold,
                       .error_rate_threshold = f.error_rate_threshold,
                       .window = f.window,
                       .min_requests = f.min_requests,
                       .latency_threshold = f.latency_threshold,
                       .reset_timeout = f.reset_timeout,
                       .half_open_max_requests = f.half_open_max_requests},
        BreakerHooks{.can_close = [&journal_ref] { return journal_ref.depthFor(StoreRole::kEnhanced) == 0; },
                     .on_transition =
                         [&control_ref](const std::string& from, const std::string& to, const std::string& why) {
                           std::cerr << "lockshift: enhanced store circuit breaker " << from << " -> " << to << ": "
                                     << why << "\n";
                           control_ref.audit("breaker." + to, "breaker", from + " -> " + to + ": " + why);
                         }});
  }
  LockStore& routed_enhanced = breaker ? static_cast<LockStore&>(*breaker) : *enhanced->store;
  Router router(*legacy->store, routed_enhanced, **control, **journal, router_metrics, router_options);

  auto reports = ReportStore::open(config.server.state_dir + "/reports", config.consistency.keep_reports);
  if (!reports) return fail("cannot open the report directory", reports.status());
  ConsistencyOptions consistency_options{
      .interval = config.consistency.interval,
      .rounds = config.consistency.rounds,
      .recheck_delay = config.consistency.recheck_delay,
      .databases = router.databases(),
      .gates = config.consistency.gates,
      .gate = GateOptions{.max_report_age = config.consistency.max_report_age}};
  ControlStore& control_store = **control;
  ConsistencyHooks hooks{
      .owner = [&router](int db, std::string_view key) { return router.ownerOf(db, key); },
      .repair_key = [&router](int db, std::string key) { return router.reconcileKey(db, std::move(key)); },
      .enhanced_in_use = [&control_store] { return control_store.snapshot()->enhanced_in_use; },
      .audit = [&control_store](const std::string& kind, const std::string& actor, const std::string& detail) {
        control_store.audit(kind, actor, detail);
      },
      .finished =
          [&router](const Report& report) {
            // Legacy equal to enhanced (or repaired into it): complete again, when kept in sync.
            if (report.verdict() == "clean" || report.verdict() == "repaired") router.legacyCaughtUp(report.id);
          }};
  ShadowMirror mirror(
      ShadowHooks{.replay = [&router](MirroredCall call) { return router.replayOnEnhanced(std::move(call)); },
                  .mark_dirty = [&router](int db, std::string key) { return router.markEnhancedDirty(db, std::move(key)); }},
      *metrics.registry(),
      ShadowOptions{.queue_capacity = config.shadow.queue_size,
                    .workers = config.shadow.workers,
                    .mirror_reads = config.shadow.mirror_reads,
                    .scan_sample_rate = config.shadow.scan_sample_rate,
                    .examples = config.shadow.examples});
  router.setMirror(&mirror);
  consistency_options.gate.max_divergence_rate = config.consistency.max_divergence_rate;
  consistency_options.gate.shadow_totals = [&mirror] {
    auto t = mirror.totals();
    return std::pair<uint64_t, uint64_t>(t.compared, t.divergent);
  };
  ConsistencyService consistency(*legacy->store, *enhanced->store, **reports, *metrics.registry(), std::move(hooks),
                                 consistency_options);
  router.setGate(consistency.gate());

  ServerContext context{.store = router, .store_label = "router", .metrics = metrics, .config = config,
                        .password = password, .password_file = config.server.password_file};
  RespServer server(io, context, more_loops);
  if (Status s = server.listen(config.server.resp_listen); !s) return fail("resp_listen", s);
  AdminServer admin(io, router, &consistency, [&metrics] { return metrics.serialize(); },
                    AdminOptions{.listen = config.server.admin_listen, .token = admin_token,
                                 .token_file = config.server.admin_token_file});
  if (Status s = admin.listen(); !s) return fail("admin_listen", s);
  router.start(io);
  consistency.start(io);
  // A process killed (or crashed) past legacy-only may have left a write applied to its owner
  // but not yet to the other store: that write was never answered, so nothing depends on it,
  // but the stores differ until something copies it over. A repair check right away does, rather
  // than leaving the difference to the schedule, the gates or an operator. (The shadow phase
  // fills enhanced again instead; see Router::recoverFromUncleanStop.)
  if (router.uncleanStart() && config.migration.keep_legacy_in_sync) {
    auto state = control_store.snapshot();
    if (state->enhanced_in_use && state->phase != Phase::kShadow) {
      control_store.audit("consistency.after_unclean_stop", "startup",
                          "the last process stopped without a clean shutdown; a repair check starts now");
      consistency.startCheck(true, "startup");
    }
  }
  mirror.start(io);
  server.start();
  admin.start();

  // The first SIGINT/SIGTERM starts a graceful stop. Repeated ones while it runs (Ctrl-C twice, a
  // supervisor repeating SIGTERM) stay queued in the signal set and change nothing; every
  // acknowledged write is already durable, so a harder stop would gain nothing.
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    std::cerr << "lockshift: signal " << sig << ", finishing in-flight requests and stopping\n";
    server.stop();
    admin.stop();
    router.stop();
    consistency.stop();
    mirror.stop();
    for (RedisStore* r : {legacy->redis, enhanced->redis}) {
      if (r != nullptr) r->close();
    }
    if (enhanced->redis_cluster != nullptr) enhanced->redis_cluster->close();
  });

  auto state = (*control)->snapshot();
  std::ostringstream split;  // the split decides ownership only in hybrid
  if (state->phase == Phase::kHybrid) split << " split " << state->traffic_split << "%";
  std::cerr << "lockshift: serving RESP on " << config.server.resp_listen << " (port " << server.port()
            << "), admin on " << config.server.admin_listen << " (port " << admin.port() << "), phase "
            << phaseName(state->phase) << split.str()
            << (state->rollback.raised ? " ROLLBACK RAISED" : "") << ", legacy " << config.legacy.type
            << ", enhanced " << config.enhanced.type << ", " << threads
            << (threads == 1 ? " network thread\n" : " network threads\n");

  // The other loops run until the stop has closed their sessions and pools: until then a loop
  // with no client connected yet must not return.
  using Guard = asio::executor_work_guard<asio::io_context::executor_type>;
  std::vector<Guard> keep_running;
  std::vector<std::thread> pool;
  for (size_t i = 0; i < loops.size(); ++i) {
    keep_running.push_back(asio::make_work_guard(*loops[i]));
    pool.emplace_back([loop = loops[i].get(), index = static_cast<int>(i) + 1] {
      setCurrentLoop(index);
      loop->run();
    });
  }
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  io.run();  // returns once the listeners, loop 0's sessions and the background tasks have finished
  // Closing the stores below can take a moment, and destroying `signals` restores the default
  // disposition: a repeated signal must not kill either half-way. Blocked again here, in the last
  // thread that took them, it stays pending until the process has exited.
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  keep_running.clear();  // the stop closed every session and pool; each loop returns once they have
  for (auto& t : pool) t.join();
  std::cerr << "lockshift: stopped\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const sigset_t stop_signals = stopSignals();
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << kUsage;
    return 0;
  }
  if (args.size() == 1 && args[0] == "--version") {
    std::cout << "lockshift 0.1.0\n";
    return 0;
  }
  if (args.size() != 2 || (args[0] != "--config" && args[0] != "--check-config")) {
    std::cerr << kUsage;
    return 2;
  }
  // Before any thread starts or file opens: this may execute the binary again (see the header).
  if (args[0] == "--config") {
    if (auto failed = lockshift::applyMallocTunables(argv)) {
      std::cerr << "lockshift: " << *failed << "; going on with glibc's malloc defaults\n";
    }
    if (const char* tunables = std::getenv("GLIBC_TUNABLES")) {
      std::cerr << "lockshift: glibc tunables " << tunables << "\n";
    }
  }
  auto config = lockshift::loadConfig(args[1]);
  if (!config) {
    std::cerr << config.status().message() << "\n";
    return 1;
  }
  if (args[0] == "--check-config") {
    if (lockshift::Status s = checkSupported(*config); !s) {
      std::cerr << s.message() << "\n";
      return 1;
    }
    std::cout << args[1] << ": ok\n";
    return 0;
  }
  return run(*config);
}
