// billingd: billing and payment confirmation. See README.md.
//
//   billingd [serve] [--name=value ...]   run the service (default)
//   billingd migrate [--name=value ...]   apply pending schema migrations
//   billingd config  [--name=value ...]   print the effective configuration
//   billingd outbox retry --id N [--id M ...] | --all-dead   re-drive dead signals
//   billingd keys new NAME --scopes a,b   make an API key (printed once)
//   billingd --help

#include "app/config.hpp"
#include "app/keys.hpp"
#include "app/logging.hpp"
#include "app/service.hpp"
#include "persistence/outbox_store.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <charconv>
#include <map>
#include <pthread.h>

extern char** environ;

namespace {

constexpr const char* usage = R"(usage: billingd [serve|migrate|config] [--name=value ...]

  serve    run the service until SIGINT/SIGTERM (the default)
  migrate  apply pending schema migrations and exit
  config   print the effective configuration (secrets redacted) and exit
  keys new NAME --scopes SCOPE[,SCOPE...]
           print a fresh API key once, and the entry for api_keys (its SHA-256,
           name and scopes: invoices:write, invoices:read, simulator, admin)
  outbox retry --id N [--id M ...] | --all-dead
           make dead outbox signals live again (each named row with the later
           dead rows of its invoice, or every dead row); a running billingd
           delivers them within its scan interval

Settings (later sources win: defaults, --config=FILE or BILLING_CONFIG with
key = value lines, BILLING_* environment, --name=value):
)";

std::map<std::string, std::string> environment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv{*e};
    auto eq = kv.find('=');
    if (eq != std::string::npos)
      env.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return env;
}

// `billingd outbox retry ...`: takes --id N / --id=N / --all-dead out of
// `args` (the rest are settings). Returns an error text or empty.
std::string parse_retry(std::vector<std::string>& args, billing::redrive_request& req) {
  if (args.empty() || args.front() != "retry")
    return "usage: billingd outbox retry --id N [--id M ...] | --all-dead";
  std::vector<std::string> rest;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string value;
    if (args[i] == "--all-dead") {
      req.all_dead = true;
      continue;
    }
    if (args[i] == "--id" && i + 1 < args.size())
      value = args[++i];
    else if (args[i].starts_with("--id="))
      value = args[i].substr(5);
    else {
      rest.push_back(args[i]);
      continue;
    }
    int64_t id = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), id);
    if (ec != std::errc{} || end != value.data() + value.size() || id <= 0)
      return "--id needs a positive outbox row id, got '" + value + "'";
    req.ids.push_back(id);
  }
  if (req.all_dead == !req.ids.empty())
    return "name the rows to re-drive: --id N (repeatable) or --all-dead, not both";
  args = std::move(rest);
  return {};
}

int outbox_retry(const billing::app::config& cfg, const billing::redrive_request& req) {
  billing::outbox_store store{billing::outbox_store_options{cfg.database_url}};
  if (auto c = store.connect(); !billing::ok(c)) {
    std::cerr << "billingd: " << std::get<billing::failure>(c).message << '\n';
    return 1;
  }
  auto r = store.redrive(req);
  if (!billing::ok(r)) {
    std::cerr << "billingd: outbox retry failed: " << std::get<billing::failure>(r).message << '\n';
    return 1;
  }
  auto n = std::get<int64_t>(r);
  std::cout << "re-drove " << n << " dead outbox row(s)" << '\n';
  if (n == 0 && !req.all_dead)
    std::cout << "(none of the named rows is dead: delivered, still being retried, or unknown)\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and serve() alone receives them (sigwait).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<std::string> args(argv + 1, argv + argc);
  std::string command = "serve";
  if (!args.empty() && !args.front().starts_with("--")) {
    command = args.front();
    args.erase(args.begin());
  }
  for (auto& a : args)
    if (a == "--help" || a == "-h") {
      std::cout << usage << billing::app::settings_help();
      return 0;
    }
  if (command == "help") {
    std::cout << usage << billing::app::settings_help();
    return 0;
  }
  if (command == "keys")
    return billing::app::keys_command(args, std::cout, std::cerr);
  billing::redrive_request redrive;
  if (command == "outbox") {
    if (auto err = parse_retry(args, redrive); !err.empty()) {
      std::cerr << "billingd: " << err << '\n';
      return 2;
    }
  } else if (command != "serve" && command != "migrate" && command != "config") {
    std::cerr << "billingd: unknown command '" << command << "'\n" << usage;
    return 2;
  }

  auto loaded = billing::app::load_config(args, environment());
  if (auto* err = std::get_if<billing::app::config_error>(&loaded)) {
    std::cerr << "billingd: configuration: " << err->message << '\n';
    return 2;
  }
  auto& cfg = std::get<billing::app::config>(loaded);
  billing::app::configure_logging(cfg.log_level, cfg.log_format);

  if (command == "config") {
    std::cout << billing::app::describe(cfg);
    return 0;
  }
  if (command == "migrate")
    return billing::app::migrate(cfg);
  if (command == "outbox")
    return outbox_retry(cfg, redrive);
  if (auto refusal = billing::app::serve_refusal(cfg); !refusal.empty()) {
    spdlog::error("billingd serve: {}", refusal);
    return 2;
  }
  return billing::app::serve(cfg);
}
