#include "app/config.hpp"

#include "protocol/stripe_api.hpp"

#include <charconv>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>
#include <unistd.h>
#include <variant>

namespace billing::app {

namespace {

enum class kind { text, integer, boolean, list };

struct setting {
  const char* name;
  kind type;
  const char* fallback; // default, as text
  int64_t min = 0, max = 0; // integers only
  bool secret = false;
  const char* help;
  std::function<void(config&, const std::string&, int64_t)> store;
};

template <class M>
auto text(M config::*m) {
  return [m](config& c, const std::string& v, int64_t) { c.*m = v; };
}
auto integer(int64_t config::*m) {
  return [m](config& c, const std::string&, int64_t n) { c.*m = n; };
}

static_assert(stripe::default_api_version == "2026-10-28.endive", "keep stripe_api_version's default in step");

const std::vector<setting>& settings() {
  static const std::vector<setting> table = {
    {"database_url", kind::text, "", 0, 0, true,
     "PostgreSQL URL, e.g. postgresql://billing@db:5432/billing (required)", text(&config::database_url)},
    {"http_address", kind::text, "127.0.0.1", 0, 0, false, "address the HTTP edge listens on",
     text(&config::http_address)},
    {"http_port", kind::integer, "8080", 0, 65535, false, "HTTP port (0: any free port)",
     integer(&config::http_port)},
    {"io_threads", kind::integer, "1", 1, 64, false, "asio threads for HTTP", integer(&config::io_threads)},
    {"scheduler_threads", kind::integer, "0", 0, 256, false,
     "CAF scheduler threads (0: one per core)", integer(&config::scheduler_threads)},
    {"provider", kind::text, "simulated", 0, 0, false,
     "payment provider: stripe (Stripe's API with stripe_secret_key) or simulated (no Stripe account "
     "needed; loopback only)", text(&config::provider)},
    {"stripe_secret_key", kind::text, "", 0, 0, true,
     "Stripe secret key sk_test_/sk_live_ or restricted key rk_test_/rk_live_ (required with "
     "provider=stripe); its prefix is the mode webhooks must match", text(&config::stripe_secret_key)},
    {"stripe_api_base", kind::text, "https://api.stripe.com", 0, 0, false,
     "Stripe API base URL (https://host[:port]; http:// only to 127.0.0.1 or localhost, for a fake Stripe)",
     text(&config::stripe_api_base)},
    {"stripe_api_version", kind::text, "2026-10-28.endive", 0, 0, false,
     "Stripe-Version sent with every request (the version billingd is written against)",
     text(&config::stripe_api_version)},
    {"stripe_ca_path", kind::text, "", 0, 0, false,
     "extra CA certificates (PEM) trusted for stripe_api_base besides the system's (tests against a fake "
     "Stripe; production needs none)", text(&config::stripe_ca_path)},
    {"stripe_max_concurrency", kind::integer, "32", 1, 1'000, false,
     "Stripe requests in flight at once (more wait for a connection)", integer(&config::stripe_max_concurrency)},
    {"stripe_timeout_ms", kind::integer, "4000", 100, 600'000, false,
     "one Stripe request attempt, connect to last byte; all attempts of a call stay within "
     "request_timeout_ms", integer(&config::stripe_timeout_ms)},
    {"stripe_connect_timeout_ms", kind::integer, "3000", 100, 60'000, false,
     "TCP connect and TLS handshake to Stripe", integer(&config::stripe_connect_timeout_ms)},
    {"stripe_max_retries", kind::integer, "2", 0, 10, false,
     "retries of a Stripe request after a connection error, timeout, 409, 429 or 5xx (jittered "
     "exponential backoff; Stripe-Should-Retry decides when sent)", integer(&config::stripe_max_retries)},
    {"reconcile_interval_seconds", kind::integer, "60", 0, 86'400, false,
     "provider=stripe: how often reconciliation asks Stripe about quiet unsettled invoices and reads its event "
     "log for events never delivered (0: off)", integer(&config::reconcile_interval_seconds)},
    {"reconcile_quiet_seconds", kind::integer, "300", 1, 30 * 86'400, false,
     "an invoice without a transition this long (and events this old) is reconciled; also the first wait "
     "between two checks of one invoice, doubling", integer(&config::reconcile_quiet_seconds)},
    {"reconcile_rate", kind::integer, "10", 1, 100, false,
     "Stripe requests a second reconciliation may make, per replica (Stripe allows 100/s live, 25/s test)",
     integer(&config::reconcile_rate)},
    {"reconcile_page", kind::integer, "100", 1, 1'000, false, "most invoices claimed per reconciliation pass (fewer when reconcile_rate x reconcile_quiet_seconds / 2 is "
     "smaller: a claim must be read before its backoff ends)",
     integer(&config::reconcile_page)},
    {"reconcile_backoff_max_seconds", kind::integer, "3600", 1, 30 * 86'400, false,
     "longest wait between two reconciliation checks of one invoice", integer(&config::reconcile_backoff_max_seconds)},
    {"reconcile_lookback_seconds", kind::integer, "259200", 0, 30 * 86'400, false,
     "where reading Stripe's event log starts the first time (Stripe keeps 30 days)",
     integer(&config::reconcile_lookback_seconds)},
    {"expiry_retry_seconds", kind::integer, "60", 1, 86'400, false,
     "expiry that finds a payment in flight (processing) retries after this, doubling; never CANCELLED meanwhile",
     integer(&config::expiry_retry_seconds)},
    {"expiry_retry_max_seconds", kind::integer, "3600", 1, 30 * 86'400, false,
     "longest wait between two expiry attempts of an invoice with a payment in flight",
     integer(&config::expiry_retry_max_seconds)},
    {"webhook_secrets", kind::list, "", 0, 0, true,
     "comma-separated Stripe endpoint secrets (whsec_...), several during rotation (required)",
     [](config& c, const std::string& v, int64_t) {
       c.webhook_secrets.clear();
       std::stringstream in{v};
       for (std::string s; std::getline(in, s, ',');)
         if (!s.empty())
           c.webhook_secrets.push_back(s);
     }},
    {"webhook_tolerance_seconds", kind::integer, "300", 1, 86'400, false,
     "reject webhooks signed longer ago than this", integer(&config::webhook_tolerance_seconds)},
    {"secret_key", kind::text, "", 0, 0, true,
     "64 hex characters (32 bytes) sealing client secrets at rest (required)", text(&config::secret_key)},
    {"invoice_expiry_seconds", kind::integer, "86400", 60, 30 * 86'400, false,
     "default invoice lifetime before it is cancelled", integer(&config::invoice_expiry_seconds)},
    {"idle_timeout_seconds", kind::integer, "60", 1, 86'400, false,
     "passivate an invoice actor idle this long", integer(&config::idle_timeout_seconds)},
    {"sweep_interval_seconds", kind::integer, "5", 1, 3'600, false,
     "how often the expiry sweeper looks for due invoices", integer(&config::sweep_interval_seconds)},
    {"batch_max", kind::integer, "256", 1, 10'000, false, "most commands in one group commit",
     integer(&config::batch_max)},
    {"pending_max", kind::integer, "10000", 1, 1'000'000, false,
     "most commands waiting for a commit; more are answered 503", integer(&config::pending_max)},
    {"max_in_flight", kind::integer, "20000", 1, 1'000'000, false,
     "most API calls in flight; more are answered 503", integer(&config::max_in_flight)},
    {"admission_latency_ms", kind::integer, "50", 0, 60'000, false,
     "latency to hold under overload: API calls in flight are capped at the peak completion "
     "rate of the last ~10 s times this (at least 1024), more are answered 503 + Retry-After; 0: off",
     integer(&config::admission_latency_ms)},
    {"writers", kind::integer, "1", 1, 16, false,
     "database connections for group commits (invoices are split among them; more than one "
     "helps when commits wait on a remote disk, not when PostgreSQL shares billingd's cores)",
     integer(&config::writers)},
    {"body_limit_bytes", kind::integer, "1048576", 1'024, 64 << 20, false,
     "largest request body accepted (413 beyond)", integer(&config::body_limit_bytes)},
    {"max_connections", kind::integer, "10000", 1, 1'000'000, false,
     "most open HTTP connections (503 beyond)", integer(&config::max_connections)},
    {"readers", kind::integer, "2", 1, 64, false, "database connections for reads",
     integer(&config::readers)},
    {"registry_shards", kind::integer, "0", 0, 1'024, false,
     "registry shards (0: two per scheduler thread)", integer(&config::registry_shards)},
    {"request_timeout_ms", kind::integer, "10000", 10, 600'000, false,
     "timeout of a request between actors", integer(&config::request_timeout_ms)},
    {"log_level", kind::text, "info", 0, 0, false, "trace, debug, info, warn, error",
     text(&config::log_level)},
    {"migrate_on_start", kind::boolean, "false", 0, 0, false,
     "apply pending schema migrations when serve starts",
     [](config& c, const std::string& v, int64_t) { c.migrate_on_start = v == "true" || v == "1"; }},
    {"allow_simulated", kind::boolean, "false", 0, 0, false,
     "serve the simulated provider on a non-loopback address (demos and load tests only: it "
     "lets any key with the simulator scope mark invoices paid)",
     [](config& c, const std::string& v, int64_t) { c.allow_simulated = v == "true" || v == "1"; }},
    {"api_keys", kind::text, "", 0, 0, true,
     "API keys of internal callers, entries separated by ';' or newlines: "
     "name=NAME sha256=HEX scopes=invoices:write,invoices:read,simulator,admin "
     "(billingd keys new NAME --scopes ... prints one)",
     text(&config::api_keys_text)}, // parsed in load_config, which reports its errors
    {"admin_address", kind::text, "127.0.0.1", 0, 0, false,
     "address of the admin listener (/metrics, /healthz, /readyz)", text(&config::admin_address)},
    {"admin_port", kind::integer, "9090", 0, 65535, false, "admin listener port (0: any free port)",
     integer(&config::admin_port)},
    {"grpc_address", kind::text, "127.0.0.1", 0, 0, false,
     "address the gRPC edge (billing.v1.BillingService, health, reflection) listens on",
     text(&config::grpc_address)},
    {"grpc_port", kind::integer, "9091", 0, 65535, false, "gRPC port (0: any free port)",
     integer(&config::grpc_port)},
    {"grpc_max_watches", kind::integer, "1000", 1, 100'000, false,
     "most open WatchInvoice streams (each polls its invoice once a second); more are RESOURCE_EXHAUSTED",
     integer(&config::grpc_max_watches)},
    {"tls_cert_path", kind::text, "", 0, 0, false,
     "PEM certificate (chain) for TLS on the HTTP and gRPC listeners (with tls_key_path; empty: plaintext)",
     text(&config::tls_cert_path)},
    {"tls_key_path", kind::text, "", 0, 0, false, "PEM private key of tls_cert_path",
     text(&config::tls_key_path)},
    {"log_format", kind::text, "text", 0, 0, false,
     "text (for people) or json (one object a line: time, level, message, request_id, invoice_id, event_id)",
     text(&config::log_format)},
    {"admin_require_key", kind::boolean, "false", 0, 0, false,
     "the admin listener's /metrics needs a key with the admin scope",
     [](config& c, const std::string& v, int64_t) { c.admin_require_key = v == "true" || v == "1"; }},
    {"max_requests_per_connection", kind::integer, "1000", 0, 100'000'000, false,
     "requests on one keep-alive connection; the last answer closes it (0: no limit)",
     integer(&config::max_requests_per_connection)},
    {"max_buffered_bytes", kind::integer, "67108864", 65'536, int64_t{1} << 40, false,
     "request bytes held across all HTTP connections; past it 503 and close",
     integer(&config::max_buffered_bytes)},
    {"log_summary_interval_seconds", kind::integer, "10", 1, 3'600, false,
     "repeated warnings (bad webhook signatures, 503s) are summarised once per interval",
     integer(&config::log_summary_interval_seconds)},
    {"self_url", kind::text, "", 0, 0, false,
     "base URL the simulator posts webhooks to (default: http://127.0.0.1:<bound port>)",
     text(&config::self_url)},
    {"sink", kind::text, "none", 0, 0, false,
     "where outbox signals go: temporal, http (callbacks) or none (they stay in the outbox; "
     "the backlog metric shows them)", text(&config::sink)},
    {"temporal_address", kind::text, "127.0.0.1:7233", 0, 0, false,
     "Temporal frontend host:port (sink=temporal)", text(&config::temporal_address)},
    {"temporal_namespace", kind::text, "default", 0, 0, false, "Temporal namespace of the workflows",
     text(&config::temporal_namespace)},
    {"temporal_tls", kind::boolean, "false", 0, 0, false, "TLS to the Temporal frontend (Temporal Cloud: true)",
     [](config& c, const std::string& v, int64_t) { c.temporal_tls = v == "true" || v == "1"; }},
    {"temporal_tls_ca_path", kind::text, "", 0, 0, false,
     "PEM root certificates for temporal_tls (default: the system's)", text(&config::temporal_tls_ca_path)},
    {"temporal_api_key", kind::text, "", 0, 0, true,
     "Temporal Cloud API key, sent as authorization: Bearer (optional)", text(&config::temporal_api_key)},
    {"temporal_identity", kind::text, "", 0, 0, false,
     "identity in each signal request (default billingd@<hostname>)", text(&config::temporal_identity)},
    {"signal_payment_confirmed", kind::text, "PaymentConfirmed", 0, 0, false,
     "signal name sent when an invoice is PAID", text(&config::signal_payment_confirmed)},
    {"signal_payment_failed", kind::text, "PaymentFailed", 0, 0, false,
     "signal name sent when a payment attempt failed", text(&config::signal_payment_failed)},
    {"signal_payment_cancelled", kind::text, "PaymentCancelled", 0, 0, false,
     "signal name sent when an invoice is CANCELLED", text(&config::signal_payment_cancelled)},
    {"signal_payment_refunded", kind::text, "PaymentRefunded", 0, 0, false,
     "signal name sent when an invoice is REFUNDED", text(&config::signal_payment_refunded)},
    {"signal_payment_disputed", kind::text, "PaymentDisputed", 0, 0, false,
     "signal name sent when an invoice is DISPUTED", text(&config::signal_payment_disputed)},
    {"callback_url", kind::text, "", 0, 0, false,
     "sink=http: URL each signal is POSTed to; {signal} is replaced by the signal name",
     text(&config::callback_url)},
    {"callback_secret", kind::text, "", 0, 0, true,
     "sink=http: key of the Billing-Signature HMAC (required with sink=http)", text(&config::callback_secret)},
    {"bridge_concurrency", kind::integer, "64", 1, 10'000, false, "signal deliveries in flight at once",
     integer(&config::bridge_concurrency)},
    {"bridge_timeout_ms", kind::integer, "10000", 100, 600'000, false,
     "one delivery attempt's timeout; a row is leased for 2x this + 2 s", integer(&config::bridge_timeout_ms)},
    {"bridge_scan_interval_ms", kind::integer, "1000", 10, 600'000, false,
     "how often the bridge scans the outbox for due rows (besides each commit's nudge)",
     integer(&config::bridge_scan_interval_ms)},
    {"bridge_retry_min_ms", kind::integer, "500", 1, 3'600'000, false,
     "first retry backoff (doubles per attempt, jittered)", integer(&config::bridge_retry_min_ms)},
    {"bridge_retry_max_ms", kind::integer, "60000", 1, 86'400'000, false, "retry backoff cap",
     integer(&config::bridge_retry_max_ms)},
    {"event_retention_days", kind::integer, "30", 3, 3'650, false,
     "keep webhook_events (the dedupe record) this long; at least 3, Stripe's retry window",
     integer(&config::event_retention_days)},
    {"outbox_retention_days", kind::integer, "7", 1, 3'650, false,
     "keep delivered outbox rows this long (undelivered and dead rows are never pruned)",
     integer(&config::outbox_retention_days)},
    {"prune_interval_seconds", kind::integer, "600", 10, 86'400, false,
     "how often old webhook_events and delivered outbox rows are deleted",
     integer(&config::prune_interval_seconds)},
    {"bridge_retry_horizon_seconds", kind::integer, "86400", 1, 30 * 86'400, false,
     "retry a signal this long, then mark it dead (billingd outbox retry re-drives it)",
     integer(&config::bridge_retry_horizon_seconds)},
  };
  return table;
}

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::optional<config_error> assign(config& c, std::map<std::string, bool>& seen,
                                   const std::string& name, std::string value,
                                   const std::string& source) {
  bool from_file = false;
  std::string key = name;
  if (key.size() > 5 && key.ends_with("_file")) {
    key = key.substr(0, key.size() - 5);
    from_file = true;
  }
  for (auto& s : settings()) {
    if (key != s.name)
      continue;
    if (from_file) {
      if (!s.secret)
        break;
      std::ifstream in{value};
      if (!in)
        return config_error{name + " (" + source + "): cannot read " + value};
      std::stringstream buf;
      buf << in.rdbuf();
      value = trim(buf.str());
    }
    int64_t n = 0;
    if (s.type == kind::integer) {
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc{} || end != value.data() + value.size())
        return config_error{key + " (" + source + "): not an integer"};
      if (n < s.min || n > s.max)
        return config_error{key + " (" + source + "): must be between " + std::to_string(s.min)
                            + " and " + std::to_string(s.max)};
    }
    if (s.type == kind::boolean && value != "true" && value != "false" && value != "1" && value != "0")
      return config_error{key + " (" + source + "): must be true or false"};
    s.store(c, value, n);
    seen[key] = true;
    return std::nullopt;
  }
  return config_error{"unknown setting '" + name + "' (" + source + "); see billingd --help"};
}

} // namespace

std::variant<config, config_error> load_config(const std::vector<std::string>& args,
                                               const std::map<std::string, std::string>& env) {
  config c;
  std::map<std::string, bool> seen;
  for (auto& s : settings())
    if (auto err = assign(c, seen, s.name, s.fallback, "default"))
      return *err;
  seen.clear();

  // The config file, if any, from --config=PATH or BILLING_CONFIG.
  std::string file;
  if (auto it = env.find("BILLING_CONFIG"); it != env.end())
    file = it->second;
  for (auto& a : args)
    if (a.starts_with("--config="))
      file = a.substr(9);
  if (!file.empty()) {
    std::ifstream in{file};
    if (!in)
      return config_error{"cannot read config file " + file};
    std::string line;
    for (int no = 1; std::getline(in, line); ++no) {
      line = trim(line);
      if (line.empty() || line[0] == '#')
        continue;
      auto eq = line.find('=');
      if (eq == std::string::npos)
        return config_error{file + ":" + std::to_string(no) + ": expected key = value"};
      if (auto err = assign(c, seen, trim(line.substr(0, eq)), trim(line.substr(eq + 1)),
                            file + ":" + std::to_string(no)))
        return *err;
    }
  }
  for (auto& s : settings()) {
    for (std::string name : {std::string{s.name}, std::string{s.name} + "_file"}) {
      auto var = "BILLING_" + upper(name);
      if (auto it = env.find(var); it != env.end())
        if (auto err = assign(c, seen, name, it->second, var))
          return *err;
    }
  }
  for (auto& a : args) {
    if (!a.starts_with("--") || a.starts_with("--config="))
      return config_error{"unexpected argument '" + a + "'; settings are --name=value"};
    auto eq = a.find('=');
    if (eq == std::string::npos)
      return config_error{"'" + a + "': settings are --name=value"};
    auto name = a.substr(2, eq - 2);
    for (auto& ch : name)
      if (ch == '-')
        ch = '_';
    if (auto err = assign(c, seen, name, a.substr(eq + 1), "command line"))
      return *err;
  }

  if (c.database_url.empty())
    return config_error{"database_url is required (BILLING_DATABASE_URL)"};
  if (c.webhook_secrets.empty())
    return config_error{"webhook_secrets is required (BILLING_WEBHOOK_SECRETS or BILLING_WEBHOOK_SECRETS_FILE)"};
  if (c.secret_key.empty())
    return config_error{"secret_key is required (BILLING_SECRET_KEY or BILLING_SECRET_KEY_FILE): 64 hex characters"};
  if (auto keys = parse_api_keys(c.api_keys_text); ok(keys))
    c.api_keys = std::move(std::get<std::vector<api_key_entry>>(keys));
  else
    return config_error{std::get<failure>(keys).message};
  if (c.tls_cert_path.empty() != c.tls_key_path.empty())
    return config_error{"TLS needs both tls_cert_path and tls_key_path (or neither, for plaintext)"};
  if (c.log_format != "text" && c.log_format != "json")
    return config_error{"log_format must be text or json (got '" + c.log_format + "')"};
  if (c.provider != "simulated" && c.provider != "stripe")
    return config_error{"provider must be stripe or simulated (got '" + c.provider + "')"};
  if (c.provider == "stripe") {
    if (c.stripe_secret_key.empty())
      return config_error{"provider=stripe needs stripe_secret_key (BILLING_STRIPE_SECRET_KEY or "
                          "BILLING_STRIPE_SECRET_KEY_FILE): a Stripe secret (sk_...) or restricted (rk_...) key"};
    auto mode = stripe::mode_of_key(c.stripe_secret_key);
    if (!mode)
      return config_error{"stripe_secret_key must start with sk_test_, sk_live_, rk_test_ or rk_live_ "
                          "(a publishable pk_ key cannot create PaymentIntents)"};
    c.stripe_live = *mode == provider_mode::live;
    if (auto why = stripe::api_base_problem(c.stripe_api_base); !why.empty())
      return config_error{"stripe_api_base " + why};
    if (c.stripe_api_version.empty())
      return config_error{"stripe_api_version must not be empty"};
    if (!c.stripe_ca_path.empty() && !std::ifstream{c.stripe_ca_path})
      return config_error{"stripe_ca_path: cannot read " + c.stripe_ca_path};
    if (c.stripe_timeout_ms >= c.request_timeout_ms)
      return config_error{"stripe_timeout_ms must be below request_timeout_ms: the invoice actors wait "
                          "request_timeout_ms for Stripe's answer, retries included"};
  }
  if (c.expiry_retry_max_seconds < c.expiry_retry_seconds)
    return config_error{"expiry_retry_max_seconds must be at least expiry_retry_seconds"};
  if (c.sink != "none" && c.sink != "temporal" && c.sink != "http")
    return config_error{"sink must be none, temporal or http (got '" + c.sink + "')"};
  if (c.sink == "temporal" && c.temporal_address.empty())
    return config_error{"sink=temporal needs temporal_address (host:port)"};
  if (c.sink == "http" && (c.callback_url.empty() || c.callback_secret.empty()))
    return config_error{"sink=http needs callback_url and callback_secret (BILLING_CALLBACK_SECRET or _FILE)"};
  if (c.bridge_retry_max_ms < c.bridge_retry_min_ms)
    return config_error{"bridge_retry_max_ms must be at least bridge_retry_min_ms"};
  if (c.temporal_identity.empty()) {
    char host[256] = {};
    c.temporal_identity = std::string{"billingd@"} + (gethostname(host, sizeof host - 1) == 0 ? host : "unknown");
  }
  if (c.scheduler_threads == 0)
    c.scheduler_threads = std::max(1u, std::thread::hardware_concurrency());
  if (c.registry_shards == 0)
    c.registry_shards = 2 * c.scheduler_threads;
  return c;
}

bool is_loopback(const std::string& address) {
  if (address == "localhost" || address == "::1")
    return true;
  // 127.0.0.0/8, written as a dotted quad.
  if (!address.starts_with("127."))
    return false;
  int parts = 0;
  for (std::string_view rest{address}; !rest.empty(); ++parts) {
    auto dot = rest.find('.');
    auto part = rest.substr(0, dot);
    int n = -1;
    auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), n);
    if (ec != std::errc{} || end != part.data() + part.size() || n < 0 || n > 255 || part.size() > 3)
      return false;
    rest = dot == std::string_view::npos ? std::string_view{} : rest.substr(dot + 1);
    if (dot != std::string_view::npos && rest.empty())
      return false;
  }
  return parts == 4;
}

std::string serve_refusal(const config& c) {
  if (c.provider == "simulated" && !is_loopback(c.http_address) && !c.allow_simulated)
    return "the simulated provider serves only on a loopback address (http_address is "
           + c.http_address
           + "): with it, any key holding the simulator scope can mark invoices paid and the "
             "workflows told so. Use provider=stripe on a network, or set "
             "BILLING_ALLOW_SIMULATED=true for a demo or load test you are sure nobody else can reach.";
  return {};
}

std::string describe(const config& c) {
  std::ostringstream out;
  auto line = [&](const char* name, const std::string& value) { out << name << " = " << value << '\n'; };
  auto redact = [](const std::string& s) { return s.empty() ? std::string{"(unset)"} : std::string{"(redacted)"}; };
  // A URL's password is a secret; the rest helps debugging.
  auto url = c.database_url;
  if (auto at = url.find('@'); at != std::string::npos)
    if (auto colon = url.find(':', url.find("://") + 3); colon != std::string::npos && colon < at)
      url = url.substr(0, colon + 1) + "***" + url.substr(at);
  line("database_url", url);
  line("http_address", c.http_address);
  line("http_port", std::to_string(c.http_port));
  line("io_threads", std::to_string(c.io_threads));
  line("scheduler_threads", std::to_string(c.scheduler_threads));
  line("provider", c.provider);
  line("stripe_secret_key", c.stripe_secret_key.empty()
                              ? redact(c.stripe_secret_key)
                              : redact(c.stripe_secret_key) + (c.stripe_live ? " (live mode)" : " (test mode)"));
  line("stripe_api_base", c.stripe_api_base);
  line("stripe_api_version", c.stripe_api_version);
  line("stripe_ca_path", c.stripe_ca_path);
  line("stripe_max_concurrency", std::to_string(c.stripe_max_concurrency));
  line("stripe_timeout_ms", std::to_string(c.stripe_timeout_ms));
  line("stripe_connect_timeout_ms", std::to_string(c.stripe_connect_timeout_ms));
  line("stripe_max_retries", std::to_string(c.stripe_max_retries));
  line("reconcile_interval_seconds", std::to_string(c.reconcile_interval_seconds));
  line("reconcile_quiet_seconds", std::to_string(c.reconcile_quiet_seconds));
  line("reconcile_rate", std::to_string(c.reconcile_rate));
  line("reconcile_page", std::to_string(c.reconcile_page));
  line("reconcile_backoff_max_seconds", std::to_string(c.reconcile_backoff_max_seconds));
  line("reconcile_lookback_seconds", std::to_string(c.reconcile_lookback_seconds));
  line("expiry_retry_seconds", std::to_string(c.expiry_retry_seconds));
  line("expiry_retry_max_seconds", std::to_string(c.expiry_retry_max_seconds));
  line("webhook_secrets", std::to_string(c.webhook_secrets.size()) + " configured " + redact("x"));
  line("webhook_tolerance_seconds", std::to_string(c.webhook_tolerance_seconds));
  line("secret_key", redact(c.secret_key));
  line("invoice_expiry_seconds", std::to_string(c.invoice_expiry_seconds));
  line("idle_timeout_seconds", std::to_string(c.idle_timeout_seconds));
  line("sweep_interval_seconds", std::to_string(c.sweep_interval_seconds));
  line("batch_max", std::to_string(c.batch_max));
  line("pending_max", std::to_string(c.pending_max));
  line("max_in_flight", std::to_string(c.max_in_flight));
  line("admission_latency_ms", std::to_string(c.admission_latency_ms));
  line("writers", std::to_string(c.writers));
  line("body_limit_bytes", std::to_string(c.body_limit_bytes));
  line("max_connections", std::to_string(c.max_connections));
  line("readers", std::to_string(c.readers));
  line("registry_shards", std::to_string(c.registry_shards));
  line("request_timeout_ms", std::to_string(c.request_timeout_ms));
  line("log_level", c.log_level);
  line("migrate_on_start", c.migrate_on_start ? "true" : "false");
  line("allow_simulated", c.allow_simulated ? "true" : "false");
  {
    std::string keys = std::to_string(c.api_keys.size()) + " configured";
    for (size_t i = 0; i < c.api_keys.size(); ++i)
      keys += (i == 0 ? ": " : "; ") + c.api_keys[i].name + " (" + to_string(c.api_keys[i].scopes) + ")";
    line("api_keys", keys + " (hashes not shown)");
  }
  line("admin_address", c.admin_address);
  line("admin_port", std::to_string(c.admin_port));
  line("admin_require_key", c.admin_require_key ? "true" : "false");
  line("grpc_address", c.grpc_address);
  line("grpc_port", std::to_string(c.grpc_port));
  line("grpc_max_watches", std::to_string(c.grpc_max_watches));
  line("tls_cert_path", c.tls_cert_path);
  line("tls_key_path", c.tls_key_path);
  line("log_format", c.log_format);
  line("max_requests_per_connection", std::to_string(c.max_requests_per_connection));
  line("max_buffered_bytes", std::to_string(c.max_buffered_bytes));
  line("log_summary_interval_seconds", std::to_string(c.log_summary_interval_seconds));
  line("self_url", c.self_url.empty() ? "(http://127.0.0.1:<bound port>)" : c.self_url);
  line("sink", c.sink);
  line("temporal_address", c.temporal_address);
  line("temporal_namespace", c.temporal_namespace);
  line("temporal_tls", c.temporal_tls ? "true" : "false");
  line("temporal_tls_ca_path", c.temporal_tls_ca_path);
  line("temporal_api_key", redact(c.temporal_api_key));
  line("temporal_identity", c.temporal_identity);
  line("signal_payment_confirmed", c.signal_payment_confirmed);
  line("signal_payment_failed", c.signal_payment_failed);
  line("signal_payment_cancelled", c.signal_payment_cancelled);
  line("signal_payment_refunded", c.signal_payment_refunded);
  line("signal_payment_disputed", c.signal_payment_disputed);
  line("callback_url", c.callback_url);
  line("callback_secret", redact(c.callback_secret));
  line("bridge_concurrency", std::to_string(c.bridge_concurrency));
  line("bridge_timeout_ms", std::to_string(c.bridge_timeout_ms));
  line("bridge_scan_interval_ms", std::to_string(c.bridge_scan_interval_ms));
  line("bridge_retry_min_ms", std::to_string(c.bridge_retry_min_ms));
  line("bridge_retry_max_ms", std::to_string(c.bridge_retry_max_ms));
  line("bridge_retry_horizon_seconds", std::to_string(c.bridge_retry_horizon_seconds));
  line("event_retention_days", std::to_string(c.event_retention_days));
  line("outbox_retention_days", std::to_string(c.outbox_retention_days));
  line("prune_interval_seconds", std::to_string(c.prune_interval_seconds));
  return out.str();
}

std::string settings_help() {
  std::ostringstream out;
  for (auto& s : settings()) {
    out << "  --" << s.name << "  (BILLING_" << upper(s.name) << (s.secret ? ", or _FILE" : "")
        << ")  " << s.help;
    if (*s.fallback)
      out << " [default " << s.fallback << "]";
    out << '\n';
  }
  return out.str();
}

} // namespace billing::app
