#pragma once
// billingd's configuration, declared once: every setting has a name, a
// default, bounds and one line of description in config.cpp. Sources, later
// ones winning: defaults, a config file (`key = value` lines, --config or
// BILLING_CONFIG), BILLING_<NAME> environment variables, --name=value on the
// command line. Secrets may come from files (<name>_file). `billingd config`
// prints the effective configuration with secrets redacted.

#include "protocol/api_keys.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace billing::app {

struct config {
  std::string database_url;
  std::string http_address;
  int64_t http_port = 0;
  int64_t io_threads = 0;
  int64_t scheduler_threads = 0;
  std::string provider;
  std::vector<std::string> webhook_secrets;
  int64_t webhook_tolerance_seconds = 0;
  std::string secret_key; // 64 hex characters: seals client secrets
  int64_t invoice_expiry_seconds = 0;
  int64_t idle_timeout_seconds = 0;
  int64_t sweep_interval_seconds = 0;
  int64_t batch_max = 0;
  int64_t pending_max = 0;
  int64_t max_in_flight = 0;
  int64_t admission_latency_ms = 0;
  int64_t writers = 0;
  int64_t body_limit_bytes = 0;
  int64_t max_connections = 0;
  int64_t readers = 0;
  int64_t registry_shards = 0;
  int64_t request_timeout_ms = 0;
  std::string log_level;
  bool migrate_on_start = false;
  std::string self_url; // where the simulator delivers webhooks
  bool allow_simulated = false; // the simulated provider on a non-loopback address

  // provider = stripe: Stripe's API (net/stripe_client).
  std::string stripe_secret_key; // secret; sk_/rk_ + test_/live_: the prefix is the mode
  std::string stripe_api_base;
  std::string stripe_api_version;
  std::string stripe_ca_path;    // extra CA certificates for stripe_api_base (tests)
  int64_t stripe_max_concurrency = 0;
  int64_t stripe_timeout_ms = 0;
  int64_t stripe_connect_timeout_ms = 0;
  int64_t stripe_max_retries = 0;
  bool stripe_live = false;      // from the key's prefix (load_config)
  // Reconciliation (actors/reconciler), provider = stripe only.
  int64_t reconcile_interval_seconds = 0; // 0: off
  int64_t reconcile_quiet_seconds = 0;
  int64_t reconcile_rate = 0;             // provider requests per second
  int64_t reconcile_page = 0;
  int64_t reconcile_backoff_max_seconds = 0;
  int64_t reconcile_lookback_seconds = 0;
  // The expiry race: expiry finding a payment in flight retries after this,
  // doubling up to the max.
  int64_t expiry_retry_seconds = 0;
  int64_t expiry_retry_max_seconds = 0;

  // Who may call the API: keys as SHA-256 hashes with names and scopes.
  std::string api_keys_text; // as configured; parsed into api_keys by load_config
  std::vector<api_key_entry> api_keys;
  // The admin listener (/metrics, health).
  std::string admin_address;
  int64_t admin_port = 0;
  bool admin_require_key = false;
  // The gRPC edge.
  std::string grpc_address;
  int64_t grpc_port = 0;
  int64_t grpc_max_watches = 0;
  // TLS on the HTTP and gRPC listeners (both paths or neither).
  std::string tls_cert_path;
  std::string tls_key_path;
  std::string log_format; // text | json
  // HTTP bounds beyond the body size and connection count.
  int64_t max_requests_per_connection = 0;
  int64_t max_buffered_bytes = 0;
  int64_t log_summary_interval_seconds = 0;

  // The workflow bridge: where outbox signals go (sink = none|temporal|http).
  std::string sink;
  std::string temporal_address;
  std::string temporal_namespace;
  bool temporal_tls = false;
  std::string temporal_tls_ca_path;
  std::string temporal_api_key; // secret
  std::string temporal_identity;
  std::string signal_payment_confirmed;
  std::string signal_payment_failed;
  std::string signal_payment_cancelled;
  std::string signal_payment_refunded;
  std::string signal_payment_disputed;
  std::string callback_url;    // may contain {signal}
  std::string callback_secret; // secret
  int64_t bridge_concurrency = 0;
  int64_t bridge_timeout_ms = 0;
  int64_t bridge_scan_interval_ms = 0;
  int64_t bridge_retry_min_ms = 0;
  int64_t bridge_retry_max_ms = 0;
  int64_t bridge_retry_horizon_seconds = 0;

  // Retention (persistence/pruner).
  int64_t event_retention_days = 0;
  int64_t outbox_retention_days = 0;
  int64_t prune_interval_seconds = 0;
};

struct config_error {
  std::string message; // names the setting and the source; never the secret
};

// argv without the subcommand. env: the process environment.
std::variant<config, config_error> load_config(const std::vector<std::string>& args,
                                               const std::map<std::string, std::string>& env);

// Why `serve` must not start with `c`, or empty: the simulated provider lets
// anyone with a `simulator` key mark invoices paid, so it serves only on a
// loopback address unless allow_simulated says otherwise.
std::string serve_refusal(const config& c);

// Whether `address` is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback(const std::string& address);

// One line per setting, secrets redacted.
std::string describe(const config& c);
// The table of settings for --help.
std::string settings_help();

} // namespace billing::app
