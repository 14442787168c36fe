// billingd: billing and payment confirmation. See README.md.
//
//   billingd [serve] [--name=value ...]   run the service (default)
//   billingd migrate [--name=value ...]   apply pending schema migrations
//   billingd config  [--name=value ...]   print the effective configuration
//   billingd --help

#include "app/config.hpp"
#include "app/service.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>
#include <pthread.h>

extern char** environ;

namespace {

constexpr const char* usage = R"(usage: billingd [serve|migrate|config] [--name=value ...]

  serve    run the service until SIGINT/SIGTERM (the default)
  migrate  apply pending schema migrations and exit
  config   print the effective configuration (secrets redacted) and exit

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
  if (command != "serve" && command != "migrate" && command != "config") {
    std::cerr << "billingd: unknown command '" << command << "'\n" << usage;
    return 2;
  }

  auto loaded = billing::app::load_config(args, environment());
  if (auto* err = std::get_if<billing::app::config_error>(&loaded)) {
    std::cerr << "billingd: configuration: " << err->message << '\n';
    return 2;
  }
  auto& cfg = std::get<billing::app::config>(loaded);
  spdlog::set_level(spdlog::level::from_str(cfg.log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  if (command == "config") {
    std::cout << billing::app::describe(cfg);
    return 0;
  }
  if (command == "migrate")
    return billing::app::migrate(cfg);
  return billing::app::serve(cfg);
}
