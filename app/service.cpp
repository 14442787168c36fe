#include "app/service.hpp"

#include "actors/bridge.hpp"
#include "actors/gateway.hpp"
#include "actors/reconciler.hpp"
#include "actors/registry.hpp"
#include "actors/supervisor.hpp"
#include "actors/sweeper.hpp"
#include "net/http_client.hpp"
#include "net/grpc_edge.hpp"
#include "net/http_edge.hpp"
#include "net/key_limits.hpp"
#include "net/request_metrics.hpp"
#include "net/http_server.hpp"
#include "net/simulated_provider.hpp"
#include "net/stripe_client.hpp"
#include "net/callback_sink.hpp"
#include "net/simulator.hpp"
#include "net/temporal_sink.hpp"
#include "persistence/migrations.hpp"
#include "persistence/outbox_actor.hpp"
#include "persistence/pruner.hpp"
#include "persistence/reconcile_actor.hpp"
#include "persistence/reader.hpp"
#include "persistence/writer.hpp"
#include "protocol/stripe_api.hpp"

#include <caf/all.hpp>
#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <ctime>
#include <sstream>
#include <unistd.h>

namespace billing::app {

namespace {

unix_seconds wall_clock() {
  return static_cast<unix_seconds>(std::time(nullptr));
}

// The workflow bridge's lines: counters by sink and signal, backlog gauges,
// commit-to-signal latency histogram.
void bridge_metrics(std::ostringstream& out, const bridge_stats& b) {
  auto snap = b.snapshot();
  auto head = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  auto label = [](const std::string& v) {
    std::string e;
    for (char ch : v)
      e += (ch == '"' || ch == '\\') ? std::string{'\\', ch} : ch == '\n' ? std::string{"\\n"} : std::string{ch};
    return '"' + e + '"';
  };
  const std::string sink = "sink=" + label(b.sink);
  auto counter = [&](const char* name, const char* help, uint64_t bridge_stats::per_signal::*m) {
    head(name, "counter", help);
    for (auto& [signal, c] : snap.by_signal)
      out << name << '{' << sink << ",signal=" << label(signal) << "} " << c.*m << '\n';
  };
  counter("billing_bridge_delivered_total", "signals the sink confirmed",
          &bridge_stats::per_signal::delivered);
  counter("billing_bridge_retried_total", "failed delivery attempts with a retry scheduled",
          &bridge_stats::per_signal::retried);
  counter("billing_bridge_dead_total", "signals given up (permanent failure or past the retry horizon)",
          &bridge_stats::per_signal::dead);
  auto gauge = [&](const char* name, const char* type, const char* help, auto value) {
    head(name, type, help);
    out << name << '{' << sink << "} " << value << '\n';
  };
  gauge("billing_bridge_backlog", "gauge", "outbox rows not delivered yet (not dead); -1 until read", b.backlog.load());
  gauge("billing_bridge_dead_rows", "gauge", "dead outbox rows waiting for a re-drive", b.dead_rows.load());
  auto oldest = b.oldest_ms.load();
  gauge("billing_bridge_oldest_undelivered_seconds", "gauge", "age of the oldest backlog row (0: none)",
        oldest < 0 ? 0.0 : static_cast<double>(oldest) / 1000.0);
  gauge("billing_bridge_in_flight", "gauge", "deliveries in flight", b.in_flight.load());
  gauge("billing_bridge_held_back_total", "counter",
        "signals marked dead because an earlier signal of their invoice is dead", b.held_back.load());
  const char* hist = "billing_bridge_commit_to_signal_seconds";
  head(hist, "histogram", "outbox row enqueued (commit) to delivery confirmed and recorded");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bridge_latency_bounds_ms.size(); ++i) {
    cumulative += snap.buckets[i];
    out << hist << "_bucket{" << sink << ",le=\"" << static_cast<double>(bridge_latency_bounds_ms[i]) / 1000.0
        << "\"} " << cumulative << '\n';
  }
  out << hist << "_bucket{" << sink << ",le=\"+Inf\"} " << snap.latency_count << '\n'
      << hist << "_sum{" << sink << "} " << static_cast<double>(snap.latency_sum_ms) / 1000.0 << '\n'
      << hist << "_count{" << sink << "} " << snap.latency_count << '\n';
}

// Request latency histograms, webhooks by type and verdict, rate-limit
// refusals per key (net/request_metrics, net/key_limits).
std::string request_metrics_text(const net::request_metrics& m, const net::key_limits& limits) {
  std::ostringstream out;
  m.write(out);
  out << "# HELP billing_api_rate_limited_total API calls refused by their key's rate limit (429 / "
         "RESOURCE_EXHAUSTED), by key name\n# TYPE billing_api_rate_limited_total counter\n";
  for (auto& k : limits.snapshot())
    out << "billing_api_rate_limited_total{key=\"" << k.name << "\"} " << k.limited << '\n';
  return out.str();
}

// The edges' counters: webhook outcomes, refusals, auth failures.
void edge_metrics(std::ostringstream& out, const net::edge_stats& e) {
  out << "# HELP billing_webhook_outcomes_total signed webhooks answered 200, by outcome\n"
         "# TYPE billing_webhook_outcomes_total counter\n";
  for (size_t i = 0; i < e.webhook_outcomes.size(); ++i)
    out << "billing_webhook_outcomes_total{outcome=\"" << to_string(static_cast<outcome>(i)) << "\"} "
        << e.webhook_outcomes[i].load() << '\n';
  auto counter = [&](const char* name, const char* help, const std::atomic<uint64_t>& v) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " counter\n"
        << name << ' ' << v.load() << '\n';
  };
  counter("billing_webhook_bad_signature_total", "webhooks refused 400: Stripe-Signature check failed",
          e.webhook_bad_signature);
  counter("billing_webhook_bad_body_total", "signed webhooks refused 400: unreadable body", e.webhook_bad_body);
  counter("billing_api_unauthenticated_total", "API calls refused 401: no or unknown key", e.unauthenticated);
  counter("billing_api_forbidden_total", "API calls refused 403: the key lacks the scope", e.forbidden);
  counter("billing_internal_errors_total", "answers 500 internal (the log has each under its request id)",
          e.internal_errors);
}

std::string metrics_text(const persistence_stats& p, const net::http_server& server,
                         const actor_gateway& gateway, const invoice_registry& registry,
                         const actor_stats& actors,
                         const bridge_stats& bridge, const net::edge_stats& edge) {
  auto h = server.snapshot();
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
        << name << ' ' << value << '\n';
  };
  metric("billing_db_up", "gauge", "1 when every writer's database connection is open", p.db_up() ? 1 : 0);
  metric("billing_writer_connections_up", "gauge", "writers whose database connection is open", p.writers_up.load());
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
  metric("billing_invoices_created_total", "counter", "invoices created (first commit of their row)",
         actors.created.load());
  metric("billing_payments_after_cancel_total", "counter",
         "payments that succeeded for a CANCELLED invoice (recorded as PAID and logged as an ALERT)",
         actors.paid_after_cancel.load());
  metric("billing_reconcile_checks_total", "counter", "invoices reconciliation read at the provider",
         actors.reconcile_checks.load());
  metric("billing_reconcile_applied_total", "counter",
         "transitions reconciliation applied (readings, and events from the provider's log)",
         actors.reconcile_applied.load());
  metric("billing_reconcile_events_total", "counter", "events reconciliation read from the provider's log",
         actors.reconcile_events.load());
  out << "# HELP billing_transitions_total invoice transitions applied, by the status entered\n"
         "# TYPE billing_transitions_total counter\n";
  for (size_t i = 0; i < actors.transitions.size(); ++i)
    out << "billing_transitions_total{to=\"" << to_string(static_cast<invoice_status>(i)) << "\"} "
        << actors.transitions[i].load() << '\n';
  metric("billing_api_in_flight", "gauge", "API calls in flight", gateway.in_flight());
  metric("billing_api_admission_cap", "gauge", "API calls admitted in flight now (rate x admission_latency_ms)", gateway.admission_cap());
  metric("billing_http_connections", "gauge", "open HTTP connections", h.active);
  metric("billing_http_requests_total", "counter", "HTTP requests handled", h.requests);
  metric("billing_http_rejected_total", "counter", "connections refused at max_connections", h.rejected_overload);
  metric("billing_http_rejected_framing_total", "counter",
         "requests refused 400 for ambiguous or malformed framing", h.rejected_framing);
  metric("billing_http_rejected_buffer_total", "counter", "connections refused 503 at max_buffered_bytes",
         h.rejected_buffer);
  metric("billing_http_buffered_bytes", "gauge", "request bytes held across all connections", h.buffered_bytes);
  edge_metrics(out, edge);
  bridge_metrics(out, bridge);
  return out.str();
}

// An info line printed whatever --log-level says: scripts and operators read
// the bound port from it (--http-port=0 picks one).
void log_at_any_level(const std::string& text) {
  auto logger = spdlog::default_logger();
  spdlog::details::log_msg msg{logger->name(), spdlog::level::info, text};
  for (auto& sink : logger->sinks())
    sink->log(msg);
  logger->flush();
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

// The workflow bridge and what it talks to: the outbox actor (its own
// connection) and the sink (none, Temporal or HTTP callbacks). The bridge is
// supervised (restarted if it dies); its slot holds the current one.
struct bridge_parts {
  outbox_actor outbox;
  sink_actor sink; // null with sink = none
  slot_ptr<bridge_actor> bridge;
  std::shared_ptr<bridge_stats> stats = std::make_shared<bridge_stats>();
};

bool start_bridge(caf::actor_system& sys, const config& c, supervisor& sup, bridge_parts& p) {
  const auto timeout = std::chrono::milliseconds(c.bridge_timeout_ms);
  result<sink_actor> sink = sink_actor{};
  if (c.sink == "temporal") {
    net::temporal_sink_config t;
    t.address = c.temporal_address;
    t.namespace_name = c.temporal_namespace;
    t.tls = c.temporal_tls;
    t.tls_ca_file = c.temporal_tls_ca_path;
    t.api_key = c.temporal_api_key;
    t.identity = c.temporal_identity;
    t.timeout = timeout;
    t.max_in_flight = static_cast<size_t>(c.bridge_concurrency) * 2;
    sink = net::spawn_temporal_sink(sys, t);
  } else if (c.sink == "http") {
    net::callback_sink_config h;
    h.url = c.callback_url;
    h.secret = c.callback_secret;
    h.timeout = timeout;
    h.client.max_connections_per_host = static_cast<size_t>(c.bridge_concurrency);
    h.client.max_idle_per_host = static_cast<size_t>(c.bridge_concurrency);
    sink = net::spawn_callback_sink(sys, h);
  }
  if (!ok(sink)) {
    spdlog::error("configuration: {}", std::get<failure>(sink).message);
    return false;
  }
  p.sink = std::get<sink_actor>(sink);
  outbox_actor_config ocfg;
  ocfg.store.url = c.database_url;
  p.outbox = spawn_outbox_actor(sys, ocfg);
  bridge_config b;
  b.sink_name = c.sink;
  b.concurrency = static_cast<size_t>(c.bridge_concurrency);
  b.delivery_timeout = timeout;
  b.scan_interval = std::chrono::milliseconds(c.bridge_scan_interval_ms);
  b.retry.min = std::chrono::milliseconds(c.bridge_retry_min_ms);
  b.retry.max = std::chrono::milliseconds(c.bridge_retry_max_ms);
  b.retry.horizon = std::chrono::seconds(c.bridge_retry_horizon_seconds);
  b.names = {c.signal_payment_confirmed, c.signal_payment_failed, c.signal_payment_cancelled,
             c.signal_payment_refunded, c.signal_payment_disputed};
  p.bridge = sup.supervise<bridge_actor>(
    "bridge", [&sys, b, outbox = p.outbox, sink = p.sink, stats = p.stats] {
      return spawn_bridge(sys, b, outbox, sink, stats);
    });
  if (c.sink == "none")
    spdlog::warn("workflow bridge: sink=none: outbox signals are not delivered (see the "
                 "billing_bridge_backlog metric); set sink=temporal or sink=http");
  else
    spdlog::info("workflow bridge: sink {} ({}), {} deliveries in flight at most", c.sink,
                 c.sink == "temporal" ? c.temporal_address + " namespace " + c.temporal_namespace
                                      : c.callback_url,
                 c.bridge_concurrency);
  return true;
}

// The bridge first (it drains what is in flight; stopped through its
// supervisor, so it is not restarted), then its sink and store.
void stop_bridge(caf::actor_system& sys, supervisor& sup, bridge_parts& p) {
  sup.stop("bridge");
  caf::scoped_actor self{sys};
  if (p.sink)
    self->send_exit(p.sink, caf::exit_reason::user_shutdown);
  self->send_exit(p.outbox, caf::exit_reason::user_shutdown);
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

  // The payment provider, before anything that would have to be stopped if
  // it cannot start: Stripe's API, or the simulated provider (test mode).
  provider_actor provider;
  if (c.provider == "stripe") {
    using ms = std::chrono::milliseconds;
    net::stripe_client_config pcfg;
    pcfg.secret_key = c.stripe_secret_key;
    pcfg.api_base = c.stripe_api_base;
    pcfg.api_version = c.stripe_api_version;
    pcfg.ca_file = c.stripe_ca_path;
    pcfg.max_concurrency = static_cast<size_t>(c.stripe_max_concurrency);
    pcfg.connect_timeout = ms(c.stripe_connect_timeout_ms);
    pcfg.retry.max_retries = static_cast<int>(c.stripe_max_retries);
    pcfg.retry.attempt_timeout = ms(c.stripe_timeout_ms);
    // Every attempt and wait of a call ends before the invoice actor stops
    // waiting for it (request_timeout_ms), with a margin for the hops.
    pcfg.retry.budget = ms(c.request_timeout_ms) - std::min(ms(c.request_timeout_ms) / 10, ms(500));
    auto spawned = net::spawn_stripe_client(sys, pcfg);
    if (!ok(spawned)) {
      spdlog::error("configuration: {}", std::get<failure>(spawned).message);
      return 2;
    }
    provider = std::get<provider_actor>(spawned);
    spdlog::info("provider: Stripe at {} ({} mode, Stripe-Version {}, at most {} requests in flight, {} ms "
                 "per attempt, {} retries)",
                 c.stripe_api_base, c.stripe_live ? "live" : "test", c.stripe_api_version,
                 c.stripe_max_concurrency, c.stripe_timeout_ms, c.stripe_max_retries);
  } else {
    provider = spawn_simulated_provider(sys);
  }

  // Persistence first: everything else writes or reads through it. The
  // bridge reads the outbox on a connection of its own and is spawned before
  // the writer, which nudges it after each commit that wrote outbox rows.
  // The bridge, the writers, the readers and the sweeper are supervised:
  // one that dies is restarted with backoff, and /readyz is 503 meanwhile.
  supervisor sup{sys};
  bridge_parts bridge;
  if (!start_bridge(sys, c, sup, bridge))
    return 2;
  auto stats = std::make_shared<persistence_stats>();
  writer_config wcfg;
  if (c.sink != "none") // the current bridge at each commit (it may have been restarted)
    wcfg.listener = [slot = bridge.bridge] { return slot->get(); };
  wcfg.url = c.database_url;
  wcfg.max_batch = static_cast<size_t>(c.batch_max);
  wcfg.max_pending = static_cast<size_t>(c.pending_max);
  std::vector<slot_ptr<writer_actor>> writers;
  for (size_t i = 0, n = static_cast<size_t>(c.writers); i < n; ++i)
    writers.push_back(sup.supervise<writer_actor>(
      "writer " + std::to_string(i),
      [&sys, wc = pooled_writer_config(wcfg, i, n), stats] { return spawn_writer(sys, wc, stats); }));
  reader_config rcfg;
  rcfg.url = c.database_url;
  rcfg.readers = static_cast<size_t>(c.readers);
  auto reader = sup.supervise<reader_actor>("reader", [&sys, rcfg] { return spawn_readers(sys, rcfg); });

  auto ctx = std::make_shared<actor_context>();
  ctx->settings.idle_timeout = std::chrono::seconds(c.idle_timeout_seconds);
  ctx->settings.default_expiry_seconds = c.invoice_expiry_seconds;
  ctx->settings.request_timeout = std::chrono::milliseconds(c.request_timeout_ms);
  ctx->settings.provider_name = c.provider; // "stripe" or "simulated"
  // Stripe's mode is its key's; the simulated provider is test mode.
  ctx->settings.mode = c.provider == "stripe" && c.stripe_live ? provider_mode::live : provider_mode::test;
  ctx->settings.max_in_flight = static_cast<size_t>(c.max_in_flight);
  ctx->settings.admission_latency = std::chrono::milliseconds(c.admission_latency_ms);
  ctx->settings.sweep_interval = std::chrono::seconds(c.sweep_interval_seconds);
  ctx->settings.expiry_retry_seconds = c.expiry_retry_seconds;
  ctx->settings.expiry_retry_max_seconds = c.expiry_retry_max_seconds;
  ctx->writers = writers;
  ctx->reader = reader;
  ctx->provider = provider;
  ctx->box = std::make_shared<secret_box>(std::get<secret_box>(box));
  ctx->clock = wall_clock;

  int exit_code = 0;
  {
    auto registry = invoice_registry::make(sys, ctx, static_cast<size_t>(c.registry_shards));
    // Ready: every writer connected, and no supervised part waiting for its restart.
    actor_gateway gateway{sys, ctx, registry, [stats, &sup] { return stats->db_up() && sup.all_up(); },
                          static_cast<size_t>(c.scheduler_threads)};
    // Stopped (through the supervisor) before the registry it routes through goes.
    sup.supervise<caf::actor>("sweeper", [&sys, ctx, registry] { return spawn_sweeper(sys, ctx, registry); });
    // Retention, on a connection of its own: the tables a transition touches stay small.
    pruner_config prune;
    prune.url = c.database_url;
    prune.interval = std::chrono::seconds(c.prune_interval_seconds);
    prune.event_retention = std::chrono::hours(24 * c.event_retention_days);
    prune.outbox_retention = std::chrono::hours(24 * c.outbox_retention_days);
    sup.supervise<caf::actor>("pruner", [&sys, prune] { return spawn_pruner(sys, prune); });
    // Reconciliation (Stripe only: the simulated provider knows nothing a
    // webhook did not say), its store on a connection of its own.
    const bool reconcile = c.provider == "stripe" && c.reconcile_interval_seconds > 0;
    if (reconcile) {
      reconcile_actor_config rcfg;
      rcfg.store.url = c.database_url;
      auto rstore = sup.supervise<reconcile_store_actor>(
        "reconcile store", [&sys, rcfg] { return spawn_reconcile_store(sys, rcfg); });
      reconciler_config r;
      r.interval = std::chrono::seconds(c.reconcile_interval_seconds);
      r.quiet_seconds = c.reconcile_quiet_seconds;
      r.page = static_cast<int32_t>(c.reconcile_page);
      r.rate = static_cast<double>(c.reconcile_rate);
      r.backoff_max_seconds = c.reconcile_backoff_max_seconds;
      r.events_lookback_seconds = c.reconcile_lookback_seconds;
      for (auto t : stripe::webhook_event_types)
        r.event_types.emplace_back(t);
      char host[256] = {};
      r.holder = std::string{gethostname(host, sizeof host - 1) == 0 ? host : "billingd"} + ":"
                 + std::to_string(getpid());
      sup.supervise<caf::actor>("reconciler", [&sys, ctx, registry, &gateway, rstore, r] {
        return spawn_reconciler(sys, ctx, registry, &gateway, rstore, r);
      });
      spdlog::info("reconciliation: every {} s, invoices quiet for {} s, at most {} Stripe requests/s",
                   c.reconcile_interval_seconds, c.reconcile_quiet_seconds, c.reconcile_rate);
    }

    net::http_client client;
    net::http_server* server_ptr = nullptr;
    auto webhook_url = [&] {
      auto base = c.self_url.empty() ? "http://127.0.0.1:" + std::to_string(server_ptr->port()) : c.self_url;
      return base + "/webhook";
    };
    net::payment_simulator simulator{gateway, client, webhook_url, c.webhook_secrets.front(), wall_clock};
    auto keys = std::make_shared<const api_key_store>(c.api_keys);
    if (c.api_keys.empty())
      spdlog::warn("no API keys configured: every API call is refused 401 (webhooks and health still "
                   "work); make one with `billingd keys new NAME --scopes invoices:write,invoices:read`");
    net::edge_config ecfg;
    ecfg.webhook_secrets = c.webhook_secrets;
    ecfg.signature.tolerance_seconds = c.webhook_tolerance_seconds;
    ecfg.clock = wall_clock;
    ecfg.keys = keys;
    ecfg.log_summary_interval = std::chrono::seconds(c.log_summary_interval_seconds);
    // One rate limiter and one set of request metrics for both API edges.
    ecfg.limits = std::make_shared<net::key_limits>(*keys);
    ecfg.metrics = std::make_shared<net::request_metrics>();
    net::http_edge edge{gateway, ecfg, c.provider == "simulated" ? &simulator : nullptr};

    net::grpc_edge_config gcfg;
    gcfg.address = c.grpc_address;
    gcfg.port = static_cast<uint16_t>(c.grpc_port);
    gcfg.tls_cert_file = c.tls_cert_path;
    gcfg.tls_key_file = c.tls_key_path;
    gcfg.keys = keys;
    gcfg.limits = ecfg.limits;
    gcfg.stats = ecfg.stats;
    gcfg.metrics = ecfg.metrics;
    gcfg.max_watches = static_cast<size_t>(c.grpc_max_watches);
    gcfg.log_summary_interval = ecfg.log_summary_interval;
    net::grpc_edge grpc{gateway, gcfg};

    net::server_config scfg;
    scfg.address = c.http_address;
    scfg.port = static_cast<uint16_t>(c.http_port);
    scfg.io_threads = static_cast<int>(c.io_threads);
    scfg.body_limit = static_cast<size_t>(c.body_limit_bytes);
    scfg.max_connections = static_cast<size_t>(c.max_connections);
    scfg.max_requests_per_connection = static_cast<size_t>(c.max_requests_per_connection);
    scfg.max_buffered_bytes = static_cast<size_t>(c.max_buffered_bytes);
    scfg.tls_cert_file = c.tls_cert_path;
    scfg.tls_key_file = c.tls_key_path;
    net::http_server server{scfg, [&edge](net::request&& req, net::responder reply) {
                              edge.handle(std::move(req), std::move(reply));
                            }};
    server_ptr = &server;

    // The admin listener: small requests only, one io thread.
    net::admin_config acfg;
    acfg.keys = keys;
    acfg.require_key = c.admin_require_key;
    acfg.stats = ecfg.stats;
    acfg.metrics = [&] {
      return metrics_text(*stats, *server_ptr, gateway, *registry, *ctx->stats, *bridge.stats, *ecfg.stats);
    };
    acfg.latency = ecfg.metrics;
    acfg.metrics = [inner = std::move(acfg.metrics), &ecfg] {
      return inner() + request_metrics_text(*ecfg.metrics, *ecfg.limits);
    };
    net::admin_edge admin{gateway, acfg};
    net::server_config admin_cfg;
    admin_cfg.address = c.admin_address;
    admin_cfg.port = static_cast<uint16_t>(c.admin_port);
    admin_cfg.body_limit = 16 * 1024;
    admin_cfg.max_connections = 256;
    admin_cfg.max_buffered_bytes = size_t{4} << 20;
    net::http_server admin_server{admin_cfg, [&admin](net::request&& req, net::responder reply) {
                                    admin.handle(std::move(req), std::move(reply));
                                  }};

    std::string error;
    if (!admin_server.start(error)) {
      spdlog::error("cannot start the admin listener: {}", error);
      exit_code = 1;
    } else if (!grpc.start(error)) {
      spdlog::error("cannot start the gRPC edge: {}", error);
      exit_code = 1;
    } else if (server.start(error)) {
      log_at_any_level(fmt::format("billingd admin listening on http://{}:{} (/metrics, /healthz, /readyz)",
                                   c.admin_address, admin_server.port()));
      // Before the API line: scripts take that one as "serving".
      log_at_any_level(fmt::format("billingd grpc listening on {}:{} ({}, billing.v1.BillingService, health, reflection)",
                                   c.grpc_address, grpc.port(), c.tls_cert_path.empty() ? "plaintext" : "TLS"));
      log_at_any_level(fmt::format(
        "billingd listening on {}://{}:{} (provider {}, {} API keys, {} scheduler threads, {} io threads)",
        c.tls_cert_path.empty() ? "http" : "https", c.http_address, server.port(), c.provider, c.api_keys.size(), c.scheduler_threads, c.io_threads));
      wait_for_stop_signal();
      // Stop in reverse: no new requests, answer those in flight, then the
      // actors, then the writer flushes its last batch.
      grpc.stop(std::chrono::seconds(10));
      server.stop(std::chrono::seconds(10));
    } else {
      spdlog::error("cannot start the HTTP edge: {}", error);
      exit_code = 1;
    }
    admin_server.stop(std::chrono::seconds(1));
    client.stop();
    sup.stop("sweeper");
    sup.stop("pruner");
    if (reconcile) {
      sup.stop("reconciler");
      sup.stop("reconcile store");
    }
    // The invoice actors finish what they hold (writes in flight are
    // answered by the writers, which stop last).
    registry->stop_all();
  }
  stop_bridge(sys, sup, bridge);
  caf::anon_send_exit(provider, caf::exit_reason::user_shutdown);
  sup.stop(); // the reader, then the writers (each flushes its last batch)
  ctx.reset();
  spdlog::info("billingd stopped");
  return exit_code;
}

} // namespace billing::app
