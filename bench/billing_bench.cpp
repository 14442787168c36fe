// billing-bench: webhook burst load generator and verifier for billingd.
// See docs/performance.md for how to run it and what the figures mean.
//
// Phases: plan (or --plan-in) -> setup (invoices over the API, or
// --seed-sql) -> build every event body -> timed burst of signed webhook
// deliveries -> /metrics -> verification against PostgreSQL -> report.
// Exit: 0 PASS (or success with --no-verify), 1 verification FAIL,
// 2 usage/setup error, 3 transport errors or non-2xx answers with --no-verify.

#include "bench/grpc_setup.hpp"
#include "bench/http_load.hpp"
#include "bench/plan.hpp"
#include "bench/verify.hpp"
#include "bench/workloads.hpp"


#include <cstdlib>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <random>

namespace {

using namespace billing;
using namespace billing::bench;
using json = nlohmann::ordered_json;

constexpr const char* usage_text = R"(usage: billing-bench --url http://127.0.0.1:PORT --database-url URL --webhook-secret whsec_...
                     [--invoices N] [--events M] [--dup-rate 0.1] [--shuffle|--no-shuffle]
                     [--connections C] [--rate R/s] [--duration SECONDS] [--seed-sql]
                     [--json FILE] [--verify|--no-verify] [--retries K] [--plan-out FILE]
                     [--plan-in FILE] [--run-id ID] [--quiet]
                     [--seed S] [--skip-setup] [--allow-unacked] [--timeout-ms MS]
                     [--max-connections N] [--api-key KEY] [--admin-url http://HOST:PORT]
                     [--setup-grpc HOST:PORT]

Sets up N invoices (POST /v1/invoices, or --seed-sql straight into the database),
sends M Stripe-format webhook deliveries per pass (histories of failed attempts then
succeeded/failed/canceled, --dup-rate of them re-deliveries of an earlier event id,
--shuffle'd), signed at send time, over C keep-alive connections: closed loop, or
open loop at --rate (latency from the scheduled send time). --duration repeats the
traffic with fresh event ids for that long. Then verifies in PostgreSQL that every
invoice ends in the state its history implies, every event id is recorded once and
there is exactly one outbox row per transition.

  --api-key KEY       API key with invoices:write for the setup (or BILLING_BENCH_API_KEY)
  --setup-grpc H:P    create the invoices over gRPC (billing.v1.BillingService/CreateInvoice
                      at HOST:PORT, --connections calls in flight) instead of POST /v1/invoices
  --admin-url URL     billingd's admin listener for /metrics (default http://HOST:9090)
  --invoices N        invoices to set up (default 1000)
  --events M          deliveries per pass, duplicates included (default 10000)
  --dup-rate F        fraction of deliveries that re-deliver an event id (default 0.1)
  --connections C     keep-alive connections (default 64)
  --rate R            open loop: R deliveries per second ("5000" or "5000/s")
  --max-connections N open loop: open more connections (up to N) while every one is
                      busy and deliveries are due, as Stripe does (default: --connections)
  --duration S        keep sending (repeating the plan with fresh ids) for S seconds
  --retries K         re-send a 5xx / transport failure up to K times (default 0)
  --seed-sql          insert the invoices with SQL instead of the API (faster)
  --skip-setup        assume the invoices exist (or target a server that is not billingd)
  --allow-unacked     verification tolerates events that never got a 2xx (overload runs)
  --plan-out FILE     save the plan; --plan-in FILE replays it (same ids, same order)
  --run-id ID         prefix of workflow/shipment ids (default random)
  --seed S            random seed of the plan (default random)
  --json FILE         write every figure as JSON
  --quiet             no progress line, shorter report

Exit status: 0 PASS (or no errors with --no-verify), 1 verification FAIL,
2 usage or setup error, 3 transport errors or non-2xx answers (with --no-verify).
)";

struct options {
  std::string url;
  std::string host;
  uint16_t port = 0;
  std::string database_url;
  std::string webhook_secret;
  std::string api_key;   // for POST /v1/invoices (invoices:write)
  std::string admin_url; // billingd's admin listener, for /metrics
  std::string admin_host;
  uint16_t admin_port = 0;
  uint64_t invoices = 1000;
  uint64_t events = 10000;
  double dup_rate = 0.1;
  bool shuffle = true;
  int connections = 64;
  int max_connections = 0;
  double rate = 0;
  double duration = 0;
  bool seed_sql = false;
  std::string setup_grpc; // HOST:PORT of billingd's gRPC edge: setup over gRPC
  bool skip_setup = false;
  std::string json_file;
  bool verify = true;
  int retries = 0;
  std::string plan_out;
  std::string plan_in;
  std::string run_id;
  bool quiet = false;
  bool allow_unacked = false;
  std::optional<uint64_t> seed;
  int timeout_ms = 30'000;
};

struct usage_error {
  std::string message;
};

std::string random_token(size_t n) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s += alphabet[rd() % 36];
  return s;
}

template <class T>
T parse_number(const std::string& flag, std::string v) {
  if (flag == "--rate" && v.ends_with("/s"))
    v.resize(v.size() - 2);
  try {
    size_t used = 0;
    if constexpr (std::is_floating_point_v<T>) {
      auto d = std::stod(v, &used);
      if (used == v.size() && d >= 0)
        return static_cast<T>(d);
    } else {
      auto n = std::stoll(v, &used);
      if (used == v.size() && n >= 0)
        return static_cast<T>(n);
    }
  } catch (const std::exception&) {
  }
  throw usage_error{flag + ": not a non-negative number: '" + v + "'"};
}

options parse_args(int argc, char** argv) {
  options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag.resize(eq);
    }
    auto value = [&]() -> std::string {
      if (inline_value)
        return *inline_value;
      if (i + 1 >= args.size())
        throw usage_error{flag + " needs a value"};
      return args[++i];
    };
    if (flag == "--help" || flag == "-h") {
      std::cout << usage_text;
      std::exit(0);
    } else if (flag == "--url") o.url = value();
    else if (flag == "--database-url") o.database_url = value();
    else if (flag == "--webhook-secret") o.webhook_secret = value();
    else if (flag == "--api-key") o.api_key = value();
    else if (flag == "--admin-url") o.admin_url = value();
    else if (flag == "--invoices") o.invoices = parse_number<uint64_t>(flag, value());
    else if (flag == "--events") o.events = parse_number<uint64_t>(flag, value());
    else if (flag == "--dup-rate") o.dup_rate = parse_number<double>(flag, value());
    else if (flag == "--shuffle") o.shuffle = true;
    else if (flag == "--no-shuffle") o.shuffle = false;
    else if (flag == "--connections") o.connections = parse_number<int>(flag, value());
    else if (flag == "--max-connections") o.max_connections = parse_number<int>(flag, value());
    else if (flag == "--rate") o.rate = parse_number<double>(flag, value());
    else if (flag == "--duration") o.duration = parse_number<double>(flag, value());
    else if (flag == "--seed-sql") o.seed_sql = true;
    else if (flag == "--setup-grpc") o.setup_grpc = value();
    else if (flag == "--skip-setup") o.skip_setup = true;
    else if (flag == "--json") o.json_file = value();
    else if (flag == "--verify") o.verify = true;
    else if (flag == "--no-verify") o.verify = false;
    else if (flag == "--retries") o.retries = parse_number<int>(flag, value());
    else if (flag == "--plan-out") o.plan_out = value();
    else if (flag == "--plan-in") o.plan_in = value();
    else if (flag == "--run-id") o.run_id = value();
    else if (flag == "--quiet") o.quiet = true;
    else if (flag == "--allow-unacked") o.allow_unacked = true;
    else if (flag == "--seed") o.seed = parse_number<uint64_t>(flag, value());
    else if (flag == "--timeout-ms") o.timeout_ms = parse_number<int>(flag, value());
    else throw usage_error{"unknown argument '" + args[i] + "'"};
    if (inline_value && (flag == "--shuffle" || flag == "--no-shuffle" || flag == "--seed-sql"
                         || flag == "--verify" || flag == "--no-verify" || flag == "--quiet"
                         || flag == "--skip-setup" || flag == "--allow-unacked"))
      throw usage_error{flag + " takes no value"};
  }
  if (o.url.empty())
    throw usage_error{"--url is required"};
  if (!o.url.starts_with("http://"))
    throw usage_error{"--url must be http://HOST:PORT"};
  auto hostport = o.url.substr(7);
  if (auto slash = hostport.find('/'); slash != std::string::npos)
    hostport.resize(slash);
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos)
    throw usage_error{"--url must name a port: http://HOST:PORT"};
  o.host = hostport.substr(0, colon);
  auto port = parse_number<uint64_t>("--url port", hostport.substr(colon + 1));
  if (port == 0 || port > 65535)
    throw usage_error{"--url: bad port"};
  o.port = static_cast<uint16_t>(port);
  o.admin_host = o.host;
  o.admin_port = 9090;
  if (!o.admin_url.empty()) {
    if (!o.admin_url.starts_with("http://"))
      throw usage_error{"--admin-url must be http://HOST:PORT"};
    auto admin = o.admin_url.substr(7);
    if (auto slash = admin.find('/'); slash != std::string::npos)
      admin.resize(slash);
    auto c = admin.rfind(':');
    if (c == std::string::npos)
      throw usage_error{"--admin-url must name a port: http://HOST:PORT"};
    o.admin_host = admin.substr(0, c);
    auto ap = parse_number<uint64_t>("--admin-url port", admin.substr(c + 1));
    if (ap == 0 || ap > 65535)
      throw usage_error{"--admin-url: bad port"};
    o.admin_port = static_cast<uint16_t>(ap);
  }
  if (o.api_key.empty())
    if (const char* k = std::getenv("BILLING_BENCH_API_KEY"))
      o.api_key = k;
  if (o.api_key.empty() && !o.seed_sql && !o.skip_setup)
    throw usage_error{"--api-key (or BILLING_BENCH_API_KEY) is required to create invoices over the API "
                      "(a key with invoices:write; or give --seed-sql or --skip-setup)"};
  if (o.webhook_secret.empty())
    throw usage_error{"--webhook-secret is required (the whsec_... billingd verifies with)"};
  if ((o.verify || o.seed_sql) && o.database_url.empty())
    throw usage_error{"--database-url is required (for --verify and --seed-sql; or give --no-verify)"};
  if (o.dup_rate >= 1)
    throw usage_error{"--dup-rate must be below 1"};
  if (o.connections < 1 || o.connections > 10'000)
    throw usage_error{"--connections must be 1..10000"};
  if (o.max_connections < 0 || o.max_connections > 15'000)
    throw usage_error{"--max-connections must be 0..15000"};
  if (o.retries > 20)
    throw usage_error{"--retries must be 0..20"};
  if (o.plan_in.empty() && (o.invoices == 0 || o.events == 0))
    throw usage_error{"--invoices and --events must be positive"};
  if (o.seed_sql && o.skip_setup)
    throw usage_error{"--seed-sql and --skip-setup exclude each other"};
  if (!o.setup_grpc.empty() && (o.seed_sql || o.skip_setup))
    throw usage_error{"--setup-grpc creates the invoices: not with --seed-sql or --skip-setup"};
  if (o.run_id.empty())
    o.run_id = "bench-" + random_token(8);
  for (char c : o.run_id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      throw usage_error{"--run-id: letters, digits, '-' and '_' only"};
  return o;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string ms(uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(ns) / 1e6);
  return buf;
}

double ms_value(uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

json latency_json(const histogram& h) {
  return json{{"count", h.count()},
              {"mean_ms", h.mean() / 1e6},
              {"p50_ms", ms_value(h.quantile(0.50))},
              {"p90_ms", ms_value(h.quantile(0.90))},
              {"p99_ms", ms_value(h.quantile(0.99))},
              {"p999_ms", ms_value(h.quantile(0.999))},
              {"max_ms", ms_value(h.max())}};
}

std::string latency_line(const histogram& h) {
  return "p50 " + ms(h.quantile(0.5)) + " ms  p90 " + ms(h.quantile(0.9)) + " ms  p99 " + ms(h.quantile(0.99))
         + " ms  p99.9 " + ms(h.quantile(0.999)) + " ms  max " + ms(h.max()) + " ms";
}

std::string status_line(const std::map<unsigned, uint64_t>& counts) {
  std::string s;
  for (auto& [status, n] : counts) {
    if (!s.empty())
      s += "  ";
    s += (status == 0 ? std::string{"transport-error"} : std::to_string(status)) + "=" + std::to_string(n);
  }
  return s.empty() ? "none" : s;
}

json status_json(const std::map<unsigned, uint64_t>& counts) {
  json j = json::object();
  for (auto& [status, n] : counts)
    j[status == 0 ? std::string{"transport_error"} : std::to_string(status)] = n;
  return j;
}

// The live progress line (stderr, only on a terminal).
class progress_line {
public:
  explicit progress_line(std::string label) : label_(std::move(label)) {}
  void operator()(const load_progress& p) {
    double dt = p.elapsed_s - last_t_;
    double rate = dt > 0 ? static_cast<double>(p.completed - last_done_) / dt : 0;
    last_t_ = p.elapsed_s;
    last_done_ = p.completed;
    double eta = -1;
    double avg = p.elapsed_s > 0 ? static_cast<double>(p.completed) / p.elapsed_s : 0;
    if (p.planned > 0 && avg > 0)
      eta = static_cast<double>(p.planned - std::min(p.planned, p.completed)) / avg;
    else if (p.duration_s > 0)
      eta = std::max(0.0, p.duration_s - p.elapsed_s);
    char planned[32] = "";
    if (p.planned > 0)
      std::snprintf(planned, sizeof planned, "/%" PRIu64, p.planned);
    char eta_text[32] = "?";
    if (eta >= 0)
      std::snprintf(eta_text, sizeof eta_text, "%.0fs", eta);
    char buf[200];
    std::snprintf(buf, sizeof buf, "\r%s: sent %" PRIu64 "%s  %.0f/s  errors %" PRIu64 "  ETA %s   ",
                  label_.c_str(), p.completed, planned, rate, p.failed, eta_text);
    std::fputs(buf, stderr);
    std::fflush(stderr);
  }
  static void clear() {
    std::fputs("\r\033[K", stderr);
    std::fflush(stderr);
  }

private:
  std::string label_;
  double last_t_ = 0;
  uint64_t last_done_ = 0;
};

std::string fixed(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

int run(const options& o) {
  bool tty = isatty(STDERR_FILENO) && !o.quiet;
  auto say = [&](const std::string& s) { std::cout << s << std::endl; };
  json report;
  report["tool"] = "billing-bench";
  report["url"] = o.url;

  // -- plan
  plan p;
  if (!o.plan_in.empty()) {
    std::string err;
    auto loaded = read_plan(o.plan_in, err);
    if (!loaded) {
      std::cerr << "billing-bench: " << err << '\n';
      return 2;
    }
    p = std::move(*loaded);
  } else {
    plan_options po;
    po.run_id = o.run_id;
    po.invoices = o.invoices;
    po.deliveries = o.events;
    po.dup_rate = o.dup_rate;
    po.shuffle = o.shuffle;
    po.seed = o.seed ? *o.seed : std::random_device{}();
    po.now = static_cast<int64_t>(std::time(nullptr));
    p = make_plan(po);
    report["seed"] = po.seed;
  }
  if (p.deliveries.empty()) {
    std::cerr << "billing-bench: the plan has no deliveries\n";
    return 2;
  }
  uint64_t dups = p.deliveries.size() - std::min<uint64_t>(p.deliveries.size(), p.events.size());
  std::string mode = o.rate > 0 ? "open loop at " + fixed(o.rate, 0) + "/s" : std::string{"closed loop"};
  say("billing-bench: run " + p.run_id + ": " + std::to_string(p.invoices.size()) + " invoices, "
      + std::to_string(p.deliveries.size()) + " deliveries per pass (" + std::to_string(p.events.size())
      + " events + " + std::to_string(dups) + " re-deliveries), "
      + (o.plan_in.empty() ? (o.shuffle ? "shuffled" : "in order") : "order from " + o.plan_in) + ", "
      + std::to_string(o.connections) + " connections, " + mode
      + (o.duration > 0 ? ", for " + fixed(o.duration, 0) + " s" : "") + ", retries " + std::to_string(o.retries));
  report["run_id"] = p.run_id;
  report["config"] = json{{"invoices", p.invoices.size()}, {"events", p.events.size()},
                          {"deliveries_per_pass", p.deliveries.size()}, {"duplicates_per_pass", dups},
                          {"dup_rate", o.plan_in.empty() ? o.dup_rate
                                                         : static_cast<double>(dups) / static_cast<double>(p.deliveries.size())},
                          {"shuffle", o.plan_in.empty() ? json(o.shuffle) : json("as planned")},
                          {"connections", o.connections}, {"max_connections", o.max_connections},
                          {"rate", o.rate}, {"duration_s", o.duration}, {"retries", o.retries},
                          {"seed_sql", o.seed_sql}, {"plan_in", o.plan_in}};

  std::string host_header = o.host + ":" + std::to_string(o.port);
  load_options lo;
  lo.host = o.host;
  lo.port = o.port;
  lo.connections = o.connections;
  lo.max_connections = std::max(o.connections, o.max_connections);
  lo.retries = o.retries;
  lo.timeout = std::chrono::milliseconds(o.timeout_ms);

  // -- setup
  if (o.seed_sql) {
    auto t0 = clock::now();
    try {
      auto n = seed_invoices(p, o.database_url);
      auto s = std::chrono::duration<double>(clock::now() - t0).count();
      say("setup: " + std::to_string(n) + " of " + std::to_string(p.invoices.size()) + " invoices inserted with SQL in "
          + fixed(s, 2) + " s (the rest existed)");
      report["setup"] = json{{"method", "sql"}, {"inserted", n}, {"seconds", s}};
    } catch (const std::exception& e) {
      std::cerr << "billing-bench: setup (--seed-sql) failed: " << e.what() << '\n';
      return 2;
    }
  } else if (!o.setup_grpc.empty()) {
    auto g = grpc_create_invoices(p, o.setup_grpc, o.api_key, static_cast<size_t>(o.connections),
                                  std::max(o.retries, 3));
    double rate = g.elapsed_s > 0 ? static_cast<double>(g.created) / g.elapsed_s : 0;
    say("setup: " + std::to_string(g.created) + " invoices via gRPC CreateInvoice in " + fixed(g.elapsed_s, 2)
        + " s = " + fixed(rate, 0) + "/s, " + std::to_string(o.connections) + " calls in flight; latency "
        + latency_line(g.latency_ok));
    report["setup"] = json{{"method", "grpc"}, {"created", g.created}, {"seconds", g.elapsed_s},
                           {"throughput", rate}, {"latency", latency_json(g.latency_ok)},
                           {"ids_differing_from_derived", g.differed}};
    if (g.failed > 0 || g.created != p.invoices.size()) {
      std::cerr << "billing-bench: setup over gRPC failed for " << (p.invoices.size() - g.created)
                << " invoice(s)\n";
      for (auto& e : g.samples)
        std::cerr << "  " << e << '\n';
      return 2;
    }
  } else if (!o.skip_setup) {
    create_load cl{p, host_header, o.api_key};
    auto so = lo;
    so.items = p.invoices.size();
    so.retries = std::max(o.retries, 3);
    progress_line pl{"setup"};
    if (tty)
      so.progress = std::ref(pl);
    auto r = run_load(so, cl);
    if (tty)
      progress_line::clear();
    double rate = r.elapsed_s > 0 ? static_cast<double>(r.items_ok) / r.elapsed_s : 0;
    say("setup: " + std::to_string(cl.created) + " invoices via POST /v1/invoices in " + fixed(r.elapsed_s, 2)
        + " s = " + fixed(rate, 0) + "/s over " + std::to_string(o.connections) + " connections; latency "
        + latency_line(r.latency_ok));
    say("  status: " + status_line(r.status_counts) + (r.retried ? "  (retried " + std::to_string(r.retried) + ")" : ""));
    report["setup"] = json{{"method", "api"}, {"created", cl.created}, {"seconds", r.elapsed_s},
                           {"throughput", rate}, {"latency", latency_json(r.latency_ok)},
                           {"status", status_json(r.status_counts)}, {"retried", r.retried},
                           {"ids_differing_from_derived", cl.differed}};
    if (cl.differed > 0)
      say("  note: " + std::to_string(cl.differed) + " invoice/intent ids differ from the derived ones; using the answers");
    if (cl.failed > 0 || cl.created != p.invoices.size()) {
      std::cerr << "billing-bench: setup failed for " << (p.invoices.size() - cl.created) << " invoice(s)";
      if (!r.first_error.empty())
        std::cerr << " (first transport error: " << r.first_error << ")";
      std::cerr << '\n';
      for (auto& s : cl.samples)
        std::cerr << "  " << s << '\n';
      if (!o.json_file.empty()) {
        std::ofstream(o.json_file) << report.dump(2) << '\n';
      }
      return 2;
    }
  }

  if (!o.plan_out.empty()) {
    std::string err;
    if (!write_plan(p, o.plan_out, err)) {
      std::cerr << "billing-bench: " << err << '\n';
      return 2;
    }
  }

  // -- bodies
  auto tb = clock::now();
  auto b = build_bodies(p);
  if (auto problem = self_check(p, b); !problem.empty()) {
    std::cerr << "billing-bench: " << problem << '\n';
    return 2;
  }
  size_t total_bytes = 0, min_size = SIZE_MAX, max_size = 0;
  for (auto& t : b.text) {
    total_bytes += t.size();
    min_size = std::min(min_size, t.size());
    max_size = std::max(max_size, t.size());
  }
  double mean_size = static_cast<double>(total_bytes) / static_cast<double>(b.text.size());
  if (!o.quiet)
    say("bodies: " + std::to_string(b.text.size()) + " events built in "
        + fixed(std::chrono::duration<double>(clock::now() - tb).count(), 2) + " s; " + std::to_string(min_size) + ".."
        + std::to_string(max_size) + " bytes, mean " + fixed(mean_size, 0)
        + (b.fallbacks ? "; " + std::to_string(b.fallbacks) + " built by the slow path" : ""));

  // -- the burst
  pass_states states;
  webhook_load wl{p, b, o.webhook_secret, host_header, states};
  auto wo = lo;
  wo.rate = o.rate;
  if (o.duration > 0) {
    wo.duration = std::chrono::nanoseconds(static_cast<int64_t>(o.duration * 1e9));
    wo.items = 0;
  } else {
    wo.items = p.deliveries.size();
  }
  progress_line pl{"webhooks"};
  if (tty)
    wo.progress = std::ref(pl);
  auto cpu0 = cpu_seconds();
  auto r = run_load(wo, wl);
  double cpu_us = r.exchanges ? (cpu_seconds() - cpu0) * 1e6 / static_cast<double>(r.exchanges) : 0;
  if (tty)
    progress_line::clear();
  double thr = r.elapsed_s > 0 ? static_cast<double>(r.items_completed) / r.elapsed_s : 0;
  double ok_thr = r.elapsed_s > 0 ? static_cast<double>(r.items_ok) / r.elapsed_s : 0;
  uint64_t sustained = 0;
  if (r.ok_per_second.size() >= 3) {
    sustained = UINT64_MAX;
    for (size_t s = 1; s + 1 < r.ok_per_second.size(); ++s)
      sustained = std::min(sustained, r.ok_per_second[s]);
  }
  uint64_t passes = states.size();
  say("webhooks: " + std::to_string(r.items_completed) + " deliveries in " + fixed(r.elapsed_s, 2) + " s = "
      + fixed(thr, 0) + "/s (2xx " + fixed(ok_thr, 0) + "/s" + (sustained ? ", slowest full second " + std::to_string(sustained) : "")
      + "); " + std::to_string(passes) + " pass(es); retried " + std::to_string(r.retried) + "; transport errors "
      + std::to_string(r.transport_errors) + "; generator CPU " + fixed(cpu_us, 1) + " us/request"
      + (r.connections_peak > static_cast<uint64_t>(o.connections) ? "; connections grew to " + std::to_string(r.connections_peak) : ""));
  say("  latency (2xx): " + latency_line(r.latency_ok));
  if (r.latency_all.count() != r.latency_ok.count())
    say("  latency (all answers): " + latency_line(r.latency_all));
  if (o.rate > 0)
    say("  service time (2xx, from the write, without waiting for a free connection): " + latency_line(r.service_ok));
  say("  status: " + status_line(r.status_counts)
      + (r.status_503_without_retry_after ? "  (503 without Retry-After: " + std::to_string(r.status_503_without_retry_after) + ")" : ""));
  std::string outcome_text;
  json outcome_json = json::object();
  for (auto& [k, n] : wl.outcomes) {
    outcome_text += (outcome_text.empty() ? "" : "  ") + k + "=" + std::to_string(n);
    outcome_json[k] = n;
  }
  say("  outcomes: " + (outcome_text.empty() ? std::string{"none"} : outcome_text));
  if (!r.first_error.empty())
    say("  first transport error: " + r.first_error);
  for (auto& s : wl.samples)
    say("  failed: " + s);
  report["webhooks"] = json{{"deliveries", r.items_completed}, {"ok", r.items_ok}, {"exchanges", r.exchanges},
                            {"seconds", r.elapsed_s}, {"throughput", thr}, {"ok_throughput", ok_thr},
                            {"slowest_full_second", sustained}, {"passes", passes},
                            {"retried", r.retried}, {"transport_errors", r.transport_errors},
                            {"status_503_without_retry_after", r.status_503_without_retry_after},
                            {"latency_ok", latency_json(r.latency_ok)}, {"latency_all", latency_json(r.latency_all)},
                            {"service_time_ok", latency_json(r.service_ok)},
                            {"status", status_json(r.status_counts)}, {"outcomes", outcome_json},
                            {"ok_per_second", r.ok_per_second}, {"body_bytes_mean", mean_size},
                            {"generator_cpu_us_per_request", cpu_us}, {"connections_peak", r.connections_peak}};

  // -- the service's view
  auto metrics = fetch_metrics(o.admin_host, o.admin_port);
  json mj = json::object();
  for (auto& [k, v] : metrics)
    if (k.starts_with("billing_"))
      mj[k] = v;
  report["metrics"] = mj;
  std::string batch_mean = "n/a";
  if (auto it = metrics.find("billing_commit_batch_size_mean"); it != metrics.end())
    batch_mean = fixed(it->second, 1);
  if (!metrics.empty()) {
    auto get = [&](const char* k) {
      auto it = metrics.find(k);
      return it == metrics.end() ? std::string{"n/a"} : fixed(it->second, 0);
    };
    say("  billingd: billing_commit_batch_size_mean " + batch_mean + ", batches " + get("billing_commit_batches_total")
        + ", max batch " + get("billing_commit_batch_size_max") + ", overloaded " + get("billing_writes_overloaded_total")
        + ", live invoice actors " + get("billing_invoice_actors"));
  } else {
    say("  billingd: no /metrics at " + o.url + " (not billingd?)");
  }

  bool had_errors = r.transport_errors > 0 || r.items_ok != r.items_completed;
  for (auto& [status, n] : r.status_counts)
    if (status < 200 || status >= 300)
      had_errors = true;

  // -- verification
  std::string verdict = "SKIPPED";
  int exit_code = had_errors ? 3 : 0;
  if (o.verify) {
    verify_options vo;
    vo.database_url = o.database_url;
    vo.allow_unacknowledged = o.allow_unacked;
    auto tv = clock::now();
    auto v = verify_run(p, states, vo);
    double vs = std::chrono::duration<double>(clock::now() - tv).count();
    verdict = v.pass ? "PASS" : "FAIL";
    std::string statuses;
    for (auto& [s, n] : v.final_status)
      statuses += (statuses.empty() ? "" : " ") + s + "=" + std::to_string(n);
    say("verify: " + std::to_string(v.invoices_checked) + " invoices (" + statuses + "), "
        + std::to_string(v.events_sent) + " event ids sent, " + std::to_string(v.events_acknowledged)
        + " acknowledged, " + std::to_string(v.events_recorded) + " recorded, " + std::to_string(v.lost) + " lost; "
        + std::to_string(v.transitions) + " transitions, " + std::to_string(v.outbox_rows) + " outbox rows ("
        + fixed(vs, 2) + " s)");
    if (v.unacknowledged_recorded || v.unacknowledged_missing)
      say("  never acknowledged: " + std::to_string(v.unacknowledged_recorded) + " recorded anyway, "
          + std::to_string(v.unacknowledged_missing) + " not recorded");
    for (auto& s : v.problems)
      say("  FAIL: " + s);
    if (v.problem_count > v.problems.size())
      say("  ... and " + std::to_string(v.problem_count - v.problems.size()) + " more problem(s)");
    say(std::string{"verify: "} + verdict);
    report["verify"] = json{{"result", verdict}, {"invoices", v.invoices_checked},
                            {"invoices_mismatched", v.invoices_mismatched}, {"events_sent", v.events_sent},
                            {"events_acknowledged", v.events_acknowledged}, {"events_recorded", v.events_recorded},
                            {"lost", v.lost}, {"unacknowledged_recorded", v.unacknowledged_recorded},
                            {"unacknowledged_missing", v.unacknowledged_missing}, {"transitions", v.transitions},
                            {"outbox_rows", v.outbox_rows}, {"problems", v.problems}, {"problem_count", v.problem_count}};
    exit_code = v.pass ? 0 : 1;
  } else {
    report["verify"] = json{{"result", verdict}};
  }

  // One line for scripts (bench/run-burst reads it).
  std::string summary = "summary: run=" + p.run_id + " deliveries=" + std::to_string(r.items_completed)
                        + " throughput=" + fixed(thr, 1) + " ok_throughput=" + fixed(ok_thr, 1)
                        + " p50_ms=" + ms(r.latency_ok.quantile(0.5)) + " p90_ms=" + ms(r.latency_ok.quantile(0.9))
                        + " p99_ms=" + ms(r.latency_ok.quantile(0.99)) + " p999_ms=" + ms(r.latency_ok.quantile(0.999))
                         + " max_ms=" + ms(r.latency_ok.max()) + " service_p99_ms=" + ms(r.service_ok.quantile(0.99)) + " non2xx=" + std::to_string(r.items_completed - r.items_ok)
                        + " transport_errors=" + std::to_string(r.transport_errors)
                        + " retried=" + std::to_string(r.retried) + " status503=" + std::to_string(r.status_counts.count(503) ? r.status_counts.at(503) : 0)
                        + " bench_cpu_us=" + fixed(cpu_us, 1) + " batch_mean=" + batch_mean;
  if (report.contains("setup") && (report["setup"].value("method", "") == "api" || report["setup"].value("method", "") == "grpc"))
    summary += " create_via=" + report["setup"].value("method", "") + " create_throughput=" + fixed(report["setup"]["throughput"].get<double>(), 1) + " create_p50_ms="
               + fixed(report["setup"]["latency"]["p50_ms"].get<double>(), 2) + " create_p99_ms="
               + fixed(report["setup"]["latency"]["p99_ms"].get<double>(), 2);
  summary += " verify=" + verdict + " exit=" + std::to_string(exit_code);
  say(summary);
  report["exit_code"] = exit_code;

  if (!o.json_file.empty()) {
    std::ofstream out(o.json_file);
    out << report.dump(2) << '\n';
    if (!out) {
      std::cerr << "billing-bench: cannot write " << o.json_file << '\n';
      return 2;
    }
  }
  return exit_code;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse_args(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "billing-bench: " << e.message << "\n\n" << usage_text;
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::cerr << "billing-bench: " << e.what() << '\n';
    return 2;
  }
}
