#include "app/service.hpp"

#include "actors/gateway.hpp"
#include "actors/registry.hpp"
#include "actors/sweeper.hpp"
#include "net/http_client.hpp"
#include "net/http_edge.hpp"
#include "net/http_server.hpp"
#include "net/simulated_provider.hpp"
#include "net/simulator.hpp"
#include "persistence/migrations.hpp"
#include "persistence/reader.hpp"
#include "persistence/writer.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <csignal>
#include <ctime>
#include <sstream>

namespace billing::app {

namespace {

unix_seconds wall_clock() {
  return static_cast<unix_seconds>(std::time(nullptr));
}

std::string metrics_text(const persistence_stats& p, const net::http_server& server,
                         const actor_gateway& gateway, const invoice_registry& registry) {
  auto h = server.snapshot();
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
        << name << ' ' << value << '\n';
  };
  metric("billing_db_up", "gauge", "1 when the writer's database connection is open", p.db_up ? 1 : 0);
  metric("billing_commit_batches_total", "counter", "group-commit transactions", p.batches.load());
  metric("billing_commit_commands_total", "counter", "commands written in those transactions", p.commands.load());
  metric("billing_commit_batch_size_mean", "gauge", "mean commands per transaction", p.mean_batch_size());
  metric("billing_commit_batch_size_max", "gauge", "largest batch so far", p.max_batch_seen.load());
  metric("billing_writes_committed_total", "counter", "commands committed", p.committed.load());
  metric("billing_writes_conflicts_total", "counter", "compare-and-set conflicts", p.conflicts.load());
  metric("billing_writes_duplicates_total", "counter", "duplicate webhook event ids", p.duplicates.load());
  metric("billing_writes_unavailable_total", "counter", "writes refused: database down", p.unavailable.load());
  metric("billing_writes_overloaded_total", "counter", "writes refused: too many pending", p.overloaded.load());
  metric("billing_writes_queued", "gauge", "writes waiting for a commit", p.queued.load());
  metric("billing_invoice_actors", "gauge", "live invoice actors", registry.live_actors());
  metric("billing_api_in_flight", "gauge", "API calls in flight", gateway.in_flight());
  metric("billing_http_connections", "gauge", "open HTTP connections", h.active);
  metric("billing_http_requests_total", "counter", "HTTP requests handled", h.requests);
  metric("billing_http_rejected_total", "counter", "connections refused at max_connections", h.rejected_overload);
  return out.str();
}

void wait_for_stop_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("received {}; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

// The schema must be current before serving; say how to fix it if not.
bool schema_ready(const config& c) {
  auto version = schema_version(c.database_url);
  if (!ok(version)) {
    spdlog::error("cannot read the schema version: {}", std::get<failure>(version).message);
    return false;
  }
  auto have = std::get<int>(version);
  auto want = latest_schema_version();
  if (have == want)
    return true;
  if (have > want) {
    spdlog::error("the database schema (version {}) is newer than this billingd ({}); upgrade billingd",
                  have, want);
    return false;
  }
  if (!c.migrate_on_start) {
    spdlog::error("the database schema is at version {}, billingd needs {}: run `billingd migrate` "
                  "or start with BILLING_MIGRATE_ON_START=true",
                  have, want);
    return false;
  }
  return migrate(c) == 0;
}

} // namespace

int migrate(const config& c) {
  auto applied = billing::migrate(c.database_url);
  if (!ok(applied)) {
    spdlog::error("migration failed: {}", std::get<failure>(applied).message);
    return 1;
  }
  spdlog::info("applied {} migration(s); schema at version {}", std::get<int>(applied),
               latest_schema_version());
  return 0;
}

int serve(const config& c) {
  if (!schema_ready(c))
    return 1;
  auto box = secret_box::from_hex(c.secret_key);
  if (!ok(box)) {
    spdlog::error("configuration: {}", std::get<failure>(box).message);
    return 2;
  }

  caf::actor_system_config caf_cfg;
  caf_cfg.set("scheduler.max-threads", static_cast<size_t>(c.scheduler_threads));
  caf::actor_system sys{caf_cfg};

  // Persistence first: everything else writes or reads through it.
  auto stats = std::make_shared<persistence_stats>();
  writer_config wcfg;
  wcfg.url = c.database_url;
  wcfg.max_batch = static_cast<size_t>(c.batch_max);
  wcfg.max_pending = static_cast<size_t>(c.pending_max);
  auto writer = spawn_writer(sys, wcfg, stats);
  reader_config rcfg;
  rcfg.url = c.database_url;
  rcfg.readers = static_cast<size_t>(c.readers);
  auto reader = spawn_readers(sys, rcfg);
  auto provider = spawn_simulated_provider(sys);

  auto ctx = std::make_shared<actor_context>();
  ctx->settings.idle_timeout = std::chrono::seconds(c.idle_timeout_seconds);
  ctx->settings.default_expiry_seconds = c.invoice_expiry_seconds;
  ctx->settings.request_timeout = std::chrono::milliseconds(c.request_timeout_ms);
  ctx->settings.provider_name = c.provider;
  ctx->settings.max_in_flight = static_cast<size_t>(c.max_in_flight);
  ctx->settings.sweep_interval = std::chrono::seconds(c.sweep_interval_seconds);
  ctx->writer = writer;
  ctx->reader = reader;
  ctx->provider = provider;
  ctx->box = std::make_shared<secret_box>(std::get<secret_box>(box));
  ctx->clock = wall_clock;

  int exit_code = 0;
  {
    invoice_registry registry{sys, ctx, static_cast<size_t>(c.registry_shards)};
    actor_gateway gateway{sys, ctx, registry, [stats] { return stats->db_up.load(); },
                          static_cast<size_t>(c.scheduler_threads)};
    auto sweeper = spawn_sweeper(sys, ctx, registry);

    net::http_client client;
    net::http_server* server_ptr = nullptr;
    auto webhook_url = [&] {
      auto base = c.self_url.empty() ? "http://127.0.0.1:" + std::to_string(server_ptr->port()) : c.self_url;
      return base + "/webhook";
    };
    net::payment_simulator simulator{gateway, client, webhook_url, c.webhook_secrets.front(), wall_clock};
    net::edge_config ecfg;
    ecfg.webhook_secrets = c.webhook_secrets;
    ecfg.signature.tolerance_seconds = c.webhook_tolerance_seconds;
    ecfg.clock = wall_clock;
    ecfg.metrics = [&] { return metrics_text(*stats, *server_ptr, gateway, registry); };
    net::http_edge edge{gateway, ecfg, c.provider == "simulated" ? &simulator : nullptr};

    net::server_config scfg;
    scfg.address = c.http_address;
    scfg.port = static_cast<uint16_t>(c.http_port);
    scfg.io_threads = static_cast<int>(c.io_threads);
    scfg.body_limit = static_cast<size_t>(c.body_limit_bytes);
    scfg.max_connections = static_cast<size_t>(c.max_connections);
    net::http_server server{scfg, [&edge](net::request&& req, net::responder reply) {
                              edge.handle(std::move(req), std::move(reply));
                            }};
    server_ptr = &server;
    std::string error;
    if (server.start(error)) {
      spdlog::info("billingd listening on http://{}:{} (provider {}, {} scheduler threads, {} io threads)",
                   c.http_address, server.port(), c.provider, c.scheduler_threads, c.io_threads);
      wait_for_stop_signal();
      // Stop in reverse: no new requests, answer those in flight, then the
      // actors, then the writer flushes its last batch.
      server.stop(std::chrono::seconds(10));
    } else {
      spdlog::error("cannot start the HTTP edge: {}", error);
      exit_code = 1;
    }
    client.stop();
    caf::anon_send_exit(sweeper, caf::exit_reason::user_shutdown);
    for (auto& shard : registry.shards())
      caf::anon_send_exit(shard, caf::exit_reason::user_shutdown);
  }
  caf::anon_send_exit(provider, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(reader, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  ctx.reset();
  spdlog::info("billingd stopped");
  return exit_code;
}

} // namespace billing::app
